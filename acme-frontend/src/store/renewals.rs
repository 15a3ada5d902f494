//! ACME Renewal Information (RFC 9773) state: which certificate a finalized
//! order replaces, and the certificates an operator asked to be renewed at
//! once.

use super::{Conn, Query};
use diesel::prelude::*;

use super::schema::{certificates, renewal_marks, replacements};
use crate::error::Error;

/// Claims certificate `certificate_id` for order `order_id`, which replaces
/// it. True when the claim is this order's (now or already); false when
/// another order holds it. Atomic through the table's primary key.
pub fn claim(
    conn: &mut Conn,
    certificate_id: &str,
    order_id: &str,
    now: i64,
) -> Result<bool, Error> {
    diesel::insert_into(replacements::table)
        .values((
            replacements::certificate_id.eq(certificate_id),
            replacements::order_id.eq(order_id),
            replacements::created.eq(now),
        ))
        .on_conflict_do_nothing()
        .exec(conn)?;
    Ok(replaced_by(conn, certificate_id)?.as_deref() == Some(order_id))
}

/// Drops the claim of order `order_id` (its issuance failed), so another
/// order may replace the certificate.
pub fn release(conn: &mut Conn, order_id: &str) -> Result<(), Error> {
    diesel::delete(replacements::table.filter(replacements::order_id.eq(order_id))).exec(conn)?;
    Ok(())
}

/// The order that replaced certificate `certificate_id`, if any.
pub fn replaced_by(conn: &mut Conn, certificate_id: &str) -> Result<Option<String>, Error> {
    Ok(replacements::table
        .find(certificate_id)
        .select(replacements::order_id)
        .fetch_one(conn)
        .optional()?)
}

/// The operator's early-renewal mark of a certificate: when it was set and
/// the explanation URL given with it.
pub fn mark(conn: &mut Conn, certificate_id: &str) -> Result<Option<(i64, Option<String>)>, Error> {
    Ok(renewal_marks::table
        .find(certificate_id)
        .select((renewal_marks::marked_at, renewal_marks::explanation_url))
        .fetch_one(conn)
        .optional()?)
}

/// Marks certificates for early renewal (a mark already there is replaced,
/// so the latest explanation wins). Returns how many were marked.
pub fn mark_early(
    conn: &mut Conn,
    certificate_ids: &[String],
    explanation_url: Option<&str>,
    now: i64,
) -> Result<usize, Error> {
    let mut n = 0;
    for id in certificate_ids {
        n += diesel::insert_into(renewal_marks::table)
            .values((
                renewal_marks::certificate_id.eq(id),
                renewal_marks::marked_at.eq(now),
                renewal_marks::explanation_url.eq(explanation_url),
            ))
            .on_conflict(renewal_marks::certificate_id)
            .do_update()
            .set((
                renewal_marks::marked_at.eq(now),
                renewal_marks::explanation_url.eq(explanation_url),
            ))
            .exec(conn)?;
    }
    Ok(n)
}

/// Ids of the certificates issued (signed) before `before` that have not
/// expired at `now`: the set an incident's `renew-early --issued-before`
/// names.
pub fn unexpired_issued_before(
    conn: &mut Conn,
    before: i64,
    now: i64,
) -> Result<Vec<String>, Error> {
    Ok(certificates::table
        .filter(certificates::created.lt(before))
        .filter(certificates::not_after.gt(now))
        .select(certificates::id)
        .fetch_all(conn)?)
}
