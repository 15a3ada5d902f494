//! A real PostgreSQL server for tests: `initdb` and `postgres` (Debian's
//! `postgresql` package, `/usr/lib/postgresql/<version>/bin`) in a temporary
//! directory, listening on a loopback port only.
//!
//! `initdb` refuses to run as root and CI runs the tests as root: then the
//! data directory is handed to the unprivileged user `nobody` and both
//! programs run under its uid and gid (set on the child itself, so the PID
//! kept is the postmaster's own). Missing binaries are an error naming the
//! package, never a silent skip: `scripts/test.sh` installs `postgresql`.
//!
//! [`PgServer::start`] waits until the server accepts connections and
//! creates a fresh database; dropping the server stops it (SIGINT, the fast
//! shutdown, to its own PID; SIGKILL after a deadline) and removes the
//! directory.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, User, getuid};

/// Where Debian installs the server binaries (one directory per major
/// version).
const DEBIAN_PG_LIB: &str = "/usr/lib/postgresql";

/// Overrides the directory holding `initdb`, `postgres`, `pg_isready` and
/// `createdb`.
pub const BIN_ENV: &str = "AKAMU_PG_BIN";

/// The superuser `initdb` creates (trust authentication on loopback only).
const SUPERUSER: &str = "postgres";

/// How long the server may take to accept connections.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// How long a fast shutdown may take before the postmaster is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(20);

/// Distinguishes the directories of servers started by one process.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// A running PostgreSQL server; stopped and removed on drop.
#[derive(Debug)]
pub struct PgServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    child: Option<Child>,
    database: String,
}

/// The directory holding the PostgreSQL server binaries: [`BIN_ENV`], or the
/// newest `/usr/lib/postgresql/<version>/bin` holding `initdb`.
pub fn bin_dir() -> io::Result<PathBuf> {
    if let Some(dir) = std::env::var_os(BIN_ENV) {
        let dir = PathBuf::from(dir);
        return if dir.join("initdb").is_file() {
            Ok(dir)
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{BIN_ENV}={}: no initdb there", dir.display()),
            ))
        };
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(DEBIAN_PG_LIB)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((major, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no PostgreSQL server binaries under {DEBIAN_PG_LIB}/<version>/bin: install the \
                 Debian package `postgresql` (scripts/test.sh does) or set {BIN_ENV}"
            ),
        )
    })
}

impl PgServer {
    /// Starts a server and creates the database `akamu` on it; see the
    /// module documentation.
    ///
    /// # Errors
    ///
    /// When the binaries are missing, `initdb` fails, or the server does
    /// not accept connections within a minute (the error carries its log).
    pub fn start() -> io::Result<PgServer> {
        let bin = bin_dir()?;
        let dir = std::env::temp_dir().join(format!(
            "akamu-pg-{}-{}",
            std::process::id(),
            SEQUENCE.fetch_add(1, Ordering::Relaxed)
        ));
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        fs::create_dir(&dir)?;
        let mut server = PgServer {
            dir,
            bin,
            port: crate::ports::free_port(),
            child: None,
            database: "akamu".to_owned(),
        };
        // On error, `server`'s drop removes the directory (and stops a
        // started postmaster).
        server.init()?;
        server.spawn()?;
        server.wait_ready()?;
        server.create_database("akamu")?;
        Ok(server)
    }

    /// The uid and gid to run the server as: `nobody` when this process is
    /// root (initdb refuses root), else none (this process's own).
    fn run_as() -> io::Result<Option<(u32, u32)>> {
        if !getuid().is_root() {
            return Ok(None);
        }
        let user = User::from_name("nobody")
            .map_err(io::Error::other)?
            .ok_or_else(|| io::Error::other("running as root and there is no user `nobody`"))?;
        Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
    }

    /// A command for one of the server binaries, as the unprivileged user
    /// when this process is root, in the server's directory.
    fn command(&self, program: &str) -> io::Result<Command> {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(&self.dir).env_remove("PGDATA");
        if let Some((uid, gid)) = Self::run_as()? {
            cmd.uid(uid).gid(gid);
        }
        Ok(cmd)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }

    /// `initdb` into `<dir>/data`, the directory owned by the user the
    /// server runs as.
    fn init(&self) -> io::Result<()> {
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = Self::run_as()? {
            std::os::unix::fs::chown(&self.dir, Some(uid), Some(gid))?;
        }
        let out = self
            .command("initdb")?
            .arg("-D")
            .arg(self.data())
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ])
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("running initdb: {e}")))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "initdb: {}: {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// Starts the postmaster: TCP on 127.0.0.1 only, its Unix socket in the
    /// server's directory, durability off (a test server).
    fn spawn(&mut self) -> io::Result<()> {
        let log = File::create(self.log())?;
        if let Some((uid, gid)) = Self::run_as()? {
            std::os::unix::fs::chown(self.log(), Some(uid), Some(gid))?;
        }
        let child = self
            .command("postgres")?
            .arg("-D")
            .arg(self.data())
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-k")
            .arg(&self.dir)
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=100"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("starting postgres: {e}")))?;
        self.child = Some(child);
        Ok(())
    }

    /// The server's log so far (for error messages).
    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log()).unwrap_or_default()
    }

    /// Polls `pg_isready` until the server accepts connections.
    fn wait_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "postgres exited during start-up ({status}):\n{}",
                    self.log_text()
                )));
            }
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-U", SUPERUSER, "-t", "2"])
                .arg("-p")
                .arg(self.port.to_string())
                .status()
                .map_err(|e| io::Error::new(e.kind(), format!("running pg_isready: {e}")))?;
            if ready.success() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "postgres did not accept connections within {START_DEADLINE:?}:\n{}",
                        self.log_text()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates the empty database `name` and returns its URL.
    ///
    /// # Errors
    ///
    /// When `createdb` fails (e.g. the name exists).
    pub fn create_database(&self, name: &str) -> io::Result<String> {
        let out = Command::new(self.bin.join("createdb"))
            .args(["-h", "127.0.0.1", "-U", SUPERUSER])
            .arg("-p")
            .arg(self.port.to_string())
            .arg(name)
            .output()
            .map_err(|e| io::Error::new(e.kind(), format!("running createdb: {e}")))?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "createdb {name}: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(self.url_of(name))
    }

    /// The URL of the database `akamu` created at start (empty then).
    pub fn url(&self) -> String {
        self.url_of(&self.database)
    }

    /// The URL of database `name` on this server.
    pub fn url_of(&self, name: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{name}", self.port)
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the binaries this server runs (for `psql`,
    /// `pg_dump`).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Stops the postmaster: SIGINT (fast shutdown: backends are ended,
    /// the data directory left consistent) to its PID, SIGKILL if it is
    /// still there after a deadline.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let Ok(raw) = i32::try_from(child.id()) else {
            let _ = child.kill();
            let _ = child.wait();
            return;
        };
        let _ = kill(Pid::from_raw(raw), Signal::SIGINT);
        let deadline = Instant::now() + STOP_DEADLINE;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
