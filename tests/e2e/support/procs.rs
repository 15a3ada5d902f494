//! Spawn a complete CA (`acme-frontend` in dev-launcher mode, which starts
//! `ca-signer` and `validator-worker` itself) in its own state directory, wait
//! for its `READY {json}` line, and tear it down on `Drop`.
//!
//! The binaries are found next to the test executable
//! (`target/debug/deps/e2e-*` → `target/debug/acme-frontend`), because
//! `CARGO_BIN_EXE_*` only exists inside the binary's own package. Build them
//! first with `cargo build --workspace --bins`.

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;

use super::pids::{children_of, is_our_binary, listens_on_unix_socket, proc_stat};

/// How long `Ca::start` waits for the `READY` line.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `Drop` waits after SIGTERM before sending SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(5);

/// What a test can choose about the CA it starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct CaOptions {
    /// `server.dns_resolver_addr`: the test DNS server the validator must use.
    pub dns_resolver_addr: Option<SocketAddr>,
    /// `server.http_validation_port`; a free port is picked when `None`.
    pub http_validation_port: Option<u16>,
    /// `server.tls_alpn_validation_port`; a free port is picked when `None`.
    pub tls_alpn_validation_port: Option<u16>,
    /// Extra keys for the `[server]` table, one `key = value` per line
    /// (e.g. `external_account_required = true`, `order_expiry_secs = 60`).
    pub server_toml: String,
    /// Extra TOML appended verbatim at the end of the generated config
    /// (it must only add new tables, e.g. `[server.eab_keys]`).
    pub extra_toml: String,
    /// Extra keys for the `[ca]` table, one `key = value` per line
    /// (e.g. `crl_url = "..."`, `chain_file = "..."`).
    pub ca_toml: String,
    /// `[ca] cert_file`; `<state_dir>/ca.cert.pem` when `None` (e.g. the
    /// intermediate of a ceremony whose key is in a token).
    pub ca_cert_file: Option<PathBuf>,
    /// A CA key file copied to `<state_dir>/ca.key.pem` (the `[ca]
    /// key_file`) before the start, e.g. the intermediate key of a
    /// file-backend ceremony.
    pub ca_key_file: Option<PathBuf>,
    /// The frontend's port (`listen_addr`, `base_url`); a free port is
    /// picked when `None`. Tests choose it when a URL in the config (such as
    /// `[ca] crl_url`) must point at the CA itself.
    pub listen_port: Option<u16>,
    /// Extra environment variables for the launcher, inherited by its
    /// children (e.g. `SOFTHSM2_CONF` for a PKCS#11 signer key).
    pub env: Vec<(String, PathBuf)>,
    /// The launcher to run; `acme-frontend` next to the test executable when
    /// `None` (the harness's own tests use a stand-in script).
    pub frontend_binary: Option<PathBuf>,
    /// The body of the `[tls]` table (keys and any `[tls.client_auth]`
    /// after them); `None` is HTTPS with a certificate from our CA in the
    /// state dir.
    pub tls_toml: Option<String>,
    /// The body of the `[database]` table (e.g. `url = "postgres://…"`);
    /// a SQLite file in the state dir when `None`.
    pub database_toml: Option<String>,
    /// `base_url`, e.g. a reverse proxy's URL; `https://localhost:<port>`
    /// when `None`.
    pub base_url: Option<String>,
    /// Delete the state dir even when the test fails (by default it is kept
    /// for a post-mortem and its path printed).
    pub discard_on_failure: bool,
    /// Files written into the state dir before the start: (name, contents,
    /// mode), e.g. the database and audit log of an earlier version.
    pub state_files: Vec<(String, Vec<u8>, u32)>,
}

/// The machine-readable line the launcher prints once everything is up.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Ready {
    /// ACME directory URL.
    pub directory: String,
    /// Absolute path of the CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// Pid of the `acme-frontend` process (the launcher itself).
    pub frontend_pid: i32,
    /// Pid of the `ca-signer` child at start-up.
    pub signer_pid: i32,
    /// Pid of the `validator-worker` child at start-up.
    pub validator_pid: i32,
}

