//! The only module with SQL: diesel over one SQLite file (WAL, foreign keys,
//! full sync so a committed certificate survives a crash).
//!
//! **Invariant:** multi-row changes (an order with its authorizations and
//! challenges, a validation result's cascade, an issued certificate with its
//! order) happen in one transaction.

pub mod accounts;
pub mod authzs;
pub mod certificates;
pub mod eab;
pub mod models;
pub mod orders;
pub mod schema;

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::Error;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Read connections kept beside the single writer (WAL lets them read
/// while the writer writes).
const READERS: usize = 4;

/// A handle on the database; cheap to clone. One writer connection (SQLite
/// allows one writer at a time anyway) and a few read-only connections, each
/// used on a blocking thread.
#[derive(Clone)]
pub struct Store {
    writer: Arc<Mutex<SqliteConnection>>,
    readers: Arc<Vec<Mutex<SqliteConnection>>>,
    next_reader: Arc<AtomicUsize>,
}

fn connect(url: &str, pragmas: &str) -> Result<SqliteConnection, Error> {
    let mut conn = SqliteConnection::establish(url)
        .map_err(|e| Error::Internal(format!("opening database {url}: {e}")))?;
    conn.batch_execute(pragmas)
        .map_err(|e| Error::Internal(format!("database pragmas: {e}")))?;
    Ok(conn)
}

/// Commits are synced at checkpoints (`NORMAL`), except the ones that must
/// survive a power loss before we answer: see [`durable_tx`].
const WRITER_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";
const READER_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA query_only = ON;";

impl Store {
    /// Opens (creating if needed) the database at `path` and runs pending
    /// migrations. `:memory:` gives a private in-memory database (one
    /// connection).
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Internal(format!("creating {}: {e}", parent.display())))?;
        }
        let url = path.to_string_lossy();
        let mut writer = connect(&url, WRITER_PRAGMAS)?;
        writer
            .run_pending_migrations(MIGRATIONS)
            .map_err(|e| Error::Internal(format!("database migrations: {e}")))?;
        let in_memory = path == Path::new(":memory:");
        if !in_memory {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        let readers = if in_memory {
            Vec::new()
        } else {
            (0..READERS)
                .map(|_| connect(&url, READER_PRAGMAS).map(Mutex::new))
                .collect::<Result<_, _>>()?
        };
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            readers: Arc::new(readers),
            next_reader: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Runs `f` with the writer on the calling thread (start-up work).
    pub fn run_blocking<R>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut guard = self
            .writer
            .lock()
            .map_err(|_| Error::Internal("database lock poisoned".into()))?;
        f(&mut guard)
    }

    /// Runs `f` with the writer connection on a blocking thread.
    pub async fn run<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<R, Error> + Send + 'static,
    {
        let conn = self.writer.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
                .map_err(|_| Error::Internal("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Internal(format!("database task: {e}")))?
    }

    /// Runs a read-only `f` on one of the read connections (the writer for
    /// an in-memory database). Reads see every committed write.
    pub async fn read<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<R, Error> + Send + 'static,
    {
        if self.readers.is_empty() {
            return self.run(f).await;
        }
        let readers = self.readers.clone();
        let start = self.next_reader.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let n = readers.len();
            // Take the first idle reader, else wait for our turn on one.
            let mut guard = (0..n)
                .find_map(|i| readers[(start + i) % n].try_lock().ok())
                .map_or_else(|| readers[start % n].lock(), Ok)
                .map_err(|_| Error::Internal("database lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| Error::Internal(format!("database task: {e}")))?
    }
}

/// Runs `f` in an immediate transaction (takes the write lock up front, so
/// concurrent writers queue instead of failing with SQLITE_BUSY).
pub fn write_tx<R>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(&mut SqliteConnection) -> Result<R, Error>,
) -> Result<R, Error> {
    conn.immediate_transaction(f)
}

/// Like [`write_tx`], but the commit is synced to disk before it returns
/// (`synchronous = FULL` for this transaction, which also makes every
/// earlier commit in the WAL durable). Used where an answer promises
/// durability: an issued certificate is on disk before anyone sees it.
pub fn durable_tx<R>(
    conn: &mut SqliteConnection,
    f: impl FnOnce(&mut SqliteConnection) -> Result<R, Error>,
) -> Result<R, Error> {
    conn.batch_execute("PRAGMA synchronous = FULL;")?;
    let result = conn.immediate_transaction(f);
    let restore = conn.batch_execute("PRAGMA synchronous = NORMAL;");
    let value = result?;
    restore?;
    Ok(value)
}
