//! Background work: challenge probes, issuance retries, and recovery of
//! work a crash or a dead peer left `processing`.
//!
//! **Invariant:** nothing stays `processing` forever. A probe whose
//! validator died is retried by the RPC layer and, failing that, recorded as
//! invalid with `serverInternal`; a challenge or order found `processing`
//! with no work in flight (after a restart) is picked up again; an order that
//! cannot be issued before it expires becomes invalid.
//!
//! [`sweep_forever`] also starts the retention clean-up ([`retention`]).

pub mod retention;
pub mod star;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;
use shared_proto::signer::{IssueRequest, SignerError, StarTerms};
use shared_proto::statement::{CaaCheck, SignedStatement};
use shared_proto::validator::{
    ChallengeType, MAX_PERSIST_RETAINED, PersistAccount, ValidateRequest,
};
use shared_proto::{Identifier, IdentifierKind};

use crate::error::{DatabaseError, Error, problem_json};
use crate::protocol::CertificateStatus;
use crate::store::authzs::Outcome;
use crate::store::models::{AuthzRow, CertRow, ChallengeRow, OrderRow};
use crate::{App, now, random_id, store};

/// How often the recovery sweep runs.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Work younger than this is assumed to be in flight elsewhere in this process.
const GRACE_SECS: i64 = 5;
/// With `[fleet]`, work younger than this may be in flight at another front
/// end (validator calls last up to 40 s, signer calls 10 s); a repeat would
/// be harmless (conditional updates, the signer's repeats), only wasted.
const FLEET_GRACE_SECS: i64 = 60;

/// Keys (challenge or order ids) of work running in this process.
///
/// **Invariant:** a key is held only by a live [`Claim`]; dropping the
/// claim releases it, also when the job holding it panics (its future is
/// dropped while unwinding), so the sweep can pick the work up again.
#[derive(Default)]
pub struct InFlight {
    keys: Mutex<HashSet<String>>,
}

impl InFlight {
    /// Claims `key`, or `None` when it is already claimed.
    pub fn claim(self: &Arc<Self>, key: &str) -> Option<Claim> {
        let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        keys.insert(key.to_owned()).then(|| Claim {
            set: Arc::clone(self),
            key: key.to_owned(),
        })
    }

    /// Whether `key` is claimed.
    pub fn contains(&self, key: &str) -> bool {
        self.keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }
}

