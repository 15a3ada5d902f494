//! The frontend's TLS listener: which crypto provider, which versions and
//! key exchange groups, which certificate (the four modes of the operations
//! guide), client certificates (`client_auth`), and reloading on SIGHUP
//! (`reload`).
//!
//! The provider is aws-lc-rs, named explicitly (never a process default):
//! it offers the hybrid key exchange X25519MLKEM768 next to the classical
//! groups (ML-DSA signatures are OpenSSL's: docs/src/cryptography.md). The
//! workspace also compiles rustls's ring provider (clients and test servers
//! still name it), so nothing may call `ServerConfig::builder()` or
//! `ClientConfig::builder()` without a provider: with two providers compiled
//! in and no process default, those panic.

use std::path::Path;
use std::sync::Arc;

use akamu_jose::KeyType;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ServerConfig, SupportedProtocolVersion};

use crate::config::{Config, Tls};
use crate::error::Error;

pub mod client_auth;
pub mod reload;

pub use reload::Acceptor;

/// Key types `[tls] bootstrap_key_type` accepts (the reference's list).
pub const BOOTSTRAP_KEY_TYPES: [KeyType; 7] = [
    KeyType::EcP256,
    KeyType::EcP384,
    KeyType::EcP521,
    KeyType::Rsa(2048),
    KeyType::Rsa(3072),
    KeyType::Rsa(4096),
    KeyType::Ed25519,
];

/// The listener's crypto provider: aws-lc-rs, with the hybrid
/// X25519MLKEM768 first and the classical groups after it, whatever
/// rustls's `prefer-post-quantum` feature says.
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::aws_lc_rs::{default_provider, kx_group};
    Arc::new(CryptoProvider {
        kx_groups: vec![
            kx_group::X25519MLKEM768,
            kx_group::X25519,
            kx_group::SECP256R1,
            kx_group::SECP384R1,
        ],
        ..default_provider()
    })
}

/// The rustls versions for `[tls] protocols`, or the reason they are
/// refused (`TLS versions: …`, the reference's wording).
pub fn protocol_versions(
    names: &[String],
) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    if names.is_empty() {
        return Err("TLS versions: [tls] protocols must name at least one version".into());
    }
    let mut versions = Vec::new();
    for name in names {
        let version = match name.as_str() {
            "TLSv1.2" => &rustls::version::TLS12,
            "TLSv1.3" => &rustls::version::TLS13,
            other => {
                return Err(format!(
                    "TLS versions: unknown protocol {other:?} in [tls] protocols \
                     (use \"TLSv1.2\" and/or \"TLSv1.3\")"
                ));
            }
        };
        if !versions.contains(&version) {
            versions.push(version);
        }
    }
    Ok(versions)
}

/// Which of the two files of `[tls]` exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Files {
    /// Neither: mode 2, our CA issues them.
    Absent,
    /// Both: loaded as they are (mode 3, or a certificate of mode 2).
    Present,
}

/// Checks that `cert_file` and `key_file` both exist or both do not.
pub fn files(cert_file: &Path, key_file: &Path) -> Result<Files, Error> {
    match (cert_file.exists(), key_file.exists()) {
        (false, false) => Ok(Files::Absent),
        (true, true) => Ok(Files::Present),
        (cert, _) => {
            let (there, missing) = if cert {
                (cert_file, key_file)
            } else {
                (key_file, cert_file)
            };
            Err(Error::Startup(format!(
                "TLS cert and key must both be present or both absent: {} exists, {} does not",
                there.display(),
                missing.display()
            )))
        }
    }
}

/// The chain in `cert_file` (leaf first) and the key in `key_file`.
pub fn load_pair(
    cert_file: &Path,
    key_file: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let certs = read_certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
        Error::Startup(format!(
            "TLS key file '{}' holds no usable private key: {e}",
            key_file.display()
        ))
    })?;
    Ok((certs, key))
}

/// Every certificate of a PEM file; none is an error naming the file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| Error::Startup(format!("reading TLS cert file '{}': {e}", path.display())))?;
    if certs.is_empty() {
        return Err(Error::Startup(format!(
            "TLS cert file '{}' contains no PEM blocks",
            path.display()
        )));
    }
    Ok(certs)
}

/// Who provides the HTTPS certificate when `[tls] enabled`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerCertSource {
    /// Our CA: the signer issues it when the files are missing (mode 2) and
    /// renews the one it issued.
    OurCa,
    /// The operator (mode 3): the files are loaded as they are and nothing
    /// ever writes them.
    Operator,
}

