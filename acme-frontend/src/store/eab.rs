//! External Account Binding keys (RFC 8555 §7.3.4).

use super::{Conn, Query};
use diesel::prelude::*;

use super::accounts;
use super::models::AccountRow;
use super::schema::eab_keys::dsl;
use super::write_tx;
use crate::error::Error;

/// Seeds keys from the configuration; existing rows (consumed or not) are
/// left untouched.
pub fn seed(conn: &mut Conn, keys: &[(String, Vec<u8>)], now: i64) -> Result<(), Error> {
    for (kid, key) in keys {
        diesel::insert_into(dsl::eab_keys)
            .values((
                dsl::kid.eq(kid),
                dsl::hmac_key.eq(key),
                dsl::created.eq(now),
            ))
            .on_conflict_do_nothing()
            .exec(conn)?;
    }
    Ok(())
}

/// An unconsumed key's HMAC secret; `None` if unknown or already used.
pub fn unused_key(conn: &mut Conn, kid: &str) -> Result<Option<Vec<u8>>, Error> {
    Ok(dsl::eab_keys
        .find(kid)
        .filter(dsl::account_id.is_null())
        .select(dsl::hmac_key)
        .fetch_one(conn)
        .optional()?)
}

/// Creates `row` and consumes `kid` in one transaction. Fails with
/// `unauthorized` if the key was consumed in the meantime.
pub fn create_account_with_key(
    conn: &mut Conn,
    row: AccountRow,
    kid: &str,
) -> Result<(AccountRow, bool), Error> {
    write_tx(conn, |conn| {
        let (account, created) = accounts::insert_or_existing(conn, row)?;
        if !created {
            return Ok((account, false));
        }
        let n = diesel::update(dsl::eab_keys.find(kid).filter(dsl::account_id.is_null()))
            .set((
                dsl::account_id.eq(Some(&account.id)),
                dsl::consumed_at.eq(Some(account.created)),
            ))
            .exec(conn)?;
        if n != 1 {
            // Rolls the account back with the transaction.
            return Err(Error::Unauthorized(
                "the external account key was already used".into(),
            ));
        }
        Ok((account, true))
    })
}
