//! Authorizations and challenges, and the validation cascade.

use super::models::columns;
use super::{Conn, Query};
use diesel::prelude::*;

use super::insert_rows;
use super::models::{AuthzRow, ChallengeRow};
use super::schema::{authorizations, challenges, order_authorizations, orders};
use super::status::lit;
use super::write_tx;
use crate::error::Error;
use crate::protocol::order::{
    ChallengeTrigger, after_validation, authz_status, stored_order_status, trigger_challenge,
};
use crate::protocol::{AuthzStatus, ChallengeStatus, OrderStatus};

/// The authorization with this id.
pub fn by_id(conn: &mut Conn, id: &str) -> Result<Option<AuthzRow>, Error> {
    Ok(authorizations::table
        .find(id)
        .select(columns::<AuthzRow>())
        .fetch_one(conn)
        .optional()?)
}

/// An authorization's challenges, in a stable order.
pub fn challenges_of(conn: &mut Conn, authz_id: &str) -> Result<Vec<ChallengeRow>, Error> {
    Ok(challenges::table
        .filter(challenges::authz_id.eq(authz_id))
        .order(challenges::created.asc())
        .then_order_by(challenges::id.asc())
        .select(columns::<ChallengeRow>())
        .fetch_all(conn)?)
}

/// An authorization with its challenges.
pub fn with_challenges(
    conn: &mut Conn,
    id: &str,
) -> Result<Option<(AuthzRow, Vec<ChallengeRow>)>, Error> {
    let Some(authz) = by_id(conn, id)? else {
        return Ok(None);
    };
    let challenges = challenges_of(conn, id)?;
    Ok(Some((authz, challenges)))
}

/// Inserts a stand-alone authorization (pre-authorization, RFC 8555
/// §7.4.1) with its challenges in one transaction.
pub fn insert(
    conn: &mut Conn,
    authz: AuthzRow,
    challenges: Vec<ChallengeRow>,
) -> Result<(), Error> {
    write_tx(conn, |conn| {
        diesel::insert_into(authorizations::table)
            .values(&authz)
            .exec(conn)?;
        insert_rows!(conn, challenges::table, &challenges);
        Ok(())
    })
}

/// Result of a challenge response.
pub struct Started {
    /// Whether validation must be dispatched now.
    pub dispatch: bool,
    /// The authorization after the change.
    pub authz: AuthzRow,
    /// The challenge after the change.
    pub challenge: ChallengeRow,
}

/// Applies a `{}` POST to a challenge (RFC 8555 §7.5.1) in one transaction:
/// a pending challenge of a pending authorization moves to `processing`
/// (and is dispatched) unless a challenge of the same authorization is
/// already `processing`; then, and for a challenge already attempted, the
/// challenge is answered as stored (one attempt per authorization).
/// `response` is what the validator needs from the payload (onion-csr-01's
/// CSR), kept with the challenge when validation starts.
pub fn start_challenge(
    conn: &mut Conn,
    authz_id: &str,
    challenge_id: &str,
    response: Option<String>,
    now: i64,
) -> Result<Option<Started>, Error> {
    write_tx(conn, |conn| {
        if let Conn::Pg(c) = conn {
            // Across front ends: one starter per authorization at a time
            // (SQLite's write lock does this for one file), so two
            // challenges of it never both move to `processing`.
            authorizations::table
                .find(authz_id)
                .select(authorizations::id)
                .for_update()
                .get_result::<String>(c)
                .optional()?;
        }
        let Some(authz) = by_id(conn, authz_id)? else {
            return Ok(None);
        };
        let Some(mut challenge) = challenges::table
            .find(challenge_id)
            .select(columns::<ChallengeRow>())
            .fetch_one::<ChallengeRow>(conn)
            .optional()?
        else {
            return Ok(None);
        };
        let authz_now = authz_status(authz.status, authz.expires, now);
        let mut dispatch =
            trigger_challenge(challenge.status, authz_now)? == ChallengeTrigger::Start;
        if dispatch {
            // One attempt per authorization: while a sibling challenge is
            // being validated, this one is answered as it is (the partial
            // unique index `idx_challenges_one_attempt` holds the database
            // to it), and the pending → processing move is conditional, so
            // of two requests only one wins.
            let attempt_running: i64 = challenges::table
                .filter(challenges::authz_id.eq(authz_id))
                .filter(challenges::status.eq(lit(ChallengeStatus::Processing)))
                .count()
                .fetch_one(conn)?;
            dispatch = attempt_running == 0
                && diesel::update(
                    challenges::table
                        .find(challenge_id)
                        .filter(challenges::status.eq(lit(ChallengeStatus::Pending))),
                )
                .set((
                    challenges::status.eq(ChallengeStatus::Processing),
                    challenges::updated.eq(now),
                    challenges::response.eq(&response),
                ))
                .exec(conn)?
                    == 1;
        }
        if dispatch {
            challenge.status = ChallengeStatus::Processing;
            challenge.updated = now;
            challenge.response = response;
        }
        Ok(Some(Started {
            dispatch,
            authz,
            challenge,
        }))
    })
}

