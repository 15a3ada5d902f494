//! The PostgreSQL side of the store (`[database] url`): a bounded pool of
//! connections, each job in its own transaction on a blocking thread.
//!
//! There is no group commit here: PostgreSQL runs concurrent transactions
//! and groups their WAL flushes itself, and several front ends share the
//! server. Every connection carries deadlines: `connect_timeout` when it
//! is opened, `statement_timeout`, `lock_timeout` and
//! `idle_in_transaction_session_timeout` on the server, and a checkout
//! deadline here when every connection is busy.
//!
//! **Invariant:** the URL's password never reaches a log line or an
//! error: only [`redact`]ed URLs are shown.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::pg::PgConnection;

use super::Conn;
use crate::error::{DatabaseError, Error};

/// A connection idle for longer than this is checked (`SELECT 1`) before it
/// is handed out again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

/// How the pool connects and how long anything may take.
#[derive(Clone)]
pub struct PgOptions {
    /// `postgres://user:password@host:port/database?…` (libpq's URI form).
    pub url: String,
    /// Most connections open at once.
    pub max_connections: usize,
    /// The deadline of a checkout, a connection, a statement and a lock
    /// wait.
    pub timeout: Duration,
}

impl std::fmt::Debug for PgOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgOptions")
            .field("url", &redact(&self.url))
            .field("max_connections", &self.max_connections)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// `url` with its password (`user:password@` or `password=`) replaced by
/// `***`, for logs and errors.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest_start = scheme_end + 3;
        let authority_end = out[rest_start..]
            .find(['/', '?'])
            .map_or(out.len(), |i| rest_start + i);
        if let Some(at) = out[rest_start..authority_end].rfind('@') {
            let userinfo = &out[rest_start..rest_start + at];
            if let Some(colon) = userinfo.find(':') {
                let from = rest_start + colon + 1;
                out.replace_range(from..rest_start + at, "***");
            }
        }
    }
    // `password=…` in the query string or in key/value form.
    let lower = out.to_ascii_lowercase();
    if let Some(i) = lower.find("password=") {
        let from = i + "password=".len();
        let end = out[from..].find(['&', ' ']).map_or(out.len(), |j| from + j);
        out.replace_range(from..end, "***");
    }
    out
}

/// The pool: idle connections and how many are open.
pub(super) struct PgPool {
    options: PgOptions,
    state: Mutex<PoolState>,
    freed: Condvar,
}

struct PoolState {
    idle: Vec<(Conn, Instant)>,
    open: usize,
}

/// A checked-out connection; back to the pool on drop, or closed when it
/// may be broken (a panic, a failed job whose connection no longer answers,
/// an open transaction left behind).
pub(super) struct Pooled {
    pool: Arc<PgPool>,
    conn: Option<Conn>,
    suspect: bool,
}

