//! `acme-frontend`: the ACME server (RFC 8555) of Akāmu.
//!
//! It accepts ACME over HTTP(S), verifies JWS, keeps protocol state in SQLite
//! and calls `validator-worker` and `ca-signer` over Unix sockets. It holds no
//! CA key and opens no connection to applicant hosts. In development it is
//! also the launcher that starts the other two processes.
//!
//! Request path: `http::server` → `http::router` → `handlers::*` (parse →
//! `auth` → `protocol` → `store` → respond) → `error` maps failures to
//! problem documents in one place.

pub mod admin;
pub mod auth;
pub mod ca;
pub mod config;
pub mod crl;
pub mod error;
pub mod fault;
pub mod handlers;
pub mod http;
pub mod jobs;
pub mod launcher;
pub mod leader;
pub mod metrics;
pub mod nonces;
pub mod protocol;
pub mod rate_limits;
pub mod rpc;
pub mod store;
pub mod tls;
pub mod urls;
pub mod validator_facts;

use std::sync::Arc;

pub use config::Config;

/// Everything a request handler needs, shared by all connections.
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The database.
    pub store: store::Store,
    /// Nonces: in memory, or through the database (`[fleet] enabled`).
    pub nonces: nonces::Nonces,
    /// Whether this front end runs the background jobs (the jobs lease).
    pub leader: leader::Leadership,
    /// The signer and the validator.
    pub peers: rpc::Peers,
    /// URL construction.
    pub urls: urls::Urls,
    /// Challenges whose probe is running in this process.
    pub probes_in_flight: Arc<jobs::InFlight>,
    /// Orders whose issuance is running in this process.
    pub issuance_in_flight: Arc<jobs::InFlight>,
    /// What the CA is, as the signer last said.
    pub ca: ca::CaFacts,
    /// What the validator enforces, as it last said.
    pub validator_facts: validator_facts::ValidatorFacts,
    /// The CRL being served.
    pub crl: crl::CrlCache,
    /// Woken after each revocation so the CRL follows at once.
    pub revocations: tokio::sync::Notify,
    /// Parsed account keys by thumbprint (see `auth`).
    pub key_cache: auth::KeyCache,
    /// Account rows by id (see `auth`).
    pub accounts: auth::AccountCache,
    /// `[rate_limits]`, resolved.
    pub rate_limits: Arc<rate_limits::Policy>,
    /// `[server] trusted_proxies`, parsed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl App {
    /// The optional challenge types on offer: dns-account-01 as configured,
    /// dns-persist-01 when the validator has an issuer domain.
    pub fn offers(&self) -> protocol::identifier::Offers {
        protocol::identifier::Offers {
            dns_account_01: self.config.server.dns_account_01_enabled,
            dns_persist_01: self.persist_issuer().is_some(),
            tor: self
                .validator_facts
                .cached()
                .is_some_and(|i| i.tor_connectivity),
        }
    }

    /// dns-persist-01's issuer domain and record form, as the validator
    /// last told them.
    pub fn persist_issuer(&self) -> Option<(String, shared_proto::validator::PersistForm)> {
        self.validator_facts.cached().and_then(|i| {
            i.dns_persist_issuer_domain
                .clone()
                .map(|d| (d, i.dns_persist_form))
        })
    }

    /// Builds the shared state: opens the database and prepares the links.
    pub fn new(config: Config) -> Result<Arc<Self>, error::Error> {
        let store = store::Store::open_at(&config.database())?;
        let keys = config.eab_keys();
        store.run_blocking(move |c| store::eab::seed(c, &keys, now()))?;
        let signer = match config.signer_endpoint() {
            config::SignerEndpoint::Unix(path) => rpc::Endpoint::Unix(path),
            config::SignerEndpoint::Tls { address, files } => rpc::Endpoint::Tls {
                tls: shared_proto::tls::ClientTls::load(&files)
                    .map_err(|e| error::Error::Startup(format!("[signer] TLS: {e}")))?,
                address,
            },
        };
        let peers = rpc::Peers::new(signer, config.validator_socket());
        let urls = urls::Urls::new(&config.base_url);
        let rate_limits = Arc::new(
            rate_limits::Policy::from_config(&config.rate_limits)
                .map_err(|e| error::Error::Startup(format!("[rate_limits] {e}")))?,
        );
        let trusted_proxies = config
            .trusted_proxies()
            .map_err(|e| error::Error::Startup(e.to_string()))?;
        let nonces = if config.fleet.enabled {
            let mut fresh = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rng(), &mut fresh);
            let key = store.run_blocking(move |c| store::fleet::nonce_key(c, &fresh))?;
            nonces::Nonces::Database(nonces::SharedNonces::new(key))
        } else {
            nonces::Nonces::Memory(nonces::NonceBook::default())
        };
        let leader = leader::Leadership::new(
            config.fleet.enabled,
            config.instance_name(),
            std::time::Duration::from_secs(u64::from(config.fleet.lease_secs)),
        );
        Ok(Arc::new(Self {
            config,
            store,
            nonces,
            leader,
            peers,
            urls,
            probes_in_flight: Arc::default(),
            issuance_in_flight: Arc::default(),
            ca: ca::CaFacts::default(),
            validator_facts: validator_facts::ValidatorFacts::default(),
            crl: crl::CrlCache::default(),
            revocations: tokio::sync::Notify::new(),
            key_cache: auth::key_cache(),
            accounts: auth::AccountCache::default(),
            rate_limits,
            trusted_proxies,
        }))
    }
}

/// The current time in Unix seconds. The protocol core never calls this; it
/// takes `now` as an argument.
#[allow(clippy::disallowed_methods)]
pub fn now() -> i64 {
    daemon_kit::unix_now()
}

/// The current time in Unix milliseconds (rate-limit buckets).
pub fn now_ms() -> i64 {
    daemon_kit::unix_now_ms()
}

/// Random base64url id of `bytes` random bytes.
pub fn random_id(bytes: usize) -> String {
    use rand::RngCore;
    let mut raw = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut raw);
    akamu_jose::b64(&raw)
}
