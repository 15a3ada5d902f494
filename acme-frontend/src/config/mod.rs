//! The frontend's configuration (TOML, strict: unknown keys are errors).
//!
//! Key names follow the Akāmu reference (`[ca]`, `[server]`, …) so its users
//! can bring their files. Every field has a documented default; the same
//! defaults appear in `docs/src/configuration.md`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod fleet;
mod sections;

pub use fleet::Fleet;
pub use sections::*;
use sections::{default_base_url, default_listen_addr, default_state_dir};

/// The embedded default configuration (a CA on loopback).
pub const EMBEDDED_DEFAULT: &str = include_str!("../../config/default.toml");

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
    /// `[mtc]`: the transparency log; passed to the signer by the launcher.
    #[serde(default)]
    pub mtc: Mtc,
    /// `[tls]`: HTTPS for ACME clients.
    #[serde(default)]
    pub tls: Tls,
    /// `[server]`: protocol and validation settings.
    #[serde(default)]
    pub server: Server,
    /// `[rate_limits]`: GCRA buckets and counts, off unless configured.
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// `[signer]`: how to reach `ca-signer`.
    #[serde(default)]
    pub signer: SignerLink,
    /// `[validator]`: how to reach `validator-worker`.
    #[serde(default)]
    pub validator: ValidatorLink,
    /// `[launcher]`: whether this process starts the other two.
    #[serde(default)]
    pub launcher: Launcher,
    /// `[metrics]`: the Prometheus listener (off by default).
    #[serde(default)]
    pub metrics: Metrics,
    /// `[fleet]`: several front ends on one database (off by default).
    #[serde(default)]
    pub fleet: Fleet,
    /// User to switch to when started as root. Default `akamu-frontend`, or
    /// no switch when the launcher is enabled (development runs everything
    /// as the invoking user).
    pub user: Option<String>,
    /// Group to switch to when started as root. Default: as `user`.
    pub group: Option<String>,
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

