//! The load generator: `clients` tasks, each with its own instant-acme
//! account and HTTPS connection pool, taking issuance tickets from a shared
//! counter until the phase's tickets are gone (or the deadline passed).
//!
//! One issuance is timed in four phases:
//! - `new_order`: the newOrder POST (instant-acme first fetches a nonce);
//! - `challenge`: fetch the authorization, publish the response on the
//!   bench's responder, POST the challenge, poll the order until `ready`;
//! - `finalize`: POST the CSR, poll the order until `valid`;
//! - `download`: POST-as-GET the certificate chain.
//!
//! Polls use adaptive backoff: 1 ms, doubling after every poll that finds
//! the order unchanged, capped at `--poll-ms`; `Retry-After` is ignored, as
//! in the reference's bench. Subscriber keys and CSRs for a phase are made
//! before the phase's clock starts.

mod certs;
mod client;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akamu_jose::KeyType;
use anyhow::Result;
use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus,
};

pub use self::certs::{Csr, CsrSlot, make_csr, make_csrs, verify_chain};
pub use self::client::{create_accounts, http_client};
use crate::options::ChallengeKind;
use crate::responders::Responders;

/// Most error messages kept as samples in the report.
const MAX_SAMPLES: usize = 8;

/// What every client needs to run issuances.
pub struct LoadConfig {
    /// ACME directory URL.
    pub directory: String,
    /// Challenge to answer.
    pub challenge: ChallengeKind,
    /// Subscriber key type.
    pub key_type: KeyType,
    /// Poll interval cap.
    pub poll_cap: Duration,
    /// Give up polling after this long.
    pub poll_timeout: Duration,
    /// Give up a whole issuance after this long.
    pub issuance_timeout: Duration,
    /// Check each certificate.
    pub verify_cert: bool,
    /// Random label making this run's names unique.
    pub run_tag: String,
    /// Order `*.<name>` instead of `<name>`.
    pub wildcard: bool,
    /// The CA's dns-persist-01 issuer domain (with that challenge).
    pub persist_issuer: Option<String>,
}

impl LoadConfig {
    /// The identifier (and certificate name) of issuance number `ticket`:
    /// its fresh name, with `*.` in front under `--wildcard`.
    pub fn order_name(&self, ticket: u64) -> String {
        let name = name_for(&self.run_tag, ticket);
        if self.wildcard {
            format!("*.{name}")
        } else {
            name
        }
    }
}

/// Durations of one successful issuance.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timings {
    /// newOrder.
    pub new_order: Duration,
    /// Challenge until the order is ready.
    pub challenge: Duration,
    /// Finalize until the order is valid.
    pub finalize: Duration,
    /// Certificate download.
    pub download: Duration,
}

impl Timings {
    /// Sum of the four phases.
    pub fn total(&self) -> Duration {
        self.new_order + self.challenge + self.finalize + self.download
    }
}

/// Results of one phase (warmup or measured).
#[derive(Debug, Default)]
pub struct PhaseResult {
    /// Successful issuances.
    pub ok: Vec<Timings>,
    /// Failures by error type (ACME problem type without its URN prefix,
    /// or `timeout`, `transport`, `client`, `verify`, `orderInvalid`).
    pub errors: BTreeMap<String, u64>,
    /// A few error messages.
    pub samples: Vec<String>,
    /// Certificates checked by `--verify-cert`.
    pub verified: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Issuances not started because the deadline passed.
    pub skipped: u64,
}

impl PhaseResult {
    fn record_error(&mut self, kind: String, message: String) {
        *self.errors.entry(kind).or_default() += 1;
        if self.samples.len() < MAX_SAMPLES {
            self.samples.push(message);
        }
    }

    /// Number of failed issuances.
    pub fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A failed issuance: its error type and message.
#[derive(Debug)]
pub struct FlowError {
    /// Error type for the report.
    pub kind: String,
    /// Human-readable detail.
    pub message: String,
}

impl FlowError {
    fn new(kind: &str, message: impl Into<String>) -> FlowError {
        FlowError {
            kind: kind.to_owned(),
            message: message.into(),
        }
    }

