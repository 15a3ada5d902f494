//! What several front ends on one database share (issue 17): the nonce
//! key and the redeemed nonces, the leases that elect the one front end
//! running the background jobs, and the CRL every front end serves.
//!
//! Written with diesel's portable query builder only (conflict clauses,
//! conditional updates), so that the same functions run on PostgreSQL.
//!
//! **Invariant:** a nonce is redeemed at most once across all front ends:
//! the redemption is an insert whose primary key is the nonce.
//! **Invariant:** a lease row changes holder only while it is expired (or
//! to its own holder), by a conditional update on the row as it was read.

use super::{Conn, Query};
use diesel::prelude::*;

use super::schema::{current_crl, fleet_secrets, leases, used_nonces};
use super::write_tx;
use crate::error::Error;

/// The name of the nonce key in `fleet_secrets`.
const NONCE_KEY: &str = "nonce-mac-key";

/// The nonce key shared by every front end: `fresh` if none was stored yet
/// (the first front end to start stores its own), else the stored one.
pub fn nonce_key(conn: &mut Conn, fresh: &[u8]) -> Result<Vec<u8>, Error> {
    write_tx(conn, |conn| {
        diesel::insert_into(fleet_secrets::table)
            .values((
                fleet_secrets::name.eq(NONCE_KEY),
                fleet_secrets::value.eq(fresh),
            ))
            .on_conflict_do_nothing()
            .exec(conn)?;
        Ok(fleet_secrets::table
            .find(NONCE_KEY)
            .select(fleet_secrets::value)
            .fetch_first(conn)?)
    })
}

/// Redeems nonce `id`, accepted until `expires`: true the first time,
/// false for every later attempt (whichever front end makes it).
pub fn redeem_nonce(conn: &mut Conn, id: &[u8], expires: i64) -> Result<bool, Error> {
    let n = diesel::insert_into(used_nonces::table)
        .values((used_nonces::nonce.eq(id), used_nonces::expires.eq(expires)))
        .on_conflict_do_nothing()
        .exec(conn)?;
    Ok(n == 1)
}

/// Deletes at most `limit` redeemed nonces whose acceptance ended before
/// `before`; returns how many.
pub fn prune_nonces(conn: &mut Conn, before: i64, limit: i64) -> Result<usize, Error> {
    write_tx(conn, |conn| {
        let old: Vec<Vec<u8>> = used_nonces::table
            .filter(used_nonces::expires.lt(before))
            .select(used_nonces::nonce)
            .limit(limit)
            .fetch_all(conn)?;
        Ok(diesel::delete(used_nonces::table.filter(used_nonces::nonce.eq_any(old))).exec(conn)?)
    })
}

/// Takes or renews lease `name` for `holder` until `now_ms + lease_ms`.
/// True when `holder` holds it now: it was free, expired at `now_ms`, or
/// already `holder`'s.
pub fn take_lease(
    conn: &mut Conn,
    name: &str,
    holder: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<bool, Error> {
    let until = now_ms.saturating_add(lease_ms);
    write_tx(conn, |conn| {
        let current: Option<(String, i64)> = leases::table
            .find(name)
            .select((leases::holder, leases::expires_ms))
            .fetch_first(conn)
            .optional()?;
        let n = match current {
            None => diesel::insert_into(leases::table)
                .values((
                    leases::name.eq(name),
                    leases::holder.eq(holder),
                    leases::expires_ms.eq(until),
                ))
                .on_conflict_do_nothing()
                .exec(conn)?,
            Some((old_holder, old_expiry)) if old_holder == holder || old_expiry <= now_ms => {
                // Compare-and-set on the row as read: a front end that
                // took it meanwhile wins.
                diesel::update(
                    leases::table
                        .find(name)
                        .filter(leases::holder.eq(&old_holder))
                        .filter(leases::expires_ms.eq(old_expiry)),
                )
                .set((leases::holder.eq(holder), leases::expires_ms.eq(until)))
                .exec(conn)?
            }
            Some(_) => 0,
        };
        Ok(n == 1)
    })
}

/// Gives lease `name` up if `holder` holds it (a clean shutdown), so that
/// another front end takes it at its next try instead of at its expiry.
pub fn release_lease(conn: &mut Conn, name: &str, holder: &str) -> Result<(), Error> {
    diesel::delete(leases::table.find(name).filter(leases::holder.eq(holder))).exec(conn)?;
    Ok(())
}

/// Who holds lease `name` and until when (Unix milliseconds).
pub fn lease_holder(conn: &mut Conn, name: &str) -> Result<Option<(String, i64)>, Error> {
    Ok(leases::table
        .find(name)
        .select((leases::holder, leases::expires_ms))
        .fetch_first(conn)
        .optional()?)
}

/// The stored CRL.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct CrlRow {
    /// DER.
    pub der: Vec<u8>,
    /// CRL Number.
    pub number: i64,
    /// `thisUpdate`, Unix seconds.
    pub this_update: i64,
    /// `nextUpdate`, Unix seconds.
    pub next_update: i64,
    /// The revocation state it reflects: (count, latest revocation).
    pub mark: (i64, i64),
}

/// The CRL every front end serves, if one was stored.
pub fn current_crl(conn: &mut Conn) -> Result<Option<CrlRow>, Error> {
    let row: Option<(Vec<u8>, i64, i64, i64, i64, i64)> = current_crl::table
        .find(1)
        .select((
            current_crl::der,
            current_crl::number,
            current_crl::this_update,
            current_crl::next_update,
            current_crl::mark_count,
            current_crl::mark_latest,
        ))
        .fetch_first(conn)
        .optional()?;
    Ok(row.map(
        |(der, number, this_update, next_update, count, latest)| CrlRow {
            der,
            number,
            this_update,
            next_update,
            mark: (count, latest),
        },
    ))
}

/// The stored CRL's number and revocation mark, without its DER (polled).
pub fn current_crl_version(conn: &mut Conn) -> Result<Option<(i64, i64)>, Error> {
    Ok(current_crl::table
        .find(1)
        .select((current_crl::number, current_crl::this_update))
        .fetch_first(conn)
        .optional()?)
}

/// Stores `crl` as the one to serve, unless the stored one has a higher or
/// equal number (a late writer never replaces a newer CRL) and `replace`
/// is false (`replace`: a front end's first CRL after its start, made by
/// a signer whose CRL Numbers may have restarted with a new CA). True
/// when stored.
pub fn store_crl(conn: &mut Conn, crl: &CrlRow, replace: bool) -> Result<bool, Error> {
    write_tx(conn, |conn| {
        let stored: Option<i64> = current_crl::table
            .find(1)
            .select(current_crl::number)
            .fetch_first(conn)
            .optional()?;
        if !replace && stored.is_some_and(|n| n >= crl.number) {
            return Ok(false);
        }
        let values = (
            current_crl::der.eq(&crl.der),
            current_crl::number.eq(crl.number),
            current_crl::this_update.eq(crl.this_update),
            current_crl::next_update.eq(crl.next_update),
            current_crl::mark_count.eq(crl.mark.0),
            current_crl::mark_latest.eq(crl.mark.1),
        );
        if stored.is_some() {
            diesel::update(current_crl::table.find(1))
                .set(values)
                .exec(conn)?;
        } else {
            diesel::insert_into(current_crl::table)
                .values((current_crl::id.eq(1), values))
                .exec(conn)?;
        }
        Ok(true)
    })
}