/// Mode 2 or mode 3: files missing → our CA issues them; files present and
/// the certificate signed by our CA's key → ours to renew; any other
/// certificate is the operator's and is never overwritten. Exactly one of
/// the two files is refused.
pub fn server_cert_source(config: &Config) -> Result<Option<ServerCertSource>, Error> {
    if !config.tls.enabled {
        return Ok(None);
    }
    let (cert, key) = (config.tls_cert_file(), config.tls_key_file());
    let source = match files(&cert, &key)? {
        Files::Absent => ServerCertSource::OurCa,
        Files::Present if issued_by(&cert, &config.ca_cert_file()) => ServerCertSource::OurCa,
        Files::Present => {
            tracing::info!(
                target: "frontend",
                cert = %cert.display(),
                "the HTTPS certificate was not issued by this CA: serving it as it is, never replacing it"
            );
            ServerCertSource::Operator
        }
    };
    Ok(Some(source))
}

/// Whether the first certificate in `cert_file` is signed by the key of the
/// certificate in `ca_cert_file` (false when either cannot be read: a CA
/// not created yet has issued nothing).
fn issued_by(cert_file: &Path, ca_cert_file: &Path) -> bool {
    let first = |path: &Path| {
        std::fs::read(path)
            .ok()
            .and_then(|pem| openssl::x509::X509::stack_from_pem(&pem).ok())
            .and_then(|chain| chain.into_iter().next())
    };
    let (Some(leaf), Some(ca)) = (first(cert_file), first(ca_cert_file)) else {
        return false;
    };
    ca.public_key()
        .and_then(|key| leaf.verify(&key))
        .unwrap_or(false)
}

/// The listener's TLS for `config`, reloaded on SIGHUP; `None` with
/// `[tls] enabled = false` (a SIGHUP is then logged and ignored). Called
/// after the launcher's signer has issued a missing certificate.
pub fn start(config: &Config) -> Result<Option<Arc<Acceptor>>, Error> {
    if !config.tls.enabled {
        reload::ignore_sighup()?;
        return Ok(None);
    }
    let (cert, key) = (config.tls_cert_file(), config.tls_key_file());
    if files(&cert, &key)? == Files::Absent {
        return Err(Error::Startup(format!(
            "[tls] enabled, but neither {} nor {} exists (without the launcher the \
             signer's [server_certificate] issues them, or the operator puts a \
             certificate and key there)",
            cert.display(),
            key.display()
        )));
    }
    let acceptor = Arc::new(Acceptor::new(config.tls.clone(), cert, key)?);
    acceptor.reload_on_sighup()?;
    Ok(Some(acceptor))
}

/// Builds the listener's configuration from `[tls]` and the two files:
/// provider, versions, client certificates, chain and key, ALPN.
pub fn server_config(
    tls: &Tls,
    cert_file: &Path,
    key_file: &Path,
) -> Result<Arc<ServerConfig>, Error> {
    let provider = provider();
    let versions = protocol_versions(&tls.protocols).map_err(Error::Startup)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| Error::Startup(format!("TLS versions: {e}")))?;
    let builder = match &tls.client_auth {
        None => builder.with_no_client_auth(),
        Some(auth) => {
            let verifier = client_auth::Verifier::load(auth, &provider)?;
            builder.with_client_cert_verifier(Arc::new(verifier))
        }
    };
    let (certs, key) = load_pair(cert_file, key_file)?;
    let mut config = builder.with_single_cert(certs, key).map_err(|e| {
        Error::Startup(format!(
            "TLS certificate {} with key {}: {e}",
            cert_file.display(),
            key_file.display()
        ))
    })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_are_checked_by_name() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            protocol_versions(&names(&["TLSv1.3"])).expect("ok"),
            vec![&rustls::version::TLS13]
        );
        assert_eq!(
            protocol_versions(&names(&["TLSv1.2", "TLSv1.3"]))
                .expect("ok")
                .len(),
            2
        );
        for bad in [&["TLSv1.1"][..], &["tlsv1.3"], &[]] {
            let err = protocol_versions(&names(bad)).expect_err("refused");
            assert!(err.starts_with("TLS versions: "), "{err}");
        }
    }

    #[test]
    fn the_provider_offers_the_hybrid_group_first() {
        let groups: Vec<_> = provider().kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            groups,
            [
                rustls::NamedGroup::X25519MLKEM768,
                rustls::NamedGroup::X25519,
                rustls::NamedGroup::secp256r1,
                rustls::NamedGroup::secp384r1,
            ]
        );
    }

    #[test]
    fn one_file_without_the_other_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("server.crt");
        let key = dir.path().join("server.key");
        assert_eq!(files(&cert, &key).expect("absent"), Files::Absent);
        std::fs::write(&cert, "x").expect("write");
        let err = files(&cert, &key).expect_err("refused").to_string();
        assert!(
            err.contains("TLS cert and key must both be present or both absent"),
            "{err}"
        );
        std::fs::write(&key, "x").expect("write");
        assert_eq!(files(&cert, &key).expect("present"), Files::Present);
    }
}
