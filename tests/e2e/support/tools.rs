//! Running Debian's ACME clients (lego, certbot) unmodified against a test
//! CA: loopback only (proxy variables removed), a temp directory for all
//! their state, a time limit, and their output quoted when they fail.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use tokio::process::Command;

use super::procs::{Ca, tail, which};

/// How long one client invocation may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(180);

/// Path of `name` on PATH, or a panic saying how to install it.
pub(crate) fn require(name: &str) -> PathBuf {
    which(name).unwrap_or_else(|| {
        panic!("{name} is not installed: `apt-get install {name}` (CI installs it itself)")
    })
}

/// Removes every proxy setting so the client only talks to loopback.
pub(crate) fn loopback_only(cmd: &mut Command) -> &mut Command {
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_PROXY", "localhost,127.0.0.1")
        .env("no_proxy", "localhost,127.0.0.1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
}

/// Runs `cmd` to completion within the time limit.
pub(crate) async fn run(cmd: &mut Command, what: &str) -> Output {
    tokio::time::timeout(TOOL_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {TOOL_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("run {what}: {e}"))
}

/// stdout and stderr of `out` (stderr's tail), plus `log`'s tail, for a
/// failure message.
pub(crate) fn describe(out: &Output, log: &str) -> String {
    format!(
        "exit {}\nstdout:\n{}\nstderr:\n{}\nlog:\n{}",
        out.status,
        tail(&String::from_utf8_lossy(&out.stdout), 60),
        tail(&String::from_utf8_lossy(&out.stderr), 120),
        tail(log, 120)
    )
}

/// Debian's lego against one CA, with all state under `path`.
pub(crate) struct Lego {
    bin: PathBuf,
    directory: String,
    ca_cert: PathBuf,
    path: PathBuf,
    email: String,
}

impl Lego {
    /// lego for `ca`, storing accounts and certificates in `path`.
    pub(crate) fn new(ca: &Ca, path: &Path) -> Lego {
        Lego::at(ca.directory(), ca.ca_cert(), path)
    }

    /// lego for the ACME server at `directory` whose HTTPS certificate
    /// chains to `ca_cert`, storing its state in `path`.
    pub(crate) fn at(directory: &str, ca_cert: &Path, path: &Path) -> Lego {
        Lego {
            bin: require("lego"),
            directory: directory.to_owned(),
            ca_cert: ca_cert.to_owned(),
            path: path.to_owned(),
            email: "e2e@example.org".to_owned(),
        }
    }

    /// `lego --server … --accept-tos --email … --path … GLOBAL… COMMAND…`.
    pub(crate) fn command(&self, global: &[&str], command: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--server")
            .arg(&self.directory)
            .arg("--accept-tos")
            .arg("--email")
            .arg(&self.email)
            .arg("--path")
            .arg(&self.path)
            .args(global)
            .args(command)
            .env("LEGO_CA_CERTIFICATES", &self.ca_cert);
        loopback_only(&mut cmd);
        cmd
    }

    /// Runs lego and returns its output, whatever the exit status.
    pub(crate) async fn output(
        &self,
        global: &[&str],
        command: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let mut cmd = self.command(global, command);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd, "lego").await
    }

    /// Runs lego and asserts it succeeded.
    pub(crate) async fn ok(
        &self,
        global: &[&str],
        command: &[&str],
        env: &[(&str, &str)],
    ) -> Output {
        let out = self.output(global, command, env).await;
        assert!(
            out.status.success(),
            "lego {global:?} {command:?} failed: {}",
            describe(&out, "")
        );
        out
    }

    /// `PATH/certificates/NAME.crt` (lego writes `*` as `_`).
    pub(crate) fn cert_path(&self, name: &str) -> PathBuf {
        self.path
            .join("certificates")
            .join(format!("{}.crt", name.replace('*', "_")))
    }

    /// `PATH/certificates/NAME.key`.
    pub(crate) fn key_path(&self, name: &str) -> PathBuf {
        self.path
            .join("certificates")
            .join(format!("{}.key", name.replace('*', "_")))
    }

    /// The bundle lego stored for `name` (leaf then issuer), PEM.
    pub(crate) fn bundle(&self, name: &str) -> String {
        let path = self.cert_path(name);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("lego wrote no {}: {e}", path.display()))
    }
}

