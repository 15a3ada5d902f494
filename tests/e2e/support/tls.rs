//! For the TLS-mode tests: small PKIs made with the openssl crate (any key
//! size, validity or depth a test needs), and TLS clients that report what
//! a user would see: a refused handshake, an HTTP status, the server's
//! certificate, the key exchange group.
//!
//! The rustls clients name their provider (aws-lc-rs, for the hybrid
//! X25519MLKEM768 group); the workspace compiles two providers, so none may
//! rely on a process default. The openssl client presents keys rustls will
//! not load (RSA-1024), at security level 0.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509, X509NameBuilder};
use rustls::crypto::SupportedKxGroup;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, NamedGroup, RootCertStore, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Deadline for one connection (connect, handshake, request, response).
const DEADLINE: Duration = Duration::from_secs(10);

/// A certificate and its private key.
#[derive(Clone)]
pub(crate) struct Pair {
    pub cert: X509,
    pub key: PKey<Private>,
}

impl Pair {
    /// The certificate as PEM.
    pub(crate) fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().expect("pem")).expect("utf-8")
    }
    /// The key as PKCS#8 PEM.
    pub(crate) fn key_pem(&self) -> String {
        String::from_utf8(self.key.private_key_to_pem_pkcs8().expect("pem")).expect("utf-8")
    }
    /// The certificate as DER.
    pub(crate) fn der(&self) -> CertificateDer<'static> {
        CertificateDer::from(self.cert.to_der().expect("der"))
    }
}

/// A fresh EC P-256 key.
pub(crate) fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
    PKey::from_ec_key(EcKey::generate(&group).expect("ec")).expect("pkey")
}

/// A fresh RSA key of `bits`.
pub(crate) fn rsa_key(bits: u32) -> PKey<Private> {
    PKey::from_rsa(Rsa::generate(bits).expect("rsa")).expect("pkey")
}

/// What kind of certificate [`issue`] makes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A CA (basicConstraints CA:TRUE, keyCertSign).
    Ca,
    /// A TLS client: SAN `dns:<cn>`, EKU clientAuth.
    Client,
    /// An end entity with neither SAN nor EKU (private PKIs).
    Bare,
}

/// A certificate for `key` named `cn`, valid from `from_days` to `to_days`
/// (relative to now), signed by `issuer` (self-signed when `None`).
pub(crate) fn issue(
    cn: &str,
    key: PKey<Private>,
    kind: Kind,
    issuer: Option<&Pair>,
    from_days: i64,
    to_days: i64,
) -> Pair {
    let mut name = X509NameBuilder::new().expect("name");
    name.append_entry_by_nid(Nid::COMMONNAME, cn).expect("cn");
    let name = name.build();
    let mut b = X509::builder().expect("builder");
    b.set_version(2).expect("version");
    let mut serial = BigNum::new().expect("bn");
    serial
        .rand(120, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .expect("rand");
    b.set_serial_number(&Asn1Integer::from_bn(&serial).expect("serial"))
        .expect("serial");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
        .expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = |days: i64| Asn1Time::from_unix(now + days * 86_400).expect("time");
    b.set_not_before(&at(from_days)).expect("nb");
    b.set_not_after(&at(to_days)).expect("na");
    match kind {
        Kind::Ca => {
            b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
                .expect("bc");
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .expect("ku"),
            )
            .expect("ku");
        }
        Kind::Bare => {
            b.append_extension(BasicConstraints::new().critical().build().expect("bc"))
                .expect("bc");
        }
        Kind::Client => {
            b.append_extension(BasicConstraints::new().critical().build().expect("bc"))
                .expect("bc");
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .digital_signature()
                    .build()
                    .expect("ku"),
            )
            .expect("ku");
            b.append_extension(ExtendedKeyUsage::new().client_auth().build().expect("eku"))
                .expect("eku");
            let san = SubjectAlternativeName::new()
                .dns(cn)
                .build(&b.x509v3_context(issuer.map(|i| i.cert.as_ref()), None))
                .expect("san");
            b.append_extension(san).expect("san");
        }
    }
    let signer = issuer.map_or(&key, |i| &i.key);
    b.sign(signer, MessageDigest::sha256()).expect("sign");
    Pair {
        cert: b.build(),
        key,
    }
}

