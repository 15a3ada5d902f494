//! Accounts.

use super::models::columns;
use super::{Conn, Query};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::models::AccountRow;
use super::schema::accounts::dsl;
use super::schema::{account_keys, persist_hashes};
use crate::error::Error;

/// The account whose key has this thumbprint.
pub fn by_thumbprint(conn: &mut Conn, tp: &str) -> Result<Option<AccountRow>, Error> {
    Ok(dsl::accounts
        .filter(dsl::jwk_thumbprint.eq(tp))
        .select(columns::<AccountRow>())
        .fetch_one(conn)
        .optional()?)
}

/// The account with this id.
pub fn by_id(conn: &mut Conn, id: &str) -> Result<Option<AccountRow>, Error> {
    Ok(dsl::accounts
        .find(id)
        .select(columns::<AccountRow>())
        .fetch_one(conn)
        .optional()?)
}

/// Inserts `row`, or returns the account that already has its key (a
/// concurrent new-account with the same key): `(account, created)`.
pub fn insert_or_existing(conn: &mut Conn, row: AccountRow) -> Result<(AccountRow, bool), Error> {
    // Callers run this in a writer job (one transaction), so the account
    // and the first row of its key history commit together.
    let insert = |c: &mut Conn| diesel::insert_into(dsl::accounts).values(&row).exec(c);
    // PostgreSQL aborts the whole transaction on a failed statement: the
    // insert gets a savepoint of its own there, so a conflict (another
    // front end created the account) can still be answered.
    let inserted = if conn.is_pg() {
        conn.transaction(insert)
    } else {
        insert(conn)
    };
    match inserted {
        Ok(_) => {
            diesel::insert_into(account_keys::table)
                .values((
                    account_keys::account_id.eq(&row.id),
                    account_keys::jwk_thumbprint.eq(&row.jwk_thumbprint),
                    account_keys::added.eq(row.created),
                ))
                .exec(conn)?;
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
    conn: &mut Conn,
    id: &str,
    contact_json: &str,
    now: i64,
) -> Result<(), Error> {
    diesel::update(dsl::accounts.find(id))
        .set((dsl::contact.eq(contact_json), dsl::updated.eq(now)))
        .exec(conn)?;
    Ok(())
}

/// Sets the status (deactivation is final; callers check).
pub fn set_status(
    conn: &mut Conn,
    id: &str,
    status: crate::protocol::AccountStatus,
    now: i64,
) -> Result<(), Error> {
    diesel::update(dsl::accounts.find(id))
        .set((dsl::status.eq(status), dsl::updated.eq(now)))
        .exec(conn)?;
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
    conn: &mut Conn,
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
        let update = |c: &mut Conn| {
            diesel::update(
                dsl::accounts
                    .find(id)
                    .filter(dsl::jwk_thumbprint.eq(old_thumbprint)),
            )
            .set((
                dsl::jwk.eq(jwk),
                dsl::jwk_thumbprint.eq(thumbprint),
                dsl::updated.eq(now),
            ))
            .exec(c)
        };
        // Another front end may give the key to an account between the
        // check above and this update (PostgreSQL, READ COMMITTED): the
        // unique index refuses it, and the answer is the same as the
        // check's. The update gets a savepoint there so that the
        // transaction survives the refusal.
        let updated = if conn.is_pg() {
            conn.transaction(update)
        } else {
            update(conn)
        };
        let n = match updated {
            Ok(n) => n,
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                return match by_thumbprint(conn, thumbprint)? {
                    Some(other) => Ok(KeySwap::KeyInUse(other.id)),
                    None => Err(Error::Internal(
                        "key-change refused by the unique index, but no account has the key".into(),
                    )),
                };
            }
            Err(e) => return Err(e.into()),
        };
        if n != 1 {
            return Ok(KeySwap::Stale);
        }
        diesel::update(
            account_keys::table
                .filter(account_keys::account_id.eq(id))
                .filter(account_keys::jwk_thumbprint.eq(old_thumbprint)),
        )
        .set(account_keys::retired.eq(now))
        .exec(conn)?;
        // A key the account had before is current again (its earlier
        // period is replaced: the history is the set of keys and when
        // each was last taken up).
        diesel::insert_into(account_keys::table)
            .values((
                account_keys::account_id.eq(id),
                account_keys::jwk_thumbprint.eq(thumbprint),
                account_keys::added.eq(now),
                account_keys::retired.eq(None::<i64>),
            ))
            .on_conflict((account_keys::account_id, account_keys::jwk_thumbprint))
            .do_update()
            .set((
                account_keys::added.eq(now),
                account_keys::retired.eq(None::<i64>),
            ))
            .exec(conn)?;
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
pub fn key_history(conn: &mut Conn, id: &str) -> Result<Vec<HistoricKey>, Error> {
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
        .fetch_all(conn)?;
    Ok(rows
        .into_iter()
        .map(|(thumbprint, added, retired)| HistoricKey {
            thumbprint,
            added,
            retired,
        })
        .collect())
}

/// A hashed account URI that passed a dns-persist-01 validation
/// (draft-ietf-acme-dns-persist-02 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersistHash {
    /// The record's `accounturi`.
    pub uri: String,
    /// The name it was computed over, or `*`.
    pub domain: String,
    /// The thumbprint of the key it was computed with.
    pub thumbprint: String,
}

/// Keeps a hashed URI that granted account `id` a validation (once: a
/// later pass of the same URI keeps the first key and time).
pub fn keep_persist_hash(
    conn: &mut Conn,
    id: &str,
    hash: &PersistHash,
    now: i64,
) -> Result<(), Error> {
    diesel::insert_into(persist_hashes::table)
        .values((
            persist_hashes::account_id.eq(id),
            persist_hashes::hashed_uri.eq(&hash.uri),
            persist_hashes::domain.eq(&hash.domain),
            persist_hashes::jwk_thumbprint.eq(&hash.thumbprint),
            persist_hashes::validated.eq(now),
        ))
        .on_conflict_do_nothing()
        .exec(conn)?;
    Ok(())
}

/// The hashed URIs of account `id` still accepted at `domain` although
/// made with a key the account has since replaced: those that passed for
/// `domain` or in the domain-less form, whose key was retired less than
/// `rotation_secs` ago (any time when `None`), at most `limit`, newest
/// first. Hashes of the current key are not listed (the validator
/// recomputes them).
pub fn retained_persist_hashes(
    conn: &mut Conn,
    id: &str,
    domain: &str,
    rotation_secs: Option<i64>,
    now: i64,
    limit: usize,
) -> Result<Vec<String>, Error> {
    let keys = key_history(conn, id)?;
    let rows: Vec<(String, String)> = persist_hashes::table
        .filter(persist_hashes::account_id.eq(id))
        .filter(persist_hashes::domain.eq_any([domain, "*"]))
        .order(persist_hashes::validated.desc())
        .select((persist_hashes::hashed_uri, persist_hashes::jwk_thumbprint))
        .fetch_all(conn)?;
    Ok(rows
        .into_iter()
        .filter(|(_, tp)| {
            keys.iter().any(|k| {
                &k.thumbprint == tp
                    && k.retired
                        .is_some_and(|r| rotation_secs.is_none_or(|p| r.saturating_add(p) > now))
            })
        })
        .map(|(uri, _)| uri)
        .take(limit)
        .collect())
}

/// Forgets every hashed URI account `id` passed (draft-02 §4.2 rule 1: a
/// revocation with a certificate key is the emergency stop). Returns how
/// many were forgotten.
pub fn prune_persist_hashes(conn: &mut Conn, id: &str) -> Result<usize, Error> {
    Ok(
        diesel::delete(persist_hashes::table.filter(persist_hashes::account_id.eq(id)))
            .exec(conn)?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// draft-ietf-acme-dns-persist-02 §4.2 and §4.3: a hash made with a
    /// replaced key is offered for its own name and the domain-less form
    /// only, until `keyRotationPeriod` has run from the key-change; the
    /// current key's hashes are not listed; pruning forgets them all.
    #[test]
    fn retained_hashes_follow_the_rotation_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        crate::store::Store::open(&path).expect("migrate");
        let mut c = Conn::Sqlite(
            diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("open"),
        );
        // The dropped store's writer thread may still be closing its
        // connection: wait for its lock rather than fail.
        diesel::connection::SimpleConnection::batch_execute(
            &mut c,
            "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = OFF;",
        )
        .expect("pragmas");
        for (tp, retired) in [("old", Some(1_000)), ("cur", None)] {
            diesel::insert_into(account_keys::table)
                .values((
                    account_keys::account_id.eq("a"),
                    account_keys::jwk_thumbprint.eq(tp),
                    account_keys::added.eq(0),
                    account_keys::retired.eq(retired),
                ))
                .exec(&mut c)
                .expect("key");
        }
        for (uri, domain, tp) in [
            ("h-old-name", "example.com", "old"),
            ("h-old-star", "*", "old"),
            ("h-old-other", "example.net", "old"),
            ("h-cur-name", "example.com", "cur"),
        ] {
            let hash = PersistHash {
                uri: uri.into(),
                domain: domain.into(),
                thumbprint: tp.into(),
            };
            keep_persist_hash(&mut c, "a", &hash, 500).expect("keep");
        }
        let got = |c: &mut Conn, rotation, now| {
            let mut v = retained_persist_hashes(c, "a", "example.com", rotation, now, 64)
                .expect("retained");
            v.sort();
            v
        };
        assert_eq!(got(&mut c, None, 1_000_000), ["h-old-name", "h-old-star"]);
        assert_eq!(got(&mut c, Some(100), 1_099), ["h-old-name", "h-old-star"]);
        assert!(
            got(&mut c, Some(100), 1_100).is_empty(),
            "the period has run"
        );
        assert_eq!(prune_persist_hashes(&mut c, "a").expect("prune"), 4);
        assert!(got(&mut c, None, 1_000_000).is_empty());
    }
}
