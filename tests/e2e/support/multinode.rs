//! The multi-node deployment of `scripts/multinode.sh`, driven from a
//! test: `up` in a temporary directory with the test's own DNS server and
//! validation ports, the `KEY=value` lines it prints, the pids it recorded,
//! and `down` on drop (the logs are printed, and the directory kept, when
//! the test fails).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::procs::binary_path;

/// What a test chooses about the deployment.
pub(crate) struct MultinodeOptions {
    /// The DNS server every validator asks (`AKAMU_DNS_RESOLVER`).
    pub dns: SocketAddr,
    /// The port http-01 is validated on (`AKAMU_HTTP_PORT`).
    pub http_port: u16,
    /// Perspectives (`"p1"`…`"p5"`) that ask another DNS server.
    pub perspective_dns: Vec<(&'static str, SocketAddr)>,
    /// The front ends share a PostgreSQL server the script starts
    /// (`AKAMU_MULTINODE_DB=postgres`) instead of one SQLite file.
    pub postgres: bool,
}

/// A running deployment; `down` on drop.
pub(crate) struct Multinode {
    dir: Option<tempfile::TempDir>,
    vars: BTreeMap<String, String>,
}

/// `scripts/multinode.sh` of this checkout.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/multinode.sh")
}

impl Multinode {
    /// Runs `scripts/multinode.sh up` and parses what it prints.
    pub(crate) async fn up(opts: MultinodeOptions) -> Multinode {
        let task = tokio::task::spawn_blocking(move || Multinode::up_blocking(&opts));
        match task.await {
            Ok(m) => m,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("multinode up task failed: {e}"),
        }
    }

    fn up_blocking(opts: &MultinodeOptions) -> Multinode {
        let dir = tempfile::Builder::new()
            .prefix("akamu-multinode-")
            .tempdir()
            .expect("tempdir");
        let bin_dir = binary_path("acme-frontend")
            .parent()
            .expect("bin dir")
            .to_path_buf();
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .arg("up")
            .arg(dir.path())
            .env("AKAMU_BIN_DIR", &bin_dir)
            .env("AKAMU_DNS_RESOLVER", opts.dns.to_string())
            .env("AKAMU_HTTP_PORT", opts.http_port.to_string())
            .env_remove("AKAMU_MULTINODE_DATABASE_URL")
            .env(
                "AKAMU_MULTINODE_DB",
                if opts.postgres { "postgres" } else { "sqlite" },
            );
        for (name, addr) in &opts.perspective_dns {
            cmd.env(
                format!("AKAMU_DNS_RESOLVER_{}", name.to_uppercase()),
                addr.to_string(),
            );
        }
        let out = cmd.output().expect("run scripts/multinode.sh up");
        // A failed `up` has stopped what it started already.
        assert!(
            out.status.success(),
            "multinode.sh up failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut m = Multinode {
            dir: Some(dir),
            vars: BTreeMap::new(),
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((k, v)) = line.split_once('=') {
                m.vars.insert(k.to_owned(), v.to_owned());
            }
        }
        m
    }

    /// One `KEY=value` line of `up`'s output.
    pub(crate) fn var(&self, key: &str) -> &str {
        self.vars
            .get(key)
            .unwrap_or_else(|| panic!("multinode.sh up printed no {key}: {:?}", self.vars))
    }

    /// The directory URL, through nginx.
    pub(crate) fn directory(&self) -> &str {
        self.var("DIRECTORY")
    }

    /// The `base_url` both front ends serve (nginx's origin).
    pub(crate) fn base_url(&self) -> &str {
        origin_of(self.directory())
    }

    /// Front end `"a"` or `"b"`: its own origin (`https://localhost:port`).
    pub(crate) fn frontend_origin(&self, which: &str) -> &str {
        origin_of(self.var(&format!("FRONTEND_{}", which.to_uppercase())))
    }

    /// The PEM the HTTPS listeners (nginx, A, B) chain to.
    pub(crate) fn tls_ca(&self) -> &Path {
        Path::new(self.var("TLS_CA"))
    }

    /// The ACME CA's root (the signer's certificate).
    pub(crate) fn root_cert(&self) -> &Path {
        Path::new(self.var("ROOT_CERT"))
    }

    /// The DER of every certificate in the front ends' database (the
    /// shared SQLite file, or PostgreSQL at `DATABASE_URL`).
    pub(crate) fn stored_certificates(&self) -> Vec<Vec<u8>> {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        #[derive(diesel::QueryableByName)]
        struct Der {
            #[diesel(sql_type = diesel::sql_types::Binary)]
            der: Vec<u8>,
        }
        let query = diesel::sql_query("SELECT der FROM certificates");
        let rows = if let Some(url) = self.vars.get("DATABASE_URL") {
            let mut conn = PgConnection::establish(url).expect("connect to PostgreSQL");
            query.load::<Der>(&mut conn)
        } else {
            let path = self.var("DATABASE_PATH");
            let mut conn = SqliteConnection::establish(path).expect("open the database");
            conn.batch_execute("PRAGMA busy_timeout = 5000")
                .expect("busy timeout");
            query.load::<Der>(&mut conn)
        };
        rows.expect("certificates")
            .into_iter()
            .map(|d| d.der)
            .collect()
    }

    /// The pid `up` recorded for `name` (`p1`…`p5`, `validator`, `signer`,
    /// `fe-a`, `fe-b`, `nginx`).
    pub(crate) fn pid(&self, name: &str) -> i32 {
        let pids = std::fs::read_to_string(self.var("PIDS")).expect("read PIDS");
        pids.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(n, _)| *n == name)
            .and_then(|(_, p)| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no pid for {name} in {pids}"))
    }

    /// Sends `signal` to `name` and, for SIGTERM or SIGKILL, waits up to
    /// 10 s until it is gone.
    pub(crate) async fn signal(&self, name: &str, signal: Signal) {
        let pid = self.pid(name);
        kill(Pid::from_raw(pid), signal).unwrap_or_else(|e| panic!("kill {name} ({pid}): {e}"));
        if matches!(signal, Signal::SIGTERM | Signal::SIGKILL) {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
            while alive(pid) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name} ({pid}) still runs 10 s after {signal}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }

    /// The log of `name` (`logs/<name>.log`; `nginx-access`, `nginx-error`).
    pub(crate) fn log(&self, name: &str) -> String {
        let Some(logs) = self.vars.get("LOGS") else {
            return String::new();
        };
        std::fs::read_to_string(Path::new(logs).join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Runs `scripts/multinode.sh down`; a second call does nothing.
    pub(crate) fn down(&mut self) {
        let Some(dir) = self.dir.as_ref() else {
            return;
        };
        let out = Command::new("bash")
            .arg(script())
            .arg("down")
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "multinode.sh down failed ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run multinode.sh down: {e}"),
        }
    }
}

impl Drop for Multinode {
    fn drop(&mut self) {
        self.down();
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            for name in [
                "validator",
                "signer",
                "fe-a",
                "fe-b",
                "nginx-error",
                "p1",
                "p5",
            ] {
                let log = self.log(name);
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                eprintln!("--- {name} (last lines) ---");
                for line in tail.into_iter().rev() {
                    eprintln!("{line}");
                }
            }
            eprintln!("multinode state kept in {}", dir.keep().display());
        }
    }
}

/// `https://host:port` of a URL `https://host:port/…`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// Whether `pid` runs (a zombie does not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}
