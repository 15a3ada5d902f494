//! The sections of the frontend's configuration, one struct per TOML
//! table, each field with its default function.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

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
    pub key_type: akamu_jose::KeyType,
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

/// `[tls]`: how the frontend speaks TLS to ACME clients (operations guide,
/// "TLS modes").
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// Serve HTTPS. Default false (plain HTTP behind a TLS-terminating
    /// proxy); the embedded default turns it on.
    #[serde(default)]
    pub enabled: bool,
    /// Certificate chain PEM, leaf first. Default `<state_dir>/server.crt`.
    pub cert_file: Option<PathBuf>,
    /// Private key PEM (PKCS#8, SEC1 or PKCS#1, unencrypted). Default
    /// `<state_dir>/server.key`.
    pub key_file: Option<PathBuf>,
    /// TLS versions offered: `"TLSv1.2"`, `"TLSv1.3"`. Default both.
    #[serde(default = "default_tls_protocols")]
    pub protocols: Vec<String>,
    /// Name the launcher asks the signer to certify (with `127.0.0.1`) when
    /// the files are missing. Default `localhost`.
    #[serde(default = "default_server_name")]
    pub server_name: String,
    /// Key type of a server certificate issued by our own CA (mode 2):
    /// `ec:P-256`, `ec:P-384`, `ec:P-521`, `rsa:2048`, `rsa:3072`,
    /// `rsa:4096` or `ed25519`. Default `ec:P-256`.
    #[serde(default = "default_key_type")]
    pub bootstrap_key_type: akamu_jose::KeyType,
    /// `[tls.client_auth]`: mutual TLS. Default none (no client
    /// certificate asked for).
    pub client_auth: Option<ClientAuth>,
}

impl Default for Tls {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: None,
            key_file: None,
            protocols: default_tls_protocols(),
            server_name: default_server_name(),
            bootstrap_key_type: default_key_type(),
            client_auth: None,
        }
    }
}

/// `[tls.client_auth]`: client certificates, verified with rustls-webpki
/// against `ca_files`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuth {
    /// Refuse a client that presents no certificate (at the handshake).
    /// Default false: the certificate is asked for, and checked when sent.
    #[serde(default)]
    pub required: bool,
    /// PEM files of the trusted client CAs (each may hold several
    /// certificates). Required, at least one.
    #[serde(default)]
    pub ca_files: Vec<PathBuf>,
    /// `webpki` (the leaf must carry a subjectAltName and the clientAuth
    /// extended key usage) or `rfc5280` (the extended key usage is checked
    /// only when present, no SAN needed). Default `webpki`.
    #[serde(default)]
    pub profile: ClientAuthProfile,
    /// Post-quantum client certificate chains: ML-DSA-44/65/87 signatures
    /// in the chain and in the TLS 1.3 CertificateVerify (RFC 9881, code
    /// points 0x0904–0x0906) are accepted only when true. Default false.
    #[serde(default)]
    pub allow_post_quantum: bool,
    /// Most certificates above the leaf in the verified chain, trust
    /// anchor included (the leaf is not counted). Default 8 (webpki itself
    /// stops at 6 intermediates, i.e. 7).
    #[serde(default = "default_max_chain_depth")]
    pub max_chain_depth: u32,
    /// Smallest RSA modulus, in bits, of any RSA key in the client's chain
    /// (2048 to 16384). Default 2048.
    #[serde(default = "default_minimum_rsa_modulus")]
    pub minimum_rsa_modulus: u32,
}