/// Where the frontend reaches the signer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignerEndpoint {
    /// Its Unix socket (`[signer] socket_path`).
    Unix(PathBuf),
    /// Its mutual-TLS listener (`[signer] address`).
    Tls {
        /// `host:port`.
        address: String,
        /// The CA to trust, the name to expect, our certificate and key.
        files: shared_proto::tls::ClientFiles,
    },
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
        let mut config: Self = toml::from_str(text).map_err(parse_error)?;
        config.apply_server_aliases(&raw)?;
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
        // The validator's facts: the launcher's input for it, refused
        // without the launcher (the frontend learns them over the RPC).
        let server = raw.get("server").and_then(toml::Value::as_table);
        for (key, why) in [
            (
                "caa_identities",
                "the validator checks CAA and tells the frontend its identities for the directory",
            ),
            (
                "dns_persist_issuer_domain",
                "the validator checks the records against it and tells the frontend",
            ),
            (
                "dns_persist_form",
                "the validator checks the records in that form and tells the frontend",
            ),
            (
                "tor_socks_proxy",
                "the validator connects through it and tells the frontend",
            ),
            (
                "tor_connectivity_enabled",
                "the validator reaches .onion names through its tor_socks_proxy and tells the frontend",
            ),
        ] {
            // `tor_connectivity_enabled = false` (the reference's default)
            // asks nothing of the validator.
            let off = key == "tor_connectivity_enabled"
                && server
                    .and_then(|t| t.get(key))
                    .is_some_and(|v| v.as_bool() == Some(false));
            if !off && server.is_some_and(|t| t.contains_key(key)) {
                return Err(ConfigError::Invalid(format!(
                    "[server] {key} belongs in the validator's configuration ({key}) \
                     when [launcher] enabled = false: {why}"
                )));
            }
        }
        let section = if raw.contains_key("ca") {
            Some("[ca]".to_owned())
        } else if raw.contains_key("mtc") {
            Some("[mtc]".to_owned())
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

    /// `[server] listen_addr` and `[server] base_url` stand for the
    /// top-level keys (the reference's annotated TLS example uses them);
    /// setting a key in both places is refused rather than guessed.
    fn apply_server_aliases(&mut self, raw: &toml::Table) -> Result<(), ConfigError> {
        let both = |key: &str| {
            ConfigError::Invalid(format!(
                "{key} is set both at the top level and in [server]; keep one"
            ))
        };
        if let Some(addr) = self.server.listen_addr {
            if raw.contains_key("listen_addr") {
                return Err(both("listen_addr"));
            }
            self.listen_addr = addr;
        }
        if let Some(url) = &self.server.base_url {
            if raw.contains_key("base_url") {
                return Err(both("base_url"));
            }
            self.base_url = url.clone();
        }
        Ok(())
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.check_tls()?;
        self.signer_tls()?;
        self.check_database()?;
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
        if !(1..=100).contains(&self.server.max_identifiers_per_order) {
            return Err(ConfigError::Invalid(
                "[server] max_identifiers_per_order must be between 1 and 100".into(),
            ));
        }
        self.trusted_proxies()?;
        crate::rate_limits::Policy::from_config(&self.rate_limits)
            .map_err(|e| ConfigError::Invalid(format!("[rate_limits] {e}")))?;
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
        if self.server.star_min_lifetime_secs.is_some_and(|s| s < 1) {
            return Err(ConfigError::Invalid(
                "[server] star_min_lifetime_secs must be at least 1".into(),
            ));
        }
        if self.server.star_max_duration_secs.is_some_and(|s| s < 1) {
            return Err(ConfigError::Invalid(
                "[server] star_max_duration_secs must be at least 1".into(),
            ));
        }
        if !(60..=604_800).contains(&self.server.ari_retry_after_secs) {
            return Err(ConfigError::Invalid(
                "[server] ari_retry_after_secs must be between 60 and 604800".into(),
            ));
        }
        if !(3..=600).contains(&self.fleet.lease_secs) {
            return Err(ConfigError::Invalid(
                "[fleet] lease_secs must be between 3 and 600".into(),
            ));
        }
        if self
            .fleet
            .instance_name
            .as_deref()
            .is_some_and(|n| n.is_empty() || n.len() > 200)
        {
            return Err(ConfigError::Invalid(
                "[fleet] instance_name must be 1 to 200 characters".into(),
            ));
        }
        if !(1..=3650).contains(&self.server.retention_days) {
            return Err(ConfigError::Invalid(
                "[server] retention_days must be between 1 and 3650".into(),
            ));
        }
        let caa = self.server.caa_recheck_hours;
        if !(caa.is_finite() && (0.0..=8760.0).contains(&caa)) {
            return Err(ConfigError::Invalid(
                "[server] caa_recheck_hours must be between 0 and 8760".into(),
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

    /// `[tls]` and `[tls.client_auth]` values that a parser cannot refuse
    /// alone. The files are looked at when the listener is built.
    fn check_tls(&self) -> Result<(), ConfigError> {
        crate::tls::protocol_versions(&self.tls.protocols).map_err(ConfigError::Invalid)?;
        if !crate::tls::BOOTSTRAP_KEY_TYPES.contains(&self.tls.bootstrap_key_type) {
            return Err(ConfigError::Invalid(format!(
                "[tls] bootstrap_key_type {:?} is not offered (use ec:P-256, ec:P-384, ec:P-521, \
                 rsa:2048, rsa:3072, rsa:4096 or ed25519)",
                self.tls.bootstrap_key_type.to_string()
            )));
        }
        let Some(auth) = &self.tls.client_auth else {
            return Ok(());
        };
        if !self.tls.enabled {
            return Err(ConfigError::Invalid(
                "[tls.client_auth] needs [tls] enabled = true (behind a proxy, the proxy \
                 asks for client certificates)"
                    .into(),
            ));
        }
        if auth.ca_files.is_empty() {
            return Err(ConfigError::Invalid(
                "[tls.client_auth] ca_files must name at least one PEM file".into(),
            ));
        }
        if auth.max_chain_depth == 0 {
            return Err(ConfigError::Invalid(
                "[tls.client_auth] max_chain_depth must be at least 1 (the trust anchor)".into(),
            ));
        }
        if !(2048..=16384).contains(&auth.minimum_rsa_modulus) {
            return Err(ConfigError::Invalid(
                "[tls.client_auth] minimum_rsa_modulus must be between 2048 and 16384 \
                 (smaller RSA keys are refused by the TLS library whatever it says)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// `[database]`: `path` (SQLite) or `url` (PostgreSQL), never both.
    fn check_database(&self) -> Result<(), ConfigError> {
        let db = &self.database;
        match (&db.path, &db.url) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(
                    "[database] has both path (SQLite) and url (PostgreSQL): give one".into(),
                ));
            }
            (_, Some(url)) => {
                let scheme_ok = url.starts_with("postgres://") || url.starts_with("postgresql://");
                if !scheme_ok {
                    return Err(ConfigError::Invalid(format!(
                        "[database] url {:?} is not a postgres:// or postgresql:// URL",
                        crate::store::pg::redact(url)
                    )));
                }
            }
            (Some(path), None) if path.as_os_str().is_empty() => {
                return Err(ConfigError::Invalid(
                    "[database] path is empty: name a SQLite file, or give url".into(),
                ));
            }
            _ => {}
        }
        if !(1..=1000).contains(&db.max_connections) {
            return Err(ConfigError::Invalid(
                "[database] max_connections must be between 1 and 1000".into(),
            ));
        }
        if !(1..=3600).contains(&db.timeout_secs) {
            return Err(ConfigError::Invalid(
                "[database] timeout_secs must be between 1 and 3600".into(),
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

    /// `[server] trusted_proxies`, parsed (an address is a /32 or /128).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.server
            .trusted_proxies
            .iter()
            .map(|s| {
                crate::rate_limits::parse_cidr(s).ok_or_else(|| {
                    ConfigError::Invalid(format!(
                        "[server] trusted_proxies: {s:?} is not a CIDR or an IP address"
                    ))
                })
            })
            .collect()
    }

    /// This front end's name in the fleet's lease row: `[fleet]
    /// instance_name`, or `<hostname>/<listen_addr>`.
    pub fn instance_name(&self) -> String {
        if let Some(name) = &self.fleet.instance_name {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{host}/{}", self.listen_addr)
    }

    /// The SQLite file (meaningless with `[database] url`).
    pub fn database_path(&self) -> PathBuf {
        self.in_state(&self.database.path, "akamu.db")
    }

    /// Where the database is: `[database] url` (PostgreSQL), else the
    /// SQLite file.
    pub fn database(&self) -> crate::store::Location {
        match &self.database.url {
            Some(url) => crate::store::Location::Postgres(crate::store::pg::PgOptions {
                url: url.clone(),
                max_connections: self.database.max_connections,
                timeout: std::time::Duration::from_secs(self.database.timeout_secs),
            }),
            None => crate::store::Location::Sqlite(self.database_path()),
        }
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
    /// Where the signer is: its Unix socket, or with `[signer] address` its
    /// mutual-TLS listener and the files to reach it with.
    pub fn signer_endpoint(&self) -> SignerEndpoint {
        match self.signer_tls() {
            Ok(Some((address, files))) => SignerEndpoint::Tls { address, files },
            // `Config::parse` refused the errors.
            _ => SignerEndpoint::Unix(self.signer_socket()),
        }
    }

    /// `[signer] address` with its TLS files, checked: all or nothing, not
    /// with `socket_path`, not with the launcher.
    fn signer_tls(&self) -> Result<Option<(String, shared_proto::tls::ClientFiles)>, ConfigError> {
        let s = &self.signer;
        let tls_keys = [
            ("ca_file", s.ca_file.is_some()),
            ("cert_file", s.cert_file.is_some()),
            ("key_file", s.key_file.is_some()),
            ("server_name", s.server_name.is_some()),
        ];
        let Some(address) = &s.address else {
            if let Some((key, _)) = tls_keys.iter().find(|(_, set)| *set) {
                return Err(ConfigError::Invalid(format!(
                    "[signer] {key} is only for a signer reached over TCP: set [signer] address too"
                )));
            }
            return Ok(None);
        };
        if s.socket_path.is_some() {
            return Err(ConfigError::Invalid(
                "[signer] address and socket_path are exclusive: the signer is reached either over \
                 TCP with mutual TLS or on its Unix socket"
                    .into(),
            ));
        }
        if self.launcher.enabled {
            return Err(ConfigError::Invalid(
                "[signer] address needs [launcher] enabled = false: the launcher starts its own \
                 signer on a Unix socket; a signer on another host is started on its own"
                    .into(),
            ));
        }
        if let Some((key, _)) = tls_keys.iter().find(|(_, set)| !*set) {
            return Err(ConfigError::Invalid(format!(
                "[signer] address needs {key} (ca_file, cert_file, key_file and server_name \
                 set up the mutual TLS)"
            )));
        }
        match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {}
            _ => {
                return Err(ConfigError::Invalid(format!(
                    "[signer] address {address:?} must be host:port"
                )));
            }
        }
        let (Some(ca_file), Some(cert_file), Some(key_file), Some(server_name)) =
            (&s.ca_file, &s.cert_file, &s.key_file, &s.server_name)
        else {
            return Ok(None);
        };
        if rustls::pki_types::ServerName::try_from(server_name.as_str()).is_err() {
            return Err(ConfigError::Invalid(format!(
                "[signer] server_name {server_name:?} is not a DNS name or an IP address"
            )));
        }
        Ok(Some((
            address.clone(),
            shared_proto::tls::ClientFiles {
                ca_file: ca_file.clone(),
                cert_file: cert_file.clone(),
                key_file: key_file.clone(),
                server_name: server_name.clone(),
            },
        )))
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
mod tests;
