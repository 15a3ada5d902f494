//! The two migration dialects describe one schema. The SQLite migrations
//! (`migrations/`, embedded in the store) are applied by `Store::open` to a
//! SQLite file; the PostgreSQL ones (`migrations-postgres/`) by diesel to a
//! real PostgreSQL server (`test_kit::postgres`). Both schemas are read back
//! from the servers' catalogues (SQLite's `pragma_*` functions, PostgreSQL's
//! `information_schema` and `pg_catalog`) into one neutral form — tables,
//! columns with their diesel type and nullability, primary keys, unique
//! constraints, named indexes with their uniqueness, columns and
//! predicate (tokenised, so SQLite's `IN (…)` and PostgreSQL's
//! `= ANY (ARRAY[…])` compare equal), foreign keys — and every difference is
//! named.
//!
//! Also: both directories hold the same migration versions (so
//! `refuse_newer_schema` and upgrades mean the same on both), the
//! PostgreSQL migrations revert cleanly, and the comparison does see a
//! difference when one is made.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use acme_frontend::store::Store;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sql_types::{Bool, Integer, Nullable, Text};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl, sql_query};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};
use test_kit::postgres::PgServer;

/// diesel's `__diesel_schema_migrations` bookkeeping (compared by version
/// only).
const DIESEL_TABLE: &str = "__diesel_schema_migrations";

/// A column's type as the store's `table!` definitions name it
/// (`store/schema.rs`): the types valid on both backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ty {
    Text,
    Bool,
    Integer,
    BigInt,
    Binary,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    ty: Ty,
    nullable: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Index {
    unique: bool,
    columns: Vec<String>,
    /// The `WHERE` of a partial index, as [`predicate_tokens`] gives it.
    predicate: Option<Vec<String>>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    columns: BTreeMap<String, Column>,
    primary_key: Vec<String>,
    /// Unique constraints declared on columns (`UNIQUE`), by their columns
    /// (the two engines name their indexes differently).
    unique: BTreeSet<Vec<String>>,
    /// Indexes made by `CREATE INDEX`, by name.
    indexes: BTreeMap<String, Index>,
    /// (column, referenced table, referenced column).
    foreign_keys: BTreeSet<(String, String, String)>,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Schema {
    tables: BTreeMap<String, Table>,
    migrations: Vec<String>,
}

/// Maps a declared type (SQLite) or `information_schema` data type
/// (PostgreSQL) to the diesel type both must carry.
fn ty(engine: &str, table: &str, column: &str, declared: &str) -> Ty {
    match declared.to_ascii_lowercase().as_str() {
        "text" => Ty::Text,
        "boolean" => Ty::Bool,
        "integer" => Ty::Integer,
        "bigint" => Ty::BigInt,
        "blob" | "bytea" => Ty::Binary,
        other => panic!(
            "{engine}: {table}.{column} has type {other:?}, which has no diesel type valid on \
             both backends (use TEXT, BOOLEAN, INTEGER, BIGINT, BLOB/BYTEA)"
        ),
    }
}

/// A partial index's predicate as comparable tokens: lower-case words and
/// operators in order, string literals as written; casts (`::text`), `IS`,
/// `ANY` and `ARRAY` dropped and `IN` read as `=`, so that SQLite's
/// `status IN ('a', 'b')` and PostgreSQL's rendering of the same index,
/// `(status = ANY (ARRAY['a'::text, 'b'::text]))`, give the same tokens.
fn predicate_tokens(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            let mut lit = String::from("'");
            while let Some(d) = chars.next() {
                lit.push(d);
                if d == '\'' {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        break;
                    }
                }
            }
            out.push(lit);
        } else if c.is_alphanumeric() || c == '_' {
            let mut word = c.to_ascii_lowercase().to_string();
            while let Some(&d) = chars.peek().filter(|d| d.is_alphanumeric() || **d == '_') {
                word.push(d.to_ascii_lowercase());
                chars.next();
            }
            match word.as_str() {
                "is" | "any" | "array" | "text" | "bigint" | "integer" | "boolean" => {}
                "in" => out.push("=".to_owned()),
                _ => out.push(word),
            }
        } else if "<>=!".contains(c) {
            let mut op = c.to_string();
            while let Some(&d) = chars.peek().filter(|d| "<>=".contains(**d)) {
                op.push(d);
                chars.next();
            }
            out.push(op);
        }
    }
    out
}