/// A claimed key of an [`InFlight`] set, released on drop.
pub struct Claim {
    set: Arc<InFlight>,
    key: String,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set
            .keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

/// Starts probing a challenge in the background (once per challenge).
/// Returns the probe's task, finished once the result is recorded, or
/// `None` when a probe of this challenge is already running.
pub fn dispatch_probe(
    app: Arc<App>,
    challenge: ChallengeRow,
    authz: AuthzRow,
) -> Option<tokio::task::JoinHandle<()>> {
    let claim = app.probes_in_flight.claim(&challenge.id)?;
    Some(tokio::spawn(async move {
        let _claim = claim;
        run_probe(&app, challenge, authz).await;
    }))
}

async fn run_probe(app: &App, challenge: ChallengeRow, authz: AuthzRow) {
    let (outcome, persist_hash) = match probe(app, &challenge, &authz).await {
        Ok(o) => o,
        Err(e) => (Outcome::Invalid(problem_json(&e)), None),
    };
    let valid = matches!(outcome, Outcome::Valid(..));
    let cid = challenge.id.clone();
    let limits = app.rate_limits.clone();
    let identifier = authz_identifier(&authz);
    let account_id = authz.account_id.clone();
    let result = app
        .store
        .run(move |c| {
            let t = now();
            let recorded = store::authzs::record_validation(c, &cid, outcome, t)?;
            // draft-ietf-acme-dns-persist-02 §4.2: keep the hashed URI
            // that passed, so that a key rollover does not orphan it.
            if recorded && let Some(hash) = &persist_hash {
                store::accounts::keep_persist_hash(c, &account_id, hash, t)?;
            }
            // The failed-validations limit counts (and pauses) in the same
            // transaction as the result it counts.
            if recorded && !limits.is_empty() {
                let id = identifier?;
                crate::rate_limits::after_validation(
                    c,
                    &limits,
                    &account_id,
                    &id,
                    valid,
                    crate::now_ms(),
                )?;
            }
            Ok(())
        })
        .await;
    match result {
        Ok(()) => {
            tracing::info!(target: "frontend", challenge = %challenge.id, valid, "validation recorded")
        }
        Err(e) => {
            tracing::error!(target: "frontend", challenge = %challenge.id, error = %e, "could not record validation; the sweep will retry")
        }
    }
}

/// The identifier an authorization is for (with its wildcard label).
fn authz_identifier(authz: &AuthzRow) -> Result<Identifier, Error> {
    let kind =
        IdentifierKind::parse(&authz.identifier_type).ok_or_else(|| DatabaseError::Corrupt {
            what: "identifier type",
            value: authz.identifier_type.clone(),
        })?;
    let value = if authz.wildcard {
        format!("*.{}", authz.identifier_value)
    } else {
        authz.identifier_value.clone()
    };
    Ok(Identifier { kind, value })
}

/// Probes `challenge`: the outcome to record and, for a dns-persist-01
/// record in the draft-02 form made with the account's current key, the
/// hashed URI to keep.
async fn probe(
    app: &App,
    challenge: &ChallengeRow,
    authz: &AuthzRow,
) -> Result<(Outcome, Option<store::accounts::PersistHash>), Error> {
    let account_id = authz.account_id.clone();
    let account = app
        .store
        .read(move |c| store::accounts::by_id(c, &account_id))
        .await?
        .ok_or_else(|| Error::Internal("authorization without account".into()))?;
    let identifier = authz_identifier(authz)?;
    let challenge_type =
        ChallengeType::parse(&challenge.kind).ok_or_else(|| DatabaseError::Corrupt {
            what: "challenge type",
            value: challenge.kind.clone(),
        })?;
    // draft-ietf-acme-dns-persist-02: the account's current key and the
    // hashes of earlier keys it may still be named by here.
    let persist = if challenge_type == ChallengeType::DnsPersist01 {
        let (aid, domain) = (account.id.clone(), identifier.base_name().to_owned());
        let rotation = app
            .config
            .server
            .dns_persist_key_rotation_secs
            .map(i64::from);
        let retained = app
            .store
            .read(move |c| {
                store::accounts::retained_persist_hashes(
                    c,
                    &aid,
                    &domain,
                    rotation,
                    now(),
                    MAX_PERSIST_RETAINED,
                )
            })
            .await?;
        Some(PersistAccount {
            account_hash_prefix: app.urls.account_hash_prefix(),
            key_thumbprint: account.jwk_thumbprint.clone(),
            retained,
        })
    } else {
        None
    };
    let request = ValidateRequest {
        identifier,
        challenge_type,
        token: authz.token.clone(),
        key_authorization: format!("{}.{}", authz.token, account.jwk_thumbprint),
        account_uri: app.urls.account(&account.id),
        authz_expires: authz.expires,
        covers_subdomains: authz.subdomain_auth_allowed,
        onion_csr: challenge
            .response
            .as_deref()
            .and_then(|b64| akamu_jose::b64_decode(b64).ok()),
        persist,
    };
    let result = app.peers.validate(request).await;
    let counted = match &result {
        Ok(Ok(_)) => "valid",
        Ok(Err(p)) => p.kind.acme_type(),
        Err(_) => "unavailable",
    };
    crate::metrics::validation(challenge_type.as_str(), counted);
    let keep = match &result {
        Ok(Ok(record)) => record
            .persist_hash
            .as_ref()
            .filter(|h| h.current_key)
            .map(|h| store::accounts::PersistHash {
                uri: h.uri.clone(),
                domain: h.domain.clone(),
                thumbprint: account.jwk_thumbprint.clone(),
            }),
        _ => None,
    };
    let outcome = match result {
        Ok(Ok(record)) => Outcome::Valid(
            json!({
                "url": record.url,
                "hostname": record.hostname,
                "port": record.port.map(|p| p.to_string()),
                "addressesResolved": record.addresses_resolved,
                "addressUsed": record.address_used,
            })
            .to_string(),
            record
                .statement
                .as_ref()
                .and_then(|st| serde_json::to_string(st).ok()),
            valid_until(challenge_type, record.persist_until, crate::now()),
        ),
        Ok(Err(p)) => Outcome::Invalid(problem_json(&Error::Validation(p))),
        Err(e) => Outcome::Invalid(problem_json(&Error::Peer(e))),
    };
    Ok((outcome, keep))
}

/// The longest a dns-persist-01 authorization is reused: ten days, as the
/// Baseline Requirements allow for this method (§3.2.2.4.22).
pub const PERSIST_REUSE_SECS: i64 = 10 * 86_400;

/// The latest an authorization validated at `now` by `challenge` may
/// expire: dns-persist-01's is never past the record's `persistUntil` nor
/// [`PERSIST_REUSE_SECS`] away; other methods set no limit here.
fn valid_until(challenge: ChallengeType, persist_until: Option<i64>, now: i64) -> Option<i64> {
    (challenge == ChallengeType::DnsPersist01).then(|| {
        persist_until
            .unwrap_or(i64::MAX)
            .min(now + PERSIST_REUSE_SECS)
    })
}

/// Which attempt at an order's certificate a call to [`issue`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The finalize that moved the order to `processing`: nothing can have
    /// asked the signer for it before (the move is a guarded update).
    First,
    /// The recovery sweep, after a crash, a dead signer or a deadline: the
    /// signer may have signed it already.
    Retry,
}

