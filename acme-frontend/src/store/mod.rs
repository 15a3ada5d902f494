//! The only module with SQL: diesel over one SQLite file (WAL, foreign keys,
//! full sync so a committed certificate survives a crash), or over a
//! PostgreSQL server with `[database] url` ([`pg`]).
//!
//! Every store function takes a [`Conn`], one of the two dialects; the
//! queries are written once and run on either through [`Query`] (or, where
//! a query's type depends on the backend, `on_backend!`); where the
//! dialects differ, a function matches on the variant.
//!
//! **Invariant:** multi-row changes (an order with its authorizations and
//! challenges, a validation result's cascade, an issued certificate with its
//! order) happen in one transaction.

pub mod accounts;
pub mod authzs;
pub mod certificates;
pub mod eab;
pub mod fleet;
pub mod maintenance;
pub mod models;
pub mod orders;
pub mod pg;
pub mod rate_limits;
pub mod renewals;
pub mod retention;
pub mod schema;
pub mod star;
pub mod status;

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::query_dsl::methods::{ExecuteDsl, LoadQuery};
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::{DatabaseError, Error};

/// The connection a store function runs on, in either dialect; callers
/// outside this module name it only to pass it along.
pub enum Conn {
    /// An embedded SQLite database (the default).
    Sqlite(SqliteConnection),
    /// A PostgreSQL server (`[database] url`).
    Pg(PgConnection),
}

/// Runs `$body` with `$c` bound to the inner connection of `$conn`,
/// type-checked once per dialect: for queries whose type names the backend
/// (boxed queries) or that must run on the concrete connection.
macro_rules! on_backend {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::store::Conn::Sqlite($c) => $body,
            $crate::store::Conn::Pg($c) => $body,
        }
    };
}

/// Inserts the rows of the slice `$rows` into `$table`. On SQLite, one
/// single-row statement per row: diesel does not cache a multi-row
/// `INSERT` (its text depends on the number of rows), so it would be parsed
/// and planned again on every call, while a single-row one stays prepared
/// and SQLite runs in-process. On PostgreSQL, one multi-row statement: one
/// round trip.
macro_rules! insert_rows {
    ($conn:expr, $table:expr, $rows:expr) => {{
        let conn: &mut $crate::store::Conn = $conn;
        let rows = $rows;
        match conn {
            $crate::store::Conn::Sqlite(_) => {
                for row in rows {
                    $crate::store::Query::exec(diesel::insert_into($table).values(row), conn)?;
                }
            }
            $crate::store::Conn::Pg(_) => {
                $crate::store::Query::exec(diesel::insert_into($table).values(rows), conn)?;
            }
        }
    }};
}
pub(crate) use insert_rows;

/// Runs a diesel query on a [`Conn`]: the query is built once, generic over
/// the backend, and executed on the variant's connection (one `match`, no
/// translation layer, so SQLite runs exactly the statement it ran before).
pub trait Query: Sized {
    /// [`RunQueryDsl::execute`] on either dialect.
    fn exec(self, conn: &mut Conn) -> QueryResult<usize>
    where
        Self: ExecuteDsl<SqliteConnection> + ExecuteDsl<PgConnection>,
    {
        match conn {
            Conn::Sqlite(c) => ExecuteDsl::execute(self, c),
            Conn::Pg(c) => ExecuteDsl::execute(self, c),
        }
    }