/// The predicate of SQLite's partial index `index`: the tokens after
/// `WHERE` in its `CREATE INDEX` statement.
fn sqlite_predicate(conn: &mut SqliteConnection, index: &str) -> Vec<String> {
    let sql: Vec<Name> =
        sql_query("SELECT sql AS name FROM sqlite_master WHERE type = 'index' AND name = ?")
            .bind::<Text, _>(index)
            .load(conn)
            .expect("sqlite_master");
    let tokens = predicate_tokens(
        &sql.first()
            .unwrap_or_else(|| panic!("no SQL for {index}"))
            .name,
    );
    let at = tokens
        .iter()
        .position(|t| t == "where")
        .unwrap_or_else(|| panic!("partial index {index} without WHERE"));
    tokens[at + 1..].to_vec()
}

// --- SQLite -----------------------------------------------------------------

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    ty: String,
    #[diesel(sql_type = Integer)]
    not_null: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct SqliteIndex {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    uniq: i32,
    #[diesel(sql_type = Text)]
    origin: String,
    #[diesel(sql_type = Integer)]
    partial: i32,
}

#[derive(QueryableByName)]
struct ForeignKey {
    #[diesel(sql_type = Text)]
    from_col: String,
    #[diesel(sql_type = Text)]
    to_table: String,
    #[diesel(sql_type = Nullable<Text>)]
    to_col: Option<String>,
}

fn sqlite_schema(conn: &mut SqliteConnection) -> Schema {
    let names: Vec<Name> = sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )
    .load(conn)
    .expect("SQLite tables");
    let mut schema = Schema::default();
    for Name { name: table } in names {
        if table == DIESEL_TABLE {
            continue;
        }
        let mut t = Table::default();
        let columns: Vec<SqliteColumn> = sql_query(
            "SELECT name, type AS ty, \"notnull\" AS not_null, pk FROM pragma_table_info(?)",
        )
        .bind::<Text, _>(&table)
        .load(conn)
        .expect("pragma_table_info");
        let mut pk: Vec<(i32, String)> = Vec::new();
        for c in columns {
            if c.pk > 0 {
                pk.push((c.pk, c.name.clone()));
            }
            let column = Column {
                ty: ty("SQLite", &table, &c.name, &c.ty),
                nullable: c.not_null == 0,
            };
            t.columns.insert(c.name, column);
        }
        pk.sort();
        t.primary_key = pk.into_iter().map(|(_, c)| c).collect();
        let indexes: Vec<SqliteIndex> =
            sql_query("SELECT name, \"unique\" AS uniq, origin, partial FROM pragma_index_list(?)")
                .bind::<Text, _>(&table)
                .load(conn)
                .expect("pragma_index_list");
        for i in indexes {
            let columns: Vec<Name> =
                sql_query("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind::<Text, _>(&i.name)
                    .load(conn)
                    .expect("pragma_index_info");
            let columns: Vec<String> = columns.into_iter().map(|n| n.name).collect();
            match i.origin.as_str() {
                "pk" => assert_eq!(columns, t.primary_key, "SQLite {table}: primary key index"),
                "u" => {
                    t.unique.insert(columns);
                }
                _ => {
                    let predicate = (i.partial != 0).then(|| sqlite_predicate(conn, &i.name));
                    t.indexes.insert(
                        i.name,
                        Index {
                            unique: i.uniq != 0,
                            columns,
                            predicate,
                        },
                    );
                }
            }
        }
        let fks: Vec<ForeignKey> = sql_query(
            "SELECT \"from\" AS from_col, \"table\" AS to_table, \"to\" AS to_col \
             FROM pragma_foreign_key_list(?)",
        )
        .bind::<Text, _>(&table)
        .load(conn)
        .expect("pragma_foreign_key_list");
        for fk in fks {
            let to_col = fk.to_col.unwrap_or_else(|| {
                panic!("SQLite {table}.{}: name the referenced column", fk.from_col)
            });
            t.foreign_keys.insert((fk.from_col, fk.to_table, to_col));
        }
        schema.tables.insert(table, t);
    }
    schema.migrations = applied_sqlite(conn);
    schema
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

fn applied_sqlite(conn: &mut SqliteConnection) -> Vec<String> {
    let v: Vec<Version> = sql_query(format!(
        "SELECT version FROM {DIESEL_TABLE} ORDER BY version"
    ))
    .load(conn)
    .expect("SQLite applied migrations");
    v.into_iter().map(|v| v.version).collect()
}

// --- PostgreSQL -------------------------------------------------------------

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    ty: String,
    #[diesel(sql_type = Bool)]
    nullable: bool,
}