impl PgPool {
    /// A pool; opens one connection at once so a wrong URL or an
    /// unreachable server fails the start.
    pub(super) fn open(options: PgOptions) -> Result<Arc<Self>, Error> {
        let pool = Arc::new(Self {
            options,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                open: 0,
            }),
            freed: Condvar::new(),
        });
        drop(pool.get()?);
        Ok(pool)
    }

    /// The URL as it may be shown.
    pub(super) fn shown_url(&self) -> String {
        redact(&self.options.url)
    }

    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens one connection with its deadlines set.
    pub(crate) fn connect(options: &PgOptions) -> Result<Conn, Error> {
        let secs = options.timeout.as_secs().max(1);
        let url = with_connect_timeout(&options.url, secs);
        let open = |detail: String| DatabaseError::Open {
            path: redact(&options.url),
            detail: redact(&detail),
        };
        let mut conn = PgConnection::establish(&url).map_err(|e| open(e.to_string()))?;
        let ms = options.timeout.as_millis();
        conn.batch_execute(&format!(
            "SET statement_timeout = {ms}; SET lock_timeout = {ms}; \
             SET idle_in_transaction_session_timeout = {}; SET TIME ZONE 'UTC';",
            ms.saturating_mul(3)
        ))
        .map_err(|e| open(format!("session settings: {e}")))?;
        Ok(Conn::Pg(conn))
    }

    /// Checks a connection out, waiting at most the timeout for one.
    pub(super) fn get(self: &Arc<Self>) -> Result<Pooled, Error> {
        let deadline = Instant::now() + self.options.timeout;
        let mut state = self.lock();
        loop {
            if let Some((mut conn, since)) = state.idle.pop() {
                drop(state);
                if since.elapsed() < PING_AFTER_IDLE || conn.batch_execute("SELECT 1").is_ok() {
                    return Ok(self.pooled(conn));
                }
                // Gone (server restart, network): replaced below.
                tracing::warn!(target: "frontend", "a pooled database connection no longer answers; replacing it");
                state = self.lock();
                state.open -= 1;
                continue;
            }
            if state.open < self.options.max_connections {
                state.open += 1;
                drop(state);
                return match Self::connect(&self.options) {
                    Ok(conn) => Ok(self.pooled(conn)),
                    Err(e) => {
                        self.lock().open -= 1;
                        self.freed.notify_one();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(DatabaseError::Batch(format!(
                    "no database connection free within {:?} ({} in use)",
                    self.options.timeout, self.options.max_connections
                ))
                .into());
            }
            state = self
                .freed
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn pooled(self: &Arc<Self>, conn: Conn) -> Pooled {
        Pooled {
            pool: self.clone(),
            conn: Some(conn),
            suspect: false,
        }
    }
}

impl Pooled {
    /// The connection.
    pub(super) fn conn(&mut self) -> &mut Conn {
        // Provable: `conn` is `Some` from construction until `drop`.
        self.conn
            .as_mut()
            .expect("a pooled connection until dropped")
    }

    /// Marks the connection for a check before it is reused (a job failed
    /// on it).
    pub(super) fn suspect(&mut self) {
        self.suspect = true;
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        let healthy = !std::thread::panicking()
            && match &mut conn {
                Conn::Pg(c) => {
                    !AnsiTransactionManager::is_broken_transaction_manager(c)
                        && AnsiTransactionManager::transaction_manager_status_mut(c)
                            .transaction_depth()
                            .is_ok_and(|d| d.is_none())
                }
                Conn::Sqlite(_) => false,
            }
            && (!self.suspect || conn.batch_execute("SELECT 1").is_ok());
        let mut state = self.pool.lock();
        if healthy {
            state.idle.push((conn, Instant::now()));
        } else {
            state.open -= 1;
        }
        drop(state);
        self.pool.freed.notify_one();
    }
}

/// `url` with libpq's `connect_timeout` (seconds) and `tcp_user_timeout`
/// (milliseconds: a server that stops acknowledging, a network black
/// hole, fails the call instead of hanging it) unless it names them.
fn with_connect_timeout(url: &str, secs: u64) -> String {
    let mut out = url.to_owned();
    for (key, value) in [
        ("connect_timeout", secs.to_string()),
        ("tcp_user_timeout", (secs.saturating_mul(1000)).to_string()),
    ] {
        if out.contains(key) {
            continue;
        }
        if out.contains("://") {
            let sep = if out.contains('?') { '&' } else { '?' };
            out = format!("{out}{sep}{key}={value}");
        } else {
            out = format!("{out} {key}={value}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://akamu:s3cr%40t@db.example:5432/akamu?sslmode=require"),
            "postgres://akamu:***@db.example:5432/akamu?sslmode=require"
        );
        assert_eq!(
            redact("postgresql://akamu@db/akamu"),
            "postgresql://akamu@db/akamu"
        );
        assert_eq!(
            redact("postgres://u@h/d?password=hunter2&sslmode=verify-full"),
            "postgres://u@h/d?password=***&sslmode=verify-full"
        );
        assert_eq!(
            redact("host=db user=u password=hunter2 dbname=d"),
            "host=db user=u password=*** dbname=d"
        );
        let shown = format!(
            "{:?}",
            PgOptions {
                url: "postgres://u:hunter2@h/d".into(),
                max_connections: 1,
                timeout: Duration::from_secs(1),
            }
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn connection_deadlines_are_added_unless_given() {
        assert_eq!(
            with_connect_timeout("postgres://h/d", 5),
            "postgres://h/d?connect_timeout=5&tcp_user_timeout=5000"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/d?sslmode=disable", 5),
            "postgres://h/d?sslmode=disable&connect_timeout=5&tcp_user_timeout=5000"
        );
        assert_eq!(
            with_connect_timeout("postgres://h/d?connect_timeout=2&tcp_user_timeout=1", 5),
            "postgres://h/d?connect_timeout=2&tcp_user_timeout=1"
        );
        assert_eq!(
            with_connect_timeout("host=h dbname=d", 5),
            "host=h dbname=d connect_timeout=5 tcp_user_timeout=5000"
        );
    }
}