    /// [`RunQueryDsl::load`] on either dialect.
    fn fetch_all<'q, U>(self, conn: &mut Conn) -> QueryResult<Vec<U>>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            Conn::Sqlite(c) => RunQueryDsl::<SqliteConnection>::load(self, c),
            Conn::Pg(c) => RunQueryDsl::<PgConnection>::load(self, c),
        }
    }

    /// [`RunQueryDsl::get_result`] on either dialect.
    fn fetch_one<'q, U>(self, conn: &mut Conn) -> QueryResult<U>
    where
        Self: RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>
            + LoadQuery<'q, SqliteConnection, U>
            + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            Conn::Sqlite(c) => RunQueryDsl::<SqliteConnection>::get_result(self, c),
            Conn::Pg(c) => RunQueryDsl::<PgConnection>::get_result(self, c),
        }
    }

    /// The first row (`LIMIT 1`), as [`RunQueryDsl::first`], on either
    /// dialect.
    fn fetch_first<'q, U>(self, conn: &mut Conn) -> QueryResult<U>
    where
        Self: diesel::query_dsl::methods::LimitDsl
            + RunQueryDsl<SqliteConnection>
            + RunQueryDsl<PgConnection>,
        diesel::dsl::Limit<Self>:
            LoadQuery<'q, SqliteConnection, U> + LoadQuery<'q, PgConnection, U>,
    {
        match conn {
            Conn::Sqlite(c) => RunQueryDsl::<SqliteConnection>::first(self, c),
            Conn::Pg(c) => RunQueryDsl::<PgConnection>::first(self, c),
        }
    }
}

impl<T> Query for T {}

impl SimpleConnection for Conn {
    fn batch_execute(&mut self, query: &str) -> QueryResult<()> {
        on_backend!(self, c => c.batch_execute(query))
    }
}

impl Conn {
    /// Whether this is a PostgreSQL connection.
    pub fn is_pg(&self) -> bool {
        matches!(self, Conn::Pg(_))
    }

    /// Runs `f` in a transaction (a savepoint when one is open), as
    /// diesel's `Connection::transaction`.
    pub fn transaction<R, E>(&mut self, f: impl FnOnce(&mut Conn) -> Result<R, E>) -> Result<R, E>
    where
        E: From<diesel::result::Error>,
    {
        on_backend!(&mut *self, c => AnsiTransactionManager::begin_transaction(c))?;
        match f(self) {
            Ok(value) => {
                on_backend!(&mut *self, c => AnsiTransactionManager::commit_transaction(c))?;
                Ok(value)
            }
            Err(user_error) => {
                match on_backend!(&mut *self, c => AnsiTransactionManager::rollback_transaction(c))
                {
                    Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => {
                        Err(user_error)
                    }
                    Err(rollback_error) => Err(rollback_error.into()),
                }
            }
        }
    }

    /// Runs `f` in a transaction that holds the write lock from its start:
    /// SQLite's `BEGIN IMMEDIATE` (concurrent writers queue instead of
    /// failing with SQLITE_BUSY); on PostgreSQL a plain transaction (rows
    /// are locked as they are written or read `FOR UPDATE`).
    pub fn immediate_transaction<R, E>(
        &mut self,
        f: impl FnOnce(&mut Conn) -> Result<R, E>,
    ) -> Result<R, E>
    where
        E: From<diesel::result::Error>,
    {
        let begin = match &mut *self {
            Conn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
            Conn::Pg(c) => AnsiTransactionManager::begin_transaction(c),
        };
        begin?;
        match f(self) {
            Ok(value) => {
                on_backend!(&mut *self, c => AnsiTransactionManager::commit_transaction(c))?;
                Ok(value)
            }
            Err(user_error) => {
                match on_backend!(&mut *self, c => AnsiTransactionManager::rollback_transaction(c))
                {
                    Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => {
                        Err(user_error)
                    }
                    Err(rollback_error) => Err(rollback_error.into()),
                }
            }
        }
    }

    fn transaction_depth(&mut self) -> QueryResult<Option<std::num::NonZeroU32>> {
        on_backend!(self, c => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth())
    }
}

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations-postgres");

impl std::fmt::Display for Location {
    /// The file, or the URL without its password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(o) => f.write_str(&pg::redact(&o.url)),
        }
    }
}

/// Where the database is: `[database] path` or `[database] url`.
#[derive(Clone, Debug)]
pub enum Location {
    /// A SQLite file (the default).
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres(pg::PgOptions),
}