#[derive(QueryableByName)]
struct PgIndex {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Bool)]
    uniq: bool,
    #[diesel(sql_type = Bool)]
    is_primary: bool,
    #[diesel(sql_type = Bool)]
    is_constraint: bool,
    #[diesel(sql_type = Nullable<Text>)]
    predicate: Option<String>,
    #[diesel(sql_type = Text)]
    columns: String,
}

fn pg_schema(conn: &mut PgConnection) -> Schema {
    let names: Vec<Name> = sql_query(
        "SELECT table_name::text AS name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .load(conn)
    .expect("PostgreSQL tables");
    let mut schema = Schema::default();
    for Name { name: table } in names {
        if table == DIESEL_TABLE {
            continue;
        }
        let mut t = Table::default();
        let columns: Vec<PgColumn> = sql_query(
            "SELECT column_name::text AS name, data_type::text AS ty, \
                    (is_nullable = 'YES') AS nullable \
             FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        )
        .bind::<Text, _>(&table)
        .load(conn)
        .expect("information_schema.columns");
        for c in columns {
            let column = Column {
                ty: ty("PostgreSQL", &table, &c.name, &c.ty),
                nullable: c.nullable,
            };
            t.columns.insert(c.name, column);
        }
        let indexes: Vec<PgIndex> = sql_query(
            "SELECT i.relname::text AS name, ix.indisunique AS uniq, ix.indisprimary AS is_primary, \
                    EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = ix.indexrelid \
                            AND c.conrelid = ix.indrelid) AS is_constraint, \
                    pg_get_expr(ix.indpred, ix.indrelid) AS predicate, \
                    array_to_string(ARRAY( \
                        SELECT a.attname FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
                        JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum \
                        ORDER BY k.ord), ',') AS columns \
             FROM pg_index ix \
             JOIN pg_class i ON i.oid = ix.indexrelid \
             JOIN pg_class t ON t.oid = ix.indrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = 'public' AND t.relname = $1",
        )
        .bind::<Text, _>(&table)
        .load(conn)
        .expect("pg_index");
        for i in indexes {
            let columns: Vec<String> = i.columns.split(',').map(str::to_owned).collect();
            if i.is_primary {
                t.primary_key = columns;
            } else if i.is_constraint {
                assert!(
                    i.uniq,
                    "PostgreSQL {table}: constraint index {} not unique",
                    i.name
                );
                t.unique.insert(columns);
            } else {
                t.indexes.insert(
                    i.name,
                    Index {
                        unique: i.uniq,
                        predicate: i.predicate.as_deref().map(predicate_tokens),
                        columns,
                    },
                );
            }
        }
        let fks: Vec<ForeignKey> = sql_query(
            "SELECT a.attname::text AS from_col, rt.relname::text AS to_table, \
                    ra.attname::text AS to_col \
             FROM pg_constraint c \
             JOIN pg_class t ON t.oid = c.conrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             JOIN pg_class rt ON rt.oid = c.confrelid \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] \
             JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = c.confkey[1] \
             WHERE c.contype = 'f' AND n.nspname = 'public' AND t.relname = $1 \
               AND cardinality(c.conkey) = 1",
        )
        .bind::<Text, _>(&table)
        .load(conn)
        .expect("pg_constraint");
        for fk in fks {
            let to_col = fk.to_col.expect("a referenced column");
            t.foreign_keys.insert((fk.from_col, fk.to_table, to_col));
        }
        schema.tables.insert(table, t);
    }
    let v: Vec<Version> = sql_query(format!(
        "SELECT version::text AS version FROM {DIESEL_TABLE} ORDER BY 1"
    ))
    .load(conn)
    .expect("PostgreSQL applied migrations");
    schema.migrations = v.into_iter().map(|v| v.version).collect();
    schema
}

