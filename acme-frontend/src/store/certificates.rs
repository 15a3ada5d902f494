//! Issued certificates.

use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;

use super::models::CertRow;
use super::schema::certificates::dsl;
use crate::error::Error;

/// The certificate with this id.
pub fn by_id(conn: &mut SqliteConnection, id: &str) -> Result<Option<CertRow>, Error> {
    Ok(dsl::certificates
        .find(id)
        .select(CertRow::as_select())
        .first(conn)
        .optional()?)
}

/// The certificate with this serial (lower-case hex).
pub fn by_serial(conn: &mut SqliteConnection, serial: &str) -> Result<Option<CertRow>, Error> {
    Ok(dsl::certificates
        .filter(dsl::serial_number.eq(serial))
        .select(CertRow::as_select())
        .first(conn)
        .optional()?)
}

/// Marks a valid certificate revoked; false if it already was.
pub fn revoke(conn: &mut SqliteConnection, id: &str, reason: i32, now: i64) -> Result<bool, Error> {
    let n = diesel::update(dsl::certificates.find(id).filter(dsl::status.eq("valid")))
        .set((
            dsl::status.eq("revoked"),
            dsl::revoked_at.eq(Some(now)),
            dsl::revocation_reason.eq(Some(reason)),
        ))
        .execute(conn)?;
    Ok(n == 1)
}
