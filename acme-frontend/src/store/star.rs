//! STAR (RFC 8739) state: the terms of each auto-renewal order, the CSR
//! its reissues use, and the durable reissue schedule.

use super::models::columns;
use super::{Conn, Query};
use diesel::prelude::*;

use super::models::{CertRow, StarRow};
use super::schema::{certificates, orders, star_orders};
use crate::error::Error;

/// Inserts the STAR row of a new order (in the order's transaction).
pub fn insert(conn: &mut Conn, row: &StarRow) -> Result<(), Error> {
    diesel::insert_into(star_orders::table)
        .values(row)
        .exec(conn)?;
    Ok(())
}

/// The STAR row of order `order_id`, if it is a STAR order.
pub fn by_order(conn: &mut Conn, order_id: &str) -> Result<Option<StarRow>, Error> {
    Ok(star_orders::table
        .find(order_id)
        .select(columns::<StarRow>())
        .fetch_one(conn)
        .optional()?)
}

/// Keeps the CSR of a STAR order at its finalize (no-op for other orders).
pub fn keep_csr(conn: &mut Conn, order_id: &str, csr: &[u8]) -> Result<(), Error> {
    diesel::update(star_orders::table.find(order_id))
        .set(star_orders::csr.eq(Some(csr)))
        .exec(conn)?;
    Ok(())
}

/// Schedules the next certificate of order `order_id` at `next` (after
/// the first issuance, in its transaction). Nothing is scheduled for a
/// canceled order.
pub fn schedule(conn: &mut Conn, order_id: &str, next: Option<i64>) -> Result<(), Error> {
    diesel::update(
        star_orders::table
            .find(order_id)
            .filter(star_orders::canceled_at.is_null()),
    )
    .set(star_orders::next_issue.eq(next))
    .exec(conn)?;
    Ok(())
}

/// STAR orders whose next certificate is due at `now`, not canceled, the
/// most overdue first, at most `limit`.
pub fn due(conn: &mut Conn, now: i64, limit: i64) -> Result<Vec<StarRow>, Error> {
    Ok(star_orders::table
        .filter(star_orders::next_issue.le(now))
        .filter(star_orders::canceled_at.is_null())
        .order(star_orders::next_issue.asc())
        .limit(limit)
        .select(columns::<StarRow>())
        .fetch_all(conn)?)
}

/// Fixes the nominal start of the next reissue of `order_id` at `start`,
/// unless one is already fixed (a retry keeps it, so it asks the signer
/// for the same certificate). Returns the start in force, or `None` when
/// the order is canceled or has nothing due.
pub fn begin_reissue(conn: &mut Conn, order_id: &str, start: i64) -> Result<Option<i64>, Error> {
    diesel::update(
        star_orders::table
            .find(order_id)
            .filter(star_orders::reissue_start.is_null())
            .filter(star_orders::next_issue.is_not_null())
            .filter(star_orders::canceled_at.is_null()),
    )
    .set(star_orders::reissue_start.eq(Some(start)))
    .exec(conn)?;
    let row = by_order(conn, order_id)?;
    Ok(row
        .filter(|r| r.canceled_at.is_none() && r.next_issue.is_some())
        .and_then(|r| r.reissue_start))
}

/// Stops the reissues of `order_id` (the last certificate was issued, or
/// the signer refused).
pub fn stop(conn: &mut Conn, order_id: &str) -> Result<(), Error> {
    diesel::update(star_orders::table.find(order_id))
        .set((
            star_orders::next_issue.eq(None::<i64>),
            star_orders::reissue_start.eq(None::<i64>),
        ))
        .exec(conn)?;
    Ok(())
}

/// Records a reissued certificate: its row, the order's current
/// certificate moved to it, and the next one scheduled at `next` (unless
/// the order was canceled meanwhile). Durable, like every certificate.
pub fn complete_reissue(
    conn: &mut Conn,
    cert: CertRow,
    next: Option<i64>,
    now: i64,
) -> Result<(), Error> {
    super::durable_tx(conn, |conn| {
        diesel::insert_into(certificates::table)
            .values(&cert)
            .exec(conn)?;
        diesel::update(orders::table.find(&cert.order_id))
            .set((
                orders::certificate_id.eq(Some(&cert.id)),
                orders::updated.eq(now),
            ))
            .exec(conn)?;
        diesel::update(star_orders::table.find(&cert.order_id))
            .set(star_orders::reissue_start.eq(None::<i64>))
            .exec(conn)?;
        schedule(conn, &cert.order_id, next)
    })
}

/// Cancels order `order_id`'s auto-renewal at `now`. False when it was
/// already canceled.
pub fn cancel(conn: &mut Conn, order_id: &str, now: i64) -> Result<bool, Error> {
    let n = diesel::update(
        star_orders::table
            .find(order_id)
            .filter(star_orders::canceled_at.is_null()),
    )
    .set((
        star_orders::canceled_at.eq(Some(now)),
        star_orders::next_issue.eq(None::<i64>),
    ))
    .exec(conn)?;
    Ok(n == 1)
}
