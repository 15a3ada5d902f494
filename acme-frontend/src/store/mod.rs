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
use std::sync::{Arc, Mutex};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::Error;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// A handle on the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<SqliteConnection>>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and runs pending
    /// migrations. `:memory:` gives a private in-memory database.
    pub fn open(path: &Path) -> Result<Self, Error> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Internal(format!("creating {}: {e}", parent.display())))?;
        }
        let url = path.to_string_lossy();
        let mut conn = SqliteConnection::establish(&url)
            .map_err(|e| Error::Internal(format!("opening database {url}: {e}")))?;
        conn.batch_execute(
            "PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; \
             PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;",
        )
        .map_err(|e| Error::Internal(format!("database pragmas: {e}")))?;
        conn.run_pending_migrations(MIGRATIONS)
            .map_err(|e| Error::Internal(format!("database migrations: {e}")))?;
        #[cfg(unix)]
        if path != Path::new(":memory:") {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` on the calling thread (start-up work outside the runtime).
    pub fn run_blocking<R>(
        &self,
        f: impl FnOnce(&mut SqliteConnection) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut guard = self
            .conn
            .lock()
            .map_err(|_| Error::Internal("database lock poisoned".into()))?;
        f(&mut guard)
    }

    /// Runs `f` with the connection on a blocking thread.
    pub async fn run<R, F>(&self, f: F) -> Result<R, Error>
    where
        R: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<R, Error> + Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn
                .lock()
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
