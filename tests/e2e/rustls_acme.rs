//! rustls-acme, unmodified, as the reference's downstream users embed it
//! (ADR-027: a TLS server that provisions its own certificate over
//! tls-alpn-01): it obtains a certificate from this CA with its directory
//! pointed at us and our root trusted, serves it, and renews it when the
//! cached one has run through two thirds of its lifetime.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use openssl::x509::X509;
use rustls::pki_types::ServerName;
use rustls_acme::{
    AccountCache, AcmeConfig, CertCache, EventOk, UseChallenge, is_tls_alpn_challenge,
};
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::{LazyConfigAcceptor, TlsConnector};

use crate::issuance::start_ca;
use crate::support::acme::{Session, created, dns};
use crate::support::certs::{dns_sans, serial, verify_chain};
use crate::support::client::{RawClient, tls_config};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::Ca;

/// How long one rustls-acme step (order, validation, download) may take.
const STEP: Duration = Duration::from_secs(60);

/// A cache the test can look into and seed: what rustls-acme would keep in
/// its `DirCache`, in memory.
#[derive(Default)]
struct MemCache {
    cert: Mutex<Option<Vec<u8>>>,
    account: Mutex<Option<Vec<u8>>>,
}

#[async_trait]
impl CertCache for MemCache {
    type EC = std::io::Error;
    async fn load_cert(&self, _: &[String], _: &str) -> Result<Option<Vec<u8>>, Self::EC> {
        Ok(self.cert.lock().expect("cache lock").clone())
    }
    async fn store_cert(&self, _: &[String], _: &str, cert: &[u8]) -> Result<(), Self::EC> {
        *self.cert.lock().expect("cache lock") = Some(cert.to_vec());
        Ok(())
    }
}

#[async_trait]
impl AccountCache for MemCache {
    type EA = std::io::Error;
    async fn load_account(&self, _: &[String], _: &str) -> Result<Option<Vec<u8>>, Self::EA> {
        Ok(self.account.lock().expect("cache lock").clone())
    }
    async fn store_account(&self, _: &[String], _: &str, account: &[u8]) -> Result<(), Self::EA> {
        *self.account.lock().expect("cache lock") = Some(account.to_vec());
        Ok(())
    }
}

/// A TLS server run by rustls-acme on the CA's tls-alpn-01 port: its event
/// stream, forwarded to the test, and its accept loop.
struct AcmeServer {
    events: mpsc::UnboundedReceiver<String>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl AcmeServer {
    /// Starts rustls-acme for `name` against `ca`, with `cache` (possibly
    /// holding a certificate already).
    async fn start(ca: &Ca, name: &str, cache: Arc<MemCache>) -> AcmeServer {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let client = Arc::new(tls_config(ca.ca_cert()));
        let mut state = AcmeConfig::new_with_client_config([name], client)
            .directory(ca.directory())
            .contact_push("mailto:ops@example.org")
            .cache_compose(SharedCache(cache.clone()), SharedCache(cache))
            .challenge_type(UseChallenge::TlsAlpn01)
            .state();
        let challenge_config = state.challenge_rustls_config_with_provider(provider.clone());
        let default_config = state.default_rustls_config_with_provider(provider);

        let (tx, events) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            while let Some(event) = state.next().await {
                let line = match event {
                    Ok(ok) => format!("ok: {ok:?}"),
                    Err(err) => format!("error: {err:?}"),
                };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });

        let port = ca.tls_alpn_validation_port();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap_or_else(|e| panic!("bind the tls-alpn-01 port {port}: {e}"));
        let addr = listener.local_addr().expect("local addr");
        let acceptor = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    break;
                };
                let challenge_config = challenge_config.clone();
                let default_config = default_config.clone();
                tokio::spawn(async move {
                    let acceptor =
                        LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp);
                    let Ok(start) = acceptor.await else { return };
                    let config = if is_tls_alpn_challenge(&start.client_hello()) {
                        challenge_config
                    } else {
                        default_config
                    };
                    if let Ok(mut tls) = start.into_stream(config).await {
                        use tokio::io::AsyncWriteExt;
                        let _ = tls.shutdown().await;
                    }
                });
            }
        });
        AcmeServer {
            events,
            addr,
            tasks: vec![driver, acceptor],
        }
    }

    /// Waits for the event `want`; panics on a rustls-acme error or after
    /// `timeout`.
    async fn expect(&mut self, want: EventOk, timeout: Duration) {
        let want = format!("ok: {want:?}");
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(line)) if line == want => return,
                Ok(Some(line)) => {
                    assert!(
                        !line.starts_with("error"),
                        "rustls-acme failed while waiting for {want}: {line} (events so far: {seen:?})"
                    );
                    seen.push(line);
                }
                Ok(None) => panic!("rustls-acme stopped before {want}: {seen:?}"),
                Err(_) => panic!("no {want} within {timeout:?}; events: {seen:?}"),
            }
        }
    }

    /// The leaf a TLS client gets when it connects for `name`, verified by
    /// rustls against the CA root.
    async fn served_leaf(&self, ca: &Ca, name: &str) -> X509 {
        let connector = TlsConnector::from(Arc::new(tls_config(ca.ca_cert())));
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let server_name = ServerName::try_from(name.to_owned()).expect("server name");
        let tls = tokio::time::timeout(STEP, connector.connect(server_name, tcp))
            .await
            .expect("handshake deadline")
            .unwrap_or_else(|e| panic!("handshake with the rustls-acme server: {e}"));
        let (_, conn) = tls.get_ref();
        let leaf = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("the server sent a certificate");
        X509::from_der(leaf.as_ref()).expect("leaf DER")
    }
}