/// Asks the signer for the certificate of a `processing` order and records
/// it. A refusal makes the order invalid and is returned; an unavailable
/// signer leaves the order `processing` for the sweep.
pub async fn issue(app: &Arc<App>, order: OrderRow, attempt: Attempt) -> Result<(), Error> {
    let Some(_claim) = app.issuance_in_flight.claim(&order.id) else {
        return Ok(());
    };
    issue_inner(app, &order, attempt).await
}

async fn issue_inner(app: &Arc<App>, order: &OrderRow, attempt: Attempt) -> Result<(), Error> {
    let started = tokio::time::Instant::now();
    let Some(csr) = order.csr.clone() else {
        return Err(Error::Internal(format!(
            "order {} is processing without a CSR",
            order.id
        )));
    };
    let oid = order.id.clone();
    let (statements, star_row) = app
        .store
        .read(move |c| {
            let statements = store::authzs::statements_of_order(c, &oid)?;
            Ok((statements, store::star::by_order(c, &oid)?))
        })
        .await?;
    let checked = match recheck_caa(app, statements).await {
        // Only orders under an ancestor's authorization need more.
        Ok(Some(statements)) if statements.iter().any(|s| s.statement.covers_subdomains) => {
            Box::pin(subdomain_caa(app, &order.identifiers()?, statements)).await
        }
        other => other,
    };
    let statements = match checked {
        Ok(Some(statements)) => statements,
        // The validator is unavailable: the order stays `processing` and
        // the sweep asks again.
        Ok(None) => return Ok(()),
        Err(refusal) => return Err(fail_processing(app, &order.id, refusal).await?),
    };
    // A STAR order's first certificate starts at the finalize (`updated`
    // is set then and kept while processing, so a retry asks for the same
    // window) or at its start-date, whichever is later.
    let star_first = match &star_row {
        Some(row) => {
            let terms = row.terms();
            let start = crate::protocol::star::first_start(row.start_date, order.updated);
            let Some(window) = crate::protocol::star::window(&terms, start) else {
                let refusal = Error::AutoRenewalExpired(
                    "the order reached its end-date before it was finalized".into(),
                );
                return Err(fail_processing(app, &order.id, refusal).await?);
            };
            Some((terms, start, window))
        }
        None => None,
    };
    let request = IssueRequest {
        csr_der: csr,
        identifiers: order.identifiers()?,
        not_before: star_first.map_or(order.not_before, |(_, _, (nb, _))| Some(nb)),
        not_after: star_first.map_or(order.not_after, |(_, _, (_, na))| Some(na)),
        account_uri: app.urls.account(&order.account_id),
        order_id: order.id.clone(),
        statements,
        profile: order.profile.clone(),
        // A retry may repeat a request the signer already signed: it tells
        // the signer since when (`updated` is set when the order enters
        // `processing` and not changed while it stays there), and the
        // signer looks the request up that far back. A first attempt cannot
        // be a repeat, so the signer does no lookup beyond its table of
        // recent issuances (a lookup per issuance would read the last
        // minutes of its audit log every time).
        processing_since: (attempt == Attempt::Retry).then_some(order.updated),
        star: star_first.map(|(terms, _, _)| StarTerms {
            end_date: terms.end_date,
            lifetime_secs: terms.lifetime,
            lifetime_adjust_secs: terms.lifetime_adjust,
            reissue: false,
        }),
    };
    let next_star =
        star_first.and_then(|(terms, start, _)| crate::protocol::star::next_due(&terms, start));
    let refusal = match app.peers.issue(request).await {
        Ok(Ok(cert)) => {
            crate::fault::point(crate::fault::AFTER_SIGN_BEFORE_COMMIT);
            let t = now();
            let row = CertRow {
                id: random_id(12),
                order_id: order.id.clone(),
                account_id: order.account_id.clone(),
                serial_number: cert.serial_hex.clone(),
                status: CertificateStatus::Valid,
                der: cert.der,
                pem: cert.chain_pem,
                not_before: cert.not_before,
                not_after: cert.not_after,
                revoked_at: None,
                revocation_reason: None,
                created: t,
                mtc_log_index: cert.mtc_log_index.and_then(|i| i64::try_from(i).ok()),
            };
            let limits = app.rate_limits.clone();
            let (account_id, identifiers) = (order.account_id.clone(), order.identifiers()?);
            let is_star = star_first.is_some();
            app.store
                .run_durable(move |c| {
                    let oid = row.order_id.clone();
                    store::orders::complete_issuance(c, row, t)?;
                    if is_star {
                        store::star::schedule(c, &oid, next_star)?;
                    }
                    // Counted with the certificate, in its transaction.
                    if !limits.is_empty() {
                        crate::rate_limits::count_issuance(
                            c,
                            &limits,
                            &account_id,
                            &identifiers,
                            crate::now_ms(),
                        )?;
                    }
                    Ok(())
                })
                .await?;
            crate::metrics::issued(started.elapsed());
            tracing::info!(target: "frontend", order = %order.id, serial = %cert.serial_hex, "certificate issued");
            return Ok(());
        }
        Ok(Err(SignerError::Internal)) => {
            tracing::warn!(target: "frontend", order = %order.id, "signer failed internally; will retry");
            return Ok(());
        }
        Ok(Err(refusal)) => Error::Signer(refusal),
        Err(e) => {
            tracing::warn!(target: "frontend", order = %order.id, error = %e, "signer unavailable; will retry");
            return Ok(());
        }
    };
    Err(fail_processing(app, &order.id, refusal).await?)
}

