//! The signer's TOML configuration. `[ca]` mirrors the reference's `[ca]`
//! section; the socket keys, `[signer.key]`, `[audit]`, `[policy]`,
//! `[profiles.<name>]` and `[server_certificate]` are ours.
//!
//! Unknown keys are errors (`deny_unknown_fields`); defaults come from the
//! `default_*()` functions.

use std::collections::BTreeMap;
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
    /// `[signer]`: where the CA key lives (`[signer.key]`).
    #[serde(default)]
    pub signer: Signer,
    /// `[audit]`: the hash-chained audit log.
    #[serde(default)]
    pub audit: Audit,
    /// `[policy]`: limits no profile may exceed, and the subscriber key policy.
    #[serde(default)]
    pub policy: Policy,
    /// `[profiles.<name>]`: leaf profiles; `tls-server` always exists.
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileConfig>,
    /// The frontend's own HTTPS certificate, issued at start from this config.
    #[serde(default)]
    pub server_certificate: Option<ServerCertificate>,
    /// The validator's Ed25519 public key (PEM). Every issuance needs a
    /// valid, fresh statement from that key for each name. Required unless
    /// `insecure_issue_without_statements` is set.
    #[serde(default)]
    pub validator_public_key_file: Option<PathBuf>,
    /// Start without `validator_public_key_file` and issue on the
    /// frontend's word alone: any caller allowed on the socket gets any
    /// name. For tests and labs only; the signer logs a warning at every
    /// start. Default false; may not be set with
    /// `validator_public_key_file`.
    #[serde(default)]
    pub insecure_issue_without_statements: bool,
    /// User to become when started as root (default: stay, but drop every
    /// capability and set `no_new_privs`); production uses `akamu-signer`.
    #[serde(default)]
    pub user: Option<String>,
    /// Group to become when started as root (default: as `user`).
    #[serde(default)]
    pub group: Option<String>,
}

/// `[signer]`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// `[signer.key]`: the CA key backend. Absent: the file `[ca] key_file`.
    #[serde(default)]
    pub key: Option<KeyConfig>,
}

/// `[signer.key]`: which backend holds the CA key.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyConfig {
    /// `backend = "file"`: a PEM key file.
    File {
        /// The PEM private key.
        key_file: PathBuf,
    },
    /// `backend = "pkcs11"`: a key inside a PKCS#11 token.
    Pkcs11(Pkcs11Config),
}

/// `[signer.key]` with `backend = "pkcs11"`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The token's label. One of `token_label` and `slot` is required.
    #[serde(default)]
    pub token_label: Option<String>,
    /// The slot id.
    #[serde(default)]
    pub slot: Option<u64>,
    /// The private key's `CKA_LABEL`. One of `key_label` and `key_id` is required.
    #[serde(default)]
    pub key_label: Option<String>,
    /// The private key's `CKA_ID`, hex.
    #[serde(default)]
    pub key_id: Option<String>,
    /// File holding the user PIN (first line). The PIN is never logged.
    pub pin_file: PathBuf,
    /// Sign with RSASSA-PSS instead of PKCS#1 v1.5 (RSA keys only). Default false.
    #[serde(default)]
    pub rsa_pss: bool,
}

/// `[audit]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Audit {
    /// The audit log. Default `<state dir>/audit.log`, where the state dir is
    /// the directory of `[ca] key_file` (or of `[ca] cert_file`).
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// How many recent issuances a repeated request is answered from in
    /// memory (default 1024); an older one is found by reading the log
    /// from the order's `processing_since`. At least 1.
    #[serde(default = "default_recent_issuances")]
    pub recent_issuances: usize,
}

impl Default for Audit {
    fn default() -> Self {
        Self {
            path: None,
            recent_issuances: default_recent_issuances(),
        }
    }
}

