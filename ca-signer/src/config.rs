//! The signer's TOML configuration. `[ca]` mirrors the reference's `[ca]`
//! section; the socket keys and `[server_certificate]` are ours.
//!
//! Unknown keys are errors (`deny_unknown_fields`); defaults come from the
//! `default_*()` functions.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;

use crate::error::Error;

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Path of the Unix socket the signer listens on. Required.
    pub socket_path: PathBuf,
    /// Mode of the socket file. Default `0o600`.
    #[serde(default = "default_socket_mode")]
    pub socket_mode: u32,
    /// Uids allowed to connect (`SO_PEERCRED`). Required, non-empty.
    pub allowed_uids: Vec<u32>,
    /// The CA key, certificate and leaf profile.
    pub ca: Ca,
    /// The frontend's own HTTPS certificate, issued at start from this config.
    #[serde(default)]
    pub server_certificate: Option<ServerCertificate>,
}

/// `[ca]`: the CA key and certificate, and the leaf profile.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ca {
    /// CA private key, PEM (PKCS#8, SEC1 or PKCS#1). Required.
    pub key_file: PathBuf,
    /// CA certificate, PEM. Required.
    pub cert_file: PathBuf,
    /// Key type generated when neither file exists. Default `ec:P-256`.
    #[serde(default = "default_key_type")]
    pub key_type: KeyType,
    /// Digest for ECDSA and RSA signatures. Default `sha256`; ignored for Ed25519.
    #[serde(default = "default_hash_alg")]
    pub hash_alg: HashAlg,
    /// Validity of leaf certificates, in days. Default 90.
    #[serde(default = "default_validity_days")]
    pub validity_days: u32,
    /// Validity of a generated CA certificate, in years. Default 10.
    #[serde(default = "default_ca_validity_years")]
    pub ca_validity_years: u32,
    /// CN of a generated CA certificate. Default `Akāmu CA`.
    #[serde(default = "default_common_name")]
    pub common_name: String,
    /// O of a generated CA certificate. Default `Akāmu`.
    #[serde(default = "default_organization")]
    pub organization: String,
    /// CRL distribution point written into every leaf, if set.
    #[serde(default)]
    pub crl_url: Option<String>,
    /// OCSP responder written into every leaf's AIA, if set.
    #[serde(default)]
    pub ocsp_url: Option<String>,
}

/// `[server_certificate]`: the frontend's HTTPS certificate, issued by the
/// signer at start from this file (never on request).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerCertificate {
    /// DNS names and IP literals of the certificate. Required, non-empty.
    pub names: Vec<String>,
    /// Where the chain is written: leaf PEM, then the CA PEM.
    pub cert_file: PathBuf,
    /// Where the new EC P-256 key is written (mode 0600).
    pub key_file: PathBuf,
}

/// A key type for CA key generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum KeyType {
    /// ECDSA on P-256.
    EcP256,
    /// ECDSA on P-384.
    EcP384,
    /// ECDSA on P-521.
    EcP521,
    /// RSA with this many bits (2048, 3072 or 4096), e = 65537.
    Rsa(u32),
    /// Ed25519.
    Ed25519,
}

/// Digest used with ECDSA and RSA CA keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlg {
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

/// Default for [`Config::socket_mode`].
pub fn default_socket_mode() -> u32 {
    0o600
}
/// Default for [`Ca::key_type`].
pub fn default_key_type() -> KeyType {
    KeyType::EcP256
}
/// Default for [`Ca::hash_alg`].
pub fn default_hash_alg() -> HashAlg {
    HashAlg::Sha256
}
/// Default for [`Ca::validity_days`].
pub fn default_validity_days() -> u32 {
    90
}
/// Default for [`Ca::ca_validity_years`].
pub fn default_ca_validity_years() -> u32 {
    10
}
/// Default for [`Ca::common_name`].
pub fn default_common_name() -> String {
    "Akāmu CA".to_owned()
}
/// Default for [`Ca::organization`].
pub fn default_organization() -> String {
    "Akāmu".to_owned()
}

