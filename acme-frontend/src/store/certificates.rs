//! Issued certificates.

use super::models::columns;
use super::{Conn, Query};
use diesel::prelude::*;

use super::models::{CertRow, OrderRow};
use super::schema::certificates::dsl;
use crate::error::Error;
use crate::protocol::CertificateStatus;

/// The certificate with this id.
pub fn by_id(conn: &mut Conn, id: &str) -> Result<Option<CertRow>, Error> {
    Ok(dsl::certificates
        .find(id)
        .select(columns::<CertRow>())
        .fetch_one(conn)
        .optional()?)
}

/// The certificate with this serial (lower-case hex).
pub fn by_serial(conn: &mut Conn, serial: &str) -> Result<Option<CertRow>, Error> {
    Ok(dsl::certificates
        .filter(dsl::serial_number.eq(serial))
        .select(columns::<CertRow>())
        .fetch_one(conn)
        .optional()?)
}

/// Marks a valid certificate revoked; false if it already was.
pub fn revoke(conn: &mut Conn, id: &str, reason: i32, now: i64) -> Result<bool, Error> {
    // A revocation is acknowledged only once it is on disk.
    let n = super::durable_tx(conn, |conn| {
        Ok(diesel::update(
            dsl::certificates
                .find(id)
                .filter(dsl::status.eq(CertificateStatus::Valid)),
        )
        .set((
            dsl::status.eq(CertificateStatus::Revoked),
            dsl::revoked_at.eq(Some(now)),
            dsl::revocation_reason.eq(Some(reason)),
        ))
        .exec(conn)?)
    })?;
    Ok(n == 1)
}

/// Every revoked certificate that has not expired as of `now`:
/// `(serial, revoked_at, reason)`.
pub fn revoked_unexpired(
    conn: &mut Conn,
    now: i64,
) -> Result<Vec<(String, i64, Option<i32>)>, Error> {
    let rows: Vec<(String, Option<i64>, Option<i32>)> = dsl::certificates
        .filter(dsl::status.eq(CertificateStatus::Revoked))
        .filter(dsl::not_after.gt(now))
        .order(dsl::serial_number.asc())
        .select((dsl::serial_number, dsl::revoked_at, dsl::revocation_reason))
        .fetch_all(conn)?;
    Ok(rows
        .into_iter()
        .map(|(s, at, reason)| (s, at.unwrap_or(0), reason))
        .collect())
}

/// A cheap fingerprint of the revocation state: `(count, latest revocation)`.
pub fn revocation_mark(conn: &mut Conn) -> Result<(i64, i64), Error> {
    use diesel::dsl::{count_star, max};
    let (n, latest): (i64, Option<i64>) = dsl::certificates
        .filter(dsl::status.eq(CertificateStatus::Revoked))
        .select((count_star(), max(dsl::revoked_at)))
        .fetch_first(conn)?;
    Ok((n, latest.unwrap_or(0)))
}

/// Every certificate serial in the database.
pub fn all_serials(conn: &mut Conn) -> Result<Vec<String>, Error> {
    Ok(dsl::certificates
        .select(dsl::serial_number)
        .fetch_all(conn)?)
}

/// A certificate's DER and its transparency-log index.
pub type Logged = (Vec<u8>, Option<i64>);

/// Every certificate's DER and transparency-log index, in creation order,
/// for `akamu-cli log verify --config`.
pub fn all_logged(conn: &mut Conn) -> Result<Vec<Logged>, Error> {
    Ok(dsl::certificates
        .order(dsl::created.asc())
        .select((dsl::der, dsl::mtc_log_index))
        .fetch_all(conn)?)
}

/// Stores a certificate found only in the signer's audit log (a crash
/// between the signature and its commit, or a restored backup older than
/// the signature): inserts its row and, if its order still waits in
/// `processing`, completes the order with it, in one durable transaction.
/// When the order row is gone (created after the backup, or deleted), the
/// certificate's row needs one (`certificates.order_id` refers to it):
/// `stand_in`, a `valid` order naming the certificate, is inserted first.
/// False (and nothing written) when a row with its serial exists already.
pub fn import(conn: &mut Conn, cert: CertRow, stand_in: OrderRow, now: i64) -> Result<bool, Error> {
    use super::schema::orders;
    use crate::protocol::OrderStatus;

    super::durable_tx(conn, |conn| {
        if by_serial(conn, &cert.serial_number)?.is_some() {
            return Ok(false);
        }
        if super::orders::by_id(conn, &cert.order_id)?.is_none() {
            diesel::insert_into(orders::table)
                .values(&OrderRow {
                    id: cert.order_id.clone(),
                    certificate_id: Some(cert.id.clone()),
                    status: OrderStatus::Valid,
                    ..stand_in
                })
                .exec(conn)?;
        }
        diesel::insert_into(dsl::certificates)
            .values(&cert)
            .exec(conn)?;
        super::orders::finish_processing(conn, &cert.order_id, &cert.id, now)?;
        Ok(true)
    })
}
