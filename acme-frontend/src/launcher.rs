//! Running the frontend, and in development the whole CA: the launcher
//! writes the signer's and the validator's configs into `state_dir`, starts
//! both binaries (found next to this one), waits for their `READY` lines,
//! restarts them when they exit, and stops them on shutdown.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::watch;

use crate::config::Config;
use crate::error::Error;
use crate::tls::ServerCertSource;
use crate::{App, http, jobs};

/// How long a child may take to print `READY`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the frontend (and, if `[launcher] enabled`, its two peers) until
/// SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), Error> {
    create_private_dir(&config.state_dir)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut children = Vec::new();
    if config.launcher.enabled {
        let bin_dir = match &config.launcher.bin_dir {
            Some(d) => d.clone(),
            None => std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .ok_or_else(|| Error::Startup("cannot locate this executable".into()))?,
        };
        let uid = nix::unistd::geteuid().as_raw();
        let signer_cfg = config.state_dir.join("signer.toml");
        let server_cert = crate::tls::server_cert_source(&config)?;
        write_file(&signer_cfg, &signer_config(&config, uid, server_cert))?;
        let validator_cfg = config.state_dir.join("validator.toml");
        write_file(&validator_cfg, &validator_config(&config, uid))?;
        // The validator first: the signer is configured with the public half
        // of the statement key the validator creates on its first start.
        for (name, bin, cfg) in [
            ("validator", bin_dir.join("validator-worker"), validator_cfg),
            ("signer", bin_dir.join("ca-signer"), signer_cfg),
        ] {
            if !bin.exists() {
                return Err(Error::Startup(format!(
                    "{} not found (build the workspace binaries first)",
                    bin.display()
                )));
            }
            children.push(Supervised::start(name, bin, cfg, stop_rx.clone()).await?);
        }
    }

    let tls = crate::tls::start(&config)?;
    let listener = TcpListener::bind(config.listen_addr)
        .await
        .map_err(|e| Error::Startup(format!("binding {}: {e}", config.listen_addr)))?;
    // Off unless configured; bound before privileges are dropped.
    let metrics_listener = match config.metrics.listen_addr {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Startup(format!("binding [metrics] {addr}: {e}")))?,
        ),
        None => None,
    };
    drop_privileges(&config)?;
    let app = App::new(config)?;
    if let Some(listener) = metrics_listener {
        tracing::info!(target: "frontend", addr = ?listener.local_addr().ok(), "serving /metrics");
        tokio::spawn(crate::metrics::server::serve(app.clone(), listener));
    }
    // Learn the CA's facts before the first request when the signer is up
    // (a signer that is down is retried in the background).
    if let Err(e) = crate::ca::facts(&app).await {
        tracing::warn!(target: "frontend", error = %e, "the signer did not tell the CA's facts yet");
    }
    // Several front ends: try the jobs lease once before the jobs start,
    // so a restarted holder takes its lease back at once.
    if let Err(e) = app.leader.try_take(&app.store).await {
        tracing::warn!(target: "frontend", error = %e, "jobs lease: first try failed; will retry");
    }
    tokio::spawn(crate::leader::hold_forever(app.clone()));
    tokio::spawn(crate::ca::refresh_forever(app.clone()));
    tokio::spawn(crate::validator_facts::refresh_forever(app.clone()));
    tokio::spawn(jobs::sweep_forever(app.clone()));
    tokio::spawn(crate::crl::refresh_forever(app.clone()));
    // Resident memory follows the heap in use, not what malloc keeps
    // (docs/src/reliability.md, the soak).
    tokio::spawn(daemon_kit::memory::release_forever(
        std::time::Duration::from_secs(30),
    ));
    announce(&app, &children);

    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(target: "frontend", error = %e, "cannot watch SIGTERM");
                    std::future::pending::<()>().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!(target: "frontend", "shutting down");
    };
    http::server::serve(app.clone(), listener, tls, shutdown).await;
    app.leader.release(&app.store).await;
    let _ = stop_tx.send(true);
    for child in children {
        child.stopped().await;
    }
    Ok(())
}