impl Drop for AcmeServer {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// `cache_compose` wants two owned caches: both halves share one store.
struct SharedCache(Arc<MemCache>);

#[async_trait]
impl CertCache for SharedCache {
    type EC = std::io::Error;
    async fn load_cert(&self, d: &[String], u: &str) -> Result<Option<Vec<u8>>, Self::EC> {
        self.0.load_cert(d, u).await
    }
    async fn store_cert(&self, d: &[String], u: &str, cert: &[u8]) -> Result<(), Self::EC> {
        self.0.store_cert(d, u, cert).await
    }
}

#[async_trait]
impl AccountCache for SharedCache {
    type EA = std::io::Error;
    async fn load_account(&self, c: &[String], u: &str) -> Result<Option<Vec<u8>>, Self::EA> {
        self.0.load_account(c, u).await
    }
    async fn store_account(&self, c: &[String], u: &str, a: &[u8]) -> Result<(), Self::EA> {
        self.0.store_account(c, u, a).await
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Obtain: an empty cache, rustls-acme orders over tls-alpn-01, deploys and
/// caches the chain; a TLS client trusting only our root accepts it.
/// Renew: started again with a cached certificate that lives 30 s (ordered
/// with a notAfter), rustls-acme serves it, and at two thirds of its life
/// orders a new one from us and serves that instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rustls_acme_obtains_and_renews_over_tls_alpn01() {
    let dns_server = DnsServer::start().await;
    let ca = start_ca(&dns_server).await;
    let name = "embedded.example.org";

    // Obtain.
    let cache = Arc::new(MemCache::default());
    let mut server = AcmeServer::start(&ca, name, cache.clone()).await;
    server.expect(EventOk::DeployedNewCert, STEP).await;
    let first = server.served_leaf(&ca, name).await;
    assert_eq!(dns_sans(&first), vec![name.to_owned()]);
    server.expect(EventOk::CertCacheStore, STEP).await;
    let stored = cache.cert.lock().expect("lock").clone();
    let stored = String::from_utf8(stored.expect("rustls-acme cached the chain"))
        .expect("cached PEM is text");
    let start = stored
        .find("-----BEGIN CERTIFICATE-----")
        .expect("the cache holds certificates after the key");
    let chain = &stored[start..];
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(dir.path(), ca.ca_cert(), chain);
    assert_eq!(
        serial(&leaf),
        serial(&first),
        "the cached chain is the one served"
    );
    drop(server);

    // A certificate that is due: issued by us with notAfter 30 s from now,
    // in rustls-acme's cache format (PKCS#8 key, then the chain).
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let session = Session::new(&raw).await;
    let not_after = time::OffsetDateTime::from_unix_timestamp(now() + 30)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");
    let rsp = session
        .new_order_raw(&[dns(name)], json!({ "notAfter": not_after }))
        .await;
    let (url, order) = created(&rsp, "newOrder with a 30 s notAfter");
    session.answer_http01(&order, &http).await;
    let order = session.settle(&url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let short = session.finalize_and_download(&url, &order, &[name]).await;
    let short_serial = serial(&short.leaf());
    let seeded = Arc::new(MemCache::default());
    *seeded.cert.lock().expect("lock") =
        Some(format!("{}\n{}", short.key_pem, short.chain_pem).into_bytes());

    // Renew.
    let mut server = AcmeServer::start(&ca, name, seeded.clone()).await;
    server.expect(EventOk::DeployedCachedCert, STEP).await;
    let served = server.served_leaf(&ca, name).await;
    assert_eq!(
        serial(&served),
        short_serial,
        "the cached certificate is served first"
    );
    server
        .expect(EventOk::DeployedNewCert, STEP + Duration::from_secs(30))
        .await;
    let renewed = server.served_leaf(&ca, name).await;
    assert_ne!(
        serial(&renewed),
        short_serial,
        "rustls-acme renewed the due certificate"
    );
    assert_ne!(serial(&renewed), serial(&first));
    assert_eq!(dns_sans(&renewed), vec![name.to_owned()]);
    assert!(
        renewed.not_after() > short.leaf().not_after(),
        "the renewed certificate outlives the due one"
    );
}
