//! The frontend's configuration (TOML, strict: unknown keys are errors).
//!
//! Key names follow the Akāmu reference (`[ca]`, `[server]`, …) so its users
//! can bring their files. Every field has a documented default; the same
//! defaults appear in `docs/src/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The embedded default configuration (a CA on loopback).
pub const EMBEDDED_DEFAULT: &str = include_str!("../config/default.toml");

/// Top-level configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP(S) server binds. Default `127.0.0.1:14000`.
    #[serde(default = "default_listen_addr")]
    pub listen_addr: SocketAddr,
    /// Public base URL in every URL we hand out; no trailing slash.
    /// Default `https://localhost:14000`.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// Directory for sockets and default file locations. Default `akamu-data`.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// `[database]`.
    #[serde(default)]
    pub database: Database,
    /// `[ca]`: passed to the signer by the launcher.
    #[serde(default)]
    pub ca: Ca,
    /// `[tls]`: HTTPS for ACME clients.
    #[serde(default)]
    pub tls: Tls,
    /// `[server]`: protocol and validation settings.
    #[serde(default)]
    pub server: Server,
    /// `[signer]`: how to reach `ca-signer`.
    #[serde(default)]
    pub signer: SignerLink,
    /// `[validator]`: how to reach `validator-worker`.
    #[serde(default)]
    pub validator: ValidatorLink,
    /// `[launcher]`: whether this process starts the other two.
    #[serde(default)]
    pub launcher: Launcher,
    /// User to switch to when started as root. Default `akamu-frontend`, or
    /// no switch when the launcher is enabled (development runs everything
    /// as the invoking user).
    pub user: Option<String>,
    /// Group to switch to when started as root. Default: as `user`.
    pub group: Option<String>,
}

/// `[database]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Database {
    /// SQLite file. Default `<state_dir>/akamu.db`.
    pub path: Option<PathBuf>,
}

/// `[ca]`: the issuing CA, owned by `ca-signer`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Ca {
    /// CA private key PEM. Default `<state_dir>/ca.key.pem`.
    pub key_file: Option<PathBuf>,
    /// CA certificate PEM. Default `<state_dir>/ca.cert.pem`.
    pub cert_file: Option<PathBuf>,
    /// Key type generated on first run. Default `ec:P-256`.
    #[serde(default = "default_key_type")]
    pub key_type: String,
    /// Hash for signatures. Default `sha256`.
    #[serde(default = "default_hash_alg")]
    pub hash_alg: String,
    /// Leaf validity in days. Default 90.
    #[serde(default = "default_validity_days")]
    pub validity_days: u32,
    /// Generated root's validity in years. Default 10.
    #[serde(default = "default_ca_validity_years")]
    pub ca_validity_years: u32,
    /// Generated root's CN. Default `Akāmu CA`.
    #[serde(default = "default_common_name")]
    pub common_name: String,
    /// Generated root's O. Default `Akāmu`.
    #[serde(default = "default_organization")]
    pub organization: String,
    /// CRL distribution point put in leaves. Default none.
    pub crl_url: Option<String>,
    /// OCSP responder URL put in leaves. Default none.
    pub ocsp_url: Option<String>,
    /// Certificates served after the issuing CA (e.g. the root). Default none.
    pub chain_file: Option<PathBuf>,
    /// AIA caIssuers URL put in leaves (where the issuing CA certificate can
    /// be fetched). Default none.
    pub ca_issuers_url: Option<String>,
}

impl Default for Ca {
    fn default() -> Self {
        Self {
            key_file: None,
            cert_file: None,
            key_type: default_key_type(),
            hash_alg: default_hash_alg(),
            validity_days: default_validity_days(),
            ca_validity_years: default_ca_validity_years(),
            common_name: default_common_name(),
            organization: default_organization(),
            crl_url: None,
            ocsp_url: None,
            chain_file: None,
            ca_issuers_url: None,
        }
    }
}