/// After binding: become the configured user with no capabilities and
/// `no_new_privs` (a low port was bound with CAP_NET_BIND_SERVICE, which is
/// gone now).
fn drop_privileges(config: &Config) -> Result<(), Error> {
    use daemon_kit::privileges::{drop_privileges, plan};
    let run_as = config.run_as();
    let plan = plan(
        run_as.as_ref().map(|(u, _)| u.as_str()),
        run_as.as_ref().map(|(_, g)| g.as_str()),
    );
    let who =
        drop_privileges(&plan).map_err(|e| Error::Startup(format!("dropping privileges: {e}")))?;
    tracing::info!(target: "frontend", uid = who.uid, gid = who.gid, "privileges dropped");
    let mut secrets = match config.database() {
        crate::store::Location::Sqlite(path) => vec![path],
        crate::store::Location::Postgres(_) => Vec::new(),
    };
    if config.tls.enabled {
        secrets.push(config.tls_key_file());
    }
    if let crate::config::SignerEndpoint::Tls { files, .. } = config.signer_endpoint() {
        secrets.push(files.key_file);
    }
    for secret in secrets.iter().filter(|p| p.exists()) {
        daemon_kit::privileges::check_private_file(secret)
            .map_err(|e| Error::Startup(format!("refusing to start: {e}")))?;
    }
    Ok(())
}

fn announce(app: &App, children: &[Supervised]) {
    let pid_of = |name: &str| {
        children
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.pid.load(Ordering::SeqCst))
    };
    let c = &app.config;
    // The CA certificate's file is the signer's; only the launcher, which
    // wrote the signer's configuration, knows where it is.
    let ca_cert = c.launcher.enabled.then(|| absolute(&c.ca_cert_file()));
    let directory = app.urls.directory();
    let ready = json!({
        "directory": directory,
        "ca_cert": ca_cert,
        "frontend_pid": std::process::id(),
        "signer_pid": pid_of("signer"),
        "validator_pid": pid_of("validator"),
    });
    let state = c.state_dir.display();
    let ca_cert_text = ca_cert.as_deref().map_or_else(
        || "(the signer's [ca] cert_file)".to_owned(),
        |p| p.display().to_string(),
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "READY {ready}");
    let _ = writeln!(
        out,
        "\nAkāmu is running: frontend pid {}, signer pid {}, validator pid {}.\n\
         \n  Directory:      {directory}\n  CA certificate: {}\n\
         \nGet a certificate with certbot (no root needed):\n\
         \n  REQUESTS_CA_BUNDLE={} certbot certonly --standalone --http-01-port {} \\\n    \
         --server {directory} -d demo.localhost \\\n    \
         --agree-tos --register-unsafely-without-email --non-interactive \\\n    \
         --config-dir {state}/certbot/config --work-dir {state}/certbot/work --logs-dir {state}/certbot/logs\n\
         \nStop with Ctrl-C.",
        std::process::id(),
        pid_of("signer").map_or("-".into(), |p| p.to_string()),
        pid_of("validator").map_or("-".into(), |p| p.to_string()),
        ca_cert_text,
        ca_cert_text,
        c.server.http_validation_port,
    );
    let _ = out.flush();
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn create_private_dir(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| Error::Io {
            context: "creating",
            path: dir.to_owned(),
            source,
        })
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|source| Error::Io {
        context: "writing",
        path: path.to_owned(),
        source,
    })
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn toml_path(p: &Path) -> String {
    toml_str(&p.to_string_lossy())
}

