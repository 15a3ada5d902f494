//! The PKI of the mutual-TLS links between our own processes (signer,
//! front ends, validator perspectives), made with rcgen: a links CA and
//! leaf certificates for TLS clients or servers. None of it is the ACME CA.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A CA for the links, and certificates it (or another CA) signs.
pub(crate) struct LinkCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// The CA certificate (PEM).
    pub(crate) cert_pem: String,
}

impl LinkCa {
    /// A self-signed CA named `name`.
    pub(crate) fn new(name: &str) -> LinkCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("self-signed");
        LinkCa {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A leaf for `names`, for TLS clients or servers: (chain PEM, key PEM).
    pub(crate) fn leaf(&self, names: &[&str], client: bool) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, &self.issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    }
}

/// Writes `pem` to `dir/name` with `mode` and returns the path.
pub(crate) fn write_file(dir: &Path, name: &str, pem: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, pem).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path
}
