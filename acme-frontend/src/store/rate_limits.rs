//! Rate-limit state: GCRA buckets (a theoretical arrival time per limit and
//! key), paused account/identifier pairs, and the counts of an account's
//! pending orders and authorizations. The decisions are made in
//! `crate::rate_limits`, inside the writer job of the request they limit,
//! so a bucket's read and update are one transaction with the change they
//! allow (and a change that fails takes its spend back with it).

use diesel::dsl::{count_star, min};
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::status::static_sql;
use super::{Conn, Query};
use shared_proto::Identifier;

use super::schema::{authorizations, orders, paused_identifiers, rate_limit_buckets};
use crate::error::Error;

/// The TAT (Unix milliseconds) of a bucket, `None` when it has no row
/// (a full bucket).
///
/// On PostgreSQL the bucket is first locked until the transaction ends
/// (`pg_advisory_xact_lock` on its name: a full bucket has no row to lock),
/// so two front ends spending from it at once take turns and neither
/// spends a token the other already spent.
pub fn tat(conn: &mut Conn, limit: &str, key: &str) -> Result<Option<i64>, Error> {
    if let Conn::Pg(c) = conn {
        lock_named(c, &format!("bucket:{limit}:{key}"))?;
    }
    Ok(rate_limit_buckets::table
        .find((limit, key))
        .select(rate_limit_buckets::tat)
        .fetch_one(conn)
        .optional()?)
}

/// PostgreSQL: a lock on `name` held until the end of the transaction
/// (every front end on the database waits for it).
fn lock_named(c: &mut diesel::PgConnection, name: &str) -> Result<(), Error> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind::<diesel::sql_types::Text, _>(name)
        .execute(c)?;
    Ok(())
}

/// Stores a bucket's new TAT.
pub fn set_tat(conn: &mut Conn, limit: &str, key: &str, tat: i64) -> Result<(), Error> {
    diesel::insert_into(rate_limit_buckets::table)
        .values((
            rate_limit_buckets::limit_name.eq(limit),
            rate_limit_buckets::bucket_key.eq(key),
            rate_limit_buckets::tat.eq(tat),
        ))
        .on_conflict((
            rate_limit_buckets::limit_name,
            rate_limit_buckets::bucket_key,
        ))
        .do_update()
        .set(rate_limit_buckets::tat.eq(tat))
        .exec(conn)?;
    Ok(())
}

/// Fills a bucket: deletes its row.
pub fn reset(conn: &mut Conn, limit: &str, key: &str) -> Result<(), Error> {
    diesel::delete(rate_limit_buckets::table.find((limit, key))).exec(conn)?;
    Ok(())
}