/// Read connections kept beside the single writer (WAL lets them read
/// while the writer writes).
const READERS: usize = 4;

/// Most write jobs committed together (see [`Store::run`]).
const MAX_BATCH: usize = 64;

/// A handle on the database; cheap to clone. One writer connection, owned by
/// the writer thread (SQLite allows one writer at a time anyway), and a few
/// read-only connections.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

/// Where a [`Store`]'s jobs run.
#[derive(Clone)]
enum Backend {
    /// SQLite: the writer thread and the read connections.
    Sqlite {
        writer: mpsc::Sender<Job>,
        readers: Arc<Vec<Mutex<Conn>>>,
        next_reader: Arc<AtomicUsize>,
    },
    /// PostgreSQL: a pool; each job its own transaction.
    Pg(Arc<pg::PgPool>),
}

/// What the writer thread does after the batch's commit: hands the job's
/// result (or the commit's failure) to whoever waits for it.
type Finish = Box<dyn FnOnce(Result<(), String>) + Send>;

/// The body of a [`Job`].
type Work = Box<dyn FnOnce(Option<&mut Conn>) -> Finish + Send>;

/// One unit of write work: runs inside the batch's transaction, in its own
/// savepoint, and returns how to deliver its result once the batch commits.
/// Called with `None` when the batch cannot run: it then only reports the
/// batch's error.
struct Job {
    durable: bool,
    work: Work,
}

impl Job {
    fn new<R, F>(f: F, durable: bool, reply: impl FnOnce(Result<R, Error>) + Send + 'static) -> Self
    where
        R: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<R, Error> + Send + 'static,
    {
        Self {
            durable,
            work: Box::new(move |conn| {
                // A savepoint: a job that fails leaves no trace, and the
                // others in the batch still commit.
                let result = conn.map(|c| c.transaction(f));
                Box::new(move |commit| {
                    reply(match (result, commit) {
                        (Some(Ok(v)), Ok(())) => Ok(v),
                        (Some(Err(e)), _) => Err(e),
                        (_, Err(e)) => Err(DatabaseError::Batch(e).into()),
                        (None, Ok(())) => Err(writer_gone()),
                    })
                })
            }),
        }
    }
}

thread_local! {
    /// Set on the writer thread while it runs a batch committed with
    /// `synchronous = FULL`; [`durable_tx`] checks it.
    static DURABLE_BATCH: Cell<bool> = const { Cell::new(false) };
}

fn connect(url: &str, pragmas: &str) -> Result<SqliteConnection, Error> {
    let open = |detail: String| DatabaseError::Open {
        path: url.to_owned(),
        detail,
    };
    let mut conn = SqliteConnection::establish(url).map_err(|e| open(e.to_string()))?;
    conn.batch_execute(pragmas)
        .map_err(|e| open(format!("pragmas: {e}")))?;
    Ok(conn)
}

/// Refuses a database written by a newer Akāmu: one holding a migration
/// this binary does not know. Running on it could corrupt rows the newer
/// schema gives a meaning this binary ignores, so the start fails and says
/// what to do instead (no downgrade path exists).
fn refuse_newer_schema(conn: &mut Conn, url: &str) -> Result<(), Error> {
    use diesel::migration::MigrationSource;
    let open = |detail: String| DatabaseError::Open {
        path: url.to_owned(),
        detail,
    };
    let known = match conn {
        Conn::Sqlite(_) => MigrationSource::<diesel::sqlite::Sqlite>::migrations(&MIGRATIONS)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect()),
        Conn::Pg(_) => MigrationSource::<diesel::pg::Pg>::migrations(&PG_MIGRATIONS)
            .map(|ms| ms.iter().map(|m| m.name().version().to_string()).collect()),
    };
    let known: Vec<String> = known.map_err(|e| open(format!("migrations: {e}")))?;
    let applied = on_backend!(conn, c => c.applied_migrations())
        .map_err(|e| open(format!("migrations: {e}")))?;
    let unknown: Vec<String> = applied
        .iter()
        .map(ToString::to_string)
        .filter(|v| !known.contains(v))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let newest = known.iter().max().map_or("none", String::as_str);
    Err(open(format!(
        "the database schema is newer than this binary: migration(s) {} are not known \
         to it (its newest is {newest}); it was written by a newer Akāmu. Refusing to \
         start: downgrades are not supported. Run the newer version, or restore a \
         backup taken before the upgrade",
        unknown.join(", ")
    ))
    .into())
}