impl Config {
    /// Reads and validates the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            Error::ConfigSyntax { source, .. } => Error::ConfigSyntax {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates configuration text.
    pub fn from_toml(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|e| Error::ConfigSyntax {
            path: PathBuf::new(),
            source: Box::new(e),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |field, problem: &str| {
            Err(Error::ConfigValue {
                field,
                problem: problem.to_owned(),
            })
        };
        if self.allowed_uids.is_empty() {
            return bad("allowed_uids", "must name at least one uid");
        }
        if self.socket_mode > 0o777 {
            return bad("socket_mode", "must be a permission mode (at most 0o777)");
        }
        if self.ca.validity_days == 0 || self.ca.validity_days > 3650 {
            return bad("ca.validity_days", "must be between 1 and 3650");
        }
        if self.ca.ca_validity_years == 0 || self.ca.ca_validity_years > 100 {
            return bad("ca.ca_validity_years", "must be between 1 and 100");
        }
        if self.ca.common_name.is_empty() || self.ca.common_name.chars().count() > 64 {
            return bad("ca.common_name", "must have 1 to 64 characters");
        }
        if self.ca.organization.is_empty() || self.ca.organization.chars().count() > 64 {
            return bad("ca.organization", "must have 1 to 64 characters");
        }
        for (field, url) in [
            ("ca.crl_url", &self.ca.crl_url),
            ("ca.ocsp_url", &self.ca.ocsp_url),
        ] {
            if let Some(url) = url
                && !(url.is_ascii() && (url.starts_with("http://") || url.starts_with("https://")))
            {
                return bad(field, "must be an ASCII http:// or https:// URL");
            }
        }
        if let Some(sc) = &self.server_certificate
            && sc.names.is_empty()
        {
            return bad("server_certificate.names", "must name at least one name");
        }
        Ok(())
    }
}

impl FromStr for KeyType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "ec:P-256" | "P-256" => Self::EcP256,
            "ec:P-384" | "P-384" => Self::EcP384,
            "ec:P-521" | "P-521" => Self::EcP521,
            "rsa:2048" | "rsa2048" => Self::Rsa(2048),
            "rsa:3072" | "rsa3072" => Self::Rsa(3072),
            "rsa:4096" | "rsa4096" => Self::Rsa(4096),
            "ed25519" => Self::Ed25519,
            other => {
                return Err(format!(
                    "unknown key_type {other:?} (ec:P-256, ec:P-384, ec:P-521, \
                     rsa:2048, rsa:3072, rsa:4096, ed25519)"
                ));
            }
        })
    }
}

impl TryFrom<String> for KeyType {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EcP256 => f.write_str("ec:P-256"),
            Self::EcP384 => f.write_str("ec:P-384"),
            Self::EcP521 => f.write_str("ec:P-521"),
            Self::Rsa(bits) => write!(f, "rsa:{bits}"),
            Self::Ed25519 => f.write_str("ed25519"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        socket_path = "s.sock"
        allowed_uids = [1000]
        [ca]
        key_file = "ca.key"
        cert_file = "ca.crt"
    "#;

    #[test]
    fn minimal_config_gets_defaults() {
        let c = Config::from_toml(MINIMAL).expect("parse");
        assert_eq!(c.socket_mode, 0o600);
        assert_eq!(c.ca.key_type, KeyType::EcP256);
        assert_eq!(c.ca.hash_alg, HashAlg::Sha256);
        assert_eq!(c.ca.validity_days, 90);
        assert_eq!(c.ca.ca_validity_years, 10);
        assert_eq!(c.ca.common_name, "Akāmu CA");
        assert_eq!(c.ca.organization, "Akāmu");
        assert!(c.server_certificate.is_none());
    }

    #[test]
    fn full_config_parses() {
        let c = Config::from_toml(
            r#"
            socket_path = "s.sock"
            socket_mode = 0o660
            allowed_uids = [1000, 1001]
            [ca]
            key_file = "ca.key"
            cert_file = "ca.crt"
            key_type = "rsa:3072"
            hash_alg = "sha384"
            validity_days = 30
            crl_url = "http://crl.example.org/ca.crl"
            ocsp_url = "http://ocsp.example.org"
            [server_certificate]
            names = ["localhost", "127.0.0.1"]
            cert_file = "server.crt"
            key_file = "server.key"
            "#,
        )
        .expect("parse");
        assert_eq!(c.socket_mode, 0o660);
        assert_eq!(c.ca.key_type, KeyType::Rsa(3072));
        assert_eq!(c.ca.hash_alg, HashAlg::Sha384);
        assert_eq!(c.server_certificate.map(|s| s.names.len()), Some(2));
    }

    #[test]
    fn bad_configs_are_refused() {
        let unknown = format!("{MINIMAL}\nsurprise = 1\n");
        assert!(matches!(
            Config::from_toml(&unknown),
            Err(Error::ConfigSyntax { .. })
        ));
        let bad_type = MINIMAL.replace(
            "cert_file = \"ca.crt\"",
            "cert_file = \"ca.crt\"\nkey_type = \"dsa\"",
        );
        assert!(matches!(
            Config::from_toml(&bad_type),
            Err(Error::ConfigSyntax { .. })
        ));
        let no_uids = MINIMAL.replace("[1000]", "[]");
        assert!(matches!(
            Config::from_toml(&no_uids),
            Err(Error::ConfigValue {
                field: "allowed_uids",
                ..
            })
        ));
    }
}