/// A finished probe.
pub enum Outcome {
    /// Valid, with the validation record JSON, the validator's signed
    /// statement (JSON) and, when the method limits it (dns-persist-01),
    /// the latest the authorization may expire (Unix seconds).
    Valid(String, Option<String>, Option<i64>),
    /// Invalid, with the problem JSON.
    Invalid(String),
}

/// Records a probe's result and cascades challenge → authorization → orders
/// in one transaction. A challenge no longer `processing` is left alone
/// (`Ok(false)`: nothing recorded).
pub fn record_validation(
    conn: &mut Conn,
    challenge_id: &str,
    outcome: Outcome,
    now: i64,
) -> Result<bool, Error> {
    write_tx(conn, |conn| {
        let Some(challenge) = challenges::table
            .find(challenge_id)
            .select(columns::<ChallengeRow>())
            .fetch_one::<ChallengeRow>(conn)
            .optional()?
        else {
            return Ok(false);
        };
        if challenge.status != ChallengeStatus::Processing {
            return Ok(false);
        }
        let ok = matches!(outcome, Outcome::Valid(..));
        let (chall_status, authz_new) = after_validation(ok);
        let (record, statement, error, valid_until) = match &outcome {
            Outcome::Valid(r, s, until) => (Some(r.as_str()), s.as_deref(), None, *until),
            Outcome::Invalid(p) => (None, None, Some(p.as_str()), None),
        };
        diesel::update(challenges::table.find(challenge_id))
            .set((
                challenges::status.eq(chall_status),
                challenges::validated.eq(ok.then_some(now)),
                challenges::error.eq(error),
                challenges::validation_record.eq(record),
                challenges::updated.eq(now),
            ))
            .exec(conn)?;
        let authz_id = challenge.authz_id.clone();
        if let Some(until) = valid_until {
            diesel::update(
                authorizations::table
                    .find(&authz_id)
                    .filter(authorizations::status.eq(lit(AuthzStatus::Pending)))
                    .filter(authorizations::expires.gt(until)),
            )
            .set(authorizations::expires.eq(until))
            .exec(conn)?;
        }
        diesel::update(
            authorizations::table
                .find(&authz_id)
                .filter(authorizations::status.eq(lit(AuthzStatus::Pending))),
        )
        .set((
            authorizations::status.eq(authz_new),
            authorizations::error.eq(error),
            authorizations::statement.eq(statement),
            authorizations::updated.eq(now),
        ))
        .exec(conn)?;

        let order_ids: Vec<String> = order_authorizations::table
            .filter(order_authorizations::authz_id.eq(&authz_id))
            .select(order_authorizations::order_id)
            .fetch_all(conn)?;
        for order_id in order_ids {
            let pending = orders::table
                .find(&order_id)
                .filter(orders::status.eq(lit(OrderStatus::Pending)));
            if !ok {
                diesel::update(pending)
                    .set((
                        orders::status.eq(OrderStatus::Invalid),
                        orders::error.eq(error),
                        orders::updated.eq(now),
                    ))
                    .exec(conn)?;
                continue;
            }
            let statuses: Vec<AuthzStatus> = order_authorizations::table
                .inner_join(authorizations::table)
                .filter(order_authorizations::order_id.eq(&order_id))
                .select(authorizations::status)
                .fetch_all(conn)?;
            if stored_order_status(&statuses) == OrderStatus::Ready {
                diesel::update(pending)
                    .set((
                        orders::status.eq(OrderStatus::Ready),
                        orders::updated.eq(now),
                    ))
                    .exec(conn)?;
            }
        }
        Ok(true)
    })
}

/// A challenge waiting for a probe, with what the probe needs.
pub struct PendingProbe {
    /// The challenge.
    pub challenge: ChallengeRow,
    /// Its authorization.
    pub authz: AuthzRow,
}

/// Challenges left in `processing` (the probe's result never arrived: a
/// crash or a restart).
pub fn processing(conn: &mut Conn) -> Result<Vec<PendingProbe>, Error> {
    let rows: Vec<(ChallengeRow, AuthzRow)> = challenges::table
        .inner_join(authorizations::table)
        .filter(challenges::status.eq(lit(ChallengeStatus::Processing)))
        .select((columns::<ChallengeRow>(), columns::<AuthzRow>()))
        .fetch_all(conn)?;
    Ok(rows
        .into_iter()
        .map(|(challenge, authz)| PendingProbe { challenge, authz })
        .collect())
}

