//! Several front ends on one database, production style: one
//! `validator-worker` and one `ca-signer` started once as their own
//! processes, then N `acme-frontend`s with `[launcher] enabled = false` and
//! `[fleet] enabled = true`, each on its own port, all serving the same
//! `base_url` (the first one's) on one SQLite file and reaching the same
//! two sockets. Every process is stopped on `Drop`; its output is printed
//! when the test fails.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::procs::{binary_path, free_port};

/// How long a process may take to print `READY`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One of the fleet's processes.
struct Proc {
    name: String,
    child: Option<Child>,
    output: Arc<Mutex<String>>,
}

impl Proc {
    /// Runs `bin --config config` and waits for its `READY` line.
    fn start(name: &str, bin: &Path, config: &Path, output: Arc<Mutex<String>>) -> Proc {
        let mut child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        read_lines(name, stdout, output.clone(), Some(tx));
        read_lines(name, stderr, output.clone(), None);
        let mut proc_ = Proc {
            name: name.to_owned(),
            child: Some(child),
            output,
        };
        if rx.recv_timeout(READY_TIMEOUT).is_err() {
            proc_.stop();
            panic!(
                "{name} printed no READY line within {READY_TIMEOUT:?}:\n{}",
                proc_.output.lock().map(|o| o.clone()).unwrap_or_default()
            );
        }
        proc_
    }

    fn pid(&self) -> i32 {
        self.child
            .as_ref()
            .and_then(|c| i32::try_from(c.id()).ok())
            .unwrap_or(0)
    }

    /// SIGKILL, then reaps it.
    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, SIGKILL after 5 s; reaps it.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(0));
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            eprintln!("{} did not stop on SIGTERM; killing", self.name);
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

fn read_lines(
    name: &str,
    pipe: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    ready: Option<mpsc::Sender<()>>,
) {
    let name = name.to_owned();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("READY ")
                && let Some(tx) = &ready
            {
                let _ = tx.send(());
            }
            if let Ok(mut out) = output.lock() {
                out.push_str(&format!("[{name}] {line}\n"));
            }
        }
    });
}

/// One front end of the fleet.
pub(crate) struct Frontend {
    proc_: Option<Proc>,
    /// Its name (`[fleet] instance_name`).
    pub name: String,
    /// The port it listens on.
    pub port: u16,
    /// The port of its `[metrics]` listener (plain HTTP).
    pub metrics_port: u16,
    config: PathBuf,
}

impl Frontend {
    /// `https://localhost:<port>`: where this front end is reached.
    pub(crate) fn origin(&self) -> String {
        format!("https://localhost:{}", self.port)
    }

    /// Its pid (0 when stopped).
    pub(crate) fn pid(&self) -> i32 {
        self.proc_.as_ref().map_or(0, Proc::pid)
    }
}

/// The fleet: signer, validator, front ends, one database.
pub(crate) struct Fleet {
    dir: Option<tempfile::TempDir>,
    output: Arc<Mutex<String>>,
    validator: Option<Proc>,
    signer: Option<Proc>,
    /// The front ends, in start order (the first takes the jobs lease).
    pub frontends: Vec<Frontend>,
    base_url: String,
    ca_cert: PathBuf,
    db: PathBuf,
    http_validation_port: u16,
    /// The PostgreSQL server with `FleetOptions::postgres` (stopped after
    /// the front ends).
    pg: Option<test_kit::postgres::PgServer>,
}

/// What a test chooses about the fleet.
pub(crate) struct FleetOptions {
    /// Number of front ends.
    pub frontends: usize,
    /// The test DNS server the validator uses.
    pub dns: SocketAddr,
    /// `[fleet] lease_secs`.
    pub lease_secs: u32,
    /// `[fleet] enabled` (false only to measure what it costs).
    pub enabled: bool,
    /// One PostgreSQL database (`[database] url`, a server started for the
    /// fleet) instead of one SQLite file.
    pub postgres: bool,
}

