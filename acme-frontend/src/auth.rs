//! Authentication of ACME POSTs (RFC 8555 §6.2–§6.5): content type, flattened
//! JWS, algorithm, URL, nonce, and the key (`jwk` or `kid` → account).

use std::sync::{Arc, Mutex};

use akamu_jose::{Alg, FlattenedJws, Jwk, ProtectedHeader, VerifyingKey};

use crate::App;
use crate::error::{DatabaseError, Error, JwsError};
use crate::protocol::AccountStatus;

use crate::store::{self, models::AccountRow};

/// Which key reference an endpoint requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRef {
    /// `jwk` (new-account; later key-change inner JWS and revocation by
    /// certificate key).
    Jwk,
    /// `kid`: an existing account.
    Kid,
    /// Either (revocation: by the account or by the certificate's key).
    Either,
}

/// Who signed a request.
pub enum Requester {
    /// A bare key.
    Key {
        /// The key.
        jwk: Jwk,
    },
    /// An account, valid at the time of the request.
    Account(AccountRow),
}

/// A request that passed every check.
pub struct Authenticated {
    /// The decoded payload (empty for POST-as-GET).
    pub payload: Vec<u8>,
    /// The protected header.
    pub header: ProtectedHeader,
    /// The signer.
    pub requester: Requester,
}

impl Authenticated {
    /// The account, for `kid` requests.
    pub fn account(&self) -> Result<&AccountRow, Error> {
        match &self.requester {
            Requester::Account(a) => Ok(a),
            Requester::Key { .. } => Err(Error::Malformed("this request needs a kid".into())),
        }
    }

    /// Checks that this is a POST-as-GET (empty payload, RFC 8555 §6.3).
    pub fn require_post_as_get(&self) -> Result<(), Error> {
        if self.payload.is_empty() {
            Ok(())
        } else {
            Err(Error::Malformed(
                "POST-as-GET requests must have an empty payload".into(),
            ))
        }
    }

    /// Parses the payload as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        akamu_jose::from_json_object(&self.payload)
            .map_err(|e| Error::Malformed(format!("invalid request payload: {e}")))
    }
}

/// The media type RFC 8555 §6.2 requires.
pub const JOSE_JSON: &str = "application/jose+json";

/// Authenticates a POST to `url` with `body`.
pub async fn authenticate(
    app: &App,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
    key_ref: KeyRef,
) -> Result<Authenticated, Error> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase());
    if media.as_deref() != Some(JOSE_JSON) {
        return Err(Error::UnsupportedMediaType(format!(
            "Content-Type must be {JOSE_JSON}"
        )));
    }
    let jws = FlattenedJws::parse(body).map_err(|e| JwsError::NotFlattened(e.to_string()))?;
    let header = jws.header()?;
    if header.crit.is_some() {
        return Err(JwsError::CriticalHeader.into());
    }
    let alg =
        Alg::parse(&header.alg).ok_or_else(|| JwsError::UnsupportedAlg(header.alg.clone()))?;
    match header.url.as_deref() {
        None => return Err(JwsError::NoUrl.into()),
        Some(u) if u != url => {
            return Err(JwsError::UrlMismatch {
                signed: u.to_owned(),
                requested: url.to_owned(),
            }
            .into());
        }
        Some(_) => {}
    }
    let (public, requester) = match (&header.jwk, &header.kid, key_ref) {
        (Some(_), Some(_), _) => return Err(JwsError::BothJwkAndKid.into()),
        (None, None, _) => return Err(JwsError::NeitherJwkNorKid.into()),
        (Some(_), None, KeyRef::Kid) => return Err(JwsError::KidRequired.into()),
        (None, Some(_), KeyRef::Jwk) => return Err(JwsError::JwkRequired.into()),
        (Some(jwk), None, KeyRef::Jwk | KeyRef::Either) => {
            let jwk = Jwk::from_json(jwk)?;
            let public = key_for(&jwk, alg)?;
            (public, Requester::Key { jwk })
        }
        (None, Some(kid), KeyRef::Kid | KeyRef::Either) => {
            let account = account_for_kid(app, kid).await?;
            let public = account_key(app, &account, alg)?;
            (public, Requester::Account(account))
        }
    };
    jws.verify_with(alg, &public)?;
    let nonce = header.nonce.as_deref().ok_or(JwsError::NoNonce)?;
    if !app.nonces.consume(&app.store, nonce, crate::now()).await? {
        return Err(JwsError::BadNonce.into());
    }
    let payload = jws.payload_bytes()?;
    Ok(Authenticated {
        payload,
        header,
        requester,
    })
}