/// How strictly a client certificate is profiled (`[tls.client_auth] profile`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuthProfile {
    /// The Web PKI profile: clientAuth EKU and a SAN are required.
    #[default]
    Webpki,
    /// RFC 5280: the EKU is checked only when present; no SAN needed.
    Rfc5280,
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
    /// Most identifiers one new-order may carry (1 to 100, the signer's
    /// own ceiling). Default 100.
    #[serde(default = "default_max_identifiers_per_order")]
    pub max_identifiers_per_order: usize,
    /// Reverse proxies (CIDRs or addresses) whose `X-Forwarded-For` is
    /// believed: when the TCP peer is one of them, the client address is
    /// the rightmost `X-Forwarded-For` entry that is not itself a trusted
    /// proxy. Default none (the TCP peer is the client).
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
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
    /// Days an expired order or authorization (with its challenges) is
    /// kept before the background clean-up deletes it; certificates, their
    /// orders and revocations are never deleted. 1 to 3650. Default 30.
    #[serde(default = "default_retention_days")]
    pub retention_days: u32,
    /// `Retry-After` of renewal-info answers (RFC 9773 §4.3), seconds,
    /// before a jitter of up to a tenth is added. 60 to 604800. Default
    /// 21600.
    #[serde(default = "default_ari_retry_after_secs")]
    pub ari_retry_after_secs: u32,
    /// STAR (RFC 8739): the shortest `lifetime` an auto-renewal order may
    /// ask for, seconds. Absent (the default): STAR is off (not advertised,
    /// `auto-renewal` refused, no reissue task). At least 1.
    pub star_min_lifetime_secs: Option<i64>,
    /// STAR: the longest span from an order's creation to its `end-date`,
    /// seconds. Default: no limit beyond the CA's own notAfter.
    pub star_max_duration_secs: Option<i64>,
    /// STAR: whether an order may ask for `allow-certificate-get` (its
    /// rolling certificate fetched with an unauthenticated GET). Default
    /// true.
    #[serde(default = "default_true")]
    pub star_allow_certificate_get: bool,
    /// RFC 9444: whether authorizations may cover subdomains
    /// (`meta.subdomainAuthAllowed`, `subdomainAuthAllowed` in new-authz,
    /// `ancestorDomain` in new-order). Default false.
    #[serde(default)]
    pub allow_subdomain_auth: bool,
    /// Whether DNS authorizations also offer dns-account-01
    /// (draft-ietf-acme-dns-account-label). Default false.
    #[serde(default)]
    pub dns_account_01_enabled: bool,
    /// Terms of service URL for the directory. Default none.
    pub terms_of_service_url: Option<String>,
    /// Operator website for the directory. Default none.
    pub website_url: Option<String>,
    /// The CA's domain names for CAA (RFC 8659), e.g.
    /// `["acme.example.com"]`: the launcher's input for the validator,
    /// which owns them (it checks CAA against them and tells the frontend
    /// for the directory's `meta.caaIdentities`). Refused when the launcher
    /// is off: set `caa_identities` in the validator's configuration.
    /// Default none (no CAA check).
    #[serde(default)]
    pub caa_identities: Vec<String>,
    /// dns-persist-01's issuer domain (the reference's key): the launcher's
    /// input for the validator, which owns it (it checks records against
    /// it and tells the frontend, which then offers dns-persist-01).
    /// Refused when the launcher is off: set `dns_persist_issuer_domain`
    /// in the validator's configuration. Default none (not offered).
    #[serde(default)]
    pub dns_persist_issuer_domain: Option<String>,
    /// dns-persist-01's record form, `"draft-01"` (the reference's) or
    /// `"draft-02"` (draft-ietf-acme-dns-persist-02's hashed account
    /// URI): the launcher's input for the validator, which owns it.
    /// Refused when the launcher is off: set `dns_persist_form` in the
    /// validator's configuration. Default `"draft-01"`.
    #[serde(default)]
    pub dns_persist_form: Option<shared_proto::validator::PersistForm>,
    /// dns-persist-01, draft-02 form: how long after a key-change a
    /// record made with the replaced key keeps validating (the directory's
    /// `meta.keyRotationPeriod`), seconds. Default none: such records keep
    /// validating until a revocation with a certificate key prunes them.
    #[serde(default)]
    pub dns_persist_key_rotation_secs: Option<u32>,
    /// RFC 9799 §4 (the reference's key): offer http-01 and tls-alpn-01
    /// for `.onion` names, validated through a Tor SOCKS5 proxy. The
    /// launcher's input for the validator, which owns the proxy (it writes
    /// `tor_socks_proxy` into the validator's configuration, and the
    /// frontend offers the methods once the validator says it has one).
    /// `true` is refused when the launcher is off: set `tor_socks_proxy`
    /// in the validator's configuration. Default false (onion-csr-01 only).
    #[serde(default)]
    pub tor_connectivity_enabled: bool,
    /// The Tor SOCKS5 proxy for `tor_connectivity_enabled`. Default
    /// `127.0.0.1:9050` (Tor's). Launcher input like it.
    pub tor_socks_proxy: Option<SocketAddr>,
    /// At finalize, a CAA check older than this many hours is made again
    /// (the validator re-checks and signs a fresh statement) before the
    /// signer is asked; fractions are allowed (`0.01` is 36 s, `0` re-checks
    /// at every finalize). The signer's `[policy] caa_max_age_secs` (from
    /// `ca_info`) less a minute caps it. Default 8 (the Baseline
    /// Requirements' CAA reuse limit).
    #[serde(default = "default_caa_recheck_hours")]
    pub caa_recheck_hours: f64,
    /// Descriptions (or documentation URLs) of the signer's profiles for
    /// the directory's `meta.profiles`, by name. The signer's profiles are
    /// advertised either way; a name the signer does not offer is not.
    /// Default none.
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, String>,
    /// Require External Account Binding on new accounts. Default false.
    #[serde(default)]
    pub external_account_required: bool,
    /// EAB keys: key id → base64url HMAC key (at least 16 bytes). Seeded
    /// into the database at start with insert-or-ignore. Default none.
    #[serde(default)]
    pub eab_keys: std::collections::BTreeMap<String, String>,
    /// The top-level `listen_addr`, spelled inside `[server]` as in the
    /// reference's annotated TLS example; only one of the two may be set.
    pub listen_addr: Option<SocketAddr>,
    /// The top-level `base_url`, spelled inside `[server]`; only one of the
    /// two may be set.
    pub base_url: Option<String>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            http_validation_port: default_http_port(),
            tls_alpn_validation_port: default_tls_alpn_port(),
            dns_resolver_addr: None,
            allow_private_targets: false,
            max_body_bytes: default_max_body_bytes(),
            max_identifiers_per_order: default_max_identifiers_per_order(),
            trusted_proxies: Vec::new(),
            challenge_wait_ms: default_challenge_wait_ms(),
            idle_timeout_secs: default_idle_timeout_secs(),
            max_connections: default_max_connections(),
            order_expiry_secs: default_expiry_secs(),
            authz_expiry_secs: default_expiry_secs(),
            retention_days: default_retention_days(),
            ari_retry_after_secs: default_ari_retry_after_secs(),
            star_min_lifetime_secs: None,
            star_max_duration_secs: None,
            star_allow_certificate_get: true,
            allow_subdomain_auth: false,
            dns_account_01_enabled: false,
            terms_of_service_url: None,
            website_url: None,
            caa_identities: Vec::new(),
            dns_persist_issuer_domain: None,
            dns_persist_form: None,
            dns_persist_key_rotation_secs: None,
            tor_connectivity_enabled: false,
            tor_socks_proxy: None,
            caa_recheck_hours: default_caa_recheck_hours(),
            profiles: Default::default(),
            external_account_required: false,
            eab_keys: Default::default(),
            listen_addr: None,
            base_url: None,
        }
    }
}

