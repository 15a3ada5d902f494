//! The built-in tls-alpn-01 responder (RFC 8737; IP identifiers RFC 8738
//! §6): a rustls server that negotiates only `acme-tls/1` and presents, per
//! SNI name, a self-signed certificate with the critical `acmeIdentifier`
//! extension.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use openssl::sha::sha256;
use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::ClientError;

/// The ALPN protocol of RFC 8737 §6.2.
pub(super) const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";
/// Handshake deadline per connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type Certs = Arc<RwLock<HashMap<String, Arc<CertifiedKey>>>>;

/// Answers tls-alpn-01 validation handshakes. Stops on
/// [`TlsAlpn01Solver::cleanup`] or drop.
pub struct TlsAlpn01Solver {
    addr: SocketAddr,
    certs: Certs,
    running: Option<(SocketAddr, JoinHandle<()>)>,
}

impl TlsAlpn01Solver {
    /// A solver for `port` on every IPv4 address (not bound until
    /// [`TlsAlpn01Solver::start`]).
    pub fn new(port: u16) -> Self {
        Self::with_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
    }

    /// A solver for a specific address (port 0 picks a free port).
    pub fn with_addr(addr: SocketAddr) -> Self {
        Self {
            addr,
            certs: Arc::default(),
            running: None,
        }
    }

    /// Binds the port and spawns the TLS accept loop.
    pub async fn start(&mut self) -> Result<(), ClientError> {
        if self.running.is_some() {
            return Ok(());
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| ClientError::Crypto(format!("TLS setup: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SniResolver(Arc::clone(&self.certs))));
        config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(self.addr).await.map_err(|e| {
            ClientError::Io(format!("failed to bind port {}: {e}", self.addr.port()))
        })?;
        let local = listener.local_addr()?;
        self.running = Some((local, tokio::spawn(serve(listener, acceptor))));
        Ok(())
    }

    /// The bound address, once started.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.running.as_ref().map(|(a, _)| *a)
    }

    /// Makes the solver answer for `domain` (`id_type` `dns` or `ip`) with a
    /// fresh P-256 certificate carrying SHA-256(`key_auth`) in a critical
    /// `id-pe-acmeIdentifier` extension (RFC 8737 §3).
    pub async fn present(
        &self,
        domain: &str,
        id_type: &str,
        key_auth: &str,
    ) -> Result<(), ClientError> {
        let (sni, san) = match id_type {
            "dns" => {
                if domain.starts_with("*.") {
                    return Err(ClientError::InvalidArgument(
                        "tls-alpn-01 cannot validate a wildcard (RFC 8737 §3)".into(),
                    ));
                }
                let name = domain.trim_end_matches('.').to_ascii_lowercase();
                let san = SanType::DnsName(
                    name.clone()
                        .try_into()
                        .map_err(|e| ClientError::InvalidArgument(format!("{domain:?}: {e}")))?,
                );
                (name, san)
            }
            "ip" => {
                let ip: IpAddr = domain.parse().map_err(|_| {
                    ClientError::InvalidArgument(format!("{domain:?} is not an IP address"))
                })?;
                (reverse_dns_name(ip), SanType::IpAddress(ip))
            }
            other => {
                return Err(ClientError::InvalidArgument(format!(
                    "identifier type {other:?} cannot use tls-alpn-01"
                )));
            }
        };
        let certified = challenge_cert(san, key_auth)?;
        self.certs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sni, Arc::new(certified));
        Ok(())
    }

    /// Stops answering for one identifier.
    pub fn remove(&self, domain: &str, id_type: &str) {
        let key = match (id_type, domain.parse::<IpAddr>()) {
            ("ip", Ok(ip)) => reverse_dns_name(ip),
            _ => domain.trim_end_matches('.').to_ascii_lowercase(),
        };
        self.certs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
    }

    /// Aborts the listener and forgets every certificate.
    pub fn cleanup(&mut self) {
        if let Some((_, task)) = self.running.take() {
            task.abort();
        }
        self.certs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

impl Drop for TlsAlpn01Solver {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// The SNI name a validator sends for an IP identifier (RFC 8738 §6):
/// `4.3.2.1.in-addr.arpa`, or the nibble-reversed `ip6.arpa` name.
pub fn reverse_dns_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut parts = Vec::with_capacity(33);
            for byte in v6.octets().iter().rev() {
                parts.push(format!("{:x}", byte & 0x0f));
                parts.push(format!("{:x}", byte >> 4));
            }
            parts.push("ip6.arpa".into());
            parts.join(".")
        }
    }
}

fn challenge_cert(san: SanType, key_auth: &str) -> Result<CertifiedKey, ClientError> {
    let crypto = |e: rcgen::Error| ClientError::Crypto(format!("tls-alpn-01 certificate: {e}"));
    let key = KeyPair::generate().map_err(crypto)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(crypto)?;
    params.subject_alt_names = vec![san];
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(&sha256(
        key_auth.as_bytes(),
    ))];
    let cert = params.self_signed(&key).map_err(crypto)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| ClientError::Crypto(format!("tls-alpn-01 key: {e}")))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// Picks the certificate by SNI name.
struct SniResolver(Certs);

impl fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SniResolver")
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let offers_acme = hello
            .alpn()
            .is_some_and(|mut protos| protos.any(|p| p == ACME_TLS_ALPN));
        if !offers_acme {
            return None;
        }
        let name = hello.server_name()?.to_ascii_lowercase();
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name.trim_end_matches('.'))
            .cloned()
    }
}

async fn serve(listener: TcpListener, acceptor: TlsAcceptor) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("tls-alpn-01 solver: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            // The validator only needs the handshake; close right after.
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(mut tls)) => {
                    use tokio::io::AsyncWriteExt as _;
                    let _ = tls.shutdown().await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, "tls-alpn-01 handshake: {e}"),
                Err(_) => tracing::debug!(%peer, "tls-alpn-01 handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_dns_name("127.0.0.1".parse().expect("ip")),
            "1.0.0.127.in-addr.arpa"
        );
        let v6 = reverse_dns_name("2001:db8::1".parse().expect("ip"));
        assert!(v6.starts_with("1.0.0.0.0.0.0.0"), "{v6}");
        assert!(v6.ends_with("8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }

    #[test]
    fn challenge_certificate_has_the_critical_acme_extension() {
        let ck = challenge_cert(
            SanType::DnsName("www.example.org".to_string().try_into().expect("name")),
            "tok.thumb",
        )
        .expect("cert");
        let x = openssl::x509::X509::from_der(ck.cert[0].as_ref()).expect("parse");
        let text = String::from_utf8(x.to_text().expect("text")).expect("utf8");
        assert!(text.contains("DNS:www.example.org"), "{text}");
        assert!(text.contains("1.3.6.1.5.5.7.1.31: critical"), "{text}");
        // extnID id-pe-acmeIdentifier, critical TRUE, extnValue OCTET STRING
        // around the DER OCTET STRING of SHA-256(key authorization).
        let mut want = vec![0x06, 0x08, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1F];
        want.extend([0x01, 0x01, 0xFF, 0x04, 0x22, 0x04, 0x20]);
        want.extend(sha256(b"tok.thumb"));
        let der = ck.cert[0].as_ref();
        assert!(der.windows(want.len()).any(|w| w == want.as_slice()));
    }
}