impl crate::http::Request {
    /// Authenticates this request (see [`authenticate`]).
    pub async fn authenticate(&self, app: &App, key_ref: KeyRef) -> Result<Authenticated, Error> {
        authenticate(
            app,
            &self.url,
            self.content_type.as_deref(),
            &self.body,
            key_ref,
        )
        .await
    }
}

/// Account rows by id, so that authenticating a request needs no database
/// read.
///
/// **Invariant:** every change to an account row goes through
/// [`update_account`], which drops the cached row after the change commits
/// and before anyone is answered; a row read from the database before a
/// change is never cached after it (the generation check in
/// [`AccountCache::insert`]). So no request that starts after a change's
/// answer sees the row from before it (a deactivated account or a replaced
/// key stays refused).
pub struct AccountCache {
    /// Bumped by every change; held while inserting so that a change
    /// cannot slip between the check and the insert.
    generation: Mutex<u64>,
    rows: moka::sync::Cache<String, AccountRow>,
}

impl Default for AccountCache {
    fn default() -> Self {
        Self::with_capacity(CACHE_MAX)
    }
}

impl AccountCache {
    /// A cache of at most `capacity` rows; past it, the least useful rows
    /// go (moka's TinyLFU: a burst of one-time accounts does not push out
    /// the accounts that keep coming back).
    pub fn with_capacity(capacity: u64) -> Self {
        AccountCache {
            generation: Mutex::new(0),
            rows: moka::sync::Cache::new(capacity),
        }
    }

    /// The cached row of account `id`.
    pub fn get(&self, id: &str) -> Option<AccountRow> {
        self.rows.get(id)
    }

    /// The current generation; take it before reading a row to cache.
    pub fn generation(&self) -> u64 {
        self.generation.lock().map_or(0, |g| *g)
    }

    /// Caches `row`, read after [`Self::generation`] returned `generation`,
    /// unless an account changed since.
    pub fn insert(&self, generation: u64, row: &AccountRow) {
        if let Ok(current) = self.generation.lock()
            && *current == generation
        {
            self.rows.insert(row.id.clone(), row.clone());
        }
    }

    /// Forgets account `id` and refuses rows read before now.
    pub fn invalidate(&self, id: &str) {
        match self.generation.lock() {
            Ok(mut current) => {
                *current += 1;
                self.rows.invalidate(id);
            }
            // A poisoned lock refuses every insert from now on (the
            // generation can no longer be compared), so dropping every row
            // keeps the invariant.
            Err(_) => self.rows.invalidate_all(),
        }
    }

    /// Rows held now (after pending evictions are applied).
    #[cfg(test)]
    fn len(&self) -> u64 {
        self.rows.run_pending_tasks();
        self.rows.entry_count()
    }
}

/// Runs a change of account `id` on the writer and drops its cached row
/// once the change is committed (or failed). The only way account rows
/// change after creation.
pub async fn update_account<R, F>(app: &App, id: &str, f: F) -> Result<R, Error>
where
    R: Send + 'static,
    F: FnOnce(&mut store::Conn) -> Result<R, Error> + Send + 'static,
{
    let result = app.store.run(f).await;
    app.accounts.invalidate(id);
    result
}

/// Parsed account keys by thumbprint, at most [`CACHE_MAX`] of them.
pub type KeyCache = moka::sync::Cache<String, Arc<VerifyingKey>>;

/// Most account rows, and most parsed account keys, kept in memory: a
/// bound on memory (≈ 1 KB a row, ≈ 2.4 KB a parsed P-256 key), not a
/// tuning knob. Past it the least useful entries go, not all of them.
pub const CACHE_MAX: u64 = 10_000;