/// `[rate_limits]`: one table per limit; a limit without a table is off.
/// See `docs/src/operations.md` ("Rate limits").
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// New accounts per client IP address. Default off.
    pub new_accounts_per_ip: Option<BucketLimit>,
    /// New accounts per client IPv6 /48 (IPv4 clients are not counted
    /// here). Default off.
    pub new_accounts_per_ipv6_range: Option<BucketLimit>,
    /// New orders per account. Default off.
    pub new_orders_per_account: Option<BucketLimit>,
    /// Failed validations per account and identifier; a failure past the
    /// limit pauses the pair until `akamu-cli admin unpause`. Default off.
    pub failed_validations_per_account_identifier: Option<BucketLimit>,
    /// Certificates per registered domain (public suffix + 1), checked at
    /// new-order, counted at issuance. Default off.
    pub certificates_per_registered_domain: Option<BucketLimit>,
    /// Orders of an account not yet finalized (pending or ready, not
    /// expired), a count. Default off.
    pub pending_orders_per_account: Option<CountLimit>,
    /// Pending, unexpired authorizations of an account, a count. Default
    /// off.
    pub pending_authorizations_per_account: Option<CountLimit>,
    /// `[[rate_limits.overrides]]`: other values for one account or one
    /// IP range. Default none.
    #[serde(default)]
    pub overrides: Vec<LimitOverride>,
}

/// A GCRA bucket: `count` requests per `period_secs`, at most `burst` at
/// once.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BucketLimit {
    /// Requests per period (at least 1).
    pub count: u64,
    /// The period in seconds (at least 1).
    pub period_secs: u64,
    /// Requests allowed at once from a full bucket (at least 1).
    pub burst: u64,
}

/// A count limit: at most `count` objects at a time.
#[derive(Clone, Copy, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CountLimit {
    /// The most objects (at least 1).
    pub count: u64,
}

/// `[[rate_limits.overrides]]`: a limit's values for one account or one
/// IP range.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverride {
    /// The limit (a `[rate_limits]` table name).
    pub limit: String,
    /// The account, by id or URL (limits kept per account).
    pub account: Option<String>,
    /// A CIDR or an address (limits kept per client IP).
    pub ip: Option<String>,
    /// As the limit's `count`.
    pub count: u64,
    /// As the limit's `period_secs` (bucket limits only).
    pub period_secs: Option<u64>,
    /// As the limit's `burst` (bucket limits only).
    pub burst: Option<u64>,
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

/// `[metrics]`: the Prometheus listener, off unless `listen_addr` is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Address of the plain-HTTP listener serving `GET /metrics` (for
    /// example `127.0.0.1:9100`). Default: none, nothing listens.
    pub listen_addr: Option<SocketAddr>,
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

pub(super) fn default_listen_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 14000))
}
pub(super) fn default_base_url() -> String {
    "https://localhost:14000".into()
}
pub(super) fn default_state_dir() -> PathBuf {
    PathBuf::from("akamu-data")
}
fn default_key_type() -> akamu_jose::KeyType {
    akamu_jose::KeyType::EcP256
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
fn default_tls_protocols() -> Vec<String> {
    vec!["TLSv1.2".into(), "TLSv1.3".into()]
}
fn default_max_chain_depth() -> u32 {
    8
}
fn default_minimum_rsa_modulus() -> u32 {
    2048
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
fn default_max_identifiers_per_order() -> usize {
    100
}
fn default_caa_recheck_hours() -> f64 {
    8.0
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
fn default_ari_retry_after_secs() -> u32 {
    21600
}

fn default_retention_days() -> u32 {
    30
}
fn default_true() -> bool {
    true
}
