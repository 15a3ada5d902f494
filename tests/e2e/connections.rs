//! Connections that hold the listener's resources without using them: a
//! peer that never finishes its TLS handshake (10 s), never sends its
//! request headers (10 s, or the idle timeout if shorter), or sits idle on a
//! kept-alive HTTP/1.1 or HTTP/2 connection (`[server] idle_timeout_secs`)
//! is dropped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::support::client::tls_config;
use crate::support::dns::DnsServer;
use crate::support::procs::{Ca, CaOptions};

/// The idle timeout the CA under test is given.
const IDLE: Duration = Duration::from_secs(3);
/// The TLS handshake deadline (acme-frontend's `TLS_TIMEOUT`).
const TLS_HANDSHAKE: Duration = Duration::from_secs(10);
/// Scheduling slack on top of a deadline.
const SLACK: Duration = Duration::from_secs(10);
/// How long a connection is watched before it counts as never closed.
const LIMIT: Duration = Duration::from_secs(30);

/// Reads until EOF or an error; returns how long that took, or `None` when
/// the connection is still open after [`LIMIT`].
async fn time_to_close<S: AsyncRead + Unpin>(s: &mut S) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(LIMIT.saturating_sub(start.elapsed()), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(start.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

/// The HTTPS listener's port, from the directory URL.
fn port(ca: &Ca) -> u16 {
    let uri: http::Uri = ca.directory().parse().expect("directory URL");
    uri.port_u16().expect("the directory URL has a port")
}

async fn tls(ca: &Ca, alpn: &[u8]) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut config = tls_config(ca.ca_cert());
    config.alpn_protocols = vec![alpn.to_vec()];
    let tcp = TcpStream::connect(("127.0.0.1", port(ca)))
        .await
        .expect("connect");
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS handshake")
}

/// A CA with `server_toml` in its `[server]` table.
async fn start(server_toml: String) -> (DnsServer, Ca) {
    let dns = DnsServer::start().await;
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        server_toml,
        ..CaOptions::default()
    })
    .await;
    (dns, ca)
}

/// `GET` of the directory over an HTTP/1.1 connection; asserts a 200.
async fn get_directory<S: AsyncRead + AsyncWrite + Unpin>(ca: &Ca, s: &mut S) {
    let path = ca
        .directory()
        .parse::<http::Uri>()
        .expect("URL")
        .path()
        .to_owned();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("request");
    let mut first = [0u8; 12];
    s.read_exact(&mut first).await.expect("response");
    assert_eq!(&first, b"HTTP/1.1 200", "GET {path}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_stalled_connections_are_dropped() {
    let (_dns, ca) = start(format!("idle_timeout_secs = {}", IDLE.as_secs())).await;

    let no_hello = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port(&ca)))
            .await
            .expect("connect");
        time_to_close(&mut tcp).await
    };
    let no_headers = async {
        let mut s = tls(&ca, b"http/1.1").await;
        s.write_all(b"GET /directory HTTP/1.1\r\nHost: localhost\r\n")
            .await
            .expect("half a request");
        time_to_close(&mut s).await
    };
    let idle_h1 = async {
        let mut s = tls(&ca, b"http/1.1").await;
        get_directory(&ca, &mut s).await;
        time_to_close(&mut s).await
    };
    let idle_h2 = async {
        let mut s = tls(&ca, b"h2").await;
        // The client connection preface and an empty SETTINGS frame.
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            .await
            .expect("h2 preface");
        time_to_close(&mut s).await
    };
    let (no_hello, no_headers, idle_h1, idle_h2) =
        tokio::join!(no_hello, no_headers, idle_h1, idle_h2);
    eprintln!(
        "[e2e] closed after: no ClientHello {no_hello:?}, half headers {no_headers:?}, idle HTTP/1.1 {idle_h1:?}, idle HTTP/2 {idle_h2:?}"
    );
    let within = |closed: Option<Duration>, deadline: Duration| {
        closed.is_some_and(|t| t + Duration::from_millis(500) >= deadline && t <= deadline + SLACK)
    };
    assert!(
        within(no_hello, TLS_HANDSHAKE),
        "a peer that never sends a ClientHello is dropped after {TLS_HANDSHAKE:?}: {no_hello:?}"
    );
    assert!(
        within(no_headers, IDLE),
        "a peer that never finishes its headers is dropped after {IDLE:?}: {no_headers:?}"
    );
    assert!(
        within(idle_h1, IDLE),
        "an idle HTTP/1.1 keep-alive connection is dropped after {IDLE:?}: {idle_h1:?}"
    );
    assert!(
        within(idle_h2, IDLE),
        "an idle HTTP/2 connection is dropped after {IDLE:?}: {idle_h2:?}"
    );
}

/// With `max_connections = 2`, two idle connections hold both slots: a
/// third peer's TLS handshake waits until the idle timeout frees one, and is
/// then served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_for_a_free_slot() {
    let (_dns, ca) = start(format!(
        "idle_timeout_secs = {}\nmax_connections = 2",
        IDLE.as_secs()
    ))
    .await;
    // The harness's readiness probe may still hold a slot: let it go.
    tokio::time::sleep(IDLE + Duration::from_secs(1)).await;

    let start = Instant::now();
    let _a = tls(&ca, b"http/1.1").await;
    let _b = tls(&ca, b"http/1.1").await;
    let mut c = tls(&ca, b"http/1.1").await;
    let waited = start.elapsed();
    eprintln!("[e2e] third connection accepted after {waited:?}");
    get_directory(&ca, &mut c).await;
    assert!(
        waited + Duration::from_millis(500) >= IDLE && waited <= IDLE + SLACK,
        "the third handshake waited for an idle slot to free ({IDLE:?}), not {waited:?}"
    );
}
