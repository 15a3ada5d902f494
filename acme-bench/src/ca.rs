//! Starting Akāmu for a run: `acme-frontend --config FILE` in launcher mode
//! (it starts `ca-signer` and `validator-worker` itself), waiting for its
//! `READY {json}` line, and stopping all three afterwards.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use akamu_jose::KeyType;
use anyhow::{Context, Result, anyhow, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Deserialize;

use crate::options::{CaBackend, ChallengeKind, Options};
use crate::responders::CA_IDENTITY;

/// How long to wait for the READY line.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Grace period after SIGTERM.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// SoftHSM2's PKCS#11 module on Debian.
pub const SOFTHSM_MODULE: &str = test_kit::softhsm::MODULE;
/// Token and key labels used with `--ca-backend softhsm`.
const TOKEN_LABEL: &str = "acme-bench";
const KEY_LABEL: &str = "bench-root";

/// The launcher's machine-readable line.
#[derive(Debug, Clone, Deserialize)]
pub struct Ready {
    /// ACME directory URL.
    pub directory: String,
    /// Absolute path of the CA certificate (PEM).
    pub ca_cert: PathBuf,
    /// Pid of `acme-frontend`.
    pub frontend_pid: i32,
    /// Pid of `ca-signer`.
    pub signer_pid: Option<i32>,
    /// Pid of `validator-worker`.
    pub validator_pid: Option<i32>,
}

/// A running Akāmu; stopped on drop.
pub struct ManagedCa {
    child: Option<Child>,
    /// What the launcher announced.
    pub ready: Ready,
    /// The config file it was started with.
    pub config_path: PathBuf,
    /// Where its stdout and stderr go.
    pub log_path: PathBuf,
    /// The database given in the config.
    pub db: String,
    /// `GET` URL of its Prometheus metrics, with `--heap-stats`.
    pub metrics_url: Option<String>,
    _dir: tempfile::TempDir,
}

/// Where the validator's probes go.
#[derive(Debug, Clone, Copy)]
pub struct Targets {
    /// http-01 port on 127.0.0.1.
    pub http_port: u16,
    /// tls-alpn-01 port on 127.0.0.1.
    pub tls_port: u16,
    /// DNS server for every validator lookup.
    pub dns: SocketAddr,
}

impl ManagedCa {
    /// Writes a config into a new temporary directory, starts the launcher
    /// and waits for READY.
    pub fn start(opts: &Options, bin_dir: &Path, targets: Targets) -> Result<ManagedCa> {
        let frontend = bin_dir.join("acme-frontend");
        for bin in ["acme-frontend", "ca-signer", "validator-worker"] {
            let p = bin_dir.join(bin);
            if !p.is_file() {
                bail!(
                    "{} is missing: build it (cargo build --release -p acme-frontend -p ca-signer \
                     -p validator-worker) or pass --bin-dir",
                    p.display()
                );
            }
        }
        let dir = tempfile::Builder::new().prefix("acme-bench-").tempdir()?;
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state)?;
        let db = match opts.db.as_deref() {
            None => state.join("akamu.db").display().to_string(),
            Some(":memory:") => ":memory:".to_owned(),
            Some(url) if is_postgres(url) => url.to_owned(),
            Some(p) => std::path::absolute(p)?.display().to_string(),
        };
        let port = free_port()?;
        let mut env: Vec<(String, PathBuf)> = Vec::new();
        let metrics_port = if opts.heap_stats {
            env.push(("AKAMU_HEAP_STATS".into(), "1".into()));
            Some(free_port()?)
        } else {
            None
        };
        let signer_key = match opts.ca_backend {
            CaBackend::File => String::new(),
            CaBackend::SoftHsm => {
                let hsm = dir.path().join("hsm");
                let conf = init_softhsm(&hsm, &state, opts.ca_key_type)?;
                env.push(("SOFTHSM2_CONF".into(), conf));
                format!(
                    "\n[signer.key]\nbackend = \"pkcs11\"\nmodule = \"{SOFTHSM_MODULE}\"\n\
                     token_label = \"{TOKEN_LABEL}\"\nkey_label = \"{KEY_LABEL}\"\npin_file = {}\n",
                    toml_path(&hsm.join("pin"))
                )
            }
        };
        let config = config_toml(
            port,
            &state,
            &db,
            opts.ca_key_type,
            targets,
            &format!(
                "{}{signer_key}{}{}{}{}",
                server_keys(opts),
                metrics_port.map_or(String::new(), |p| format!(
                    "\n[metrics]\nlisten_addr = \"127.0.0.1:{p}\"\n"
                )),
                leaf_profile(opts.key_type),
                if opts.mtc {
                    "\n[mtc]\nenabled = true\n"
                } else {
                    ""
                },
                if opts.rate_limits { RATE_LIMITS } else { "" }
            ),
        );
        let config_path = dir.path().join("akamu.toml");
        std::fs::write(&config_path, config)?;
        let log_path = match &opts.ca_log {
            Some(p) => p.clone(),
            None => dir.path().join("akamu.log"),
        };
        let log =
            File::create(&log_path).with_context(|| format!("create {}", log_path.display()))?;

        let mut cmd = Command::new(&frontend);
        cmd.arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log.try_clone()?);
        for (k, v) in &env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", frontend.display()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no stdout pipe"))?;
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut log = log;
            let mut tx = Some(tx);
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                if line.starts_with("READY ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(line.trim_end().to_owned());
                }
                let _ = std::io::Write::write_all(&mut log, line.as_bytes());
            }
        });
        let mut ca = ManagedCa {
            child: Some(child),
            ready: Ready {
                directory: String::new(),
                ca_cert: PathBuf::new(),
                frontend_pid: 0,
                signer_pid: None,
                validator_pid: None,
            },
            config_path,
            log_path,
            db,
            metrics_url: metrics_port.map(|p| format!("http://127.0.0.1:{p}/metrics")),
            _dir: dir,
        };
        let line = match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => {
                thread::sleep(Duration::from_millis(200));
                bail!(
                    "acme-frontend gave no READY line ({e}); its log:\n{}",
                    ca.log_tail(40)
                );
            }
        };
        ca.ready = serde_json::from_str(line.trim_start_matches("READY").trim())
            .with_context(|| format!("READY line is not the agreed JSON: {line}"))?;
        Ok(ca)
    }

    /// The last `n` lines of the CA's log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// `(name, pid)` of the three processes.
    pub fn pids(&self) -> Vec<(String, i32)> {
        let mut out = vec![("acme-frontend".to_owned(), self.ready.frontend_pid)];
        if let Some(p) = self.ready.signer_pid {
            out.push(("ca-signer".to_owned(), p));
        }
        if let Some(p) = self.ready.validator_pid {
            out.push(("validator-worker".to_owned(), p));
        }
        out
    }

    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
            let deadline = Instant::now() + TERM_GRACE;
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
        }
        let _ = child.wait();
        // Children the launcher failed to stop (it normally stops them).
        for pid in [self.ready.signer_pid, self.ready.validator_pid]
            .into_iter()
            .flatten()
        {
            if is_child_of_ours(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

impl Drop for ManagedCa {
    fn drop(&mut self) {
        self.stop();
    }
}

/// True if `pid` (named by our launcher's READY line) still runs the signer
/// or the validator, re-parented or not, and is not a zombie.
fn is_child_of_ours(pid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let comm = stat
        .find('(')
        .and_then(|a| stat.rfind(')').map(|b| &stat[a + 1..b]))
        .unwrap_or("");
    let zombie = stat
        .rfind(')')
        .and_then(|b| stat.get(b + 2..b + 3))
        .is_some_and(|s| s == "Z");
    !zombie && (comm.starts_with("ca-signer") || comm.starts_with("validator-work"))
}

/// A TCP port of 127.0.0.1 that was free a moment ago, below the ephemeral
/// range (see [`test_kit::ports`]).
pub fn free_port() -> Result<u16> {
    test_kit::ports::try_free_port().ok_or_else(|| anyhow!("no free TCP port on 127.0.0.1"))
}

fn toml_path(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

/// Whether `--db` names a PostgreSQL database (`[database] url`).
pub fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

/// The launcher's configuration for a run; `extra` follows the `[server]`
/// keys (more of them first, then tables).
pub fn config_toml(
    port: u16,
    state: &Path,
    db: &str,
    ca_key_type: KeyType,
    t: Targets,
    extra: &str,
) -> String {
    let s = |name: &str| toml_path(&state.join(name));
    let mut out = String::new();
    let _ = write!(
        out,
        r#"listen_addr = "127.0.0.1:{port}"
base_url    = "https://localhost:{port}"
state_dir   = {state}

[database]
{db_key} = {db}

[ca]
key_file      = {key}
cert_file     = {cert}
key_type      = "{ca_key_type}"
validity_days = 90

[tls]
enabled     = true
cert_file   = {tls_cert}
key_file    = {tls_key}
server_name = "localhost"

[server]
http_validation_port     = {http}
tls_alpn_validation_port = {tls}
dns_resolver_addr        = "{dns}"
allow_private_targets    = true
{extra}"#,
        state = toml_path(state),
        db_key = if is_postgres(db) { "url" } else { "path" },
        db = format_args!("{db:?}"),
        key = s("ca.key.pem"),
        cert = s("ca.cert.pem"),
        tls_cert = s("server.crt"),
        tls_key = s("server.key"),
        http = t.http_port,
        tls = t.tls_port,
        dns = t.dns,
    );
    out
}

/// The started CA's `[server]` keys beyond the fixed ones: its CAA
/// identity, always (a production CA checks CAA; the bench's DNS server
/// publishes a record naming it at the zone's apex), and its dns-persist-01
/// issuer domain with `--challenge dns-persist-01` (only then: the
/// frontend offers, and stores, one more challenge per authorization when
/// it has one).
pub fn server_keys(opts: &Options) -> String {
    let mut out = format!("caa_identities = [\"{CA_IDENTITY}\"]\n");
    if opts.challenge == ChallengeKind::DnsPersist01 {
        let _ = writeln!(out, "dns_persist_issuer_domain = \"{CA_IDENTITY}\"");
    }
    out
}

/// `--rate-limits`: every `[rate_limits]` table, with the periods
/// suggested in the operations guide and counts and bursts far above what
/// a run spends. A run is at most 10 000 clients (accounts, all from
/// 127.0.0.1) and 10 000 000 issuances, all under the one registered
/// domain `acme-bench.test`; 50 clients × 10 000 issuances are 500 000
/// orders and certificates. A bucket's count is at most 1000 per second
/// of its period (the frontend's bound).
pub const RATE_LIMITS: &str = "
[rate_limits.new_accounts_per_ip]
count = 1000000
period_secs = 10800
burst = 1000000

[rate_limits.new_accounts_per_ipv6_range]
count = 1000000
period_secs = 10800
burst = 1000000

[rate_limits.new_orders_per_account]
count = 10000000
period_secs = 10800
burst = 10000000

[rate_limits.failed_validations_per_account_identifier]
count = 1000
period_secs = 86400
burst = 1000000

[rate_limits.certificates_per_registered_domain]
count = 100000000
period_secs = 604800
burst = 100000000

[rate_limits.pending_orders_per_account]
count = 1000000

[rate_limits.pending_authorizations_per_account]
count = 1000000
";

/// The signer's `tls-server` profile for a subscriber key type the default
/// policy refuses (Ed25519, ML-DSA): a `key_types` list naming it. Empty for
/// the others.
pub fn leaf_profile(key_type: KeyType) -> String {
    match key_type {
        KeyType::Ed25519 | KeyType::Ed448 | KeyType::MlDsa(_) | KeyType::EcP521 => {
            format!("\n[signer.profiles.tls-server]\nkey_types = [\"{key_type}\"]\n")
        }
        KeyType::EcP256 | KeyType::EcP384 | KeyType::Rsa(_) => String::new(),
    }
}

/// Creates a SoftHSM2 token in `hsm` and runs a root ceremony in it (in a
/// child process: SoftHSM2 reads `SOFTHSM2_CONF` once per process). The
/// root certificate is written to `state/ca.cert.pem`, the ceremony's audit
/// record to `state/audit.log` (the signer's default audit log). Returns the
/// `SOFTHSM2_CONF` path the signer needs.
fn init_softhsm(hsm: &Path, state: &Path, key_type: KeyType) -> Result<PathBuf> {
    let conf = test_kit::softhsm::init_token(hsm, TOKEN_LABEL)
        .context("SoftHSM2 token")?
        .conf;
    let me = std::env::current_exe()?;
    let out = Command::new(me)
        .arg("--internal-hsm-init")
        .arg(hsm)
        .arg("--ca-key-type")
        .arg(key_type.to_string())
        .env("SOFTHSM2_CONF", &conf)
        .env("ACME_BENCH_STATE", state)
        .output()?;
    if !out.status.success() {
        bail!(
            "root ceremony in SoftHSM2 failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(conf)
}

/// The `--internal-hsm-init DIR` child: a root key in the token and its
/// self-signed certificate, through the signer's own ceremony code.
pub fn hsm_ceremony(hsm: &Path, key_type: KeyType) -> Result<()> {
    use ca_signer::ceremony::{KeyStore, RootParams, Token, init_root};
    let state = PathBuf::from(
        std::env::var_os("ACME_BENCH_STATE").ok_or_else(|| anyhow!("ACME_BENCH_STATE unset"))?,
    );
    let params = RootParams {
        key: KeyStore::Token {
            token: Token {
                module: SOFTHSM_MODULE.into(),
                token_label: TOKEN_LABEL.into(),
                pin_file: hsm.join("pin"),
            },
            label: KEY_LABEL.into(),
        },
        key_type,
        hash: ca_signer::config::default_hash_alg(),
        subject: "CN=acme-bench SoftHSM2 root,O=Akamu".into(),
        validity_years: 1,
        path_len: None,
        out: state.join("ca.cert.pem"),
        audit_log: state.join("audit.log"),
        force: false,
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    init_root(&params, now, &mut rand::rng(), &mut |_| {})
        .map_err(|e| anyhow!("init-root: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_is_valid_toml_with_the_options() {
        let targets = Targets {
            http_port: 5002,
            tls_port: 5003,
            dns: "127.0.0.1:5353".parse().expect("addr"),
        };
        let text = config_toml(
            4443,
            Path::new("/tmp/x/state"),
            ":memory:",
            KeyType::Rsa(2048),
            targets,
            "\n[signer.key]\nbackend = \"pkcs11\"\n",
        );
        let v: toml_like::Value = toml_like::parse(&text);
        assert_eq!(v.get("listen_addr"), Some("\"127.0.0.1:4443\""));
        assert_eq!(v.get("path"), Some("\":memory:\""));
        assert_eq!(v.get("key_type"), Some("\"rsa:2048\""));
        assert_eq!(v.get("allow_private_targets"), Some("true"));
        assert_eq!(v.get("dns_resolver_addr"), Some("\"127.0.0.1:5353\""));
        let pg = config_toml(
            4443,
            Path::new("/tmp/x/state"),
            "postgres://akamu@127.0.0.1:5432/akamu",
            KeyType::Rsa(2048),
            targets,
            "",
        );
        let pgv: toml_like::Value = toml_like::parse(&pg);
        assert_eq!(
            pgv.get("url"),
            Some("\"postgres://akamu@127.0.0.1:5432/akamu\"")
        );
        assert_eq!(pgv.get("path"), None);
        assert_eq!(v.get("backend"), Some("\"pkcs11\""));
    }

    #[test]
    fn caa_always_and_the_persist_issuer_with_its_challenge() {
        use clap::Parser as _;
        let opts = |args: &[&str]| {
            Options::try_parse_from(std::iter::once("acme-bench").chain(args.iter().copied()))
                .expect("parse")
        };
        let keys = server_keys(&opts(&[]));
        assert_eq!(keys, "caa_identities = [\"ca.acme-bench.test\"]\n");
        let keys = server_keys(&opts(&["--challenge", "dns-persist-01"]));
        assert!(
            keys.contains("dns_persist_issuer_domain = \"ca.acme-bench.test\""),
            "{keys}"
        );
        // Every limit of docs/src/configuration.md has its table.
        for limit in [
            "new_accounts_per_ip",
            "new_accounts_per_ipv6_range",
            "new_orders_per_account",
            "failed_validations_per_account_identifier",
            "certificates_per_registered_domain",
            "pending_orders_per_account",
            "pending_authorizations_per_account",
        ] {
            assert!(
                RATE_LIMITS.contains(&format!("[rate_limits.{limit}]\n")),
                "{limit}"
            );
        }
        // 50 clients x 10 000 issuances (500 000 orders, certificates and
        // at most that many open ones) fit every table at once, and a
        // bucket's count stays within the frontend's 1000 per second.
        for table in RATE_LIMITS.split("\n\n") {
            let v = toml_like::parse(table);
            let n = |k: &str| v.get(k).map(|n| n.parse::<u64>().expect("number"));
            let room = n("burst").or(n("count")).expect("burst or count");
            assert!(room >= 500_000, "{table}");
            if let Some(period) = n("period_secs") {
                assert!(n("count").expect("count") <= period * 1000, "{table}");
            }
        }
    }

    #[test]
    fn the_profile_names_the_leaf_key_type_the_policy_would_refuse() {
        assert_eq!(leaf_profile(KeyType::EcP256), "");
        let pq = leaf_profile(KeyType::MlDsa(akamu_jose::MlDsa::P65));
        assert!(pq.contains("[signer.profiles.tls-server]"), "{pq}");
        assert!(pq.contains("key_types = [\"ml-dsa-65\"]"), "{pq}");
    }

    /// Enough of TOML to check `key = value` lines without a toml dependency.
    mod toml_like {
        pub(super) struct Value(Vec<(String, String)>);
        pub(super) fn parse(text: &str) -> Value {
            Value(
                text.lines()
                    .filter_map(|l| l.split_once('='))
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .collect(),
            )
        }
        impl Value {
            pub(super) fn get(&self, key: &str) -> Option<&str> {
                self.0
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
            }
        }
    }
}