/// A running CA: three processes, one temp directory. Killed on `Drop`.
pub(crate) struct Ca {
    child: Option<Child>,
    ready: Ready,
    dir: Option<tempfile::TempDir>,
    state_dir: PathBuf,
    config_path: PathBuf,
    http_validation_port: u16,
    tls_alpn_validation_port: u16,
    output: Arc<Mutex<String>>,
    discard_on_failure: bool,
    /// The launcher binary.
    frontend: PathBuf,
    /// With [`POSTGRES_ENV`]: the PostgreSQL server holding this CA's
    /// database (stopped after the CA, `Drop` order).
    pg: Option<test_kit::postgres::PgServer>,
}

/// Set to `1`, every CA a test starts without its own `[database]` uses a
/// PostgreSQL server of its own (`[database] url`) instead of a SQLite file:
/// `AKAMU_E2E_POSTGRES=1 cargo test -p tests --test e2e issuance::` runs
/// those tests on PostgreSQL (tests that open the SQLite file themselves
/// do not apply).
pub(crate) const POSTGRES_ENV: &str = "AKAMU_E2E_POSTGRES";

impl Ca {
    /// Starts a CA and waits (up to 60 s) for its READY line.
    ///
    /// Blocks the calling thread; async tests call this through
    /// [`Ca::start_async`].
    pub(crate) fn start(opts: CaOptions) -> Ca {
        let frontend = opts
            .frontend_binary
            .clone()
            .unwrap_or_else(|| binary_path("acme-frontend"));
        let dir = tempfile::Builder::new()
            .prefix("akamu-e2e-")
            .tempdir()
            .expect("create temp dir");
        let state_dir = dir.path().join("akamu-data");
        std::fs::create_dir_all(&state_dir).expect("create state dir");

        let port = opts.listen_port.unwrap_or_else(free_port);
        let http_validation_port = opts.http_validation_port.unwrap_or_else(free_port);
        let tls_alpn_validation_port = opts.tls_alpn_validation_port.unwrap_or_else(free_port);
        // Nothing listens there when a test gives no DNS server: lookups fail
        // fast instead of leaking to the system resolver.
        let dns = opts
            .dns_resolver_addr
            .unwrap_or_else(|| SocketAddr::from((Ipv4Addr::LOCALHOST, free_port())));

        for (name, contents, mode) in &opts.state_files {
            use std::os::unix::fs::PermissionsExt;
            let path = state_dir.join(name);
            std::fs::write(&path, contents).expect("write a state file");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                .expect("chmod a state file");
        }
        if let Some(key) = &opts.ca_key_file {
            std::fs::copy(key, state_dir.join("ca.key.pem")).expect("copy the CA key");
        }
        let ca_cert_file = opts
            .ca_cert_file
            .clone()
            .unwrap_or_else(|| state_dir.join("ca.cert.pem"));
        let pg = (opts.database_toml.is_none()
            && std::env::var(POSTGRES_ENV).is_ok_and(|v| v == "1"))
        .then(|| {
            test_kit::postgres::PgServer::start()
                .expect("start PostgreSQL (install the `postgresql` package)")
        });
        let pg_database = pg.as_ref().map(|pg| format!("url = \"{}\"", pg.url()));
        let config = config_toml(&ConfigParts {
            port,
            state_dir: &state_dir,
            http_validation_port,
            tls_alpn_validation_port,
            dns,
            ca_cert_file: &ca_cert_file,
            ca: &opts.ca_toml,
            server: &opts.server_toml,
            extra: &opts.extra_toml,
            tls: opts.tls_toml.as_deref(),
            base_url: opts.base_url.as_deref(),
            database: opts.database_toml.as_deref().or(pg_database.as_deref()),
        });
        let config_path = dir.path().join("akamu.toml");
        std::fs::write(&config_path, &config).expect("write config");

        let mut ca = Ca {
            child: None,
            ready: Ready {
                directory: String::new(),
                ca_cert: PathBuf::new(),
                frontend_pid: 0,
                signer_pid: 0,
                validator_pid: 0,
            },
            dir: Some(dir),
            state_dir,
            config_path,
            http_validation_port,
            tls_alpn_validation_port,
            output: Arc::new(Mutex::new(String::new())),
            discard_on_failure: opts.discard_on_failure,
            frontend,
            pg,
        };
        ca.spawn(&opts.env);
        if ca.pg.is_some() {
            assert!(
                !ca.state_dir.join("akamu.db").exists(),
                "{POSTGRES_ENV}: the frontend made a SQLite file beside its PostgreSQL database"
            );
        }
        ca
    }