/// How much younger than the signer's `caa_max_age_secs` a CAA check must
/// be for the frontend not to re-check it.
const SIGNER_MARGIN_SECS: i64 = 60;

/// An order's statements (with their authorizations' ids, as stored),
/// each with a CAA check no older than `[server] caa_recheck_hours`: the
/// validator looks CAA up again for the others and signs them anew, and
/// the new statement replaces the old one on its authorization (so a
/// later order reusing it starts from the new check). `Ok(None)` when the
/// validator could not be reached; an `Err` is the validator's refusal (a
/// `caa` problem when the records now forbid issuance), which fails the
/// order.
async fn recheck_caa(
    app: &App,
    rows: Vec<(String, String)>,
) -> Result<Option<Vec<SignedStatement>>, Error> {
    // Hours to whole seconds; the configuration keeps the value finite and
    // between 0 and a year. Never as old as the signer's own limit (it owns
    // that fact): a check that young enough here is still young enough
    // when the signer looks, a minute later at most.
    let configured = (app.config.server.caa_recheck_hours * 3600.0) as i64;
    let max_age = match app.ca.cached() {
        Some(info) => configured.min(info.caa_max_age_secs.saturating_sub(SIGNER_MARGIN_SECS)),
        None => configured,
    }
    .max(0);
    let mut out = Vec::with_capacity(rows.len());
    for (authz_id, json) in rows {
        let Ok(signed) = serde_json::from_str::<SignedStatement>(&json) else {
            continue;
        };
        let t = now();
        let st = &signed.statement;
        let stale = match st.caa {
            Some(CaaCheck::Checked { at }) => t.saturating_sub(at) >= max_age,
            Some(CaaCheck::NotConfigured | CaaCheck::NotApplicable) => false,
            // Signed before CAA was checked.
            None => true,
        };
        // An expired statement covers nothing anyway: the signer says so.
        if !stale || t >= st.expires {
            out.push(signed);
            continue;
        }
        // Boxed: a stale statement is the exception, and this call's state
        // would otherwise be held inline by every finalize.
        match Box::pin(app.peers.recheck_caa(signed)).await {
            Ok(Ok(fresh)) => {
                let json = serde_json::to_string(&fresh)
                    .map_err(|e| Error::Internal(format!("statement JSON: {e}")))?;
                app.store
                    .run(move |c| store::authzs::replace_statement(c, &authz_id, &json))
                    .await?;
                out.push(fresh);
            }
            Ok(Err(problem)) => return Err(Error::Validation(problem)),
            Err(e) => {
                tracing::warn!(target: "frontend", error = %e, "validator unavailable for a CAA re-check; will retry");
                return Ok(None);
            }
        }
    }
    Ok(Some(out))
}

