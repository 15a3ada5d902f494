//! tls-alpn-01 (RFC 8737) against a tokio-rustls server on loopback.

use std::net::IpAddr;

use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
use shared_proto::Identifier;
use shared_proto::validator::{ChallengeType, ProblemKind};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::{
    KEY_AUTH, config, expect_problem, lo4, request, server_tls_config_with, service,
};

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

struct TlsServer {
    port: u16,
    task: JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the test certificate looks like.
struct Cert {
    san: SanType,
    extra_san: Option<SanType>,
    hash: Option<Vec<u8>>,
    critical: bool,
}

impl Cert {
    fn good(san: SanType) -> Self {
        Self {
            san,
            extra_san: None,
            hash: Some(sha256(KEY_AUTH.as_bytes())),
            critical: true,
        }
    }
}

async fn start(cert: Cert, alpn: Vec<Vec<u8>>) -> TlsServer {
    start_with(cert, alpn, rustls::DEFAULT_VERSIONS, false).await
}

/// `tls12_only` limits the server to TLS 1.2; `wrong_key` makes it sign the
/// handshake with a key that is not the certificate's.
async fn start_with(
    cert: Cert,
    alpn: Vec<Vec<u8>>,
    versions: &[&'static rustls::SupportedProtocolVersion],
    wrong_key: bool,
) -> TlsServer {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.subject_alt_names = std::iter::once(cert.san).chain(cert.extra_san).collect();
    if let Some(hash) = cert.hash {
        let mut ext = CustomExtension::new_acme_identifier(&hash);
        ext.set_criticality(cert.critical);
        params.custom_extensions = vec![ext];
    }
    let der = params.self_signed(&key).expect("cert").der().clone();
    let signer = if wrong_key {
        KeyPair::generate().expect("key")
    } else {
        key
    };
    let acceptor =
        tokio_rustls::TlsAcceptor::from(server_tls_config_with(der, &signer, alpn, versions));
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    TlsServer { port, task }
}

fn acme_alpn() -> Vec<Vec<u8>> {
    vec![b"acme-tls/1".to_vec()]
}

fn svc(port: u16) -> validator_worker::service::ValidatorService {
    let mut c = config();
    c.tls_alpn_validation_port = port;
    service(c)
}

fn dns_san(name: &str) -> SanType {
    SanType::DnsName(name.try_into().expect("ia5"))
}

#[tokio::test]
async fn valid_dns_identifier() {
    let server = start(Cert::good(dns_san("app.localhost")), acme_alpn()).await;
    let record = svc(server.port)
        .validate(&request(
            Identifier::dns("app.localhost"),
            ChallengeType::TlsAlpn01,
        ))
        .await
        .expect("valid");
    assert_eq!(record.hostname, "app.localhost");
    assert_eq!(record.port, Some(server.port));
    assert_eq!(record.address_used, Some(lo4()));
}

#[tokio::test]
async fn valid_ip_identifier() {
    let server = start(Cert::good(SanType::IpAddress(lo4())), acme_alpn()).await;
    svc(server.port)
        .validate(&request(Identifier::ip(lo4()), ChallengeType::TlsAlpn01))
        .await
        .expect("valid");
}

#[tokio::test]
async fn valid_over_tls12() {
    let server = start_with(
        Cert::good(dns_san("app.localhost")),
        acme_alpn(),
        &[&rustls::version::TLS12],
        false,
    )
    .await;
    svc(server.port)
        .validate(&request(
            Identifier::dns("app.localhost"),
            ChallengeType::TlsAlpn01,
        ))
        .await
        .expect("valid over TLS 1.2");
}

#[tokio::test]
async fn handshake_signed_by_another_key_is_tls_problem() {
    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let server = start_with(
            Cert::good(dns_san("app.localhost")),
            acme_alpn(),
            versions,
            true,
        )
        .await;
        let p = expect_problem(
            svc(server.port)
                .validate(&request(
                    Identifier::dns("app.localhost"),
                    ChallengeType::TlsAlpn01,
                ))
                .await,
            ProblemKind::Tls,
        );
        assert!(p.detail.contains("BadSignature"), "{}", p.detail);
    }
}

#[tokio::test]
async fn wrong_hash_is_incorrect_response() {
    let mut cert = Cert::good(dns_san("app.localhost"));
    cert.hash = Some(sha256(b"something else"));
    let server = start(cert, acme_alpn()).await;
    let p = expect_problem(
        svc(server.port)
            .validate(&request(
                Identifier::dns("app.localhost"),
                ChallengeType::TlsAlpn01,
            ))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("does not match"), "{}", p.detail);
}

#[tokio::test]
async fn missing_or_non_critical_extension_is_incorrect_response() {
    let mut cert = Cert::good(dns_san("app.localhost"));
    cert.hash = None;
    let server = start(cert, acme_alpn()).await;
    let p = expect_problem(
        svc(server.port)
            .validate(&request(
                Identifier::dns("app.localhost"),
                ChallengeType::TlsAlpn01,
            ))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("missing"), "{}", p.detail);

    let mut cert = Cert::good(dns_san("app.localhost"));
    cert.critical = false;
    let server = start(cert, acme_alpn()).await;
    let p = expect_problem(
        svc(server.port)
            .validate(&request(
                Identifier::dns("app.localhost"),
                ChallengeType::TlsAlpn01,
            ))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("critical"), "{}", p.detail);
}

#[tokio::test]
async fn wrong_or_extra_san_is_incorrect_response() {
    let server = start(Cert::good(dns_san("other.localhost")), acme_alpn()).await;
    let p = expect_problem(
        svc(server.port)
            .validate(&request(
                Identifier::dns("app.localhost"),
                ChallengeType::TlsAlpn01,
            ))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("other.localhost"), "{}", p.detail);

    let mut cert = Cert::good(dns_san("app.localhost"));
    cert.extra_san = Some(SanType::IpAddress(IpAddr::from([127, 0, 0, 1])));
    let server = start(cert, acme_alpn()).await;
    let p = expect_problem(
        svc(server.port)
            .validate(&request(
                Identifier::dns("app.localhost"),
                ChallengeType::TlsAlpn01,
            ))
            .await,
        ProblemKind::IncorrectResponse,
    );
    assert!(p.detail.contains("exactly one"), "{}", p.detail);
}

#[tokio::test]
async fn no_alpn_is_tls_problem() {
    let server = start(Cert::good(dns_san("app.localhost")), Vec::new()).await;
    let p = expect_problem(
        svc(server.port)
            .validate(&request(
                Identifier::dns("app.localhost"),
                ChallengeType::TlsAlpn01,
            ))
            .await,
        ProblemKind::Tls,
    );
    assert!(p.detail.contains("acme-tls/1"), "{}", p.detail);
}

#[tokio::test]
async fn non_tls_server_is_tls_problem() {
    let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    expect_problem(
        svc(port)
            .validate(&request(Identifier::ip(lo4()), ChallengeType::TlsAlpn01))
            .await,
        ProblemKind::Tls,
    );
    task.abort();
}

#[tokio::test]
async fn closed_port_is_connection_problem() {
    let port = {
        let l = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    expect_problem(
        svc(port)
            .validate(&request(Identifier::ip(lo4()), ChallengeType::TlsAlpn01))
            .await,
        ProblemKind::Connection,
    );
}
