//! The signer's TOML configuration. `[ca]` mirrors the reference's `[ca]`
//! section; the socket keys, `[tcp]`, `[signer.key]`, `[audit]`, `[policy]`,
//! `[profiles.<name>]` and `[server_certificate]` are ours.
//!
//! Unknown keys are errors (`deny_unknown_fields`); defaults come from the
//! `default_*()` functions.//!
//! Files: this one holds the sections and their defaults, `load` reads and
//! validates a file and derives paths, `key_type` the CA key type and
//! digest.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

mod key_type;
mod load;
#[cfg(test)]
mod tests;

pub use key_type::{HashAlg, KeyType};

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
    /// `[tcp]`: also listen on TCP with mutual TLS, for front ends on other
    /// hosts. Default: the Unix socket only.
    #[serde(default)]
    pub tcp: Option<Tcp>,
    /// The CA key, certificate and leaf profile.
    pub ca: Ca,
    /// `[signer]`: where the CA key lives (`[signer.key]`).
    #[serde(default)]
    pub signer: Signer,
    /// `[audit]`: the hash-chained audit log.
    #[serde(default)]
    pub audit: Audit,
    /// `[mtc]`: the transparency log of every certificate signed.
    #[serde(default)]
    pub mtc: Mtc,
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
    /// The remote network perspectives whose statements the signer trusts
    /// (`[[perspectives]]`; BR §3.2.2.9 multi-perspective issuance
    /// corroboration). With any configured, every name needs, besides the
    /// validator's statement, corroborating statements from these
    /// perspectives meeting the BR quorum over all of them (see
    /// `shared_proto::quorum`). Empty (the default): none required.
    /// Needs `validator_public_key_file`.
    #[serde(default)]
    pub perspectives: Vec<TrustedPerspective>,
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

/// One `[[perspectives]]` entry: a remote perspective the signer trusts.
/// Its public key is a trust anchor held by the signer, like
/// `validator_public_key_file`, not a copy of the validator's settings.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedPerspective {
    /// The name the perspective signs (its `[remote_perspective] name`).
    pub name: String,
    /// Its RIR label, as the signer counts it for the quorum (the label in
    /// the perspective's statement is not relied on).
    pub rir: String,
    /// Its Ed25519 statement public key (PEM; the perspective writes it
    /// at `<statement_key_file>.pub`).
    pub public_key_file: PathBuf,
}

/// `[tcp]`: the mutual-TLS listener, the shape a remote perspective's
/// `[tcp]` shares ([`daemon_kit::tls::TcpConfig`]); the signer still opens
/// no connection of its own.
pub use daemon_kit::tls::TcpConfig as Tcp;

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

/// `[mtc]`: the transparency log (a Merkle tree of every certificate
/// signed, with signed checkpoints; `docs/src/transparency-log.md`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mtc {
    /// Append every signed certificate to the log before it leaves the
    /// signer. Default false.
    #[serde(default)]
    pub enabled: bool,
    /// The log's entries (the reference's key). Default
    /// `<state dir>/mtc.log`; its last signed checkpoint is kept beside it
    /// (`<log_path>.checkpoint`).
    #[serde(default)]
    pub log_path: Option<PathBuf>,
    /// The log's name, the first line of every checkpoint and the name of
    /// its key (a schema-less URL such as `acme.example.com/log`).
    /// Required when enabled.
    #[serde(default)]
    pub origin: Option<String>,
    /// The log's Ed25519 private key, PEM (made by `akamu-cli ceremony
    /// log-key`). Default `<state dir>/mtc-log.key`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Generate `key_file` when it does not exist (the one-command start
    /// sets it, as the CA key is generated there). Default false: a
    /// missing key is an error.
    #[serde(default)]
    pub generate_key: bool,
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
    /// The oldest CAA check (RFC 8659) the signer relies on, in seconds
    /// (default 28800, the Baseline Requirements' 8 hours): a DNS name is
    /// signed only under a statement whose CAA check is at most this old,
    /// or that says the validator checks no CAA (it has no
    /// `caa_identities`). A statement without a CAA check is refused.
    #[serde(default = "default_caa_max_age_secs")]
    pub caa_max_age_secs: u32,
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
            caa_max_age_secs: default_caa_max_age_secs(),
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
    /// Put a DNS name of the certificate in the subject commonName (the
    /// CSR's CN when it is one of them and fits, else the first that fits).
    /// IP addresses never go into the CN: an IP-only certificate has an
    /// empty subject whatever this says. `false` gives every certificate an
    /// empty subject, as Let's Encrypt's short-lived profile does. Default
    /// true.
    #[serde(default = "default_true")]
    pub common_name: bool,
    /// Orders under this profile reuse an authorization only this many
    /// seconds after its validation (Boulder's validation profiles). The
    /// frontend applies it; default: for as long as the authorization is
    /// valid.
    #[serde(default)]
    pub authz_reuse_secs: Option<u32>,
    /// The subscriber key types this profile accepts, in the workspace's
    /// spelling (`ec:P-256`, `rsa:3072`, `ed25519`, `ed448`, `ml-dsa-44`,
    /// `ml-dsa-65`, `ml-dsa-87`, …). Unset: RSA 2048/3072/4096, P-256,
    /// P-384, and P-521 and Ed25519 as `[policy]` allows them (no Ed448, no
    /// ML-DSA).
    #[serde(default)]
    pub key_types: Option<Vec<KeyType>>,
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
    /// Where the new key is written (mode 0600).
    pub key_file: PathBuf,
    /// Type of a new key (`ec:P-256`, `ec:P-384`, `ec:P-521`, `rsa:N`,
    /// `ed25519`). Default `ec:P-256`.
    #[serde(default = "default_server_key_type")]
    pub key_type: KeyType,
}

/// Default for [`ServerCertificate::key_type`].
pub fn default_server_key_type() -> KeyType {
    KeyType::EcP256
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
/// Default for [`Policy::caa_max_age_secs`]: 8 hours.
pub fn default_caa_max_age_secs() -> u32 {
    8 * 3600
}
/// Default for [`ProfileConfig::max_sans`].
pub fn default_max_sans() -> usize {
    100
}

/// The profile that always exists.
pub const DEFAULT_PROFILE: &str = "tls-server";

fn default_true() -> bool {
    true
}