// --- comparison -------------------------------------------------------------

/// One difference between the SQLite schema (left) and the PostgreSQL one
/// (right).
struct Diff(String);

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn compare_maps<V: fmt::Debug + PartialEq>(
    what: &str,
    sqlite: &BTreeMap<String, V>,
    pg: &BTreeMap<String, V>,
    out: &mut Vec<Diff>,
) {
    for (k, v) in sqlite {
        match pg.get(k) {
            None => out.push(Diff(format!("{what}{k}: only in SQLite ({v:?})"))),
            Some(w) if w != v => {
                out.push(Diff(format!("{what}{k}: SQLite {v:?}, PostgreSQL {w:?}")));
            }
            Some(_) => {}
        }
    }
    for (k, w) in pg {
        if !sqlite.contains_key(k) {
            out.push(Diff(format!("{what}{k}: only in PostgreSQL ({w:?})")));
        }
    }
}

fn compare_sets<V: fmt::Debug + Ord>(
    what: &str,
    sqlite: &BTreeSet<V>,
    pg: &BTreeSet<V>,
    out: &mut Vec<Diff>,
) {
    for v in sqlite.difference(pg) {
        out.push(Diff(format!("{what} {v:?}: only in SQLite")));
    }
    for v in pg.difference(sqlite) {
        out.push(Diff(format!("{what} {v:?}: only in PostgreSQL")));
    }
}

fn differences(sqlite: &Schema, pg: &Schema) -> Vec<Diff> {
    let mut out = Vec::new();
    if sqlite.migrations != pg.migrations {
        out.push(Diff(format!(
            "applied migrations: SQLite {:?}, PostgreSQL {:?}",
            sqlite.migrations, pg.migrations
        )));
    }
    for (name, s) in &sqlite.tables {
        let Some(p) = pg.tables.get(name) else {
            out.push(Diff(format!("table {name}: only in SQLite")));
            continue;
        };
        compare_maps(&format!("column {name}."), &s.columns, &p.columns, &mut out);
        if s.primary_key != p.primary_key {
            out.push(Diff(format!(
                "table {name}: primary key SQLite {:?}, PostgreSQL {:?}",
                s.primary_key, p.primary_key
            )));
        }
        compare_sets(
            &format!("table {name}: unique constraint"),
            &s.unique,
            &p.unique,
            &mut out,
        );
        compare_maps(
            &format!("table {name}: index "),
            &s.indexes,
            &p.indexes,
            &mut out,
        );
        compare_sets(
            &format!("table {name}: foreign key"),
            &s.foreign_keys,
            &p.foreign_keys,
            &mut out,
        );
    }
    for name in pg.tables.keys() {
        if !sqlite.tables.contains_key(name) {
            out.push(Diff(format!("table {name}: only in PostgreSQL")));
        }
    }
    out
}

fn report(diffs: &[Diff]) -> String {
    diffs.iter().map(|d| format!("\n  - {d}")).collect()
}