/// The newest valid authorization of `account_id` for an identifier that is
/// still valid at `valid_until`, for reuse (RFC 8555 §7.4) and revocation by
/// a non-owner (§7.6).
pub fn reusable(
    conn: &mut Conn,
    account_id: &str,
    identifier: &shared_proto::Identifier,
    valid_until: i64,
) -> Result<Option<AuthzRow>, Error> {
    reusable_since(conn, account_id, identifier, valid_until, i64::MIN, false)
}

/// [`reusable`], among authorizations validated at or after
/// `validated_since` (a profile's reuse limit) and, with `subdomains`,
/// only those that cover the names below the identifier (RFC 9444).
pub fn reusable_since(
    conn: &mut Conn,
    account_id: &str,
    identifier: &shared_proto::Identifier,
    valid_until: i64,
    validated_since: i64,
    subdomains: bool,
) -> Result<Option<AuthzRow>, Error> {
    let conn = match conn {
        Conn::Sqlite(c) => c,
        Conn::Pg(conn) => {
            // Across front ends: the row is locked `FOR SHARE` until the
            // order that reuses it commits, so a concurrent deactivation waits
            // for it (or, having committed first, removes the row from this
            // result). `subdomain_auth_allowed >= subdomains` is "allowed, when
            // subdomains are asked for" (false < true).
            return Ok(authorizations::table
                .filter(authorizations::subdomain_auth_allowed.ge(subdomains))
                .filter(authorizations::account_id.eq(account_id))
                .filter(authorizations::identifier_type.eq(identifier.kind.as_str()))
                .filter(authorizations::identifier_value.eq(identifier.base_name()))
                .filter(authorizations::wildcard.eq(identifier.is_wildcard()))
                .filter(authorizations::status.eq(lit(AuthzStatus::Valid)))
                .filter(authorizations::expires.gt(valid_until))
                .filter(authorizations::updated.ge(validated_since))
                .order(authorizations::expires.desc())
                .select(columns::<AuthzRow>())
                .limit(1)
                .for_share()
                .get_result::<AuthzRow>(conn)
                .optional()?);
        }
    };
    let mut query = authorizations::table.into_boxed();
    if subdomains {
        query = query.filter(authorizations::subdomain_auth_allowed.eq(true));
    }
    Ok(query
        .filter(authorizations::account_id.eq(account_id))
        .filter(authorizations::identifier_type.eq(identifier.kind.as_str()))
        .filter(authorizations::identifier_value.eq(identifier.base_name()))
        .filter(authorizations::wildcard.eq(identifier.is_wildcard()))
        .filter(authorizations::status.eq(lit(AuthzStatus::Valid)))
        .filter(authorizations::expires.gt(valid_until))
        // A valid authorization's `updated` is the moment it became valid
        // (nothing changes it afterwards but deactivation).
        .filter(authorizations::updated.ge(validated_since))
        .order(authorizations::expires.desc())
        .select(columns::<AuthzRow>())
        // Not `.first()`: SQLite re-prepares a statement whose `LIMIT ?`
        // is rebound, on every execution. Only the first row is stepped.
        .load_iter::<AuthzRow, diesel::connection::DefaultLoadingMode>(conn)?
        .next()
        .transpose()?)
}

/// Deactivates a pending or valid, unexpired authorization (RFC 8555
/// §7.5.2); false if it was in another state.
pub fn deactivate(conn: &mut Conn, id: &str, now: i64) -> Result<bool, Error> {
    let n = diesel::update(
        authorizations::table
            .find(id)
            .filter(authorizations::status.eq_any([AuthzStatus::Pending, AuthzStatus::Valid]))
            .filter(authorizations::expires.gt(now)),
    )
    .set((
        authorizations::status.eq(AuthzStatus::Deactivated),
        authorizations::updated.eq(now),
    ))
    .exec(conn)?;
    Ok(n == 1)
}

/// The validator statements (JSON) of an order's valid authorizations,
/// with the id of the authorization each belongs to.
pub fn statements_of_order(
    conn: &mut Conn,
    order_id: &str,
) -> Result<Vec<(String, String)>, Error> {
    let rows: Vec<(String, Option<String>)> = order_authorizations::table
        .inner_join(authorizations::table)
        .filter(order_authorizations::order_id.eq(order_id))
        .select((authorizations::id, authorizations::statement))
        .fetch_all(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, st)| st.map(|st| (id, st)))
        .collect())
}

/// Replaces the statement of a valid authorization with the validator's
/// newer one for it (after a CAA re-check); false if the authorization is
/// no longer valid.
pub fn replace_statement(conn: &mut Conn, authz_id: &str, statement: &str) -> Result<bool, Error> {
    let n = diesel::update(
        authorizations::table
            .find(authz_id)
            .filter(authorizations::status.eq(lit(AuthzStatus::Valid))),
    )
    .set(authorizations::statement.eq(statement))
    .exec(conn)?;
    Ok(n == 1)
}