/// An empty [`KeyCache`].
pub fn key_cache() -> KeyCache {
    moka::sync::Cache::new(CACHE_MAX)
}

/// The account's parsed public key. Parsing a JWK into a key costs more
/// than verifying the signature (curve checks), so keys are kept by
/// thumbprint; a thumbprint names one key forever, so nothing goes stale.
fn account_key(app: &App, account: &AccountRow, alg: Alg) -> Result<Arc<VerifyingKey>, Error> {
    if let Some(key) = app.key_cache.get(&account.jwk_thumbprint) {
        key.jwk().check_alg(alg)?;
        return Ok(key);
    }
    let jwk: Jwk = serde_json::from_str(&account.jwk).map_err(|_| DatabaseError::Corrupt {
        what: "account JWK",
        value: account.jwk.clone(),
    })?;
    let key = key_for(&jwk, alg)?;
    app.key_cache
        .insert(account.jwk_thumbprint.clone(), key.clone());
    Ok(key)
}

fn key_for(jwk: &Jwk, alg: Alg) -> Result<Arc<VerifyingKey>, Error> {
    jwk.check_alg(alg)?;
    Ok(Arc::new(VerifyingKey::from_jwk(jwk.clone())?))
}

async fn account_for_kid(app: &App, kid: &str) -> Result<AccountRow, Error> {
    let prefix = app.urls.account_prefix();
    let Some(id) = kid
        .strip_prefix(&prefix)
        .filter(|id| !id.is_empty() && !id.contains('/'))
    else {
        return Err(Error::AccountDoesNotExist(format!(
            "{kid:?} is not an account URL of this server"
        )));
    };
    // Several front ends: another may have changed the row, so it is read
    // per request (one primary-key read; parsed keys stay cached by
    // thumbprint, which names one key forever).
    let cached = if app.config.fleet.enabled {
        None
    } else {
        app.accounts.get(id)
    };
    let account = match cached {
        Some(account) => account,
        None => {
            let generation = app.accounts.generation();
            let id = id.to_owned();
            let account = app
                .store
                .read(move |c| store::accounts::by_id(c, &id))
                .await?
                .ok_or_else(|| Error::AccountDoesNotExist(format!("no account {kid}")))?;
            app.accounts.insert(generation, &account);
            account
        }
    };
    match account.status {
        AccountStatus::Valid => Ok(account),
        _ => Err(Error::Unauthorized(format!(
            "account is {}",
            account.status
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, status: AccountStatus) -> AccountRow {
        AccountRow {
            id: id.into(),
            status,
            contact: "[]".into(),
            jwk: "{}".into(),
            jwk_thumbprint: format!("tp-{id}"),
            tos_agreed: true,
            created: 0,
            updated: 0,
        }
    }

    #[test]
    fn a_row_read_before_a_change_is_never_cached_after_it() {
        let cache = AccountCache::default();
        // A reader takes the generation and reads the row ...
        let generation = cache.generation();
        let stale = row("a", AccountStatus::Valid);
        // ... meanwhile the account is deactivated and the cache dropped ...
        cache.invalidate("a");
        // ... so the reader's row is not cached.
        cache.insert(generation, &stale);
        assert!(cache.get("a").is_none());

        // A read after the change is cached, and dropped by the next change.
        let generation = cache.generation();
        cache.insert(generation, &row("a", AccountStatus::Deactivated));
        assert_eq!(
            cache.get("a").map(|r| r.status),
            Some(AccountStatus::Deactivated)
        );
        cache.invalidate("a");
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn one_time_accounts_stay_within_the_bound_and_do_not_push_out_a_regular() {
        let cache = AccountCache::with_capacity(100);
        let generation = cache.generation();
        cache.insert(generation, &row("regular", AccountStatus::Valid));
        for i in 0..1_000 {
            // The regular client comes back between the one-time ones.
            assert!(cache.get("regular").is_some(), "evicted after {i}");
            cache.insert(generation, &row(&format!("once-{i}"), AccountStatus::Valid));
        }
        assert!(cache.len() <= 100, "{} rows held", cache.len());
        assert!(cache.get("regular").is_some());
    }
}