/// `[tls]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Serve HTTPS. Default false (plain HTTP behind a proxy); the embedded
    /// default turns it on.
    #[serde(default)]
    pub enabled: bool,
    /// Certificate chain PEM. Default `<state_dir>/server.crt`.
    pub cert_file: Option<PathBuf>,
    /// Private key PEM. Default `<state_dir>/server.key`.
    pub key_file: Option<PathBuf>,
    /// Name the launcher asks the signer to certify (with `127.0.0.1`) when
    /// the files are missing. Default `localhost`.
    #[serde(default = "default_server_name")]
    pub server_name: String,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: None,
            key_file: None,
            server_name: default_server_name(),
        }
    }
}

/// `[server]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    /// Port the validator fetches http-01 tokens from. Default 80.
    #[serde(default = "default_http_port")]
    pub http_validation_port: u16,
    /// Port the validator connects to for tls-alpn-01. Default 443.
    #[serde(default = "default_tls_alpn_port")]
    pub tls_alpn_validation_port: u16,
    /// DNS resolver for every validator lookup (`ip:port`). Default: system.
    pub dns_resolver_addr: Option<SocketAddr>,
    /// Let the validator probe loopback/private addresses. Default false.
    #[serde(default)]
    pub allow_private_targets: bool,
    /// Largest accepted request body. Default 65536.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// How long a challenge response waits for its validation before
    /// answering `processing` (milliseconds, at most 10000; 0 answers at
    /// once). Default 1000.
    #[serde(default = "default_challenge_wait_ms")]
    pub challenge_wait_ms: u64,
    /// Seconds without a byte in either direction after which a client
    /// connection is shut down (HTTP/1.1 and HTTP/2; at most 3600). An
    /// HTTP/1.1 connection also waits at most 10 s for request headers.
    /// Default 30.
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Client connections served at once (TLS handshakes included); past it
    /// new connections wait in the listen backlog. 1 to 65536. Default 1024.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Order lifetime in seconds. Default 86400.
    #[serde(default = "default_expiry_secs")]
    pub order_expiry_secs: i64,
    /// Authorization lifetime in seconds. Default 86400.
    #[serde(default = "default_expiry_secs")]
    pub authz_expiry_secs: i64,
    /// Terms of service URL for the directory. Default none.
    pub terms_of_service_url: Option<String>,
    /// Operator website for the directory. Default none.
    pub website_url: Option<String>,
    /// CAA identities for the directory. Default none.
    #[serde(default)]
    pub caa_identities: Vec<String>,
    /// Certificate profiles offered to clients (name → description or
    /// documentation URL); each name is also a profile of the signer.
    /// Default none (a `profile` in new-order is then ignored).
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, String>,
    /// Require External Account Binding on new accounts. Default false.
    #[serde(default)]
    pub external_account_required: bool,
    /// EAB keys: key id → base64url HMAC key (at least 16 bytes). Seeded
    /// into the database at start with insert-or-ignore. Default none.
    #[serde(default)]
    pub eab_keys: std::collections::BTreeMap<String, String>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            http_validation_port: default_http_port(),
            tls_alpn_validation_port: default_tls_alpn_port(),
            dns_resolver_addr: None,
            allow_private_targets: false,
            max_body_bytes: default_max_body_bytes(),
            challenge_wait_ms: default_challenge_wait_ms(),
            idle_timeout_secs: default_idle_timeout_secs(),
            max_connections: default_max_connections(),
            order_expiry_secs: default_expiry_secs(),
            authz_expiry_secs: default_expiry_secs(),
            terms_of_service_url: None,
            website_url: None,
            caa_identities: Vec::new(),
            profiles: Default::default(),
            external_account_required: false,
            eab_keys: Default::default(),
        }
    }
}