/// A self-signed EC CA valid from yesterday for 30 days.
pub(crate) fn root(cn: &str) -> Pair {
    issue(cn, ec_key(), Kind::Ca, None, -1, 30)
}

/// A TLS client configuration: trusts `roots`, presents `client` (chain
/// leaf first, and its key) if any, offers `versions` and, when given, only
/// the key exchange `groups`. Provider: aws-lc-rs, named.
pub(crate) fn client_config(
    roots: &[CertificateDer<'static>],
    client: Option<(&[&Pair], &PKey<Private>)>,
    versions: &[&'static SupportedProtocolVersion],
    groups: Option<Vec<&'static dyn SupportedKxGroup>>,
) -> Arc<ClientConfig> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(groups) = groups {
        provider.kx_groups = groups;
    }
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).expect("trust anchor");
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(store);
    let config = match client {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = chain.iter().map(|p| p.der()).collect();
            let key = PrivateKeyDer::Pkcs8(key.private_key_to_pkcs8().expect("pkcs8").into());
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
    };
    Arc::new(config)
}

/// An HTTP answer over TLS, as a user sees it.
#[derive(Debug)]
pub(crate) struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: String,
}

/// What the handshake established.
pub(crate) struct Session {
    /// The connection.
    pub stream: TlsStream<TcpStream>,
    /// The server's leaf certificate.
    pub server_leaf: CertificateDer<'static>,
    /// The negotiated key exchange group.
    pub group: Option<NamedGroup>,
    /// The negotiated TLS version.
    pub version: Option<rustls::ProtocolVersion>,
}

/// Connects to `addr` as `localhost` and completes the client's side of
/// the handshake (with TLS 1.3 a server's refusal of the client
/// certificate only shows on the first read).
pub(crate) async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<Session, String> {
    let attempt = async {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let name = ServerName::try_from("localhost").expect("name");
        let stream = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let (_, conn) = stream.get_ref();
        let server_leaf = conn
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.clone().into_owned())
            .ok_or("no server certificate")?;
        let group = conn.negotiated_key_exchange_group().map(|g| g.name());
        let version = conn.protocol_version();
        Ok(Session {
            stream,
            server_leaf,
            group,
            version,
        })
    };
    tokio::time::timeout(DEADLINE, attempt)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// Sends `GET path` (connection: close) and reads the answer.
pub(crate) async fn request(session: &mut Session, path: &str) -> Result<Answer, String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let attempt = async {
        session
            .stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut raw = Vec::new();
        session
            .stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| format!("read: {e}"))?;
        parse_answer(&raw)
    };
    tokio::time::timeout(DEADLINE, attempt)
        .await
        .map_err(|_| "timed out".to_owned())?
}

/// [`connect`] then [`request`].
pub(crate) async fn get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: &str,
) -> Result<Answer, String> {
    let mut session = connect(addr, config).await?;
    request(&mut session, path).await
}

/// `GET path` with openssl at security level 0 (so it presents an RSA-1024
/// certificate), not checking the server: only the server's verdict on the
/// client's chain matters here.
pub(crate) fn openssl_get(addr: SocketAddr, chain: &[&Pair], path: &str) -> Result<Answer, String> {
    use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
    let mut b = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
    b.set_security_level(0);
    b.set_verify(SslVerifyMode::NONE);
    let (leaf, rest) = chain.split_first().ok_or("empty chain")?;
    b.set_certificate(&leaf.cert).map_err(|e| e.to_string())?;
    for extra in rest {
        b.add_extra_chain_cert(extra.cert.clone())
            .map_err(|e| e.to_string())?;
    }
    b.set_private_key(&leaf.key).map_err(|e| e.to_string())?;
    let connector = b.build();
    let tcp = std::net::TcpStream::connect_timeout(&addr, DEADLINE).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    tcp.set_write_timeout(Some(DEADLINE))
        .map_err(|e| e.to_string())?;
    let mut stream = connector
        .configure()
        .map_err(|e| e.to_string())?
        .verify_hostname(false)
        .connect("localhost", tcp)
        .map_err(|e| format!("handshake: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    parse_answer(&raw)
}

fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP answer ({} bytes)", raw.len()))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok(Answer { status, body })
}
