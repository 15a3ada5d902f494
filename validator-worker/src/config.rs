//! The validator's TOML configuration.
//!
//! Every field is documented and has a named `default_*()` function where a
//! default exists; unknown keys are refused (`deny_unknown_fields`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::Error;

/// Settings of one `validator-worker` process.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Path of the Unix socket the validator listens on. Required, except
    /// for a remote perspective with `[tcp]`, which may listen on TCP only
    /// (then `statement_key_file` is required).
    #[serde(default)]
    pub socket_path: Option<PathBuf>,
    /// Permission bits of the socket file (default `0o600`).
    #[serde(default = "default_socket_mode")]
    pub socket_mode: u32,
    /// Uids allowed to connect (`SO_PEERCRED`); must not be empty with a
    /// socket, must be empty without one.
    #[serde(default)]
    pub allowed_uids: Vec<u32>,
    /// Port probed for http-01 (default 80; tests use another).
    #[serde(default = "default_http_validation_port")]
    pub http_validation_port: u16,
    /// Port probed for tls-alpn-01 (default 443; tests use another).
    #[serde(default = "default_tls_alpn_validation_port")]
    pub tls_alpn_validation_port: u16,
    /// Nameserver used for every lookup (A/AAAA, TXT) instead of the system
    /// configuration, for example `"127.0.0.1:8053"`.
    #[serde(default)]
    pub dns_resolver_addr: Option<SocketAddr>,
    /// Allow probing loopback, private, link-local and other reserved
    /// addresses, and resolve `localhost`/`*.localhost` to loopback (RFC 6761
    /// §6.3). Only for development and tests.
    #[serde(default = "default_allow_private_targets")]
    pub allow_private_targets: bool,
    /// Deadline for one TCP connect, in milliseconds (default 5000).
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Deadline for one whole probe including redirects, in milliseconds
    /// (default 20000).
    #[serde(default = "default_probe_timeout_ms")]
    pub probe_timeout_ms: u64,
    /// Ed25519 key that signs validation statements for the signer;
    /// generated (mode 0600, public half at `<file>.pub`) when missing.
    /// Default: `validator-statement.key` next to the socket.
    #[serde(default)]
    pub statement_key_file: Option<PathBuf>,
    /// Longest a signed statement may be relied on, in seconds from the
    /// validation (default 86400, the reference's authorization lifetime).
    /// A statement's `expires` is the authorization's expiry the frontend
    /// asks for, but never later than the validation plus this: the
    /// frontend cannot make a validation last longer.
    #[serde(default = "default_statement_max_age_secs")]
    pub statement_max_age_secs: u32,
    /// dns-persist-01: the CA's issuer domain, the first token a
    /// `_validation-persist` TXT record must carry (the reference's
    /// `dns_persist_issuer_domain`). Absent (the default): dns-persist-01
    /// is refused, and the frontend does not offer it (it learns this
    /// over the RPC).
    #[serde(default)]
    pub dns_persist_issuer_domain: Option<String>,
    /// dns-persist-01's record form: `"draft-01"` (the default; the
    /// reference's, with the account URL in `accounturi`) or `"draft-02"`
    /// (draft-ietf-acme-dns-persist-02's hashed account URI, bound to the
    /// account key and the name). The frontend learns it over the RPC and
    /// shows the matching directory and challenge fields.
    #[serde(default)]
    pub dns_persist_form: shared_proto::validator::PersistForm,
    /// RFC 9799 §4: a Tor SOCKS5 proxy (e.g. `"127.0.0.1:9050"`) through
    /// which http-01 and tls-alpn-01 reach `.onion` names; the proxy
    /// resolves the name (the validator never looks `.onion` up in the
    /// DNS). Absent (the default): `.onion` names are validated by
    /// onion-csr-01 only, and the frontend offers nothing else for them.
    #[serde(default)]
    pub tor_socks_proxy: Option<std::net::SocketAddr>,
    /// Validates every DNS answer the validator uses (TXT of the DNS
    /// methods, CAA, the addresses http-01 and tls-alpn-01 connect to) with
    /// DNSSEC: a bogus or unprovable answer is a `dns` problem, an answer
    /// proven unsigned passes. Default false.
    #[serde(default)]
    pub dnssec_validation: bool,
    /// The trust anchors for `dnssec_validation`: a file of DNSKEY records
    /// in zone-file syntax (e.g. a private tree's key). Default: the IANA
    /// root zone's keys, built in.
    #[serde(default)]
    pub dnssec_trust_anchor_file: Option<PathBuf>,
    /// The CA's domain names for CAA (RFC 8659 §4.2), e.g.
    /// `["acme.example.com"]`: every validation of a DNS name checks the
    /// relevant CAA record set, whose `issue` (or, for a wildcard,
    /// `issuewild`) properties must name one of them. Empty (the default):
    /// no CAA check, as in the reference. The frontend learns the list
    /// over the RPC for the directory's `meta.caaIdentities`.
    #[serde(default)]
    pub caa_identities: Vec<String>,
    /// User to become when started as root (default: stay, but drop every
    /// capability and set `no_new_privs`); production uses `akamu-validator`.
    #[serde(default)]
    pub user: Option<String>,
    /// Group to become when started as root (default: as `user`).
    #[serde(default)]
    pub group: Option<String>,
    /// This validator is a remote network perspective (BR §3.2.2.9): its
    /// statements carry this name and RIR label, signed with its own
    /// `statement_key_file`. A primary asks it over its socket. Absent
    /// (the default): an ordinary (primary) validator.
    #[serde(default)]
    pub remote_perspective: Option<RemotePerspective>,
    /// The remote perspectives this (primary) validator asks to
    /// corroborate each validation (`[[perspectives]]`). Empty (the
    /// default): no corroboration, as before multi-perspective validation.
    #[serde(default)]
    pub perspectives: Vec<PerspectiveConfig>,
    /// Deadline for one remote perspective's answer, in milliseconds
    /// (connection included; default 25000, the probe deadline's default
    /// plus five seconds). A perspective that does not answer in time does
    /// not corroborate. At most 35000: the frontend waits 40 s for a
    /// validation.
    #[serde(default = "default_perspective_timeout_ms")]
    pub perspective_timeout_ms: u64,
    /// `[tcp]`: a remote perspective also listens on TCP with mutual TLS,
    /// beside its Unix socket; only clients whose certificate chains to
    /// `client_ca_file` and carries one of `client_names` (the primaries)
    /// are served. The signer's `[tcp]`, same keys, same checks. Only with
    /// `[remote_perspective]`. Absent (the default): the socket only.
    #[serde(default)]
    pub tcp: Option<daemon_kit::tls::TcpConfig>,
    /// `[perspective_client]`: this primary's TLS client identity for the
    /// perspectives reached at `tcp:` addresses. Required when any
    /// `[[perspectives]]` address is `tcp:`.
    #[serde(default)]
    pub perspective_client: Option<PerspectiveClient>,
}