/// `[policy]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Hard ceiling on any leaf's validity, in days. Default 100.
    #[serde(default = "default_max_validity_days")]
    pub max_validity_days: u32,
    /// File of blocked SPKI SHA-256 hashes (hex, one a line, `#` comments).
    /// Default `<state dir>/blocked-keys.txt`; a missing file blocks nothing.
    #[serde(default)]
    pub blocked_keys_file: Option<PathBuf>,
    /// Accept subscriber ECDSA P-521 keys. Default false.
    #[serde(default)]
    pub allow_p521: bool,
    /// Accept subscriber Ed25519 keys. Default false.
    #[serde(default)]
    pub allow_ed25519: bool,
    /// The profile used for requests. Default `tls-server`.
    #[serde(default = "default_profile_name")]
    pub default_profile: String,
    /// The oldest validator statement the signer relies on, in seconds
    /// since its validation (default 86400). An older statement covers
    /// nothing, whatever its `expires` says.
    #[serde(default = "default_statement_max_age_secs")]
    pub statement_max_age_secs: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            max_validity_days: default_max_validity_days(),
            blocked_keys_file: None,
            allow_p521: false,
            allow_ed25519: false,
            default_profile: default_profile_name(),
            statement_max_age_secs: default_statement_max_age_secs(),
        }
    }
}

/// `[profiles.<name>]`: one leaf profile.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// Leaf validity in hours. Default `[ca] validity_days` × 24.
    #[serde(default)]
    pub validity_hours: Option<u32>,
    /// Most SANs per certificate. Default 100.
    #[serde(default = "default_max_sans")]
    pub max_sans: usize,
    /// Add the clientAuth EKU beside serverAuth. Default false.
    #[serde(default)]
    pub client_auth: bool,
}

/// `[ca]`: the CA key and certificate, and the leaf profile.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ca {
    /// CA private key, PEM (PKCS#8, SEC1 or PKCS#1). Required unless
    /// `[signer.key]` is set.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// The issuing CA's certificate (the intermediate when there is one), PEM.
    /// Required.
    pub cert_file: PathBuf,
    /// Certificates served after `cert_file` (e.g. the root, if wanted), PEM.
    #[serde(default)]
    pub chain_file: Option<PathBuf>,
    /// `nextUpdate − thisUpdate` of signed CRLs, in hours. Default 24.
    #[serde(default = "default_crl_validity_hours")]
    pub crl_validity_hours: u32,
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
    /// URL of the issuing CA's certificate (DER), written into every leaf's
    /// AIA as caIssuers, if set. The Baseline Requirements want it.
    #[serde(default)]
    pub ca_issuers_url: Option<String>,
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

/// Default for [`Ca::crl_validity_hours`].
pub fn default_crl_validity_hours() -> u32 {
    24
}
/// Default for [`Policy::max_validity_days`].
pub fn default_max_validity_days() -> u32 {
    100
}
/// Default for [`Policy::default_profile`].
pub fn default_profile_name() -> String {
    DEFAULT_PROFILE.to_owned()
}
/// Default for [`Audit::recent_issuances`].
pub fn default_recent_issuances() -> usize {
    crate::recent::CAPACITY
}
/// Default for [`Policy::statement_max_age_secs`].
pub fn default_statement_max_age_secs() -> u32 {
    shared_proto::statement::DEFAULT_MAX_AGE_SECS
}
/// Default for [`ProfileConfig::max_sans`].
pub fn default_max_sans() -> usize {
    100
}