/// The signer's configuration, derived from the launcher's. The signer is
/// asked for the HTTPS certificate only when our CA provides it
/// (`server_cert`, see [`ServerCertSource`]).
pub fn signer_config(c: &Config, uid: u32, server_cert: Option<ServerCertSource>) -> String {
    let mut s = format!(
        "socket_path = {}\nallowed_uids = [{uid}]\nvalidator_public_key_file = {}\n\n\
         [ca]\nkey_file = {}\ncert_file = {}\n\
         key_type = {}\nhash_alg = {}\nvalidity_days = {}\nca_validity_years = {}\n\
         common_name = {}\norganization = {}\n",
        toml_path(&c.signer_socket()),
        toml_path(&statement_public_key(c)),
        toml_path(&c.ca_key_file()),
        toml_path(&c.ca_cert_file()),
        toml_str(&c.ca.key_type.to_string()),
        toml_str(&c.ca.hash_alg),
        c.ca.validity_days,
        c.ca.ca_validity_years,
        toml_str(&c.ca.common_name),
        toml_str(&c.ca.organization),
    );
    if let Some(u) = &c.ca.crl_url {
        s.push_str(&format!("crl_url = {}\n", toml_str(u)));
    }
    if let Some(u) = &c.ca.ocsp_url {
        s.push_str(&format!("ocsp_url = {}\n", toml_str(u)));
    }
    if let Some(p) = &c.ca.chain_file {
        s.push_str(&format!("chain_file = {}\n", toml_path(p)));
    }
    if let Some(u) = &c.ca.ca_issuers_url {
        s.push_str(&format!("ca_issuers_url = {}\n", toml_str(u)));
    }
    let mut top = toml::Table::new();
    for (key, table) in [
        ("policy", &c.signer.policy),
        ("audit", &c.signer.audit),
        ("profiles", &c.signer.profiles),
    ] {
        if let Some(t) = table {
            top.insert(key.into(), toml::Value::Table(t.clone()));
        }
    }
    if !top.is_empty() {
        s.push('\n');
        s.push_str(&top.to_string());
    }
    if c.mtc.enabled {
        let m = &c.mtc;
        let origin = m
            .origin
            .clone()
            .unwrap_or_else(|| akamu_tlog::default_origin(&c.base_url));
        s.push_str(&format!(
            "\n[mtc]\nenabled = true\nlog_path = {}\norigin = {}\nkey_file = {}\ngenerate_key = true\n",
            toml_path(&m.log_path.clone().unwrap_or_else(|| c.state_dir.join("mtc.log"))),
            toml_str(&origin),
            toml_path(&m.key_file.clone().unwrap_or_else(|| c.state_dir.join("mtc-log.key"))),
        ));
    }
    if let Some(key) = &c.signer.key {
        let mut outer = toml::Table::new();
        let mut signer = toml::Table::new();
        signer.insert("key".into(), toml::Value::Table(key.clone()));
        outer.insert("signer".into(), toml::Value::Table(signer));
        s.push('\n');
        s.push_str(&outer.to_string());
    }
    for p in &c.validator.perspectives {
        s.push_str(&format!(
            "\n[[perspectives]]\nname = {}\nrir = {}\npublic_key_file = {}\n",
            toml_str(&p.name),
            toml_str(&p.rir),
            toml_path(&p.public_key_file),
        ));
    }
    if c.tls.enabled && server_cert == Some(ServerCertSource::OurCa) {
        let mut names = vec![toml_str(&c.tls.server_name)];
        if c.tls.server_name != "127.0.0.1" {
            names.push(toml_str("127.0.0.1"));
        }
        s.push_str(&format!(
            "\n[server_certificate]\nnames = [{}]\ncert_file = {}\nkey_file = {}\nkey_type = {}\n",
            names.join(", "),
            toml_path(&c.tls_cert_file()),
            toml_path(&c.tls_key_file()),
            toml_str(&c.tls.bootstrap_key_type.to_string()),
        ));
    }
    s
}

/// Where the launcher keeps the validator's statement key.
fn statement_key(c: &Config) -> PathBuf {
    c.state_dir.join("validator-statement.key")
}

/// Its public half, which the signer trusts.
fn statement_public_key(c: &Config) -> PathBuf {
    shared_proto::statement::public_path(&statement_key(c))
}

