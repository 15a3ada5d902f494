//! Operator maintenance of the database file: a consistent online copy
//! (`VACUUM INTO`) and consistency checks.
//!
//! SQLite's online backup API (`sqlite3_backup_*`) is reachable only
//! through `unsafe` FFI (diesel does not wrap it, and unsafe code is denied
//! here). `VACUUM INTO` gives the same guarantee through SQL: it copies the
//! database as one read transaction sees it, so the copy is a consistent
//! snapshot, and in WAL mode that read transaction does not stop the writer
//! (commits go on into the WAL while the copy is written).

use std::path::Path;

use super::{Conn, Query};
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::error::Error;

/// Writes a consistent copy of the database at `db_path` to `out`, which
/// must not exist or be an empty file (SQLite refuses anything else; an
/// empty file keeps its mode). Runs as one read transaction on a read-only
/// connection of its own, beside a running writer.
pub fn vacuum_into(db_path: &Path, out: &Path) -> Result<(), Error> {
    let out = out
        .to_str()
        .ok_or_else(|| Error::Malformed(format!("{} is not a UTF-8 path", out.display())))?;
    if !db_path.exists() {
        return Err(Error::Io {
            context: "opening",
            path: db_path.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "database not found"),
        });
    }
    // Read-only by its URI, not by `query_only`, which refuses VACUUM INTO
    // even though it writes only to `out`.
    let mut conn = super::connect(
        &format!("file:{}?mode=ro", db_path.display()),
        "PRAGMA busy_timeout = 5000;",
    )?;
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(out)
        .execute(&mut conn)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// What is wrong with the database: the lines of `PRAGMA integrity_check`
/// other than `ok`, then one line per row whose foreign key points at a
/// missing row (`PRAGMA foreign_key_check`). Empty when it is consistent.
pub fn problems(conn: &mut Conn) -> Result<Vec<String>, Error> {
    if conn.is_pg() {
        // PostgreSQL enforces its foreign keys and checks its pages itself
        // (`amcheck`, `pg_amcheck` are the operator's tools).
        return Ok(Vec::new());
    }
    let mut lines: Vec<String> =
        diesel::sql_query("SELECT integrity_check AS line FROM pragma_integrity_check")
            .fetch_all::<Line>(conn)?
            .into_iter()
            .map(|l| l.line)
            .filter(|l| l != "ok")
            .collect();
    lines.extend(
        diesel::sql_query(
            "SELECT \"table\" || ' row ' || coalesce(rowid, '?') || ' refers to a missing ' \
             || parent || ' row' AS line FROM pragma_foreign_key_check",
        )
        .fetch_all::<Line>(conn)?
        .into_iter()
        .map(|l| l.line),
    );
    Ok(lines)
}

/// How many certificate rows the database holds.
pub fn certificate_count(conn: &mut Conn) -> Result<i64, Error> {
    Ok(super::schema::certificates::table.count().fetch_one(conn)?)
}