/// Debian's certbot against one CA, with config, work and logs under `dir`.
pub(crate) struct Certbot {
    bin: PathBuf,
    directory: String,
    ca_cert: PathBuf,
    dir: PathBuf,
}

impl Certbot {
    /// certbot for `ca`, with all its state in `dir`.
    pub(crate) fn new(ca: &Ca, dir: &Path) -> Certbot {
        Certbot::at(ca.directory(), ca.ca_cert(), dir)
    }

    /// certbot for the ACME server at `directory` whose HTTPS certificate
    /// chains to `ca_cert`, with all its state in `dir`.
    pub(crate) fn at(directory: &str, ca_cert: &Path, dir: &Path) -> Certbot {
        Certbot {
            bin: require("certbot"),
            directory: directory.to_owned(),
            ca_cert: ca_cert.to_owned(),
            dir: dir.to_owned(),
        }
    }

    /// The current certbot from PyPI (5.x, with ARI, profiles and IP
    /// addresses), installed by `scripts/test.sh` in `.venv-certbot5` at
    /// the workspace root, for `ca` with all its state in `dir`.
    pub(crate) fn pypi(ca: &Ca, dir: &Path) -> Certbot {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv-certbot5/bin/certbot");
        assert!(
            bin.is_file(),
            "{} is missing: `python3 -m venv .venv-certbot5 && .venv-certbot5/bin/pip install 'certbot>=5,<6'` (scripts/test.sh does it)",
            bin.display()
        );
        Certbot {
            bin,
            directory: ca.directory().to_owned(),
            ca_cert: ca.ca_cert().to_owned(),
            dir: dir.to_owned(),
        }
    }

    /// `certbot ARGS… --server … --config-dir … --work-dir … --logs-dir …
    /// --non-interactive`.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .arg("--server")
            .arg(&self.directory)
            .arg("--config-dir")
            .arg(self.config_dir())
            .arg("--work-dir")
            .arg(self.dir.join("work"))
            .arg("--logs-dir")
            .arg(self.dir.join("logs"))
            .arg("--non-interactive")
            .env("REQUESTS_CA_BUNDLE", &self.ca_cert)
            // certbot stores naive local times (ARI's retry-after): UTC
            // makes them comparable whatever the machine's zone.
            .env("TZ", "UTC");
        loopback_only(&mut cmd);
        cmd
    }

    /// `--config-dir`.
    pub(crate) fn config_dir(&self) -> PathBuf {
        self.dir.join("config")
    }

    /// certbot's log (empty if it wrote none).
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/letsencrypt.log")).unwrap_or_default()
    }

    /// Runs certbot and returns its output, whatever the exit status.
    pub(crate) async fn output(&self, args: &[&str]) -> Output {
        run(&mut self.command(args), "certbot").await
    }

    /// Runs certbot and asserts it succeeded.
    pub(crate) async fn ok(&self, args: &[&str]) -> Output {
        let out = self.output(args).await;
        assert!(
            out.status.success(),
            "certbot {args:?} failed: {}",
            describe(&out, &self.log())
        );
        out
    }

    /// `config/live/NAME`.
    pub(crate) fn live(&self, name: &str) -> PathBuf {
        self.config_dir().join("live").join(name)
    }

    /// The account directory certbot keeps for this server
    /// (`config/accounts/HOST:PORT/acme/directory/ID`); exactly one exists.
    pub(crate) fn account_dir(&self) -> PathBuf {
        let root = self.config_dir().join("accounts");
        let mut found = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in entries.flatten() {
                let p = e.path();
                if p.join("private_key.json").is_file() {
                    found.push(p);
                } else if p.is_dir() {
                    stack.push(p);
                }
            }
        }
        assert_eq!(
            found.len(),
            1,
            "expected one certbot account under {}: {found:?}",
            root.display()
        );
        found.remove(0)
    }
}