/// `[signer]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignerLink {
    /// The signer's socket. Default `<state_dir>/signer.sock`.
    pub socket_path: Option<PathBuf>,
    /// `[signer.key]`: the CA key backend (`file` or `pkcs11`), passed to the
    /// signer verbatim by the launcher, which checks it strictly. Default:
    /// `[ca] key_file`.
    pub key: Option<toml::Table>,
    /// `[signer.policy]`: the signer's `[policy]` (validity ceiling, key
    /// policy, blocklist), passed verbatim. Default: the signer's defaults.
    pub policy: Option<toml::Table>,
    /// `[signer.audit]`: the signer's `[audit]` (log path), passed verbatim.
    pub audit: Option<toml::Table>,
    /// `[signer.profiles]`: the signer's `[profiles.<name>]`, passed verbatim.
    pub profiles: Option<toml::Table>,
}

/// `[validator]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ValidatorLink {
    /// The validator's socket. Default `<state_dir>/validator.sock`.
    pub socket_path: Option<PathBuf>,
}

/// `[launcher]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Launcher {
    /// Start `ca-signer` and `validator-worker` as children and restart them
    /// when they exit. Default true; production runs them as their own
    /// services and sets this to false.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Directory holding the two binaries. Default: next to this executable.
    pub bin_dir: Option<PathBuf>,
}

impl Default for Launcher {
    fn default() -> Self {
        Self {
            enabled: true,
            bin_dir: None,
        }
    }
}