/// Every diesel failure is a [`DatabaseError::Query`].
impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        DatabaseError::Query(Box::new(e)).into()
    }
}

/// Commits are synced at checkpoints (`NORMAL`), except the ones that must
/// survive a power loss before we answer: see [`Store::run_durable`].
/// Savepoints journal into temporary storage, kept in memory.
const WRITER_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;";
const READER_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA query_only = ON;";

impl Store {
    /// Opens the database at `location` (see [`Self::open`] and
    /// [`Self::open_postgres`]).
    pub fn open_at(location: &Location) -> Result<Self, Error> {
        match location {
            Location::Sqlite(path) => Self::open(path),
            Location::Postgres(options) => Self::open_postgres(options.clone()),
        }
    }

    /// Connects to PostgreSQL, refuses a schema newer than this binary,
    /// runs pending migrations (under an advisory lock, so front ends
    /// starting together apply each once) and keeps a pool of at most
    /// `max_connections` connections.
    pub fn open_postgres(options: pg::PgOptions) -> Result<Self, Error> {
        let pool = pg::PgPool::open(options)?;
        let shown = pool.shown_url();
        let mut guard = pool.get()?;
        guard.conn().transaction(|c| {
            // Any fixed key: one migrator at a time across front ends.
            c.batch_execute("SELECT pg_advisory_xact_lock(7236071958346072113)")?;
            refuse_newer_schema(c, &shown)?;
            on_backend!(c, c => c.run_pending_migrations(PG_MIGRATIONS).map(|_| ())).map_err(
                |e| DatabaseError::Open {
                    path: shown.clone(),
                    detail: format!("migrations: {e}"),
                },
            )?;
            Ok::<_, Error>(())
        })?;
        drop(guard);
        Ok(Self {
            backend: Backend::Pg(pool),
        })
    }