/// The validator's configuration, derived from the launcher's.
pub fn validator_config(c: &Config, uid: u32) -> String {
    let s = &c.server;
    let mut out = format!(
        "socket_path = {}\nallowed_uids = [{uid}]\nstatement_key_file = {}\n\
         http_validation_port = {}\ntls_alpn_validation_port = {}\nallow_private_targets = {}\n",
        toml_path(&c.validator_socket()),
        toml_path(&statement_key(c)),
        s.http_validation_port,
        s.tls_alpn_validation_port,
        s.allow_private_targets,
    );
    if let Some(addr) = s.dns_resolver_addr {
        out.push_str(&format!(
            "dns_resolver_addr = {}\n",
            toml_str(&addr.to_string())
        ));
    }
    if !s.caa_identities.is_empty() {
        let ids: Vec<String> = s.caa_identities.iter().map(|d| toml_str(d)).collect();
        out.push_str(&format!("caa_identities = [{}]\n", ids.join(", ")));
    }
    if let Some(issuer) = &s.dns_persist_issuer_domain {
        out.push_str(&format!(
            "dns_persist_issuer_domain = {}\n",
            toml_str(issuer)
        ));
    }
    if s.tor_connectivity_enabled {
        let proxy = s
            .tor_socks_proxy
            .unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9050)));
        out.push_str(&format!(
            "tor_socks_proxy = {}\n",
            toml_str(&proxy.to_string())
        ));
    }
    if let Some(form) = s.dns_persist_form {
        out.push_str(&format!("dns_persist_form = {}\n", toml_str(form.as_str())));
    }
    if let Some(ms) = c.validator.perspective_timeout_ms {
        out.push_str(&format!("perspective_timeout_ms = {ms}\n"));
    }
    for p in &c.validator.perspectives {
        out.push_str(&format!(
            "\n[[perspectives]]\nname = {}\nrir = {}\naddress = {}\n",
            toml_str(&p.name),
            toml_str(&p.rir),
            toml_str(&p.address),
        ));
        if let Some(name) = &p.server_name {
            out.push_str(&format!("server_name = {}\n", toml_str(name)));
        }
    }
    if let Some(client) = &c.validator.perspective_client {
        // Passed verbatim: the validator checks its keys strictly.
        let mut outer = toml::Table::new();
        outer.insert(
            "perspective_client".into(),
            toml::Value::Table(client.clone()),
        );
        out.push('\n');
        out.push_str(&outer.to_string());
    }
    out
}

/// A child process kept alive by a supervisor task.
struct Supervised {
    name: &'static str,
    pid: Arc<AtomicU32>,
    task: tokio::task::JoinHandle<()>,
}

impl Supervised {
    /// Starts the child and waits for its first `READY`.
    async fn start(
        name: &'static str,
        bin: PathBuf,
        config: PathBuf,
        stop: watch::Receiver<bool>,
    ) -> Result<Self, Error> {
        let pid = Arc::new(AtomicU32::new(0));
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let task = tokio::spawn(supervise(name, bin, config, pid.clone(), ready_tx, stop));
        let waited = tokio::time::timeout(READY_TIMEOUT, async {
            while !*ready_rx.borrow() {
                if ready_rx.changed().await.is_err() {
                    return false;
                }
            }
            true
        })
        .await;
        match waited {
            Ok(true) => Ok(Self { name, pid, task }),
            _ => Err(Error::Startup(format!("{name} did not become ready"))),
        }
    }

    /// Waits until the supervisor has stopped the child.
    async fn stopped(self) {
        let _ = self.task.await;
    }
}

async fn supervise(
    name: &'static str,
    bin: PathBuf,
    config: PathBuf,
    pid: Arc<AtomicU32>,
    ready: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = tokio::time::Instant::now();
        let mut cmd = Command::new(&bin);
        cmd.arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        set_parent_death_signal(&mut cmd);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(target: "frontend", child = name, error = %e, "cannot start");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let child_pid = child.id().unwrap_or(0);
        pid.store(child_pid, Ordering::SeqCst);
        if let Some(stdout) = child.stdout.take() {
            let ready = ready.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.starts_with("READY ") {
                        let _ = ready.send(true);
                        tracing::info!(target: "frontend", child = name, pid = child_pid, "ready");
                    } else {
                        eprintln!("[{name}] {line}");
                    }
                }
            });
        }
        tokio::select! {
            status = child.wait() => {
                let ran = started.elapsed();
                if ran > Duration::from_secs(30) {
                    backoff = Duration::from_millis(100);
                }
                tracing::warn!(target: "frontend", child = name, pid = child_pid, ?status, "exited; restarting in {backoff:?}");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            _ = stop.changed() => {
                terminate(&mut child, child_pid).await;
                return;
            }
        }
    }
}

async fn terminate(child: &mut tokio::process::Child, pid: u32) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), Signal::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(5), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

/// Children die with the launcher even if it is killed with SIGKILL.
#[allow(unsafe_code)]
fn set_parent_death_signal(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl(PR_SET_PDEATHSIG), which is async-signal-safe and touches no
    // memory shared with the parent.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)
        });
    }
}