fn default_listen_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 14000))
}
fn default_base_url() -> String {
    "https://localhost:14000".into()
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("akamu-data")
}
fn default_key_type() -> String {
    "ec:P-256".into()
}
fn default_hash_alg() -> String {
    "sha256".into()
}
fn default_validity_days() -> u32 {
    90
}
fn default_ca_validity_years() -> u32 {
    10
}
fn default_common_name() -> String {
    "Akāmu CA".into()
}
fn default_organization() -> String {
    "Akāmu".into()
}
fn default_server_name() -> String {
    "localhost".into()
}
fn default_http_port() -> u16 {
    80
}
fn default_tls_alpn_port() -> u16 {
    443
}
fn default_max_body_bytes() -> usize {
    65536
}
fn default_challenge_wait_ms() -> u64 {
    1000
}
fn default_max_connections() -> usize {
    1024
}
fn default_idle_timeout_secs() -> u64 {
    30
}
fn default_expiry_secs() -> i64 {
    86400
}
fn default_true() -> bool {
    true
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("parsing {origin}: {source}")]
    Parse {
        /// The file name or `embedded default`.
        origin: String,
        /// The parser's message.
        source: toml::de::Error,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_owned(),
                    source,
                })?;
                Self::parse(&text, &p.display().to_string())
            }
            None => Self::parse(EMBEDDED_DEFAULT, "embedded default"),
        }
    }

    /// Parses and checks a TOML document.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let parse_error = |source| ConfigError::Parse {
            origin: origin.to_owned(),
            source,
        };
        let raw: toml::Table = toml::from_str(text).map_err(parse_error)?;
        let config: Self = toml::from_str(text).map_err(parse_error)?;
        config.check()?;
        if !config.launcher.enabled {
            config.check_one_owner(&raw)?;
        }
        Ok(config)
    }

    /// Without the launcher the signer has its own configuration, which
    /// owns the CA's facts; the frontend learns them over the RPC
    /// (`ca_info`). A second copy here could only drift, so the sections
    /// the launcher would hand to the signer are refused.
    fn check_one_owner(&self, raw: &toml::Table) -> Result<(), ConfigError> {
        let signer_only = raw
            .get("signer")
            .and_then(toml::Value::as_table)
            .and_then(|t| {
                ["key", "policy", "audit", "profiles"]
                    .into_iter()
                    .find(|k| t.contains_key(*k))
            });
        let section = if raw.contains_key("ca") {
            Some("[ca]".to_owned())
        } else {
            signer_only.map(|k| format!("[signer.{k}]"))
        };
        match section {
            Some(section) => Err(ConfigError::Invalid(format!(
                "{section} belongs in the signer's configuration when [launcher] enabled = false \
                 (the frontend asks the signer for the CA's facts)"
            ))),
            None => Ok(()),
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.base_url.ends_with('/') {
            return Err(ConfigError::Invalid(
                "base_url must not end with '/'".into(),
            ));
        }
        if !(self.base_url.starts_with("https://") || self.base_url.starts_with("http://")) {
            return Err(ConfigError::Invalid(
                "base_url must be an http(s) URL".into(),
            ));
        }
        if self.ca.validity_days == 0 {
            return Err(ConfigError::Invalid(
                "[ca] validity_days must be at least 1".into(),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "[server] max_body_bytes must be at least 1024".into(),
            ));
        }
        if !(1..=65_536).contains(&self.server.max_connections) {
            return Err(ConfigError::Invalid(
                "[server] max_connections must be between 1 and 65536".into(),
            ));
        }
        if !(1..=3600).contains(&self.server.idle_timeout_secs) {
            return Err(ConfigError::Invalid(
                "[server] idle_timeout_secs must be between 1 and 3600".into(),
            ));
        }
        if self.server.challenge_wait_ms > 10_000 {
            return Err(ConfigError::Invalid(
                "[server] challenge_wait_ms must be at most 10000".into(),
            ));
        }
        for (kid, key) in &self.server.eab_keys {
            match akamu_jose::b64_decode(key) {
                Ok(k) if k.len() >= 16 => {}
                Ok(_) => {
                    return Err(ConfigError::Invalid(format!(
                        "[server.eab_keys] {kid:?}: key must be at least 16 bytes"
                    )));
                }
                Err(_) => {
                    return Err(ConfigError::Invalid(format!(
                        "[server.eab_keys] {kid:?}: key is not base64url without padding"
                    )));
                }
            }
        }
        if self.server.external_account_required && self.server.eab_keys.is_empty() {
            tracing::warn!(target: "frontend", "external_account_required is set but [server.eab_keys] is empty");
        }
        if self.server.order_expiry_secs < 60 || self.server.authz_expiry_secs < 60 {
            return Err(ConfigError::Invalid(
                "expiry must be at least 60 seconds".into(),
            ));
        }
        Ok(())
    }

    fn in_state(&self, explicit: &Option<PathBuf>, name: &str) -> PathBuf {
        explicit
            .clone()
            .unwrap_or_else(|| self.state_dir.join(name))
    }

    /// The EAB keys, decoded (validated by [`Config::parse`]).
    pub fn eab_keys(&self) -> Vec<(String, Vec<u8>)> {
        self.server
            .eab_keys
            .iter()
            .filter_map(|(k, v)| akamu_jose::b64_decode(v).ok().map(|key| (k.clone(), key)))
            .collect()
    }

    /// The user and group to become when started as root, if any (see
    /// [`Config::user`]).
    pub fn run_as(&self) -> Option<(String, String)> {
        let user = match (&self.user, self.launcher.enabled) {
            (Some(u), _) => u.clone(),
            (None, true) => return None,
            (None, false) => "akamu-frontend".into(),
        };
        let group = self.group.clone().unwrap_or_else(|| user.clone());
        Some((user, group))
    }

    /// The SQLite file.
    pub fn database_path(&self) -> PathBuf {
        self.in_state(&self.database.path, "akamu.db")
    }
    /// The CA key file.
    pub fn ca_key_file(&self) -> PathBuf {
        self.in_state(&self.ca.key_file, "ca.key.pem")
    }
    /// The CA certificate file.
    pub fn ca_cert_file(&self) -> PathBuf {
        self.in_state(&self.ca.cert_file, "ca.cert.pem")
    }
    /// The HTTPS certificate chain.
    pub fn tls_cert_file(&self) -> PathBuf {
        self.in_state(&self.tls.cert_file, "server.crt")
    }
    /// The HTTPS key.
    pub fn tls_key_file(&self) -> PathBuf {
        self.in_state(&self.tls.key_file, "server.key")
    }
    /// The signer's socket.
    pub fn signer_socket(&self) -> PathBuf {
        self.in_state(&self.signer.socket_path, "signer.sock")
    }
    /// The validator's socket.
    pub fn validator_socket(&self) -> PathBuf {
        self.in_state(&self.validator.socket_path, "validator.sock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_parses() {
        let c = Config::load(None).expect("default");
        assert!(c.tls.enabled);
        assert_eq!(c.listen_addr.port(), 14000);
        assert_eq!(c.database_path(), PathBuf::from("akamu-data/akamu.db"));
        assert!(c.server.allow_private_targets);
    }

    #[test]
    fn contract_example_parses_with_defaults() {
        let c = Config::parse(
            r#"
listen_addr = "127.0.0.1:14000"
base_url    = "https://localhost:14000"
state_dir   = "akamu-data"
[database]
path = "akamu-data/akamu.db"
[ca]
key_file      = "akamu-data/ca.key.pem"
cert_file     = "akamu-data/ca.cert.pem"
validity_days = 90
[tls]
enabled     = true
cert_file   = "akamu-data/server.crt"
key_file    = "akamu-data/server.key"
server_name = "localhost"
[server]
http_validation_port     = 80
tls_alpn_validation_port = 443
dns_resolver_addr        = "127.0.0.1:8053"
allow_private_targets    = false
"#,
            "test",
        )
        .expect("parses");
        assert_eq!(c.server.max_body_bytes, 65536);
        assert_eq!(
            c.server.dns_resolver_addr,
            Some("127.0.0.1:8053".parse().expect("addr"))
        );
        assert_eq!(c.signer_socket(), PathBuf::from("akamu-data/signer.sock"));
    }

    /// `docs/src/configuration.md` lists exactly the keys the code accepts.
    #[test]
    fn doc_lists_every_key() {
        use std::collections::BTreeSet;
        let doc = include_str!("../../docs/src/configuration.md");
        let mut documented = BTreeSet::new();
        let mut section = String::new();
        for line in doc.lines() {
            if let Some(h) = line.strip_prefix("## ") {
                section = h
                    .trim_matches(|c| c == '`' || c == '[' || c == ']')
                    .to_string();
                if section == "Top level" {
                    section.clear();
                }
            } else if let Some(rest) = line.strip_prefix("| `") {
                let key = rest.split('`').next().unwrap_or_default();
                documented.insert(if section.is_empty() {
                    key.to_string()
                } else {
                    format!("{section}.{key}")
                });
            }
        }
        let value = serde_json::to_value(Config::parse("", "t").expect("defaults")).expect("json");
        let mut actual = BTreeSet::new();
        for (k, v) in value.as_object().expect("object") {
            match v.as_object() {
                Some(table) => actual.extend(table.keys().map(|f| format!("{k}.{f}"))),
                None => {
                    actual.insert(k.clone());
                }
            }
        }
        assert_eq!(documented, actual);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(matches!(
            Config::parse("listen_adr = \"x\"", "t"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            Config::parse("[ca]\nvalidity = 3", "t"),
            Err(ConfigError::Parse { .. })
        ));
        assert!(matches!(
            Config::parse("base_url = \"https://x/\"", "t"),
            Err(ConfigError::Invalid(_))
        ));
        assert!(matches!(
            Config::parse("[ca]\nvalidity_days = 0", "t"),
            Err(ConfigError::Invalid(_))
        ));
    }

    #[test]
    fn without_the_launcher_the_signers_sections_are_refused() {
        let off = "[launcher]\nenabled = false\n";
        for section in [
            "[ca]\ncrl_url = \"http://x/crl\"",
            "[signer.profiles.short]\nvalidity_hours = 24",
            "[signer.policy]\nmax_validity_days = 90",
        ] {
            let refused = Config::parse(&format!("{off}{section}\n"), "t");
            assert!(
                matches!(&refused, Err(ConfigError::Invalid(d)) if d.contains("signer's configuration")),
                "{section}: {refused:?}"
            );
            // With the launcher they are its input for the signer.
            assert!(
                Config::parse(&format!("{section}\n"), "t").is_ok(),
                "{section}"
            );
        }
        assert!(
            Config::parse(
                &format!("{off}[signer]\nsocket_path = \"/run/s.sock\"\n"),
                "t"
            )
            .is_ok()
        );
    }
}