    fn acme(phase: &str, e: &instant_acme::Error) -> FlowError {
        FlowError::new(&error_kind(e), format!("{phase}: {e}"))
    }
}

/// The report's error type for an instant-acme error.
pub fn error_kind(e: &instant_acme::Error) -> String {
    match e {
        instant_acme::Error::Api(p) => problem_kind(p.r#type.as_deref()),
        instant_acme::Error::Timeout(_) => "timeout".into(),
        instant_acme::Error::Hyper(_)
        | instant_acme::Error::Http(_)
        | instant_acme::Error::Other(_) => "transport".into(),
        _ => "client".into(),
    }
}

/// `urn:ietf:params:acme:error:badNonce` → `badNonce`; other URNs are kept
/// whole; a problem without a type is `untyped`.
pub fn problem_kind(urn: Option<&str>) -> String {
    match urn {
        Some(t) => t
            .strip_prefix("urn:ietf:params:acme:error:")
            .unwrap_or(t)
            .to_owned(),
        None => "untyped".into(),
    }
}

/// The DNS name of issuance number `ticket`.
pub fn name_for(run_tag: &str, ticket: u64) -> String {
    format!(
        "i{ticket}.{run_tag}.{}",
        crate::responders::ZONE.trim_end_matches('.')
    )
}

/// Runs `count` issuances (tickets `first..first+count`) across the
/// accounts, each client taking the next ticket when it is done, with the
/// CSRs from [`make_csrs`] for the same tickets. Stops starting new
/// issuances at `deadline`.
pub async fn run_phase(
    cfg: Arc<LoadConfig>,
    responders: Arc<Responders>,
    accounts: &[Account],
    (first, count): (u64, u64),
    csrs: Vec<CsrSlot>,
    deadline: Instant,
) -> PhaseResult {
    let next = Arc::new(AtomicU64::new(first));
    let end = first + count;
    let result = Arc::new(Mutex::new(PhaseResult::default()));
    let csrs = Arc::new(csrs);
    let started = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    for account in accounts {
        let account = account.clone();
        let (cfg, responders, next, result, csrs) = (
            cfg.clone(),
            responders.clone(),
            next.clone(),
            result.clone(),
            csrs.clone(),
        );
        set.spawn(async move {
            loop {
                let ticket = next.fetch_add(1, Ordering::SeqCst);
                if ticket >= end {
                    break;
                }
                if Instant::now() >= deadline {
                    lock(&result).skipped += 1;
                    continue;
                }
                let name = cfg.order_name(ticket);
                let csr = usize::try_from(ticket - first)
                    .ok()
                    .and_then(|i| csrs.get(i))
                    .and_then(|slot| lock(slot).take());
                let outcome = match csr {
                    Some(Ok(csr)) => {
                        let flow = issue(&cfg, &responders, &account, &name, csr);
                        match tokio::time::timeout(cfg.issuance_timeout, flow).await {
                            Ok(outcome) => outcome,
                            Err(_) => Err(FlowError::new(
                                "timeout",
                                format!(
                                    "{name}: no certificate within {:?} (the server stopped answering?)",
                                    cfg.issuance_timeout
                                ),
                            )),
                        }
                    }
                    Some(Err(e)) => Err(FlowError::new("client", format!("CSR: {e}"))),
                    None => Err(FlowError::new("client", "no CSR for this ticket")),
                };
                let mut r = lock(&result);
                match outcome {
                    Ok((t, verified)) => {
                        r.ok.push(t);
                        r.verified += u64::from(verified);
                    }
                    Err(e) => r.record_error(e.kind, e.message),
                }
            }
        });
    }
    while set.join_next().await.is_some() {}
    let elapsed = started.elapsed();
    let mut r = std::mem::take(&mut *lock(&result));
    r.elapsed = elapsed;
    r
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One full issuance for `name` with a prepared CSR. Returns its timings
/// and whether the certificate was verified.
pub async fn issue(
    cfg: &LoadConfig,
    responders: &Responders,
    account: &Account,
    name: &str,
    csr: Csr,
) -> Result<(Timings, bool), FlowError> {
    let mut t = Timings::default();
    let t0 = Instant::now();
    let ids = [Identifier::Dns(name.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| FlowError::acme("new-order", &e))?;
    t.new_order = t0.elapsed();

    let t1 = Instant::now();
    let published = answer_challenges(cfg, responders, account, &mut order).await;
    let waited = match &published {
        Ok(_) => poll_until(cfg, &mut order, OrderStatus::Ready).await,
        Err(_) => Ok(()),
    };
    for p in published.as_deref().unwrap_or_default() {
        p.withdraw(responders);
    }
    published?;
    if let Err(e) = waited {
        return Err(explain_invalid(&mut order, e).await);
    }
    t.challenge = t1.elapsed();

    let t2 = Instant::now();
    order
        .finalize_csr(&csr.der)
        .await
        .map_err(|e| FlowError::acme("finalize", &e))?;
    poll_until(cfg, &mut order, OrderStatus::Valid).await?;
    t.finalize = t2.elapsed();

    let t3 = Instant::now();
    let chain = order
        .certificate()
        .await
        .map_err(|e| FlowError::acme("download", &e))?
        .ok_or_else(|| FlowError::new("client", "download: order not valid"))?;
    t.download = t3.elapsed();

    if cfg.verify_cert {
        verify_chain(&chain, name, &csr.key).map_err(|e| FlowError::new("verify", e))?;
    }
    Ok((t, cfg.verify_cert))
}

/// Something published on a responder, withdrawn after the challenge.
enum Published {
    Http(String),
    Dns(String),
    Tls(String),
    Persist(String),
}

impl Published {
    fn withdraw(&self, r: &Responders) {
        match self {
            Published::Http(token) => r.clear_http01(token),
            Published::Dns(name) => r.clear_dns01(name),
            Published::Tls(name) => r.clear_tls_alpn01(name),
            Published::Persist(name) => r.clear_persist(name),
        }
    }
}

async fn answer_challenges(
    cfg: &LoadConfig,
    responders: &Responders,
    account: &Account,
    order: &mut Order,
) -> Result<Vec<Published>, FlowError> {
    let ty = match cfg.challenge {
        ChallengeKind::Http01 => ChallengeType::Http01,
        ChallengeKind::Dns01 => ChallengeType::Dns01,
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
        ChallengeKind::DnsPersist01 => ChallengeType::Unknown(cfg.challenge.as_str().to_owned()),
    };
    let mut published = Vec::new();
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz.map_err(|e| FlowError::acme("authorization", &e))?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => {
                return Err(FlowError::new(
                    "client",
                    format!("authorization {} is {other:?}", authz.url()),
                ));
            }
        }
        let mut challenge = authz.challenge(ty.clone()).ok_or_else(|| {
            FlowError::new(
                "client",
                format!("the server offers no {} challenge", cfg.challenge),
            )
        })?;
        let key_auth = challenge.key_authorization();
        let ident = challenge.identifier().to_string();
        // The name the DNS records sit at: a wildcard's base name.
        let base = match challenge.identifier().identifier {
            Identifier::Dns(name) => name.clone(),
            other => {
                return Err(FlowError::new(
                    "client",
                    format!("the bench orders DNS names only, not {other:?}"),
                ));
            }
        };
        match cfg.challenge {
            ChallengeKind::Http01 => {
                responders.set_http01(&challenge.token, key_auth.as_str());
                published.push(Published::Http(challenge.token.clone()));
            }
            ChallengeKind::Dns01 => {
                responders
                    .set_dns01(&base, &key_auth.dns_value())
                    .map_err(|e| FlowError::new("client", format!("publish TXT: {e}")))?;
                published.push(Published::Dns(base));
            }
            ChallengeKind::DnsPersist01 => {
                // draft-ietf-acme-dns-persist-01's form, the one Akāmu
                // checks by default.
                let record = akamu_client::DnsPersist01Helper::txt_value(
                    cfg.persist_issuer.as_deref().unwrap_or_default(),
                    account.id(),
                    challenge.identifier().wildcard,
                    None,
                )
                .map_err(|e| FlowError::new("client", format!("persist record: {e}")))?;
                responders
                    .set_persist(&base, &record)
                    .map_err(|e| FlowError::new("client", format!("publish TXT: {e}")))?;
                published.push(Published::Persist(base));
            }
            ChallengeKind::TlsAlpn01 => {
                responders
                    .set_tls_alpn01(&ident, key_auth.digest().as_ref())
                    .map_err(|e| FlowError::new("client", format!("tls-alpn-01 cert: {e}")))?;
                published.push(Published::Tls(ident));
            }
        }
        if let Err(e) = challenge.set_ready().await {
            for p in &published {
                p.withdraw(responders);
            }
            return Err(FlowError::acme("challenge", &e));
        }
    }
    Ok(published)
}

/// Polls the order until `want` with adaptive backoff (1 ms doubling up to
/// the cap). `invalid`, an order error, or the timeout end it.
async fn poll_until(
    cfg: &LoadConfig,
    order: &mut Order,
    want: OrderStatus,
) -> Result<(), FlowError> {
    let deadline = Instant::now() + cfg.poll_timeout;
    let mut delay = Duration::from_millis(1);
    loop {
        let url = order.url().to_owned();
        let state = order.state();
        if state.status == want {
            return Ok(());
        }
        if let Some(err) = &state.error {
            return Err(FlowError::new(
                &problem_kind(err.r#type.as_deref()),
                format!("order {url}: {err}"),
            ));
        }
        if state.status == OrderStatus::Invalid {
            return Err(FlowError::new(
                "orderInvalid",
                format!("order {url} is invalid"),
            ));
        }
        if Instant::now() + delay > deadline {
            return Err(FlowError::new(
                "timeout",
                format!("order {url} not {want:?} within {:?}", cfg.poll_timeout),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = next_delay(delay, cfg.poll_cap);
        order
            .refresh()
            .await
            .map_err(|e| FlowError::acme("poll", &e))?;
    }
}

/// The next poll delay: double, capped.
pub fn next_delay(delay: Duration, cap: Duration) -> Duration {
    (delay * 2).min(cap)
}

/// For an order that went invalid during validation, the challenge's own
/// error type is more telling than `orderInvalid`.
async fn explain_invalid(order: &mut Order, e: FlowError) -> FlowError {
    if e.kind != "orderInvalid" {
        return e;
    }
    let mut authzs = order.authorizations();
    while let Some(Ok(mut authz)) = authzs.next().await {
        if authz.refresh().await.is_err() {
            continue;
        }
        for ch in &authz.challenges {
            if let Some(err) = &ch.error {
                return FlowError::new(
                    &problem_kind(err.r#type.as_deref()),
                    format!("challenge {}: {err}", ch.url),
                );
            }
        }
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_ms_to_the_cap() {
        let cap = Duration::from_millis(5);
        let mut d = Duration::from_millis(1);
        let mut seen = vec![d];
        for _ in 0..4 {
            d = next_delay(d, cap);
            seen.push(d);
        }
        let ms: Vec<u128> = seen.iter().map(Duration::as_millis).collect();
        assert_eq!(ms, vec![1, 2, 4, 5, 5]);
    }

    #[test]
    fn problem_types_lose_their_prefix() {
        assert_eq!(
            problem_kind(Some("urn:ietf:params:acme:error:badNonce")),
            "badNonce"
        );
        assert_eq!(problem_kind(Some("about:blank")), "about:blank");
        assert_eq!(problem_kind(None), "untyped");
    }

    #[test]
    fn wildcard_orders_name_the_fresh_name_s_wildcard() {
        let mut cfg = LoadConfig {
            directory: String::new(),
            challenge: ChallengeKind::Dns01,
            key_type: KeyType::EcP256,
            poll_cap: Duration::from_millis(5),
            poll_timeout: Duration::from_secs(1),
            issuance_timeout: Duration::from_secs(1),
            verify_cert: false,
            run_tag: "r1".into(),
            wildcard: false,
            persist_issuer: None,
        };
        assert_eq!(cfg.order_name(3), "i3.r1.acme-bench.test");
        cfg.wildcard = true;
        assert_eq!(cfg.order_name(3), "*.i3.r1.acme-bench.test");
    }

    #[test]
    fn names_are_unique_and_in_the_zone() {
        let a = name_for("r1", 1);
        assert_eq!(a, "i1.r1.acme-bench.test");
        assert_ne!(a, name_for("r1", 2));
    }
}