    /// Starts the frontend (the launcher) on this CA's configuration and
    /// state, with `env`, and waits for its READY line.
    fn spawn(&mut self, env: &[(String, PathBuf)]) {
        let workdir = self
            .config_path
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let mut child = Command::new(&self.frontend)
            .arg("--config")
            .arg(&self.config_path)
            .current_dir(&workdir)
            .env("RUST_BACKTRACE", "1")
            .env("NO_COLOR", "1")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.frontend.display()));

        let (ready_tx, ready_rx) = mpsc::channel::<String>();
        // Both pipes exist: we asked for them just above.
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        spawn_reader("stdout", stdout, self.output.clone(), Some(ready_tx));
        spawn_reader("stderr", stderr, self.output.clone(), None);
        self.child = Some(child);
        self.ready.frontend_pid = self.child_id();

        let line = match ready_rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("acme-frontend printed no READY line within {READY_TIMEOUT:?}")
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // Give stderr's reader a moment to catch the last words.
                thread::sleep(Duration::from_millis(200));
                let status = self
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                panic!("acme-frontend closed stdout before READY (exit status: {status:?})")
            }
        };
        let json = line.trim_start_matches("READY").trim();
        self.ready = serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("READY line is not the agreed JSON ({e}): {line}"));
        assert_eq!(
            self.ready.frontend_pid,
            self.child_id(),
            "READY frontend_pid is not the pid we spawned"
        );
        assert!(
            self.ready.ca_cert.is_absolute(),
            "READY ca_cert must be absolute: {}",
            self.ready.ca_cert.display()
        );
    }

    /// After the frontend died on its own (a crash, a fault point): waits
    /// for it and for the children it started to be gone, then starts it
    /// again on the same configuration and state, with `env`.
    pub(crate) async fn restart_after_crash(
        &mut self,
        env: Vec<(String, PathBuf)>,
        timeout: Duration,
    ) {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take().expect("the frontend was started");
        while matches!(child.try_wait(), Ok(None)) {
            assert!(
                Instant::now() < deadline,
                "acme-frontend did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = child.wait();
        append(
            &self.output,
            &format!("[e2e] acme-frontend exit: {status:?}\n"),
        );
        // Its children get SIGTERM when it dies (PR_SET_PDEATHSIG); a new
        // signer must not race the old one for the socket.
        for pid in [self.ready.signer_pid, self.ready.validator_pid] {
            while pid > 0 && is_our_binary(pid) {
                assert!(
                    Instant::now() < deadline,
                    "child {pid} outlived acme-frontend for {timeout:?}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let mut this = std::mem::replace(self, Ca::placeholder());
        let this = tokio::task::spawn_blocking(move || {
            this.spawn(&env);
            this
        })
        .await
        .unwrap_or_else(|e| panic!("restarting acme-frontend: {e}"));
        *self = this;
    }

    /// Stops the frontend (SIGTERM; its children follow) and starts it
    /// again on the same configuration file and state, e.g. after a test
    /// changed the file.
    pub(crate) async fn restart(&mut self, timeout: Duration) {
        let _ = kill(Pid::from_raw(self.ready.frontend_pid), Signal::SIGTERM);
        self.restart_after_crash(Vec::new(), timeout).await;
    }

    /// Stops the frontend and its children (SIGTERM), keeping the state.
    pub(crate) fn stop(&mut self) {
        self.shutdown();
    }

    /// Runs the frontend on this CA's configuration and state once more,
    /// expecting it to exit by itself within `timeout` (e.g. a refusal at
    /// start); returns its exit code and everything it printed. Killed if
    /// it is still running at the deadline.
    pub(crate) fn run_to_exit(&self, timeout: Duration) -> (Option<i32>, String) {
        let mut child = Command::new(&self.frontend)
            .arg("--config")
            .arg(&self.config_path)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.frontend.display()));
        let deadline = Instant::now() + timeout;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let out = child.wait_with_output().expect("wait for acme-frontend");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    /// An empty `Ca` that owns nothing (moved out of while restarting).
    fn placeholder() -> Ca {
        Ca {
            child: None,
            ready: Ready {
                directory: String::new(),
                ca_cert: PathBuf::new(),
                frontend_pid: 0,
                signer_pid: 0,
                validator_pid: 0,
            },
            dir: None,
            state_dir: PathBuf::new(),
            config_path: PathBuf::new(),
            http_validation_port: 0,
            tls_alpn_validation_port: 0,
            output: Arc::new(Mutex::new(String::new())),
            discard_on_failure: true,
            frontend: PathBuf::new(),
            pg: None,
        }
    }

    /// [`Ca::start`] on a blocking thread, for async tests.
    pub(crate) async fn start_async(opts: CaOptions) -> Ca {
        match tokio::task::spawn_blocking(move || Ca::start(opts)).await {
            Ok(ca) => ca,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("Ca::start task failed: {e}"),
        }
    }

    /// The ACME directory URL from the READY line.
    pub(crate) fn directory(&self) -> &str {
        &self.ready.directory
    }

    /// The CA certificate path from the READY line.
    pub(crate) fn ca_cert(&self) -> &Path {
        &self.ready.ca_cert
    }

    /// The whole READY record.
    pub(crate) fn ready(&self) -> &Ready {
        &self.ready
    }

    /// Base URL (`https://localhost:PORT`), derived from the directory URL.
    pub(crate) fn base_url(&self) -> String {
        let dir = &self.ready.directory;
        match dir.find("/acme/") {
            Some(i) => dir[..i].to_owned(),
            None => dir.trim_end_matches('/').to_owned(),
        }
    }

    /// The state directory given in the config.
    pub(crate) fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// The SQLite database path given in the config.
    pub(crate) fn db_path(&self) -> PathBuf {
        self.state_dir.join("akamu.db")
    }

    /// The config file the frontend was started with.
    pub(crate) fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The port the validator fetches http-01 tokens from.
    pub(crate) fn http_validation_port(&self) -> u16 {
        self.http_validation_port
    }

    /// The port the validator connects to for tls-alpn-01.
    pub(crate) fn tls_alpn_validation_port(&self) -> u16 {
        self.tls_alpn_validation_port
    }

    /// Everything the three processes printed so far (stdout and stderr).
    pub(crate) fn output(&self) -> String {
        lock(&self.output).clone()
    }

    /// Current live children of the frontend as `(pid, comm)`, read from `/proc`.
    pub(crate) fn children(&self) -> Vec<(i32, String)> {
        children_of(self.ready.frontend_pid)
    }

    /// Pid of the live child whose command name starts with `prefix`
    /// (`/proc` truncates names to 15 bytes: use `"validator-worke"` or less).
    pub(crate) fn child_pid(&self, prefix: &str) -> Option<i32> {
        self.children()
            .into_iter()
            .find(|(_, comm)| comm.starts_with(prefix))
            .map(|(pid, _)| pid)
    }

    /// Current pid of the `ca-signer` child, if one is running.
    pub(crate) fn signer_pid(&self) -> Option<i32> {
        self.child_pid("ca-signer")
    }

    /// Current pid of the `validator-worker` child, if one is running.
    pub(crate) fn validator_pid(&self) -> Option<i32> {
        self.child_pid("validator-work")
    }

    /// Waits until a child matching `prefix` runs with a pid other than
    /// `old`, i.e. the launcher restarted it. Returns the new pid.
    pub(crate) async fn wait_restarted(&self, prefix: &str, old: i32, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(pid) = self.child_pid(prefix).filter(|p| *p != old) {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "the launcher did not restart {prefix} (old pid {old}) within {timeout:?}; children now: {:?}",
                self.children()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until process `pid` listens on a Unix socket (the signer and
    /// the validator serve tarpc on one), read from `/proc/net/unix`.
    pub(crate) async fn wait_listening(&self, pid: i32, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !listens_on_unix_socket(pid) {
            assert!(
                Instant::now() < deadline,
                "process {pid} did not listen on a Unix socket within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn child_id(&self) -> i32 {
        let id = self.child.as_ref().map_or(0, Child::id);
        i32::try_from(id).unwrap_or(0)
    }

    fn shutdown(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let frontend = self.ready.frontend_pid;
        // Remember the children now: once the frontend is gone they are
        // re-parented and we could no longer tell them from strangers.
        let mut leftovers: Vec<i32> = children_of(frontend).into_iter().map(|(p, _)| p).collect();
        for pid in [self.ready.signer_pid, self.ready.validator_pid] {
            if pid > 0 && !leftovers.contains(&pid) && is_our_binary(pid) {
                leftovers.push(pid);
            }
        }

        if matches!(child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(frontend), Signal::SIGTERM);
            let deadline = Instant::now() + TERM_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                append(
                    &self.output,
                    "[e2e] acme-frontend ignored SIGTERM for 5 s: SIGKILL\n",
                );
                let _ = child.kill();
            }
        }
        let status = child.wait();
        append(
            &self.output,
            &format!("[e2e] acme-frontend exit: {status:?}\n"),
        );

        // Fallback: children the launcher failed to stop.
        for pid in leftovers {
            if is_our_binary(pid) {
                append(
                    &self.output,
                    &format!("[e2e] child {pid} outlived acme-frontend: SIGKILL\n"),
                );
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for Ca {
    fn drop(&mut self) {
        self.shutdown();
        let failed = thread::panicking();
        if failed || std::env::var_os("AKAMU_E2E_SHOW_OUTPUT").is_some() {
            // Let the reader threads drain what is left in the pipes.
            thread::sleep(Duration::from_millis(100));
            let mut text = String::new();
            let _ = writeln!(
                text,
                "\n===== akamu output ({}) =====",
                self.state_dir.display()
            );
            text.push_str(&lock(&self.output));
            let _ = writeln!(text, "===== end of akamu output =====");
            eprint!("{text}");
        }
        if failed && !self.discard_on_failure {
            // Keep the state dir (database, config, keys) for a post-mortem.
            if let Some(dir) = self.dir.take() {
                let path = dir.keep();
                eprintln!("[e2e] state kept in {}", path.display());
            }
        }
    }
}

/// Path of a workspace binary next to the test executable.
///
/// Panics with instructions when it has not been built.
pub(crate) fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/debug/deps/e2e-HASH → target/debug
    let mut dir = exe.parent().expect("exe has a parent").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` before `cargo test -p tests`",
        path.display()
    );
    path
}

/// Finds an executable called `name` on `PATH`.
pub(crate) fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The last `n` lines of `text` (for quoting long logs in a failure).
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

pub(crate) use test_kit::ports::free_port;

/// What [`config_toml`] puts into the generated config.
struct ConfigParts<'a> {
    port: u16,
    state_dir: &'a Path,
    http_validation_port: u16,
    tls_alpn_validation_port: u16,
    dns: SocketAddr,
    ca_cert_file: &'a Path,
    ca: &'a str,
    server: &'a str,
    extra: &'a str,
    tls: Option<&'a str>,
    base_url: Option<&'a str>,
    database: Option<&'a str>,
}

/// The config the contract describes, with absolute paths under `state_dir`.
fn config_toml(p: &ConfigParts<'_>) -> String {
    let ConfigParts {
        port,
        http_validation_port,
        tls_alpn_validation_port,
        dns,
        ca,
        server,
        extra,
        ..
    } = *p;
    let s = p.state_dir.display();
    let cert = p.ca_cert_file.display();
    let database = p
        .database
        .map_or_else(|| format!("path = \"{s}/akamu.db\""), str::to_owned);
    let base_url = p
        .base_url
        .map_or_else(|| format!("https://localhost:{port}"), str::to_owned);
    let tls = p.tls.map_or_else(
        || {
            format!(
                "enabled     = true\ncert_file   = \"{s}/server.crt\"\n\
                 key_file    = \"{s}/server.key\"\nserver_name = \"localhost\"\n"
            )
        },
        str::to_owned,
    );
    format!(
        r#"listen_addr = "127.0.0.1:{port}"
base_url    = "{base_url}"
state_dir   = "{s}"

[database]
{database}

[ca]
key_file      = "{s}/ca.key.pem"
cert_file     = "{cert}"
validity_days = 90
{ca}

[tls]
{tls}

[server]
http_validation_port     = {http_validation_port}
tls_alpn_validation_port = {tls_alpn_validation_port}
dns_resolver_addr        = "{dns}"
allow_private_targets    = true
{server}
{extra}"#
    )
}

fn spawn_reader(
    name: &'static str,
    pipe: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    ready: Option<mpsc::Sender<String>>,
) {
    thread::spawn(move || {
        let mut ready = ready;
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf);
            if line.starts_with("READY ")
                && let Some(tx) = ready.take()
            {
                let _ = tx.send(line.trim_end().to_owned());
            }
            let mut out = lock(&output);
            let _ = write!(out, "[{name}] {line}");
            if !line.ends_with('\n') {
                out.push('\n');
            }
        }
        // Dropping `ready` here tells `start` that stdout closed.
    });
}

fn append(output: &Mutex<String>, text: &str) {
    lock(output).push_str(text);
}

fn lock(output: &Mutex<String>) -> std::sync::MutexGuard<'_, String> {
    // A reader thread cannot panic while holding the lock; recover anyway.
    output.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn config_is_toml_with_absolute_paths() {
        let text = config_toml(&ConfigParts {
            port: 4443,
            state_dir: Path::new("/tmp/x/akamu-data"),
            http_validation_port: 5002,
            tls_alpn_validation_port: 5003,
            dns: "127.0.0.1:5353".parse().expect("addr"),
            ca_cert_file: Path::new("/tmp/x/akamu-data/ca.cert.pem"),
            ca: "crl_url = \"https://localhost:4443/crl\"",
            server: "order_expiry_secs = 60",
            extra: "[server.eab_keys]\nk = \"v\"",
            tls: None,
            base_url: None,
            database: None,
        });
        assert!(text.contains("listen_addr = \"127.0.0.1:4443\""));
        assert!(text.contains("base_url    = \"https://localhost:4443\""));
        assert!(text.contains("path = \"/tmp/x/akamu-data/akamu.db\""));
        assert!(text.contains("dns_resolver_addr        = \"127.0.0.1:5353\""));
        assert!(text.contains(
            "cert_file     = \"/tmp/x/akamu-data/ca.cert.pem\"\nvalidity_days = 90\ncrl_url = \"https://localhost:4443/crl\"\n"
        ));
        assert!(text.contains("allow_private_targets    = true\norder_expiry_secs = 60\n"));
        assert!(text.ends_with("[server.eab_keys]\nk = \"v\""));
    }

    #[test]
    fn ready_line_parses() {
        let line = r#"READY {"directory":"https://localhost:1/acme/directory","ca_cert":"/a/ca.cert.pem","frontend_pid":1,"signer_pid":2,"validator_pid":3}"#;
        let ready: Ready =
            serde_json::from_str(line.trim_start_matches("READY").trim()).expect("parse");
        assert_eq!(ready.validator_pid, 3);
        assert_eq!(ready.ca_cert, PathBuf::from("/a/ca.cert.pem"));
    }

    /// Writes an executable shell script standing in for the launcher.
    fn fake_launcher(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("fake-frontend");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    fn alive(pid: i32) -> bool {
        proc_stat(pid).is_some_and(|(_, state, _)| state != 'Z')
    }

    #[test]
    fn start_reads_ready_and_drop_stops_the_launcher() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = fake_launcher(
            dir.path(),
            r#"sleep 300 & S=$!
sleep 300 & V=$!
trap 'kill $S $V; exit 0' TERM
echo "starting"
echo "READY {\"directory\":\"https://localhost:1/acme/directory\",\"ca_cert\":\"/x/ca.cert.pem\",\"frontend_pid\":$$,\"signer_pid\":$S,\"validator_pid\":$V}"
echo "human text"
wait"#,
        );
        let ca = Ca::start(CaOptions {
            frontend_binary: Some(script),
            ..CaOptions::default()
        });
        let ready = ca.ready().clone();
        assert_eq!(ca.directory(), "https://localhost:1/acme/directory");
        assert_eq!(ca.base_url(), "https://localhost:1");
        assert!(alive(ready.frontend_pid) && alive(ready.signer_pid));
        let kids: Vec<i32> = ca.children().into_iter().map(|(p, _)| p).collect();
        assert!(kids.contains(&ready.signer_pid) && kids.contains(&ready.validator_pid));
        assert!(ca.config_path().is_file());
        let state_dir = ca.state_dir().to_path_buf();
        assert!(state_dir.is_dir());
        drop(ca);
        assert!(!alive(ready.frontend_pid), "Drop stops the launcher");
        assert!(!state_dir.exists(), "a passing test leaves no state behind");
    }

    #[test]
    fn start_fails_clearly_when_the_launcher_dies_before_ready() {
        let dir = tempfile::tempdir().expect("tempdir");
        let script = fake_launcher(dir.path(), "echo 'config error' >&2\nexit 3");
        let err = std::panic::catch_unwind(|| {
            Ca::start(CaOptions {
                frontend_binary: Some(script),
                discard_on_failure: true,
                ..CaOptions::default()
            })
        })
        .err()
        .expect("start panics");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("closed stdout before READY"), "{msg}");
    }
}