/// `[perspective_client]`: one client identity and one trust anchor for
/// every TCP perspective (a primary is one party to all of them); each
/// `[[perspectives]]` entry names the `server_name` its certificate must
/// carry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerspectiveClient {
    /// CA certificate(s) (PEM) the perspectives' TLS certificates must
    /// chain to: a CA made for these links, not the ACME CA.
    pub ca_file: PathBuf,
    /// This primary's client certificate chain (PEM, leaf first), whose
    /// DNS name is in every perspective's `[tcp] client_names`.
    pub cert_file: PathBuf,
    /// Its private key (PEM), readable by the validator's user only.
    pub key_file: PathBuf,
}

/// `[remote_perspective]`: who this validator is as a perspective.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemotePerspective {
    /// Its name, unique among the CA's perspectives (the primary's and the
    /// signer's `[[perspectives]]` entries use the same).
    pub name: String,
    /// The RIR label of its network location (e.g. `"ARIN"`, `"RIPE"`).
    pub rir: String,
}

/// One `[[perspectives]]` entry of a primary validator.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerspectiveConfig {
    /// The perspective's name (its `[remote_perspective] name`).
    pub name: String,
    /// Its RIR label (its `[remote_perspective] rir`).
    pub rir: String,
    /// Where to reach it: `"unix:/path/to/socket"` or `"tcp:host:port"`
    /// (its `[tcp] listen_addr`).
    pub address: PerspectiveAddress,
    /// With a `tcp:` address: the DNS name (or IP address) its TLS
    /// certificate must carry. Required there, refused with `unix:`.
    #[serde(default)]
    pub server_name: Option<String>,
}

