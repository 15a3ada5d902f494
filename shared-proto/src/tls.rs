//! Mutual TLS for the TCP transport: the crypto provider, the PEM files, and
//! the client side's configuration (the server's is `daemon_kit::tls`).
//!
//! The provider is aws-lc-rs, named explicitly (the workspace compiles two
//! rustls providers, so a process default would be a guess), and TLS 1.3 is
//! the only version: both ends are ours.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

/// Why a TLS configuration could not be built from its files.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or parsed.
    #[error("{path}: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What was wrong with it.
        detail: rustls::pki_types::pem::Error,
    },
    /// A certificate file holds no certificate.
    #[error("{path}: no certificate in the file")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A CA file holds a certificate rustls cannot use as a trust anchor.
    #[error("{path}: not a usable CA certificate: {source}")]
    Anchor {
        /// The file.
        path: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// The server name to expect is not a DNS name or an IP address.
    #[error("server_name {name:?} is not a DNS name or an IP address")]
    ServerName {
        /// The configured name.
        name: String,
    },
    /// rustls refused the configuration (a key that does not match its
    /// certificate, an unsupported key type).
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// rustls refused to build the peer verifier.
    #[error("TLS verifier: {0}")]
    Verifier(String),
}

/// The crypto provider of every mutual-TLS link: aws-lc-rs, named
/// explicitly.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The only protocol version of the links: TLS 1.3.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// Every certificate in a PEM file, in order (a chain: leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|detail| TlsError::Pem {
            path: path.to_owned(),
            detail,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The private key in a PEM file (PKCS#8, SEC1 or PKCS#1).
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|detail| TlsError::Pem {
        path: path.to_owned(),
        detail,
    })
}

/// The CA certificates of a PEM file as trust anchors.
pub fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots.add(cert).map_err(|source| TlsError::Anchor {
            path: path.to_owned(),
            source,
        })?;
    }
    Ok(roots)
}

/// The DNS names (subjectAltName `dNSName`) of a certificate; none when it
/// cannot be parsed (it was verified before, so that does not happen).
pub fn dns_names(cert: &CertificateDer<'_>) -> Vec<String> {
    openssl::x509::X509::from_der(cert)
        .ok()
        .and_then(|x| x.subject_alt_names())
        .map(|sans| {
            sans.iter()
                .filter_map(|n| n.dnsname().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The files of a mutual-TLS client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientFiles {
    /// The CA certificate(s) the server's certificate must chain to.
    pub ca_file: PathBuf,
    /// This client's certificate chain (leaf first).
    pub cert_file: PathBuf,
    /// This client's private key.
    pub key_file: PathBuf,
    /// The name the server's certificate must carry.
    pub server_name: String,
}

/// A ready client configuration: whom to trust, what to expect, who we are.
#[derive(Clone, Debug)]
pub struct ClientTls {
    pub(crate) config: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
}

impl ClientTls {
    /// Reads the files and builds the configuration (TLS 1.3 only,
    /// aws-lc-rs).
    pub fn load(files: &ClientFiles) -> Result<Self, TlsError> {
        let server_name =
            ServerName::try_from(files.server_name.clone()).map_err(|_| TlsError::ServerName {
                name: files.server_name.clone(),
            })?;
        let roots = load_roots(&files.ca_file)?;
        let certs = load_certs(&files.cert_file)?;
        let key = load_key(&files.key_file)?;
        let config = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)?
            .with_root_certificates(roots)
            .with_client_auth_cert(certs, key)?;
        Ok(Self {
            config: Arc::new(config),
            server_name,
        })
    }

    /// The same trust anchors and client identity, expecting another
    /// server name (a primary's one identity toward each perspective).
    pub fn for_server(&self, name: &str) -> Result<Self, TlsError> {
        let server_name =
            ServerName::try_from(name.to_owned()).map_err(|_| TlsError::ServerName {
                name: name.to_owned(),
            })?;
        Ok(Self {
            config: Arc::clone(&self.config),
            server_name,
        })
    }

    /// A configuration from parts (tests build clients that present no
    /// certificate, or one from another CA, this way).
    pub fn from_config(config: Arc<ClientConfig>, server_name: ServerName<'static>) -> Self {
        Self {
            config,
            server_name,
        }
    }
}
