//! The applicant's side, on 127.0.0.1: an http-01 token server, a
//! tls-alpn-01 responder (RFC 8737 certificates made with rcgen), and a DNS
//! server (the workspace's `test_kit::dns`) that answers `A 127.0.0.1` for
//! every name under [`ZONE`], REFUSED outside it, and the dns-01 and
//! dns-persist-01 TXT records published at run time. CAA queries get
//! NOERROR everywhere a CA climbing the tree asks (RFC 8659 §3): the
//! names in the zone have no CAA records, the apex has the one that
//! [`Responders::allow_ca`] publishes for a started Akāmu, and the zone's
//! parents, up to the root, have none.
//!
//! All three stop when dropped.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use test_kit::dns::{DnsServer, RecordType, check_name};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The DNS zone all benchmark names live in.
pub const ZONE: &str = "acme-bench.test.";
/// The started Akāmu's domain name: its CAA identity (`caa_identities`)
/// and its dns-persist-01 issuer domain.
pub const CA_IDENTITY: &str = "ca.acme-bench.test";
/// The label of a dns-persist-01 record (draft-ietf-acme-dns-persist).
const PERSIST_LABEL: &str = "_validation-persist";
/// The query types [`Responders::dns_queries`] reports.
const REPORTED_TYPES: [RecordType; 4] = [
    RecordType::A,
    RecordType::AAAA,
    RecordType::TXT,
    RecordType::CAA,
];
/// The ALPN protocol of RFC 8737.
const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// Deadline of one responder connection.
const CONN_DEADLINE: Duration = Duration::from_secs(10);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The three responders and what they publish.
pub struct Responders {
    /// http-01 token server address.
    pub http_addr: SocketAddr,
    /// tls-alpn-01 responder address.
    pub tls_addr: SocketAddr,
    /// DNS server address (UDP and TCP).
    pub dns_addr: SocketAddr,
    tokens: Arc<Mutex<HashMap<String, String>>>,
    alpn: Arc<AlpnCerts>,
    dns: DnsServer,
    tasks: Vec<JoinHandle<()>>,
}

impl Responders {
    /// Binds all three on 127.0.0.1 (port 0: any free port).
    pub async fn start(http_port: u16, tls_port: u16, dns_port: u16) -> Result<Responders> {
        let tokens = Arc::new(Mutex::new(HashMap::new()));
        let http = TcpListener::bind((Ipv4Addr::LOCALHOST, http_port))
            .await
            .with_context(|| format!("bind the http-01 server on 127.0.0.1:{http_port}"))?;
        let http_addr = http.local_addr()?;

        let alpn = Arc::new(AlpnCerts::default());
        let tls = TcpListener::bind((Ipv4Addr::LOCALHOST, tls_port))
            .await
            .with_context(|| format!("bind the tls-alpn-01 responder on 127.0.0.1:{tls_port}"))?;
        let tls_addr = tls.local_addr()?;
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(alpn.clone());
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let dns = DnsServer::builder()
            .zones(&[ZONE])
            .port(dns_port)
            .refuse_outside_zones()
            .answer_caa_above_zones()
            .bind()
            .await
            .with_context(|| format!("start the DNS server on 127.0.0.1:{dns_port}"))?;
        let dns_addr = dns.addr();

        let tasks = vec![
            tokio::spawn(serve_http(http, tokens.clone())),
            tokio::spawn(serve_tls(tls, acceptor)),
        ];
        Ok(Responders {
            http_addr,
            tls_addr,
            dns_addr,
            tokens,
            alpn,
            dns,
            tasks,
        })
    }

    /// Serves `key_authorization` at `/.well-known/acme-challenge/<token>`.
    pub fn set_http01(&self, token: &str, key_authorization: &str) {
        lock(&self.tokens).insert(token.to_owned(), key_authorization.to_owned());
    }

    /// Stops serving `token`.
    pub fn clear_http01(&self, token: &str) {
        lock(&self.tokens).remove(token);
    }

    /// Publishes `value` at `_acme-challenge.<name>` (TXT).
    /// A value already published there is not repeated.
    pub fn set_dns01(&self, name: &str, value: &str) -> Result<()> {
        self.add_txt("_acme-challenge", name, value)
    }

    /// Removes the TXT records of `_acme-challenge.<name>`.
    pub fn clear_dns01(&self, name: &str) {
        self.clear_txt("_acme-challenge", name);
    }