/// How a perspective is reached.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum PerspectiveAddress {
    /// `unix:<path>`: a Unix socket served by a `validator-worker`.
    Unix(PathBuf),
    /// `tcp:<host>:<port>`: a `validator-worker`'s `[tcp]` listener, with
    /// mutual TLS (`[perspective_client]`, the entry's `server_name`).
    /// `host` is a DNS name, an IPv4 address or a bracketed IPv6 address.
    Tcp(String),
}

impl TryFrom<String> for PerspectiveAddress {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!(
                "perspective address {s:?} must be \"unix:/absolute/path\" or \"tcp:host:port\""
            )
        };
        match s.split_once(':') {
            Some(("unix", path)) if path.starts_with('/') => Ok(Self::Unix(PathBuf::from(path))),
            Some(("tcp", hostport)) => {
                let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
                let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
                let host_ok = match host.strip_prefix('[') {
                    Some(v6) => v6
                        .strip_suffix(']')
                        .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok()),
                    None => {
                        host.parse::<std::net::Ipv4Addr>().is_ok()
                            || daemon_kit::tls::is_client_name(host)
                    }
                };
                if port_ok && host_ok {
                    Ok(Self::Tcp(hostport.to_owned()))
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for PerspectiveAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// The largest [`Config::perspective_timeout_ms`]: below the frontend's
/// deadline for a validation, with room for the signing and the answer.
pub const MAX_PERSPECTIVE_TIMEOUT_MS: u64 = 35_000;

/// Default for [`Config::perspective_timeout_ms`].
pub fn default_perspective_timeout_ms() -> u64 {
    25_000
}

/// Default for [`Config::socket_mode`].
pub fn default_socket_mode() -> u32 {
    0o600
}

/// Default for [`Config::http_validation_port`].
pub fn default_http_validation_port() -> u16 {
    80
}

/// Default for [`Config::tls_alpn_validation_port`].
pub fn default_tls_alpn_validation_port() -> u16 {
    443
}

/// Default for [`Config::allow_private_targets`].
pub fn default_allow_private_targets() -> bool {
    false
}

/// Default for [`Config::connect_timeout_ms`].
pub fn default_connect_timeout_ms() -> u64 {
    5_000
}

/// Default for [`Config::probe_timeout_ms`].
pub fn default_probe_timeout_ms() -> u64 {
    20_000
}

/// Default for [`Config::statement_max_age_secs`].
pub fn default_statement_max_age_secs() -> u32 {
    shared_proto::statement::DEFAULT_MAX_AGE_SECS
}

impl Config {
    /// A configuration with defaults for everything but the socket and the
    /// allow-list.
    pub fn new(socket_path: impl Into<PathBuf>, allowed_uids: Vec<u32>) -> Self {
        Self {
            socket_path: Some(socket_path.into()),
            socket_mode: default_socket_mode(),
            allowed_uids,
            http_validation_port: default_http_validation_port(),
            tls_alpn_validation_port: default_tls_alpn_validation_port(),
            dns_resolver_addr: None,
            allow_private_targets: default_allow_private_targets(),
            connect_timeout_ms: default_connect_timeout_ms(),
            probe_timeout_ms: default_probe_timeout_ms(),
            statement_key_file: None,
            statement_max_age_secs: default_statement_max_age_secs(),
            dns_persist_issuer_domain: None,
            dns_persist_form: Default::default(),
            tor_socks_proxy: None,
            dnssec_validation: false,
            dnssec_trust_anchor_file: None,
            caa_identities: Vec::new(),
            user: None,
            group: None,
            remote_perspective: None,
            perspectives: Vec::new(),
            perspective_timeout_ms: default_perspective_timeout_ms(),
            tcp: None,
            perspective_client: None,
        }
    }

    /// Where the statement key lives: `statement_key_file`, else next to
    /// the socket (a configuration without a socket names the file;
    /// [`Config::validate`] checks it).
    pub fn statement_key_path(&self) -> PathBuf {
        match (&self.statement_key_file, &self.socket_path) {
            (Some(file), _) => file.clone(),
            (None, Some(socket)) => socket.with_file_name("validator-statement.key"),
            (None, None) => PathBuf::from("validator-statement.key"),
        }
    }

    /// Reads and validates a TOML file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadConfig {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            Error::ParseConfig { source, .. } => Error::ParseConfig {
                path: path.to_owned(),
                source,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let config: Self = toml::from_str(text).map_err(|source| Error::ParseConfig {
            path: PathBuf::new(),
            source: Box::new(source),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks the values serde cannot check.
    pub fn validate(&self) -> Result<(), Error> {
        match &self.socket_path {
            Some(path) => {
                if path.as_os_str().is_empty() {
                    return Err(Error::InvalidConfig("socket_path must not be empty"));
                }
                if self.allowed_uids.is_empty() {
                    return Err(Error::InvalidConfig(
                        "allowed_uids must name at least one uid",
                    ));
                }
            }
            None => {
                if self.tcp.is_none() {
                    return Err(Error::InvalidConfig(
                        "socket_path is required (only a remote perspective with [tcp] may go without)",
                    ));
                }
                if !self.allowed_uids.is_empty() {
                    return Err(Error::InvalidConfig(
                        "allowed_uids is for the Unix socket; without socket_path leave it out",
                    ));
                }
                if self.statement_key_file.is_none() {
                    return Err(Error::InvalidConfig(
                        "without socket_path, statement_key_file is required",
                    ));
                }
            }
        }
        if self.socket_mode > 0o777 {
            return Err(Error::InvalidConfig("socket_mode must be at most 0o777"));
        }
        if self.http_validation_port == 0 || self.tls_alpn_validation_port == 0 {
            return Err(Error::InvalidConfig("validation ports must not be 0"));
        }
        if self.connect_timeout_ms == 0 || self.probe_timeout_ms == 0 {
            return Err(Error::InvalidConfig("timeouts must be positive"));
        }
        if self
            .caa_identities
            .iter()
            .any(|d| !crate::caa::is_issuer_domain_name(d))
        {
            return Err(Error::InvalidConfig(
                "caa_identities must be domain names (letters, digits, hyphens, dots)",
            ));
        }
        if self.statement_max_age_secs == 0 {
            return Err(Error::InvalidConfig(
                "statement_max_age_secs must be positive",
            ));
        }
        if self.dnssec_trust_anchor_file.is_some() && !self.dnssec_validation {
            return Err(Error::InvalidConfig(
                "dnssec_trust_anchor_file needs dnssec_validation = true",
            ));
        }
        if self.remote_perspective.is_some() && !self.perspectives.is_empty() {
            return Err(Error::InvalidConfig(
                "a remote perspective asks no perspectives: set remote_perspective or perspectives, not both",
            ));
        }
        if let Some(p) = &self.remote_perspective
            && (p.name.trim().is_empty() || p.rir.trim().is_empty())
        {
            return Err(Error::InvalidConfig(
                "remote_perspective needs a name and an rir",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for p in &self.perspectives {
            if p.name.trim().is_empty() || p.rir.trim().is_empty() {
                return Err(Error::InvalidConfig(
                    "every perspectives entry needs a name and an rir",
                ));
            }
            if !names.insert(p.name.as_str()) {
                return Err(Error::InvalidConfig("perspective names must be unique"));
            }
            match (&p.address, &p.server_name) {
                (PerspectiveAddress::Tcp(_), None) => {
                    return Err(Error::InvalidConfig(
                        "a perspective at a tcp: address needs server_name",
                    ));
                }
                (PerspectiveAddress::Tcp(_), Some(name))
                    if rustls::pki_types::ServerName::try_from(name.as_str()).is_err() =>
                {
                    return Err(Error::InvalidConfig(
                        "perspectives server_name must be a DNS name or an IP address",
                    ));
                }
                (PerspectiveAddress::Tcp(_), Some(_)) if self.perspective_client.is_none() => {
                    return Err(Error::InvalidConfig(
                        "a perspective at a tcp: address needs [perspective_client] (ca_file, cert_file, key_file)",
                    ));
                }
                (PerspectiveAddress::Unix(_), Some(_)) => {
                    return Err(Error::InvalidConfig(
                        "server_name is for perspectives at tcp: addresses",
                    ));
                }
                _ => {}
            }
        }
        if self.perspective_client.is_some()
            && !self
                .perspectives
                .iter()
                .any(|p| matches!(p.address, PerspectiveAddress::Tcp(_)))
        {
            return Err(Error::InvalidConfig(
                "[perspective_client] is for perspectives at tcp: addresses; none is configured",
            ));
        }
        if let Some(tcp) = &self.tcp {
            if self.remote_perspective.is_none() {
                return Err(Error::InvalidConfig(
                    "[tcp] is for a remote perspective (primaries are asked over their Unix socket)",
                ));
            }
            tcp.check()
                .map_err(|(field, problem)| Error::InvalidValue { field, problem })?;
        }
        if self.perspective_timeout_ms == 0 {
            return Err(Error::InvalidConfig("timeouts must be positive"));
        }
        // The frontend gives a validation 40 s (`deadline::VALIDATOR_CALL`);
        // the primary must have decided well before.
        if self.perspective_timeout_ms > MAX_PERSPECTIVE_TIMEOUT_MS {
            return Err(Error::InvalidConfig(
                "perspective_timeout_ms must be at most 35000 (the frontend waits 40 s for a validation)",
            ));
        }
        if let Some(issuer) = &self.dns_persist_issuer_domain {
            if !crate::caa::is_issuer_domain_name(issuer.trim_end_matches('.')) {
                return Err(Error::InvalidConfig(
                    "dns_persist_issuer_domain must be a domain name (letters, digits, hyphens, dots)",
                ));
            }
            // draft-ietf-acme-dns-persist-02 §3.2: a CA that advertises
            // caaIdentities offers no issuer domain name outside them.
            let norm = |d: &str| d.trim_end_matches('.').to_ascii_lowercase();
            if !self.caa_identities.is_empty()
                && !self.caa_identities.iter().any(|d| norm(d) == norm(issuer))
            {
                return Err(Error::InvalidConfig(
                    "dns_persist_issuer_domain must be one of caa_identities when both are set",
                ));
            }
        }
        Ok(())
    }

    /// [`Config::connect_timeout_ms`] as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// [`Config::probe_timeout_ms`] as a duration.
    pub fn probe_timeout(&self) -> Duration {
        Duration::from_millis(self.probe_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_example_parses() {
        let c = Config::parse(
            r#"
            socket_path              = "akamu-data/validator.sock"
            socket_mode              = 0o660
            allowed_uids             = [1000]
            http_validation_port     = 5002
            tls_alpn_validation_port = 5001
            dns_resolver_addr        = "127.0.0.1:8053"
            allow_private_targets    = true
            connect_timeout_ms       = 1000
            probe_timeout_ms         = 3000
            "#,
        )
        .expect("parse");
        assert_eq!(c.socket_mode, 0o660);
        assert_eq!(c.http_validation_port, 5002);
        assert_eq!(
            c.dns_resolver_addr,
            Some("127.0.0.1:8053".parse().expect("addr"))
        );
        assert!(c.allow_private_targets);
    }

    #[test]
    fn perspectives_parse_and_are_checked() {
        let base = "socket_path = \"v.sock\"\nallowed_uids = [7]\n";
        let entry = |name: &str, address: &str| {
            format!(
                "[[perspectives]]\nname = \"{name}\"\nrir = \"ARIN\"\naddress = \"{address}\"\n"
            )
        };
        let c = Config::parse(&format!(
            "{base}perspective_timeout_ms = 900\n{}{}",
            entry("p1", "unix:/run/p1.sock"),
            entry("p2", "unix:/run/p2.sock")
        ))
        .expect("parse");
        assert_eq!(c.perspectives.len(), 2);
        assert_eq!(
            c.perspectives[0].address,
            PerspectiveAddress::Unix(PathBuf::from("/run/p1.sock"))
        );
        assert_eq!(c.perspectives[1].address.to_string(), "unix:/run/p2.sock");
        assert_eq!(c.perspective_timeout_ms, 900);
        let me = "[remote_perspective]\nname = \"p1\"\nrir = \"RIPE\"\n";
        let c = Config::parse(&format!("{base}{me}")).expect("perspective");
        assert_eq!(c.remote_perspective.expect("set").rir, "RIPE");

        // TCP with mutual TLS, both sides.
        let client = "[perspective_client]\nca_file = \"/c/ca.pem\"\ncert_file = \"/c/p.crt\"\n\
                      key_file = \"/c/p.key\"\n";
        let tcp = "[tcp]\nlisten_addr = \"0.0.0.0:4710\"\ncert_file = \"/c/s.crt\"\n\
                   key_file = \"/c/s.key\"\nclient_ca_file = \"/c/ca.pem\"\n\
                   client_names = [\"primary.ca.internal\"]\n";
        let c = Config::parse(&format!("{base}{me}{tcp}")).expect("a perspective on TCP");
        let t = c.tcp.expect("[tcp]");
        assert_eq!(t.listen_addr.port(), 4710);
        assert_eq!(t.client_names, ["primary.ca.internal"]);
        let c = Config::parse(&format!(
            "{base}{client}{}server_name = \"p1.ca.internal\"\n{}server_name = \"10.0.0.2\"\n{}\
             server_name = \"p3.ca.internal\"\n{}",
            entry("p1", "tcp:p1.ca.internal:4710"),
            entry("p2", "tcp:10.0.0.2:4710"),
            entry("p3", "tcp:[2001:db8::3]:4710"),
            entry("p4", "unix:/run/p4.sock"),
        ))
        .expect("a primary asking over TCP");
        assert_eq!(
            c.perspectives[0].address,
            PerspectiveAddress::Tcp("p1.ca.internal:4710".into())
        );
        assert_eq!(
            c.perspectives[2].address.to_string(),
            "tcp:[2001:db8::3]:4710"
        );
        assert_eq!(c.perspectives[1].server_name.as_deref(), Some("10.0.0.2"));
        assert_eq!(
            c.perspective_client.expect("client").cert_file,
            PathBuf::from("/c/p.crt")
        );

        for (what, text) in [
            (
                "relative path",
                format!("{base}{}", entry("p1", "unix:run/p1.sock")),
            ),
            (
                "tcp without server_name",
                format!("{base}{client}{}", entry("p1", "tcp:10.0.0.1:4000")),
            ),
            (
                "tcp without [perspective_client]",
                format!(
                    "{base}{}server_name = \"p1.ca.internal\"\n",
                    entry("p1", "tcp:10.0.0.1:4000")
                ),
            ),
            (
                "server_name with unix",
                format!(
                    "{base}{}server_name = \"p1.ca.internal\"\n",
                    entry("p1", "unix:/a")
                ),
            ),
            (
                "bad server_name",
                format!(
                    "{base}{client}{}server_name = \"a b\"\n",
                    entry("p1", "tcp:h:1")
                ),
            ),
            (
                "[perspective_client] with no tcp: perspective",
                format!("{base}{client}{}", entry("p1", "unix:/a")),
            ),
            (
                "tcp without port",
                format!("{base}{}", entry("p1", "tcp:10.0.0.1")),
            ),
            (
                "tcp port 0",
                format!("{base}{}", entry("p1", "tcp:10.0.0.1:0")),
            ),
            (
                "tcp bad host",
                format!("{base}{}", entry("p1", "tcp:a b:4000")),
            ),
            (
                "tcp unbracketed v6",
                format!("{base}{}", entry("p1", "tcp:::1:4000")),
            ),
            ("[tcp] on a primary", format!("{base}{tcp}")),
            (
                "[tcp] without client_names",
                format!(
                    "{base}{me}{}",
                    tcp.replace(
                        "client_names = [\"primary.ca.internal\"]",
                        "client_names = []"
                    )
                ),
            ),
            (
                "[tcp] with a wildcard client name",
                format!(
                    "{base}{me}{}",
                    tcp.replace("primary.ca.internal", "*.ca.internal")
                ),
            ),
            (
                "[tcp] unknown key",
                format!("{base}{me}{tcp}allowed_uids = [1]\n"),
            ),
            (
                "no scheme",
                format!("{base}{}", entry("p1", "/run/p1.sock")),
            ),
            (
                "duplicate name",
                format!("{base}{}{}", entry("p1", "unix:/a"), entry("p1", "unix:/b")),
            ),
            (
                "both roles",
                format!("{base}{}{me}", entry("p2", "unix:/a")),
            ),
            (
                "empty rir",
                format!("{base}[remote_perspective]\nname = \"p1\"\nrir = \" \"\n"),
            ),
            (
                "timeout beyond the frontend's deadline",
                format!("{base}perspective_timeout_ms = 60000\n"),
            ),
            (
                "unknown key",
                format!("{base}{}weight = 2\n", entry("p1", "unix:/a")),
            ),
        ] {
            assert!(Config::parse(&text).is_err(), "{what}");
        }
    }

    #[test]
    fn tcp_errors_name_the_key() {
        let base = "socket_path = \"v\"\nallowed_uids = [1]\n\
                    [remote_perspective]\nname = \"p1\"\nrir = \"ARIN\"\n\
                    [tcp]\ncert_file = \"/s.crt\"\nkey_file = \"/s.key\"\n\
                    client_ca_file = \"/ca.pem\"\n";
        for (rest, key) in [
            (
                "listen_addr = \"127.0.0.1:4710\"\nclient_names = []\n",
                "tcp.client_names",
            ),
            (
                "listen_addr = \"127.0.0.1:0\"\nclient_names = [\"p.example\"]\n",
                "tcp.listen_addr",
            ),
        ] {
            let err = Config::parse(&format!("{base}{rest}")).expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
        let err = Config::parse(
            "socket_path = \"v\"\nallowed_uids = [1]\n[[perspectives]]\nname = \"p\"\n\
             rir = \"ARIN\"\naddress = \"tcp:[::1:4710\"\n",
        )
        .expect_err("unclosed bracket");
        assert!(err.to_string().contains("tcp:host:port"), "{err}");
    }

    #[test]
    fn defaults_match_new() {
        let c = Config::parse("socket_path = \"v.sock\"\nallowed_uids = [7]\n").expect("parse");
        assert_eq!(c, Config::new("v.sock", vec![7]));
    }

    #[test]
    fn statement_max_age_is_positive_and_defaults_to_a_day() {
        let base = "socket_path = \"v\"\nallowed_uids = [1]\n";
        assert_eq!(
            Config::parse(base).expect("parse").statement_max_age_secs,
            86_400
        );
        let c = Config::parse(&format!("{base}statement_max_age_secs = 600\n")).expect("parse");
        assert_eq!(c.statement_max_age_secs, 600);
        assert!(Config::parse(&format!("{base}statement_max_age_secs = 0\n")).is_err());
    }

    #[test]
    fn persist_settings() {
        let base = "socket_path = \"/run/v.sock\"\nallowed_uids = [1]\n";
        let c = Config::parse(base).expect("defaults");
        assert_eq!(
            c.dns_persist_form,
            shared_proto::validator::PersistForm::Draft01
        );
        let c = Config::parse(&format!(
            "{base}dns_persist_issuer_domain = \"ca.example\"\ndns_persist_form = \"draft-02\"\n"
        ))
        .expect("draft-02");
        assert_eq!(
            c.dns_persist_form,
            shared_proto::validator::PersistForm::Draft02
        );
        assert!(Config::parse(&format!("{base}dns_persist_form = \"draft-03\"\n")).is_err());
        // The issuer must be among the CAA identities when both are set.
        assert!(
            Config::parse(&format!(
                "{base}dns_persist_issuer_domain = \"ca.example\"\ncaa_identities = [\"other.example\"]\n"
            ))
            .is_err()
        );
        assert!(
            Config::parse(&format!(
                "{base}dns_persist_issuer_domain = \"CA.example.\"\ncaa_identities = [\"ca.example\"]\n"
            ))
            .is_ok()
        );
    }

    #[test]
    fn caa_identities_are_domain_names() {
        let base = "socket_path = \"v\"\nallowed_uids = [1]\n";
        let c = Config::parse(&format!("{base}caa_identities = [\"Acme.Example.com\"]\n"))
            .expect("parse");
        assert_eq!(c.caa_identities, ["Acme.Example.com"]);
        for bad in [
            "\"\"",
            "\"a b\"",
            "\"acme.example.com;x\"",
            "\"-a.example\"",
        ] {
            assert!(
                Config::parse(&format!("{base}caa_identities = [{bad}]\n")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_unknown_keys_and_empty_allow_list() {
        assert!(Config::parse("socket_path = \"v\"\nallowed_uids = [1]\nbogus = 1\n").is_err());
        assert!(Config::parse("socket_path = \"v\"\nallowed_uids = []\n").is_err());
        assert!(Config::parse("allowed_uids = [1]\n").is_err());
    }

    /// A remote perspective may listen on TCP only; nothing else may go
    /// without its socket.
    #[test]
    fn a_perspective_may_listen_on_tcp_only() {
        let me = "[remote_perspective]\nname = \"p1\"\nrir = \"ARIN\"\n";
        let tcp = "[tcp]\nlisten_addr = \"0.0.0.0:4710\"\ncert_file = \"/s.crt\"\n\
                   key_file = \"/s.key\"\nclient_ca_file = \"/ca.pem\"\n\
                   client_names = [\"primary.ca.internal\"]\n";
        let key = "statement_key_file = \"/var/lib/p1/statement.key\"\n";
        let c = Config::parse(&format!("{key}{me}{tcp}")).expect("TCP only");
        assert_eq!(c.socket_path, None);
        assert_eq!(
            c.statement_key_path(),
            PathBuf::from("/var/lib/p1/statement.key")
        );
        for (what, text) in [
            ("no statement_key_file", format!("{me}{tcp}")),
            (
                "allowed_uids without a socket",
                format!("allowed_uids = [1]\n{key}{me}{tcp}"),
            ),
            ("no socket and no [tcp]", format!("{key}{me}")),
        ] {
            assert!(Config::parse(&text).is_err(), "{what}");
        }
    }
}