    /// Whether the database is PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Pg(_))
    }

    /// Opens (creating if needed) the database at `path`, runs pending
    /// migrations and starts the writer thread. `:memory:` gives a private
    /// in-memory database (one connection).
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| Error::Io {
                context: "creating",
                path: parent.to_owned(),
                source,
            })?;
        }
        let url = path.to_string_lossy();
        let mut writer = Conn::Sqlite(connect(&url, WRITER_PRAGMAS)?);
        // Under the write lock: front ends starting together on one
        // database (`[fleet]`) apply each migration once, the others wait
        // (busy timeout) and then find nothing pending.
        writer.immediate_transaction(|writer| {
            refuse_newer_schema(writer, &url)?;
            on_backend!(writer, c => c.run_pending_migrations(MIGRATIONS).map(|_| ())).map_err(
                |e| DatabaseError::Open {
                    path: url.to_string(),
                    detail: format!("migrations: {e}"),
                },
            )?;
            Ok::<_, Error>(())
        })?;
        let in_memory = path == Path::new(":memory:");
        if !in_memory {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let readers = if in_memory {
            Vec::new()
        } else {
            (0..READERS)
                .map(|_| connect(&url, READER_PRAGMAS).map(|c| Mutex::new(Conn::Sqlite(c))))
                .collect::<Result<_, _>>()?
        };
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("akamu-db-writer".into())
            .spawn(move || writer_loop(writer, rx))
            .map_err(|source| Error::Io {
                context: "starting the database writer for",
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            backend: Backend::Sqlite {
                writer: tx,
                readers: Arc::new(readers),
                next_reader: Arc::new(AtomicUsize::new(0)),
            },
        })
    }

    /// Opens an existing database read-only, with no writer thread and no
    /// migrations: for operator reports on a database a running frontend
    /// owns.
    pub fn open_read_only(path: &Path) -> Result<Conn, Error> {
        if !path.exists() {
            return Err(Error::Io {
                context: "opening",
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "database not found"),
            });
        }
        connect(&format!("file:{}?mode=ro", path.display()), READER_PRAGMAS).map(Conn::Sqlite)
    }

    /// [`Self::open_read_only`] for either dialect: a PostgreSQL
    /// connection of its own whose transactions are read-only.
    pub fn open_read_only_at(location: &Location) -> Result<Conn, Error> {
        match location {
            Location::Sqlite(path) => Self::open_read_only(path),
            Location::Postgres(options) => {
                let mut conn = pg::PgPool::connect(options)?;
                conn.batch_execute("SET default_transaction_read_only = on")?;
                Ok(conn)
            }
        }
    }

    /// Runs `f` on the writer and waits on the calling thread (start-up
    /// work and operator commands; never on an async task). Committed
    /// durably.
    pub fn run_blocking<R>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error>
    where
        R: Send + 'static,
    {
        if let Backend::Pg(pool) = &self.backend {
            return pg_job(pool, f, true);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(Job::new(f, true, move |r| {
            let _ = tx.send(r);
        }))?;
        rx.recv().map_err(|_| writer_gone())?
    }

    /// Runs `f` on the writer thread and returns once its changes are
    /// committed (synced at the next checkpoint, see [`Self::run_durable`]).
    ///
    /// **Group commit:** jobs that arrive while the writer is busy are run
    /// together, each in its own savepoint, and committed in one
    /// transaction; every caller gets its own result only after that commit.
    /// A job that fails is rolled back alone.
    pub async fn run<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<R, Error> + Send + 'static,
    {
        self.run_job(f, false).await
    }

    /// Like [`Self::run`], but the commit is synced to disk before this
    /// returns (`synchronous = FULL` for that commit, which also makes every
    /// earlier commit durable). For answers that promise durability: an
    /// issued certificate or a revocation is on disk before anyone sees it.
    pub async fn run_durable<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<R, Error> + Send + 'static,
    {
        self.run_job(f, true).await
    }

    async fn run_job<R, F>(&self, f: F, durable: bool) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut Conn) -> Result<R, Error> + Send + 'static,
    {
        if let Backend::Pg(pool) = &self.backend {
            let pool = pool.clone();
            return tokio::task::spawn_blocking(move || pg_job(&pool, f, durable))
                .await
                .map_err(|e| DatabaseError::Batch(format!("database task: {e}")))?;
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::new(f, durable, move |r| {
            let _ = tx.send(r);
        }))?;
        rx.await.map_err(|_| writer_gone())?
    }

    fn submit(&self, job: Job) -> Result<(), Error> {
        match &self.backend {
            Backend::Sqlite { writer, .. } => writer.send(job).map_err(|_| writer_gone()),
            Backend::Pg(_) => Err(Error::Internal(
                "a SQLite writer job was submitted to a PostgreSQL store".into(),
            )),
        }
    }

    /// Runs a read-only `f` on one of the read connections (the writer for
    /// an in-memory database). Reads see every committed write. On
    /// PostgreSQL a read that meets a connection the server dropped runs
    /// once more on a fresh one (hence `Fn`).
    ///
    /// **Invariant:** reads are short, index-backed lookups that never wait
    /// for the writer (WAL), so when a read connection is idle the read runs
    /// inline on the calling thread: a hand-off to a blocking thread and back
    /// would cost more than the query. Only when every reader is busy does
    /// the read wait for one on a blocking thread.
    pub async fn read<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: Fn(&mut Conn) -> Result<R, Error> + Send + 'static,
    {
        let (readers, next_reader) = match &self.backend {
            Backend::Sqlite {
                readers,
                next_reader,
                ..
            } => (readers, next_reader),
            Backend::Pg(pool) => {
                let pool = pool.clone();
                return tokio::task::spawn_blocking(move || {
                    let mut pooled = pool.get()?;
                    let mut result = f(pooled.conn());
                    if result.as_ref().is_err_and(connection_lost) {
                        // A connection the server dropped since its last
                        // use (a restart, a failover): a read runs again on
                        // a fresh one.
                        pooled.suspect();
                        drop(pooled);
                        pooled = pool.get()?;
                        result = f(pooled.conn());
                    }
                    if result.is_err() {
                        pooled.suspect();
                    }
                    result
                })
                .await
                .map_err(|e| DatabaseError::Batch(format!("read task: {e}")))?;
            }
        };
        if readers.is_empty() {
            return self.run(f).await;
        }
        let n = readers.len();
        let start = next_reader.fetch_add(1, Ordering::Relaxed);
        if let Some(mut guard) = (0..n).find_map(|i| readers[(start + i) % n].try_lock().ok()) {
            return f(&mut guard);
        }
        let readers = readers.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = readers[start % n]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| DatabaseError::Batch(format!("read task: {e}")))?
    }
}