/// Records `refusal` as the processing order's error (the order becomes
/// `invalid`) and hands it back for the caller to return.
///
/// Boxed: a refusal is the exception, and its state would otherwise be held
/// inline by every finalize's future.
fn fail_processing<'a>(
    app: &'a App,
    order_id: &str,
    refusal: Error,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Error, Error>> + Send + 'a>> {
    let problem = problem_json(&refusal);
    let oid = order_id.to_owned();
    Box::pin(async move {
        app.store
            .run(move |c| store::orders::fail_processing(c, &oid, &problem, now()))
            .await?;
        Ok(refusal)
    })
}

/// RFC 9444 meets RFC 8659: an order name covered only by a statement for
/// an ancestor (covering subdomains) needs a CAA check of its own, which
/// a name below may override. The validator checks each such name and
/// signs a statement for exactly it (`caa_for_subdomain`); these join the
/// order's statements for this issuance only. `Ok(None)` when the
/// validator could not be reached; an `Err` is its refusal.
async fn subdomain_caa(
    app: &App,
    names: &[shared_proto::Identifier],
    mut statements: Vec<SignedStatement>,
) -> Result<Option<Vec<SignedStatement>>, Error> {
    for name in names {
        if statements.iter().any(|s| s.statement.identifier == *name) {
            continue;
        }
        let t = now();
        let Some(ancestor) = statements
            .iter()
            .find(|s| {
                s.statement.covers_subdomains
                    && s.statement.covers(name, &s.statement.account_uri, t)
            })
            .cloned()
        else {
            // Nothing covers it: the signer will say so.
            continue;
        };
        match app.peers.caa_for_subdomain(ancestor, name.clone()).await {
            Ok(Ok(own)) => statements.push(own),
            Ok(Err(problem)) => return Err(Error::Validation(problem)),
            Err(e) => {
                tracing::warn!(target: "frontend", error = %e, "validator unavailable for a subdomain's CAA check; will retry");
                return Ok(None);
            }
        }
    }
    Ok(Some(statements))
}

/// Runs the recovery sweep forever, and starts the retention clean-up
/// beside it. Each pass runs only on the holder of the jobs lease
/// ([`crate::leader`]).
pub async fn sweep_forever(app: Arc<App>) {
    tokio::spawn(retention::prune_forever(app.clone()));
    tokio::spawn(retention::prune_nonces_forever(app.clone()));
    tokio::spawn(star::reissue_forever(app.clone()));
    loop {
        if !app.leader.is_leader() {
            tokio::time::sleep(SWEEP_EVERY).await;
            continue;
        }
        if let Err(e) = sweep(&app).await {
            tracing::warn!(target: "frontend", error = %e, "recovery sweep failed");
        }
        tokio::time::sleep(SWEEP_EVERY).await;
    }
}

async fn sweep(app: &Arc<App>) -> Result<(), Error> {
    let t = now();
    let grace = if app.leader.fleet() {
        FLEET_GRACE_SECS
    } else {
        GRACE_SECS
    };
    let probes = app.store.read(store::authzs::processing).await?;
    for p in probes {
        if p.challenge.updated <= t - grace {
            let _ = dispatch_probe(app.clone(), p.challenge, p.authz);
        }
    }
    let orders = app.store.read(store::orders::processing).await?;
    for order in orders {
        if order.updated > t - grace {
            continue;
        }
        if t >= order.expires {
            let problem = problem_json(&Error::Unfinished(
                "the certificate could not be issued before the order expired",
            ));
            let oid = order.id.clone();
            app.store
                .run(move |c| store::orders::fail_processing(c, &oid, &problem, t))
                .await?;
            continue;
        }
        let app = app.clone();
        tokio::spawn(async move {
            let _ = issue(&app, order, Attempt::Retry).await;
        });
    }
    Ok(())
}
