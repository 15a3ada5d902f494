//! Test servers on loopback and helpers.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hickory_server::Server;
use hickory_server::proto::rr::rdata::{A, SOA, TXT};
use hickory_server::proto::rr::{LowerName, Name, RData, Record};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, ZoneHandler, ZoneType};
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use shared_proto::Identifier;
use shared_proto::validator::{ChallengeType, ProblemKind, ValidateRequest, ValidationProblem};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;
use validator_worker::config::Config;
use validator_worker::probe::Prober;
use validator_worker::service::ValidatorService;

/// A 43-character base64url token.
pub(crate) const TOKEN: &str = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
/// Its key authorization with a made-up thumbprint.
pub(crate) const KEY_AUTH: &str =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";

/// The path http-01 fetches.
pub(crate) fn challenge_path() -> String {
    format!("/.well-known/acme-challenge/{TOKEN}")
}

/// A validation request.
pub(crate) fn request(identifier: Identifier, challenge_type: ChallengeType) -> ValidateRequest {
    ValidateRequest {
        identifier,
        challenge_type,
        token: TOKEN.into(),
        key_authorization: KEY_AUTH.into(),
        account_uri: "https://ca.test/acme/acct/1".into(),
        authz_expires: 0,
        covers_subdomains: false,
        onion_csr: None,
        persist: None,
    }
}

/// A config for probing loopback: private targets allowed, short timeouts.
pub(crate) fn config() -> Config {
    let mut c = Config::new("unused.sock", vec![0]);
    c.allow_private_targets = true;
    c.connect_timeout_ms = 2_000;
    c.probe_timeout_ms = 10_000;
    // A nameserver nobody listens on: no test may query a real one.
    c.dns_resolver_addr = Some("127.0.0.1:9".parse().expect("addr"));
    c
}

/// A service over a prober built from `config`.
pub(crate) fn service(config: Config) -> ValidatorService {
    ValidatorService::new(Arc::new(Prober::new(config).expect("prober")))
}

/// Asserts that `result` is a problem of `kind` and returns it.
#[track_caller]
pub(crate) fn expect_problem<T: std::fmt::Debug>(
    result: Result<T, ValidationProblem>,
    kind: ProblemKind,
) -> ValidationProblem {
    match result {
        Ok(v) => panic!("expected a {kind:?} problem, got {v:?}"),
        Err(p) => {
            assert_eq!(p.kind, kind, "wrong kind: {p}");
            p
        }
    }
}

/// What the HTTP server saw of one request.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    /// The path and query.
    pub path: String,
    /// The Host header.
    pub host: String,
    /// The User-Agent header.
    pub user_agent: String,
}

type Handler = dyn Fn(&str) -> Response<Full<Bytes>> + Send + Sync;

/// A hyper HTTP/1 server on 127.0.0.1 (optionally over TLS) answering with
/// `handler(path)` and recording every request.
pub(crate) struct HttpServer {
    /// Its address.
    pub addr: SocketAddr,
    /// The requests seen.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpServer {
    /// Starts a plain HTTP server.
    pub(crate) async fn start(
        handler: impl Fn(&str) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Self {
        Self::start_inner(Arc::new(handler), None).await
    }

    /// Starts an HTTPS server with a self-signed certificate.
    pub(crate) async fn start_tls(
        handler: impl Fn(&str) -> Response<Full<Bytes>> + Send + Sync + 'static,
    ) -> Self {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        let config = server_tls_config(cert.der().clone(), &key, vec![b"http/1.1".to_vec()]);
        Self::start_inner(
            Arc::new(handler),
            Some(tokio_rustls::TlsAcceptor::from(config)),
        )
        .await
    }

    async fn start_inner(handler: Arc<Handler>, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = handler.clone();
                let seen = seen2.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let header = |n: http::header::HeaderName| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let path = req
                            .uri()
                            .path_and_query()
                            .map(|p| p.as_str().to_owned())
                            .unwrap_or_default();
                        seen.lock().expect("lock").push(Seen {
                            path: path.clone(),
                            host: header(http::header::HOST),
                            user_agent: header(http::header::USER_AGENT),
                        });
                        let response = handler(&path);
                        async move { Ok::<_, Infallible>(response) }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                    }
                });
            }
        });
        Self { addr, seen, task }
    }

    /// The port.
    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The requests seen so far.
    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}

