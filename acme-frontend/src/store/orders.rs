//! Orders, with their authorizations and challenges at creation.

use super::models::columns;
use super::{Conn, Query};
use diesel::prelude::*;

use super::insert_rows;
use super::models::{AuthzRow, CertRow, ChallengeRow, OrderAuthzRow, OrderRow};
use super::schema::{authorizations, certificates, challenges, order_authorizations, orders};
use super::status::lit;
use super::write_tx;
use crate::error::Error;
use crate::protocol::OrderStatus;

/// A new order and everything created with it.
pub struct NewOrder {
    /// The order.
    pub order: OrderRow,
    /// All its authorizations in order, reused or new.
    pub authz_ids: Vec<String>,
    /// The authorizations created for it.
    pub new_authzs: Vec<AuthzRow>,
    /// Their challenges.
    pub challenges: Vec<ChallengeRow>,
}

/// Inserts an order, its authorizations, links and challenges in one
/// transaction.
pub fn insert(conn: &mut Conn, new: NewOrder) -> Result<(), Error> {
    write_tx(conn, |conn| {
        diesel::insert_into(orders::table)
            .values(&new.order)
            .exec(conn)?;
        insert_rows!(conn, authorizations::table, &new.new_authzs);
        let links: Vec<OrderAuthzRow> = new
            .authz_ids
            .iter()
            .enumerate()
            .map(|(i, a)| OrderAuthzRow {
                order_id: new.order.id.clone(),
                authz_id: a.clone(),
                position: i as i32,
            })
            .collect();
        insert_rows!(conn, order_authorizations::table, &links);
        insert_rows!(conn, challenges::table, &new.challenges);
        Ok(())
    })
}

/// The order with this id.
pub fn by_id(conn: &mut Conn, id: &str) -> Result<Option<OrderRow>, Error> {
    Ok(orders::table
        .find(id)
        .select(columns::<OrderRow>())
        .fetch_one(conn)
        .optional()?)
}

/// The order's authorizations in order.
pub fn authzs_of(conn: &mut Conn, order_id: &str) -> Result<Vec<AuthzRow>, Error> {
    Ok(order_authorizations::table
        .inner_join(authorizations::table)
        .filter(order_authorizations::order_id.eq(order_id))
        .order(order_authorizations::position.asc())
        .select(columns::<AuthzRow>())
        .fetch_all(conn)?)
}

/// An order with its authorizations.
pub fn with_authzs(conn: &mut Conn, id: &str) -> Result<Option<(OrderRow, Vec<AuthzRow>)>, Error> {
    let Some(order) = by_id(conn, id)? else {
        return Ok(None);
    };
    let authzs = authzs_of(conn, id)?;
    Ok(Some((order, authzs)))
}

/// Ids of an account's orders, newest first, at most `limit` from `offset`.
pub fn ids_for_account(
    conn: &mut Conn,
    account_id: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<String>, Error> {
    Ok(orders::table
        .filter(orders::account_id.eq(account_id))
        .order((orders::created.desc(), orders::id.asc()))
        .offset(offset)
        .limit(limit)
        .select(orders::id)
        .fetch_all(conn)?)
}

/// Moves a `ready` order to `processing` and stores its CSR. Returns false
/// if the order was not `ready` (a concurrent finalize won).
pub fn begin_processing(conn: &mut Conn, id: &str, csr: &[u8], now: i64) -> Result<bool, Error> {
    let n = diesel::update(
        orders::table
            .find(id)
            .filter(orders::status.eq(lit(OrderStatus::Ready))),
    )
    .set((
        orders::status.eq(OrderStatus::Processing),
        orders::csr.eq(Some(csr)),
        orders::updated.eq(now),
    ))
    .exec(conn)?;
    Ok(n == 1)
}

/// Records an issued certificate and moves its order to `valid`, in one
/// transaction. This commit happens before the certificate is served.
pub fn complete_issuance(conn: &mut Conn, cert: CertRow, now: i64) -> Result<(), Error> {
    super::durable_tx(conn, |conn| {
        if !finish_processing(conn, &cert.order_id, &cert.id, now)? {
            return Err(Error::Internal(format!(
                "order {} left processing before its certificate was stored",
                cert.order_id
            )));
        }
        diesel::insert_into(certificates::table)
            .values(&cert)
            .exec(conn)?;
        Ok(())
    })
}

/// Moves a `processing` order to `valid` with certificate `cert_id` (its
/// row is inserted in the same transaction by the caller). False when the
/// order was not `processing`.
pub(super) fn finish_processing(
    conn: &mut Conn,
    order_id: &str,
    cert_id: &str,
    now: i64,
) -> Result<bool, Error> {
    let n = diesel::update(
        orders::table
            .find(order_id)
            .filter(orders::status.eq(lit(OrderStatus::Processing))),
    )
    .set((
        orders::status.eq(OrderStatus::Valid),
        orders::certificate_id.eq(Some(cert_id)),
        orders::csr.eq(None::<Vec<u8>>),
        orders::updated.eq(now),
    ))
    .exec(conn)?;
    Ok(n == 1)
}

/// Marks a processing order invalid with a problem document.
pub fn fail_processing(
    conn: &mut Conn,
    id: &str,
    problem_json: &str,
    now: i64,
) -> Result<(), Error> {
    let n = diesel::update(
        orders::table
            .find(id)
            .filter(orders::status.eq(lit(OrderStatus::Processing))),
    )
    .set((
        orders::status.eq(OrderStatus::Invalid),
        orders::error.eq(Some(problem_json)),
        orders::csr.eq(None::<Vec<u8>>),
        orders::updated.eq(now),
    ))
    .exec(conn)?;
    if n == 1 {
        // A failed replacement no longer holds the certificate it replaces.
        super::renewals::release(conn, id)?;
    }
    Ok(())
}

/// Orders left in `processing` (by a crash or an unavailable signer).
pub fn processing(conn: &mut Conn) -> Result<Vec<OrderRow>, Error> {
    Ok(orders::table
        .filter(orders::status.eq(lit(OrderStatus::Processing)))
        .select(columns::<OrderRow>())
        .fetch_all(conn)?)
}
