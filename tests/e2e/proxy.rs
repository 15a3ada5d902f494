//! Mode 1 of the TLS guide: the frontend speaks plain HTTP on loopback
//! behind Debian's nginx, which terminates TLS with its own certificate;
//! `base_url` is nginx's URL. instant-acme, trusting only nginx's
//! certificate, gets a certificate through the proxy, and every URL the CA
//! hands out points at the proxy.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use instant_acme::NewAccount;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rustls::pki_types::CertificateDer;
use rustls::version::{TLS12, TLS13};
use serde_json::Value;
use test_kit::ports::free_port;

use crate::support::certs::verify_chain;
use crate::support::client::{account_builder_trusting, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions};
use crate::support::tls::{client_config, get};
use crate::support::tools::require;

/// nginx started by a test, in its own prefix directory; stopped on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    /// Starts nginx on `127.0.0.1:listen` with `cert`/`key`, proxying to
    /// `127.0.0.1:upstream`, and waits until it accepts connections.
    fn start(dir: &Path, listen: u16, upstream: u16) -> Nginx {
        let nginx = require("nginx");
        for sub in ["body", "proxy", "fastcgi", "uwsgi", "scgi"] {
            std::fs::create_dir_all(dir.join(sub)).expect("mkdir");
        }
        let d = dir.display();
        let conf = format!(
            r#"worker_processes 1;
user root;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{listen} ssl;
        server_name localhost;
        ssl_certificate     {d}/proxy.crt;
        ssl_certificate_key {d}/proxy.key;
        location / {{
            proxy_pass         http://127.0.0.1:{upstream};
            proxy_http_version 1.1;
            proxy_set_header   Host              $host;
            proxy_set_header   X-Real-IP         $remote_addr;
            proxy_set_header   X-Forwarded-For   $proxy_add_x_forwarded_for;
            proxy_set_header   X-Forwarded-Proto $scheme;
        }}
    }}
}}
"#
        );
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new(nginx)
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-g")
            .arg(format!(
                "daemon off; pid {d}/nginx.pid; error_log {d}/error.log info;"
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let mut nginx = Nginx {
            child,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let addr = SocketAddr::from(([127, 0, 0, 1], listen));
        while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            let exited = nginx.child.try_wait().expect("wait");
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "nginx did not start ({exited:?}); error.log:\n{}",
                nginx.log("error.log")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master stops its workers too; SIGKILL if it hangs.
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every string in a JSON document that looks like a URL.
fn urls(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if s.starts_with("http") => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| urls(v, out)),
        Value::Object(map) => map.values().for_each(|v| urls(v, out)),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_1_behind_nginx_every_url_points_at_the_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    // nginx's own certificate, from its own CA (rcgen): the ACME client
    // trusts only that CA, so every exchange goes through nginx.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Proxy CA");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let proxy_root = ca_params.self_signed(&ca_key).expect("root");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params");
    let leaf_key = rcgen::KeyPair::generate().expect("key");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("leaf");
    std::fs::write(dir.path().join("proxy.crt"), leaf.pem()).expect("write");
    std::fs::write(dir.path().join("proxy.key"), leaf_key.serialize_pem()).expect("write");
    let proxy_ca = dir.path().join("proxy-ca.pem");
    std::fs::write(&proxy_ca, proxy_root.pem()).expect("write");

    let (frontend_port, proxy_port) = (free_port(), free_port());
    let nginx = Nginx::start(dir.path(), proxy_port, frontend_port);
    let base = format!("https://localhost:{proxy_port}");
    let dns = DnsServer::start().await;
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        listen_port: Some(frontend_port),
        tls_toml: Some("enabled = false\n".into()),
        base_url: Some(base.clone()),
        ..CaOptions::default()
    })
    .await;
    assert_eq!(ca.directory(), format!("{base}/acme/directory"));

    // The frontend itself speaks plain HTTP.
    let plain = plain_get(frontend_port).await;
    assert!(plain.starts_with("HTTP/1.1 200"), "{plain}");

    // The directory through nginx: every URL in it is the proxy's.
    let roots = vec![CertificateDer::from(proxy_root.der().to_vec())];
    let config = client_config(&roots, None, &[&TLS13, &TLS12], None);
    let proxy_addr = SocketAddr::from(([127, 0, 0, 1], proxy_port));
    let answer = get(proxy_addr, config, "/acme/directory")
        .await
        .expect("directory through nginx");
    assert_eq!(answer.status, 200);
    let directory: Value = serde_json::from_str(&answer.body).expect("JSON");
    let mut found = Vec::new();
    urls(&directory, &mut found);
    assert!(found.len() >= 5, "{directory}");
    for url in &found {
        assert!(url.starts_with(&base), "{url} does not point at the proxy");
    }

    // A whole issuance through the proxy with instant-acme.
    let http = Http01Server::start(ca.http_validation_port()).await;
    let (account, _) = account_builder_trusting(&proxy_ca)
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            ca.directory().to_owned(),
            None,
        )
        .await
        .expect("account through nginx");
    assert!(account.id().starts_with(&base), "{}", account.id());
    let issued = issue_http01(&account, &http, &["proxied.example.org"]).await;
    for url in [&issued.order_url, &issued.cert_url] {
        assert!(url.starts_with(&base), "{url} does not point at the proxy");
    }
    let check = tempfile::tempdir().expect("tempdir");
    verify_chain(check.path(), ca.ca_cert(), &issued.chain_pem);

    // nginx carried the protocol, finalize included.
    let access = nginx.log("access.log");
    for line in [
        "POST /acme/new-account",
        "POST /acme/new-order",
        "/finalize HTTP",
    ] {
        assert!(
            access.contains(line),
            "nginx did not carry {line}:\n{access}"
        );
    }
}

/// `GET /acme/directory` over plain TCP to the frontend; the raw answer.
async fn plain_get(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    tcp.write_all(b"GET /acme/directory HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut raw))
        .await
        .expect("answer in time")
        .expect("read");
    String::from_utf8_lossy(&raw).into_owned()
}