/// One write job on PostgreSQL: its own transaction on a pooled
/// connection, on the calling (blocking) thread.
///
/// A connection the server dropped since its last use (a restart, a
/// failover) fails at `BEGIN`, before `f` has run: it is closed and the
/// job begins once more on a fresh connection, so such a drop costs no
/// request.
fn pg_job<R>(
    pool: &Arc<pg::PgPool>,
    f: impl FnOnce(&mut Conn) -> Result<R, Error>,
    durable: bool,
) -> Result<R, Error> {
    let begin = |pooled: &mut pg::Pooled| on_backend!(pooled.conn(), c => AnsiTransactionManager::begin_transaction(c));
    let mut pooled = pool.get()?;
    if begin(&mut pooled).is_err() {
        pooled.suspect();
        drop(pooled);
        pooled = pool.get()?;
        begin(&mut pooled)?;
    }
    DURABLE_BATCH.set(durable);
    let started = std::time::Instant::now();
    let result = f(pooled.conn());
    DURABLE_BATCH.set(false);
    let conn = pooled.conn();
    let result = match result {
        Ok(value) => on_backend!(&mut *conn, c => AnsiTransactionManager::commit_transaction(c))
            .map(|()| value)
            .map_err(Error::from),
        Err(user_error) => {
            match on_backend!(&mut *conn, c => AnsiTransactionManager::rollback_transaction(c)) {
                Ok(()) | Err(diesel::result::Error::BrokenTransactionManager) => Err(user_error),
                Err(rollback_error) => Err(rollback_error.into()),
            }
        }
    };
    match &result {
        // A job is its own commit here: a "batch" of one.
        Ok(_) => crate::metrics::db_commit(started.elapsed(), 1, durable),
        Err(_) => pooled.suspect(),
    }
    result
}

/// Whether `e` says the connection is gone (not that the query failed).
fn connection_lost(e: &Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};
    let Error::Database(DatabaseError::Query(q)) = e else {
        return false;
    };
    matches!(
        q.downcast_ref::<DieselError>(),
        Some(DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _
        ))
    )
}

fn writer_gone() -> Error {
    DatabaseError::WriterGone.into()
}

/// The writer thread: takes every job waiting, runs them in one immediate
/// transaction, commits once, then answers each. Ends when the last
/// [`Store`] handle is dropped.
fn writer_loop(mut conn: Conn, jobs: mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch);
    }
}