/// A response with `status` and `body`.
pub(crate) fn respond(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

/// A redirect to `location`.
pub(crate) fn redirect(location: &str) -> Response<Full<Bytes>> {
    let mut r = respond(StatusCode::FOUND, "");
    r.headers_mut()
        .insert(http::header::LOCATION, location.parse().expect("location"));
    r
}

/// A rustls server config on the ring provider with one certificate.
///
/// The certificate is served through a fixed resolver rather than
/// `with_single_cert`, which refuses certificates with unknown critical
/// extensions (such as id-pe-acmeIdentifier).
pub(crate) fn server_tls_config(
    cert: CertificateDer<'static>,
    key: &rcgen::KeyPair,
    alpn: Vec<Vec<u8>>,
) -> Arc<rustls::ServerConfig> {
    server_tls_config_with(cert, key, alpn, rustls::DEFAULT_VERSIONS)
}

/// Like [`server_tls_config`], limited to `versions`; `key` signs the
/// handshake even when it is not the certificate's key.
pub(crate) fn server_tls_config_with(
    cert: CertificateDer<'static>,
    key: &rcgen::KeyPair,
    alpn: Vec<Vec<u8>>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .expect("signing key");
    let certified = Arc::new(rustls::sign::CertifiedKey::new(vec![cert], signing_key));
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(FixedCert(certified)));
    config.alpn_protocols = alpn;
    Arc::new(config)
}

#[derive(Debug)]
struct FixedCert(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for FixedCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A hickory DNS server on 127.0.0.1 (UDP and TCP on one port) serving one
/// in-memory zone.
pub(crate) struct DnsServer {
    /// Its address.
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Records of a test zone.
pub(crate) enum Rr {
    /// An A record.
    A(&'static str, Ipv4Addr),
    /// A TXT record of one or more character-strings.
    Txt(&'static str, Vec<String>),
}

impl DnsServer {
    /// Serves `origin` (for example `"test."`) with `records` (names relative
    /// to the origin).
    pub(crate) async fn start(origin: &str, records: Vec<Rr>) -> Self {
        Self::start_zone(origin, records, false).await.0
    }

    /// [`DnsServer::start`] with the zone signed (DNSSEC, Ed25519, NSEC) by
    /// a new key; also returns that key as a trust-anchor file's text (one
    /// DNSKEY record in zone-file syntax).
    pub(crate) async fn start_signed(origin: &str, records: Vec<Rr>) -> (Self, String) {
        let (server, anchor) = Self::start_zone(origin, records, true).await;
        (server, anchor.expect("signed"))
    }

    async fn start_zone(origin: &str, records: Vec<Rr>, signed: bool) -> (Self, Option<String>) {
        use hickory_server::proto::dnssec::crypto::Ed25519SigningKey;
        use hickory_server::proto::dnssec::rdata::{DNSKEY, DNSSECRData};
        use hickory_server::proto::dnssec::{DnssecSigner, SigningKey};
        let origin = Name::from_ascii(origin).expect("origin");
        let mut zone =
            InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::empty(
                origin.clone(),
                ZoneType::Primary,
                AxfrPolicy::Deny,
                signed.then_some(hickory_server::dnssec::NxProofKind::Nsec),
            );
        let soa = SOA::new(
            Name::from_ascii("ns.test.").expect("mname"),
            Name::from_ascii("hostmaster.test.").expect("rname"),
            1,
            3600,
            600,
            86400,
            0,
        );
        assert!(zone.upsert_mut(Record::from_rdata(origin.clone(), 60, RData::SOA(soa)), 1));
        for rr in records {
            let (name, data) = match rr {
                Rr::A(n, ip) => (n, RData::A(A(ip))),
                Rr::Txt(n, strings) => (n, RData::TXT(TXT::new(strings))),
            };
            let name = Name::from_ascii(name)
                .expect("name")
                .append_domain(&origin)
                .expect("fqdn");
            assert!(zone.upsert_mut(Record::from_rdata(name, 0, data), 1));
        }
        let mut anchor = None;
        if signed {
            let pkcs8 = Ed25519SigningKey::generate_pkcs8().expect("key");
            let key = Ed25519SigningKey::from_pkcs8(&pkcs8).expect("key");
            let dnskey = DNSKEY::from_key(&key.to_public_key().expect("public key"));
            anchor = Some(
                Record::from_rdata(
                    origin.clone(),
                    3600,
                    RData::DNSSEC(DNSSECRData::DNSKEY(dnskey.clone())),
                )
                .to_string(),
            );
            let signer = DnssecSigner::new(
                dnskey,
                Box::new(key),
                origin.clone(),
                Duration::from_secs(86_400),
            );
            zone.add_zone_signing_key_mut(signer).expect("zone key");
            zone.secure_zone_mut().expect("sign the zone");
        }
        let mut catalog = Catalog::new();
        let handler: Arc<dyn ZoneHandler> = Arc::new(zone);
        catalog.upsert(LowerName::new(&origin), vec![handler]);

        // UDP and TCP must share the port: retry until both binds succeed.
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .expect("udp");
            let port = udp.local_addr().expect("addr").port();
            if let Ok(tcp) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().expect("addr");
        let mut server = Server::new(catalog);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(5), 4096);
        let task = tokio::spawn(async move {
            let _ = server.block_until_done().await;
        });
        (Self { addr, task }, anchor)
    }
}

/// The loopback IPv4 address as an `IpAddr`.
pub(crate) fn lo4() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}
