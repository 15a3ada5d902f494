//! Accounts.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;

use super::models::AccountRow;
use super::schema::accounts::dsl;
use crate::error::Error;

/// The account whose key has this thumbprint.
pub fn by_thumbprint(conn: &mut SqliteConnection, tp: &str) -> Result<Option<AccountRow>, Error> {
    Ok(dsl::accounts
        .filter(dsl::jwk_thumbprint.eq(tp))
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?)
}

/// The account with this id.
pub fn by_id(conn: &mut SqliteConnection, id: &str) -> Result<Option<AccountRow>, Error> {
    Ok(dsl::accounts
        .find(id)
        .select(AccountRow::as_select())
        .first(conn)
        .optional()?)
}

/// Inserts `row`, or returns the account that already has its key (a
/// concurrent new-account with the same key): `(account, created)`.
pub fn insert_or_existing(
    conn: &mut SqliteConnection,
    row: AccountRow,
) -> Result<(AccountRow, bool), Error> {
    match diesel::insert_into(dsl::accounts)
        .values(&row)
        .execute(conn)
    {
        Ok(_) => Ok((row, true)),
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
            let existing = by_thumbprint(conn, &row.jwk_thumbprint)?
                .ok_or_else(|| Error::Internal("account vanished after conflict".into()))?;
            Ok((existing, false))
        }
        Err(e) => Err(e.into()),
    }
}

/// Replaces the contact list.
pub fn update_contact(
    conn: &mut SqliteConnection,
    id: &str,
    contact_json: &str,
    now: i64,
) -> Result<(), Error> {
    diesel::update(dsl::accounts.find(id))
        .set((dsl::contact.eq(contact_json), dsl::updated.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Sets the status (deactivation is final; callers check).
pub fn set_status(
    conn: &mut SqliteConnection,
    id: &str,
    status: &str,
    now: i64,
) -> Result<(), Error> {
    diesel::update(dsl::accounts.find(id))
        .set((dsl::status.eq(status), dsl::updated.eq(now)))
        .execute(conn)?;
    Ok(())
}
