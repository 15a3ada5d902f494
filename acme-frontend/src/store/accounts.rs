//! Accounts.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;

use super::models::AccountRow;
use super::schema::account_keys;
use super::schema::accounts::dsl;
use crate::error::Error;

/// The account whose key has this thumbprint.
pub fn by_thumbprint(conn: &mut SqliteConnection, tp: &str) -> Result<Option<AccountRow>, Error> {
    Ok(dsl::accounts
        .filter(dsl::jwk_thumbprint.eq(tp))
        .select(AccountRow::as_select())
        .get_result(conn)
        .optional()?)
}

/// The account with this id.
pub fn by_id(conn: &mut SqliteConnection, id: &str) -> Result<Option<AccountRow>, Error> {
    Ok(dsl::accounts
        .find(id)
        .select(AccountRow::as_select())
        .get_result(conn)
        .optional()?)
}

/// Inserts `row`, or returns the account that already has its key (a
/// concurrent new-account with the same key): `(account, created)`.
pub fn insert_or_existing(
    conn: &mut SqliteConnection,
    row: AccountRow,
) -> Result<(AccountRow, bool), Error> {
    // Callers run this in a writer job (one transaction), so the account
    // and the first row of its key history commit together.
    match diesel::insert_into(dsl::accounts)
        .values(&row)
        .execute(conn)
    {
        Ok(_) => {
            diesel::insert_into(account_keys::table)
                .values((
                    account_keys::account_id.eq(&row.id),
                    account_keys::jwk_thumbprint.eq(&row.jwk_thumbprint),
                    account_keys::added.eq(row.created),
                ))
                .execute(conn)?;
            Ok((row, true))
        }
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
    status: crate::protocol::AccountStatus,
    now: i64,
) -> Result<(), Error> {
    diesel::update(dsl::accounts.find(id))
        .set((dsl::status.eq(status), dsl::updated.eq(now)))
        .execute(conn)?;
    Ok(())
}

/// Result of a key rollover.
pub enum KeySwap {
    /// The account, now with the new key.
    Done(AccountRow),
    /// Another account (this id) already has the new key.
    KeyInUse(String),
    /// The account's key is no longer `old_thumbprint`.
    Stale,
}

/// Replaces an account's key atomically, if it still has `old_thumbprint`
/// and no account has the new key (RFC 8555 §7.3.5).
pub fn swap_key(
    conn: &mut SqliteConnection,
    id: &str,
    old_thumbprint: &str,
    jwk: &str,
    thumbprint: &str,
    now: i64,
) -> Result<KeySwap, Error> {
    super::write_tx(conn, |conn| {
        if let Some(other) = by_thumbprint(conn, thumbprint)? {
            return Ok(KeySwap::KeyInUse(other.id));
        }
        let n = diesel::update(
            dsl::accounts
                .find(id)
                .filter(dsl::jwk_thumbprint.eq(old_thumbprint)),
        )
        .set((
            dsl::jwk.eq(jwk),
            dsl::jwk_thumbprint.eq(thumbprint),
            dsl::updated.eq(now),
        ))
        .execute(conn)?;
        if n != 1 {
            return Ok(KeySwap::Stale);
        }
        diesel::update(
            account_keys::table
                .filter(account_keys::account_id.eq(id))
                .filter(account_keys::jwk_thumbprint.eq(old_thumbprint)),
        )
        .set(account_keys::retired.eq(now))
        .execute(conn)?;
        // A key the account had before is current again (its earlier
        // period is replaced: the history is the set of keys and when
        // each was last taken up).
        diesel::replace_into(account_keys::table)
            .values((
                account_keys::account_id.eq(id),
                account_keys::jwk_thumbprint.eq(thumbprint),
                account_keys::added.eq(now),
                account_keys::retired.eq(None::<i64>),
            ))
            .execute(conn)?;
        let row = by_id(conn, id)?.ok_or_else(|| Error::Internal("account vanished".into()))?;
        Ok(KeySwap::Done(row))
    })
}

/// One key an account has used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoricKey {
    /// The key's JWK thumbprint (RFC 7638, base64url).
    pub thumbprint: String,
    /// When the account began using it (creation or key-change), Unix
    /// seconds.
    pub added: i64,
    /// When a key-change replaced it; `None` for the current key.
    pub retired: Option<i64>,
}

/// Every key account `id` has used, oldest first.
pub fn key_history(conn: &mut SqliteConnection, id: &str) -> Result<Vec<HistoricKey>, Error> {
    let rows: Vec<(String, i64, Option<i64>)> = account_keys::table
        .filter(account_keys::account_id.eq(id))
        .order((
            account_keys::added.asc(),
            account_keys::jwk_thumbprint.asc(),
        ))
        .select((
            account_keys::jwk_thumbprint,
            account_keys::added,
            account_keys::retired,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(thumbprint, added, retired)| HistoricKey {
            thumbprint,
            added,
            retired,
        })
        .collect())
}