fn commit_batch(conn: &mut Conn, batch: Vec<Job>) {
    let durable = batch.iter().any(|j| j.durable);
    let (finishes, outcome) = run_batch(conn, batch, durable);
    if durable && let Err(e) = conn.batch_execute("PRAGMA synchronous = NORMAL;") {
        tracing::error!(target: "frontend", error = %e, "restoring synchronous = NORMAL");
    }
    if let Err(why) = &outcome {
        tracing::error!(target: "frontend", error = %why, "database batch not committed");
    }
    for finish in finishes {
        finish(outcome.clone());
    }
}

/// Runs the jobs of one batch in one immediate transaction; returns each
/// job's reply path and the batch's outcome.
fn run_batch(conn: &mut Conn, batch: Vec<Job>, durable: bool) -> (Vec<Finish>, Result<(), String>) {
    let skip_all = |batch: Vec<Job>| -> Vec<Finish> {
        batch.into_iter().map(|job| (job.work)(None)).collect()
    };
    if durable && let Err(e) = conn.batch_execute("PRAGMA synchronous = FULL;") {
        return (
            skip_all(batch),
            Err(format!("setting synchronous = FULL: {e}")),
        );
    }
    let begin = match &mut *conn {
        Conn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE"),
        Conn::Pg(c) => AnsiTransactionManager::begin_transaction(c),
    };
    if let Err(e) = begin {
        return (
            skip_all(batch),
            Err(format!("beginning a transaction: {e}")),
        );
    }
    DURABLE_BATCH.set(durable);
    let mut finishes = Vec::with_capacity(batch.len());
    let mut jobs = batch.into_iter();
    let mut panicked = false;
    for job in jobs.by_ref() {
        match catch_unwind(AssertUnwindSafe(|| (job.work)(Some(&mut *conn)))) {
            Ok(finish) => finishes.push(finish),
            Err(_) => {
                panicked = true;
                break;
            }
        }
    }
    DURABLE_BATCH.set(false);
    finishes.extend(skip_all(jobs.collect()));
    if panicked {
        rollback_all(conn);
        return (
            finishes,
            Err("a write job panicked; its batch was rolled back".into()),
        );
    }
    let committing = std::time::Instant::now();
    match on_backend!(&mut *conn, c => AnsiTransactionManager::commit_transaction(c)) {
        Ok(()) => {
            crate::metrics::db_commit(committing.elapsed(), finishes.len(), durable);
            (finishes, Ok(()))
        }
        Err(e) => {
            rollback_all(conn);
            (finishes, Err(format!("commit: {e}")))
        }
    }
}

/// Rolls back whatever transaction and savepoints are open on `conn`.
fn rollback_all(conn: &mut Conn) {
    loop {
        match conn.transaction_depth() {
            Ok(Some(_)) => {
                if on_backend!(&mut *conn, c => AnsiTransactionManager::rollback_transaction(c))
                    .is_err()
                {
                    // Diesel marks the connection broken; the next BEGIN
                    // reports it to the jobs of the next batch.
                    return;
                }
            }
            _ => return,
        }
    }
}

/// Runs `f` in an immediate transaction (takes the write lock up front, so
/// concurrent writers queue instead of failing with SQLITE_BUSY). Inside a
/// job of the writer thread, `f` runs in the job's savepoint.
pub fn write_tx<R>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> Result<R, Error>,
) -> Result<R, Error> {
    if in_transaction(conn)? {
        // Inside a writer job: the job's own savepoint already makes it
        // atomic (an error from `f` propagates and rolls the job back).
        f(conn)
    } else {
        conn.immediate_transaction(f)
    }
}

