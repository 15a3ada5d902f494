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