/// Fills every bucket of `limit` whose key starts with `prefix`; how many.
pub fn reset_prefix(conn: &mut Conn, limit: &str, prefix: &str) -> Result<usize, Error> {
    // `prefix` is an account id (base64url) and '/': no LIKE wildcards, but
    // escape them anyway.
    let pattern = format!(
        "{}%",
        prefix
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    Ok(diesel::delete(
        rate_limit_buckets::table
            .filter(rate_limit_buckets::limit_name.eq(limit))
            .filter(rate_limit_buckets::bucket_key.like(pattern).escape('\\')),
    )
    .exec(conn)?)
}

/// Deletes at most `limit` buckets that are full at `now_ms` (their rows
/// say nothing a missing row does not); how many.
pub fn prune_full(conn: &mut Conn, now_ms: i64, limit: i64) -> Result<usize, Error> {
    let due: Vec<(String, String)> = rate_limit_buckets::table
        .filter(rate_limit_buckets::tat.le(now_ms))
        .select((
            rate_limit_buckets::limit_name,
            rate_limit_buckets::bucket_key,
        ))
        .limit(limit)
        .fetch_all(conn)?;
    for (name, key) in &due {
        diesel::delete(rate_limit_buckets::table.find((name, key))).exec(conn)?;
    }
    Ok(due.len())
}

/// Pauses `account_id` for `id` (its validated name, without a wildcard
/// label). False when it already was.
pub fn pause(conn: &mut Conn, account_id: &str, id: &Identifier, now: i64) -> Result<bool, Error> {
    let n = diesel::insert_into(paused_identifiers::table)
        .values((
            paused_identifiers::account_id.eq(account_id),
            paused_identifiers::identifier_type.eq(id.kind.as_str()),
            paused_identifiers::identifier_value.eq(id.base_name()),
            paused_identifiers::paused_at.eq(now),
        ))
        .on_conflict_do_nothing()
        .exec(conn)?;
    Ok(n == 1)
}

/// Which of `ids` are paused for `account_id`, as `type:name`.
pub fn paused_among(
    conn: &mut Conn,
    account_id: &str,
    ids: &[Identifier],
) -> Result<Vec<String>, Error> {
    let mut found = Vec::new();
    for id in ids {
        let hit = paused_identifiers::table
            .find((account_id, id.kind.as_str(), id.base_name()))
            .select(paused_identifiers::paused_at)
            .fetch_one::<i64>(conn)
            .optional()?;
        if hit.is_some() {
            found.push(format!("{}:{}", id.kind.as_str(), id.base_name()));
        }
    }
    Ok(found)
}

/// Every identifier paused for `account_id`, as `(type, name)`.
pub fn paused_of(conn: &mut Conn, account_id: &str) -> Result<Vec<(String, String)>, Error> {
    Ok(paused_identifiers::table
        .filter(paused_identifiers::account_id.eq(account_id))
        .order((
            paused_identifiers::identifier_type.asc(),
            paused_identifiers::identifier_value.asc(),
        ))
        .select((
            paused_identifiers::identifier_type,
            paused_identifiers::identifier_value,
        ))
        .fetch_all(conn)?)
}

/// Lifts the pause of `account_id` for `(type, name)`; false when it was
/// not paused.
pub fn unpause(conn: &mut Conn, account_id: &str, kind: &str, name: &str) -> Result<bool, Error> {
    let n = diesel::delete(paused_identifiers::table.find((account_id, kind, name))).exec(conn)?;
    Ok(n == 1)
}

/// How many orders of `account_id` are not yet finalized (pending or
/// ready) and unexpired at `now` (seconds), and when the first of them
/// expires.
pub fn unfinished_orders(
    conn: &mut Conn,
    account_id: &str,
    now: i64,
) -> Result<(i64, Option<i64>), Error> {
    if let Conn::Pg(c) = conn {
        // Count and insert under one lock per account across front ends.
        lock_named(c, &format!("orders:{account_id}"))?;
    }
    Ok(unfinished_orders_query!(account_id, now).fetch_one(conn)?)
}

/// The query of [`unfinished_orders`] (a macro: its type is generic over
/// the backend, and a test reads SQLite's plan for it).
macro_rules! unfinished_orders_query {
    ($account_id:expr, $now:expr) => {
        // The status test is written out so that SQLite matches it with
        // the partial index `idx_orders_account_unfinished` (a bound
        // parameter would not match the index's literal).
        orders::table
            .filter(orders::account_id.eq($account_id))
            .filter(static_sql::<Bool>("status IN ('pending', 'ready')"))
            .filter(orders::expires.gt($now))
            .select((count_star(), min(orders::expires)))
    };
}
use unfinished_orders_query;

/// How many authorizations of `account_id` are pending and unexpired at
/// `now` (seconds), and when the first of them expires.
pub fn pending_authzs(
    conn: &mut Conn,
    account_id: &str,
    now: i64,
) -> Result<(i64, Option<i64>), Error> {
    if let Conn::Pg(c) = conn {
        lock_named(c, &format!("authzs:{account_id}"))?;
    }
    Ok(pending_authzs_query!(account_id, now).fetch_one(conn)?)
}

/// The query of [`pending_authzs`], as [`unfinished_orders_query`].
macro_rules! pending_authzs_query {
    ($account_id:expr, $now:expr) => {
        // Written out for the partial index `idx_authz_account_pending`.
        authorizations::table
            .filter(authorizations::account_id.eq($account_id))
            .filter(static_sql::<Bool>("status = 'pending'"))
            .filter(authorizations::expires.gt($now))
            .select((count_star(), min(authorizations::expires)))
    };
}
use pending_authzs_query;

#[cfg(test)]
mod tests {
    use diesel::sqlite::Sqlite;

    use super::*;

    #[derive(QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }

    /// SQLite's plan for a statement diesel built (its SQL, binds unset).
    fn plan<Q: diesel::query_builder::QueryFragment<Sqlite>>(conn: &mut Conn, q: &Q) -> String {
        let text = diesel::debug_query::<Sqlite, _>(q).to_string();
        let sql = text.split(" -- binds").next().unwrap_or_default();
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .fetch_all::<Plan>(conn)
            .expect("plan")
            .into_iter()
            .map(|p| p.detail)
            .collect::<Vec<_>>()
            .join("; ")
    }

    #[test]
    fn the_pending_counts_use_their_partial_indexes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        crate::store::Store::open(&path).expect("migrate");
        let mut conn = crate::store::Store::open_read_only(&path).expect("open");
        let orders = plan(&mut conn, &unfinished_orders_query!("a", 0));
        assert!(orders.contains("idx_orders_account_unfinished"), "{orders}");
        let authzs = plan(&mut conn, &pending_authzs_query!("a", 0));
        assert!(authzs.contains("idx_authz_account_pending"), "{authzs}");
        assert_eq!(
            unfinished_orders(&mut conn, "a", 0).expect("count"),
            (0, None)
        );
        assert_eq!(pending_authzs(&mut conn, "a", 0).expect("count"), (0, None));
    }
}