/// Like [`write_tx`], for changes that must be on disk before anyone is
/// told about them. On the writer thread this must run inside a durable
/// batch ([`Store::run_durable`]); anything else is refused, so a
/// certificate can never be acknowledged from an unsynced commit.
pub fn durable_tx<R>(
    conn: &mut Conn,
    f: impl FnOnce(&mut Conn) -> Result<R, Error>,
) -> Result<R, Error> {
    if in_transaction(conn)? {
        if !DURABLE_BATCH.get() {
            return Err(Error::Internal(
                "a durable write was submitted without Store::run_durable".into(),
            ));
        }
        return f(conn);
    }
    if conn.is_pg() {
        // PostgreSQL's commits are synced (`synchronous_commit = on`).
        return conn.immediate_transaction(f);
    }
    conn.batch_execute("PRAGMA synchronous = FULL;")?;
    let result = conn.immediate_transaction(f);
    let restore = conn.batch_execute("PRAGMA synchronous = NORMAL;");
    let value = result?;
    restore?;
    Ok(value)
}

fn in_transaction(conn: &mut Conn) -> Result<bool, Error> {
    Ok(conn.transaction_depth()?.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("t.db")).expect("open");
        (dir, store)
    }

    fn seed(c: &mut Conn, kid: &str) -> Result<(), Error> {
        eab::seed(c, &[(kid.to_owned(), vec![7u8; 32])], 1)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_alone_or_together_and_failures_roll_back_alone() {
        let (_dir, store) = store();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .run(move |c| {
                        seed(c, &format!("kid-{i}"))?;
                        if i % 3 == 0 {
                            return Err(Error::Malformed(format!("job {i} refuses")));
                        }
                        Ok(i)
                    })
                    .await
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            let result = task.await.expect("join");
            let kid = format!("kid-{i}");
            let stored = store
                .read(move |c| eab::unused_key(c, &kid))
                .await
                .expect("read");
            if i % 3 == 0 {
                assert!(
                    matches!(result, Err(Error::Malformed(ref d)) if d == &format!("job {i} refuses"))
                );
                assert_eq!(stored, None, "failed job {i} left a row");
            } else {
                assert_eq!(result.expect("job result"), i);
                assert_eq!(stored, Some(vec![7u8; 32]), "job {i} lost its row");
            }
        }
    }

    #[tokio::test]
    async fn durable_writes_need_run_durable() {
        let (_dir, store) = store();
        let refused = store.run(|c| durable_tx(c, |c| seed(c, "plain"))).await;
        assert!(
            matches!(refused, Err(Error::Internal(ref d)) if d.contains("run_durable")),
            "{refused:?}"
        );
        store
            .run_durable(|c| durable_tx(c, |c| seed(c, "durable")))
            .await
            .expect("durable write");
        let rows = store
            .read(|c| Ok((eab::unused_key(c, "plain")?, eab::unused_key(c, "durable")?)))
            .await
            .expect("read");
        assert_eq!(rows, (None, Some(vec![7u8; 32])));
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_batch_and_the_writer_goes_on() {
        let (_dir, store) = store();
        let panicked = store
            .run(|c| -> Result<(), Error> {
                seed(c, "before-panic")?;
                panic!("job panics on purpose");
            })
            .await;
        assert!(matches!(panicked, Err(Error::Database(_))), "{panicked:?}");
        store
            .run(|c| seed(c, "after"))
            .await
            .expect("the writer still works");
        let rows = store
            .read(|c| {
                Ok((
                    eab::unused_key(c, "before-panic")?,
                    eab::unused_key(c, "after")?,
                ))
            })
            .await
            .expect("read");
        assert_eq!(rows, (None, Some(vec![7u8; 32])));
    }

    #[test]
    fn run_blocking_waits_on_the_calling_thread() {
        let (_dir, store) = store();
        store
            .run_blocking(|c| seed(c, "blocking"))
            .expect("blocking write");
        let found = store
            .run_blocking(|c| eab::unused_key(c, "blocking"))
            .expect("blocking read");
        assert_eq!(found, Some(vec![7u8; 32]));
    }
}