    /// Publishes the CAA record `0 issue "<identity>"` at the zone's apex,
    /// the relevant record set of every name in it: the CA whose
    /// `caa_identities` include `identity` may issue, any other may not.
    pub fn allow_ca(&self, identity: &str) {
        self.dns.set_caa(ZONE, &[(0, "issue", identity)]);
    }

    /// Publishes the dns-persist-01 record `value` at
    /// `_validation-persist.<name>` (TXT), beside any already there.
    pub fn set_persist(&self, name: &str, value: &str) -> Result<()> {
        self.add_txt(PERSIST_LABEL, name, value)
    }

    /// Removes the TXT records of `_validation-persist.<name>`.
    pub fn clear_persist(&self, name: &str) {
        self.clear_txt(PERSIST_LABEL, name);
    }

    /// Publishes `value` at `<label>.<name>` (TXT), beside any other value
    /// there; the same value is not repeated.
    fn add_txt(&self, label: &str, name: &str, value: &str) -> Result<()> {
        let owner = format!("{label}.{name}");
        // Checked first: the test-kit record methods panic on a bad name.
        check_name(&owner).map_err(anyhow::Error::msg)?;
        self.dns.add_txt(&owner, value);
        Ok(())
    }

    /// Removes the TXT records of `<label>.<name>`.
    fn clear_txt(&self, label: &str, name: &str) {
        let owner = format!("{label}.{name}");
        // A bad name has nothing published (add_txt refused it).
        if check_name(&owner).is_ok() {
            self.dns.clear_txt(&owner);
        }
    }

    /// How many queries of each type (A, AAAA, TXT, CAA) the DNS server
    /// has answered so far.
    pub fn dns_queries(&self) -> BTreeMap<String, u64> {
        REPORTED_TYPES
            .iter()
            .map(|t| (t.to_string(), self.dns.queries(*t)))
            .collect()
    }

    /// Presents an RFC 8737 certificate for `name` (SAN = `name`, critical
    /// acmeIdentifier = `digest`, the SHA-256 of the key authorization).
    pub fn set_tls_alpn01(&self, name: &str, digest: &[u8]) -> Result<()> {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let signing = rustls::crypto::ring::sign::any_supported_type(&der)?;
        let certified = CertifiedKey::new(vec![cert.der().clone()], signing);
        lock(&self.alpn.certs).insert(name.to_ascii_lowercase(), Arc::new(certified));
        Ok(())
    }

    /// Stops presenting a certificate for `name`.
    pub fn clear_tls_alpn01(&self, name: &str) {
        lock(&self.alpn.certs).remove(&name.to_ascii_lowercase());
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        // The DNS server stops when its field is dropped.
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn serve_http(listener: TcpListener, tokens: Arc<Mutex<HashMap<String, String>>>) {
    const PREFIX: &str = "/.well-known/acme-challenge/";
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let tokens = tokens.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let body = req
                    .uri()
                    .path()
                    .strip_prefix(PREFIX)
                    .and_then(|t| lock(&tokens).get(t).cloned());
                let rsp = match body {
                    Some(b) => Response::new(Full::new(Bytes::from(b))),
                    None => {
                        let mut r = Response::new(Full::new(Bytes::from_static(b"not found")));
                        *r.status_mut() = StatusCode::NOT_FOUND;
                        r
                    }
                };
                std::future::ready(Ok::<_, Infallible>(rsp))
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), conn).await;
        });
    }
}

async fn serve_tls(listener: TcpListener, acceptor: tokio_rustls::TlsAcceptor) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // The validator only looks at the handshake; close right after.
            if let Ok(Ok(mut tls)) =
                tokio::time::timeout(CONN_DEADLINE, acceptor.accept(stream)).await
            {
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut tls).await;
            }
        });
    }
}

/// tls-alpn-01 certificates by SNI name.
#[derive(Debug, Default)]
struct AlpnCerts {
    certs: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for AlpnCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offers_acme = hello
            .alpn()
            .is_some_and(|mut protos| protos.any(|p| p == ACME_TLS_ALPN));
        if !offers_acme {
            return None;
        }
        let name = hello.server_name()?.to_ascii_lowercase();
        lock(&self.certs).get(&name).cloned()
    }
}