// --- the tests --------------------------------------------------------------

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The migration directory names (versions and names) in `dir`.
fn migration_dirs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn both_dialects_hold_the_same_migrations() {
    let sqlite = migration_dirs(&manifest_dir().join("migrations"));
    let pg = migration_dirs(&manifest_dir().join("migrations-postgres"));
    assert!(sqlite.len() >= 15, "{sqlite:?}");
    assert_eq!(
        sqlite, pg,
        "migrations/ and migrations-postgres/ must hold one migration per version, same names"
    );
    for name in &pg {
        for file in ["up.sql", "down.sql"] {
            let path = manifest_dir()
                .join("migrations-postgres")
                .join(name)
                .join(file);
            assert!(path.is_file(), "{} is missing", path.display());
        }
    }
}

#[test]
fn sqlite_and_postgres_migrations_give_the_same_schema() {
    // SQLite: the store's own start (embedded migrations, WAL, pragmas).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("akamu.db");
    drop(Store::open(&path).expect("open the SQLite store"));
    let mut lite = SqliteConnection::establish(&path.to_string_lossy()).expect("connect to SQLite");
    // The dropped store's writer thread may still hold the database for a
    // moment (its thread is not joined on drop): wait for it, don't fail.
    diesel::connection::SimpleConnection::batch_execute(&mut lite, "PRAGMA busy_timeout = 10000;")
        .expect("busy timeout");
    let sqlite = sqlite_schema(&mut lite);

    // PostgreSQL: a real server, the PostgreSQL migrations through diesel.
    let server = PgServer::start().expect("start PostgreSQL (install the `postgresql` package)");
    let mut pg = PgConnection::establish(&server.url()).expect("connect to PostgreSQL");
    let migrations = FileBasedMigrations::from_path(manifest_dir().join("migrations-postgres"))
        .expect("migrations-postgres");
    pg.run_pending_migrations(migrations.clone())
        .unwrap_or_else(|e| panic!("PostgreSQL migrations: {e}\n{}", server.log_text()));
    let postgres = pg_schema(&mut pg);

    // Not vacuous: the schema read back is the store's.
    assert!(sqlite.tables.len() >= 18, "{:?}", sqlite.tables.keys());
    assert_eq!(sqlite.migrations.len(), 15, "{:?}", sqlite.migrations);
    let one_attempt = Index {
        unique: true,
        columns: vec!["authz_id".to_owned()],
        predicate: Some(vec!["status".into(), "=".into(), "'processing'".into()]),
    };
    for (engine, schema) in [("SQLite", &sqlite), ("PostgreSQL", &postgres)] {
        assert_eq!(
            schema.tables["challenges"]
                .indexes
                .get("idx_challenges_one_attempt"),
            Some(&one_attempt),
            "{engine}"
        );
    }

    let diffs = differences(&sqlite, &postgres);
    assert!(
        diffs.is_empty(),
        "the SQLite and PostgreSQL schemas differ:{}",
        report(&diffs)
    );

    // The comparison sees a difference when there is one.
    pg.batch_execute(
        "ALTER TABLE leases ALTER COLUMN holder DROP NOT NULL; \
         CREATE INDEX idx_extra ON leases (holder)",
    )
    .expect("alter");
    let diffs = report(&differences(&sqlite, &pg_schema(&mut pg)));
    assert!(diffs.contains("column leases.holder"), "{diffs}");
    assert!(
        diffs.contains("index idx_extra: only in PostgreSQL"),
        "{diffs}"
    );
    pg.batch_execute("DROP INDEX idx_extra; ALTER TABLE leases ALTER COLUMN holder SET NOT NULL")
        .expect("restore");

    // The PostgreSQL migrations revert to an empty database and re-apply.
    pg.revert_all_migrations(migrations.clone())
        .unwrap_or_else(|e| panic!("reverting the PostgreSQL migrations: {e}"));
    let empty = pg_schema(&mut pg);
    assert!(
        empty.tables.is_empty(),
        "left after revert: {:?}",
        empty.tables.keys()
    );
    pg.run_pending_migrations(migrations)
        .unwrap_or_else(|e| panic!("re-applying the PostgreSQL migrations: {e}"));
    assert!(differences(&sqlite, &pg_schema(&mut pg)).is_empty());
}