impl Fleet {
    /// Starts the validator, the signer and the front ends, each waited for.
    pub(crate) fn start(opts: FleetOptions) -> Fleet {
        let dir = tempfile::Builder::new()
            .prefix("akamu-fleet-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().to_path_buf();
        for d in ["signer", "validator", "run", "db"] {
            std::fs::create_dir_all(root.join(d)).expect("mkdir");
        }
        let uid = nix::unistd::geteuid().as_raw();
        // The front end switches to `user` when started as root: the
        // user running the test.
        let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map_or_else(|| "root".to_owned(), |u| u.name);
        let http_validation_port = free_port();
        let ports: Vec<u16> = (0..opts.frontends).map(|_| free_port()).collect();
        let base_url = format!("https://localhost:{}", ports[0]);
        let output = Arc::new(Mutex::new(String::new()));

        let statement_key = root.join("validator/statement.key");
        let validator_cfg = root.join("validator.toml");
        std::fs::write(
            &validator_cfg,
            format!(
                "socket_path = {:?}\nallowed_uids = [{uid}]\nstatement_key_file = {:?}\n\
                 http_validation_port = {http_validation_port}\ntls_alpn_validation_port = {}\n\
                 dns_resolver_addr = \"{}\"\nallow_private_targets = true\n",
                root.join("run/validator.sock"),
                statement_key,
                free_port(),
                opts.dns,
            ),
        )
        .expect("write validator.toml");
        let validator = Proc::start(
            "validator",
            &binary_path("validator-worker"),
            &validator_cfg,
            output.clone(),
        );

        let ca_cert = root.join("signer/ca.cert.pem");
        let signer_cfg = root.join("signer.toml");
        std::fs::write(
            &signer_cfg,
            format!(
                "socket_path = {:?}\nallowed_uids = [{uid}]\nvalidator_public_key_file = {:?}\n\
                 [ca]\nkey_file = {:?}\ncert_file = {:?}\nvalidity_days = 90\n\
                 crl_url = \"{base_url}/crl/ca.crl\"\n\
                 [audit]\npath = {:?}\n\
                 [server_certificate]\nnames = [\"localhost\", \"127.0.0.1\"]\n\
                 cert_file = {:?}\nkey_file = {:?}\n",
                root.join("run/signer.sock"),
                shared_proto::statement::public_path(&statement_key),
                root.join("signer/ca.key.pem"),
                ca_cert,
                root.join("signer/audit.log"),
                root.join("signer/server.crt"),
                root.join("signer/server.key"),
            ),
        )
        .expect("write signer.toml");
        let signer = Proc::start(
            "signer",
            &binary_path("ca-signer"),
            &signer_cfg,
            output.clone(),
        );

        let mut fleet = Fleet {
            dir: Some(dir),
            output,
            validator: Some(validator),
            signer: Some(signer),
            frontends: Vec::new(),
            base_url,
            ca_cert,
            db: root.join("db/akamu.db"),
            http_validation_port,
            pg: opts.postgres.then(|| {
                test_kit::postgres::PgServer::start()
                    .expect("start PostgreSQL (install the `postgresql` package)")
            }),
        };
        let database = match &fleet.pg {
            Some(pg) => format!("url = \"{}\"", pg.url()),
            None => format!("path = {:?}", fleet.db),
        };
        for (i, port) in ports.into_iter().enumerate() {
            let name = format!("fe-{}", char::from(b'a' + u8::try_from(i).unwrap_or(0)));
            let state = root.join(&name);
            std::fs::create_dir_all(&state).expect("mkdir");
            // Each front end has its own copy of the HTTPS key (0600, its
            // own), as an operator would install it.
            let key = state.join("server.key");
            std::fs::copy(root.join("signer/server.key"), &key).expect("copy key");
            let config = root.join(format!("{name}.toml"));
            let metrics_port = free_port();
            std::fs::write(
                &config,
                format!(
                    "listen_addr = \"127.0.0.1:{port}\"\nbase_url = \"{}\"\nstate_dir = {:?}\n\
                     user = \"{user}\"\n\
                     [database]\n{}\n\
                     [tls]\nenabled = true\ncert_file = {:?}\nkey_file = {:?}\n\
                     [server]\nhttp_validation_port = {http_validation_port}\n\
                     allow_private_targets = true\n\
                     [signer]\nsocket_path = {:?}\n[validator]\nsocket_path = {:?}\n\
                     [launcher]\nenabled = false\n\
                     [metrics]\nlisten_addr = \"127.0.0.1:{metrics_port}\"\n\
                     [fleet]\nenabled = {}\nlease_secs = {}\ninstance_name = \"{name}\"\n",
                    fleet.base_url,
                    state,
                    database,
                    root.join("signer/server.crt"),
                    key,
                    root.join("run/signer.sock"),
                    root.join("run/validator.sock"),
                    opts.enabled,
                    opts.lease_secs,
                ),
            )
            .expect("write front end config");
            fleet.frontends.push(Frontend {
                proc_: None,
                name,
                port,
                metrics_port,
                config,
            });
            fleet.start_frontend(i);
        }
        fleet
    }

    /// [`Fleet::start`] on a blocking thread, for async tests.
    pub(crate) async fn start_async(opts: FleetOptions) -> Fleet {
        match tokio::task::spawn_blocking(move || Fleet::start(opts)).await {
            Ok(fleet) => fleet,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("Fleet::start task failed: {e}"),
        }
    }

    /// (Re)starts front end `i` on its configuration and waits for READY.
    pub(crate) fn start_frontend(&mut self, i: usize) {
        let fe = &mut self.frontends[i];
        fe.proc_ = Some(Proc::start(
            &fe.name,
            &binary_path("acme-frontend"),
            &fe.config,
            self.output.clone(),
        ));
    }

    /// Stops front end `i` (SIGTERM) and starts it again.
    pub(crate) async fn restart_frontend(&mut self, i: usize) {
        if let Some(mut p) = self.frontends[i].proc_.take() {
            tokio::task::spawn_blocking(move || p.stop())
                .await
                .expect("stop");
        }
        tokio::task::block_in_place(|| self.start_frontend(i));
    }

    /// Kills front end `i` with SIGKILL (no clean shutdown: its lease
    /// stays in the database until it expires).
    pub(crate) fn kill9_frontend(&mut self, i: usize) {
        if let Some(p) = self.frontends[i].proc_.as_mut() {
            p.kill9();
        }
        self.frontends[i].proc_ = None;
    }

    /// The `base_url` every front end serves.
    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The ACME directory URL.
    pub(crate) fn directory(&self) -> String {
        format!("{}/acme/directory", self.base_url)
    }

    /// The CA certificate (PEM) made by the signer.
    pub(crate) fn ca_cert(&self) -> &Path {
        &self.ca_cert
    }

    /// The shared database: the SQLite file or the PostgreSQL URL.
    pub(crate) fn database(&self) -> acme_frontend::store::Location {
        match &self.pg {
            Some(pg) => {
                acme_frontend::store::Location::Postgres(acme_frontend::store::pg::PgOptions {
                    url: pg.url(),
                    max_connections: 1,
                    timeout: std::time::Duration::from_secs(10),
                })
            }
            None => acme_frontend::store::Location::Sqlite(self.db.clone()),
        }
    }

    /// The port the validator fetches http-01 tokens from.
    pub(crate) fn http_validation_port(&self) -> u16 {
        self.http_validation_port
    }

    /// Everything the processes printed.
    pub(crate) fn output(&self) -> String {
        self.output.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for fe in &mut self.frontends {
            fe.proc_ = None;
        }
        self.signer = None;
        self.validator = None;
        if std::thread::panicking() {
            eprintln!("--- fleet output ---\n{}", self.output());
            if let Some(dir) = self.dir.take() {
                eprintln!("fleet state kept in {}", dir.keep().display());
            }
        }
    }
}