/// The profile that always exists.
pub const DEFAULT_PROFILE: &str = "tls-server";

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
        if self.policy.max_validity_days == 0 || self.policy.max_validity_days > 398 {
            return bad("policy.max_validity_days", "must be between 1 and 398");
        }
        if self.ca.validity_days == 0 || self.ca.validity_days > self.policy.max_validity_days {
            return bad(
                "ca.validity_days",
                "must be between 1 and [policy] max_validity_days",
            );
        }
        if self.audit.recent_issuances == 0 {
            return bad("audit.recent_issuances", "must be at least 1");
        }
        if self.policy.statement_max_age_secs == 0 {
            return bad("policy.statement_max_age_secs", "must be positive");
        }
        if self.insecure_issue_without_statements && self.validator_public_key_file.is_some() {
            return bad(
                "insecure_issue_without_statements",
                "may not be set with validator_public_key_file",
            );
        }
        if self.ca.crl_validity_hours == 0 || self.ca.crl_validity_hours > 24 * 10 {
            return bad("ca.crl_validity_hours", "must be between 1 and 240");
        }
        for (name, p) in &self.profiles {
            let max_hours = u64::from(self.policy.max_validity_days) * 24;
            if p.validity_hours
                .is_some_and(|h| h == 0 || u64::from(h) > max_hours)
            {
                return bad(
                    "profiles.*.validity_hours",
                    &format!(
                        "profile {name}: must be between 1 and [policy] max_validity_days × 24"
                    ),
                );
            }
            if p.max_sans == 0 || p.max_sans > crate::policy::MAX_IDENTIFIERS {
                return bad(
                    "profiles.*.max_sans",
                    &format!("profile {name}: must be between 1 and 100"),
                );
            }
        }
        if self.policy.default_profile != DEFAULT_PROFILE
            && !self.profiles.contains_key(&self.policy.default_profile)
        {
            return bad(
                "policy.default_profile",
                "names no [profiles.<name>] section",
            );
        }
        match &self.signer.key {
            None if self.ca.key_file.is_none() => {
                return bad("ca.key_file", "required unless [signer.key] is set");
            }
            Some(KeyConfig::Pkcs11(p)) => {
                if p.token_label.is_none() && p.slot.is_none() {
                    return bad(
                        "signer.key.token_label",
                        "one of token_label and slot is required",
                    );
                }
                if p.key_label.is_none() && p.key_id.is_none() {
                    return bad(
                        "signer.key.key_label",
                        "one of key_label and key_id is required",
                    );
                }
                if p.key_id
                    .as_deref()
                    .is_some_and(|id| hex::decode(id).is_err())
                {
                    return bad("signer.key.key_id", "must be hex");
                }
            }
            _ => {}
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
            ("ca.ca_issuers_url", &self.ca.ca_issuers_url),
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

impl Config {
    /// The directory holding the signer's state (audit log, CRL number,
    /// blocklist) unless configured otherwise: the directory of `[ca]
    /// key_file`, or of `[ca] cert_file` when there is no key file.
    pub fn state_dir(&self) -> PathBuf {
        let anchor = self.ca.key_file.as_ref().unwrap_or(&self.ca.cert_file);
        anchor
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_owned)
    }

    /// The audit log's path.
    pub fn audit_path(&self) -> PathBuf {
        self.audit
            .path
            .clone()
            .unwrap_or_else(|| self.state_dir().join("audit.log"))
    }

    /// The blocklist file's path.
    pub fn blocked_keys_path(&self) -> PathBuf {
        self.policy
            .blocked_keys_file
            .clone()
            .unwrap_or_else(|| self.state_dir().join("blocked-keys.txt"))
    }

    /// Files that must not be readable by anyone but the signer: the key
    /// file or the PIN file.
    pub fn secret_files(&self) -> Vec<PathBuf> {
        match self.key_config() {
            Some(KeyConfig::File { key_file }) => vec![key_file],
            Some(KeyConfig::Pkcs11(p)) => vec![p.pin_file],
            None => Vec::new(),
        }
    }

    /// The key backend, with `[ca] key_file` as the default.
    pub fn key_config(&self) -> Option<KeyConfig> {
        match &self.signer.key {
            Some(k) => Some(k.clone()),
            None => self
                .ca
                .key_file
                .clone()
                .map(|key_file| KeyConfig::File { key_file }),
        }
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
