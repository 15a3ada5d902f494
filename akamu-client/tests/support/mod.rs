//! Test support shared by the akamu-client and akamu-cli integration tests:
//! start our CA (`acme-frontend` in launcher mode) or Pebble on loopback,
//! a DNS server answering 127.0.0.1, free ports.
//!
//! Minimal copies of the `tests` crate's harness (`tests/e2e/support`),
//! which another package owns.

#![allow(dead_code, unreachable_pub, missing_docs)]

/// The workspace's shared loopback DNS server. Serves `example.org.` and
/// `akamu.test.`, where every test name lives.
pub mod dns {
    pub use test_kit::dns::DnsServer;
}

use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a server gets to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub use test_kit::ports::free_port;

/// `target/debug/<name>`, found from the test executable's path.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("parent").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// A child process with its output captured, stopped (SIGTERM, then
/// SIGKILL) on drop; output is printed when the test fails.
pub struct Proc {
    name: &'static str,
    child: Option<Child>,
    output: Arc<Mutex<String>>,
}

impl Proc {
    /// Spawns `cmd` and returns with the first stdout line starting with
    /// `ready_prefix` (or `None` for "don't wait").
    pub fn spawn(
        name: &'static str,
        mut cmd: Command,
        ready_prefix: Option<&'static str>,
    ) -> (Proc, Option<String>) {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        reader(stdout, output.clone(), ready_prefix.map(|p| (p, tx)));
        reader(stderr, output.clone(), None);
        let proc = Proc {
            name,
            child: Some(child),
            output,
        };
        let line = ready_prefix.map(|p| match rx.recv_timeout(READY_TIMEOUT) {
            Ok(line) => line,
            Err(e) => panic!(
                "{name} printed no {p:?} line ({e}); output:\n{}",
                proc.output()
            ),
        });
        (proc, line)
    }

    pub fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            let _ = child.kill();
        }
        let _ = child.wait();
        if thread::panicking() || std::env::var_os("AKAMU_TEST_SHOW_OUTPUT").is_some() {
            thread::sleep(Duration::from_millis(100));
            eprintln!(
                "===== {} output =====\n{}===== end =====",
                self.name,
                self.output()
            );
        }
    }
}

fn reader(
    pipe: impl Read + Send + 'static,
    output: Arc<Mutex<String>>,
    mut ready: Option<(&'static str, mpsc::Sender<String>)>,
) {
    thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf).into_owned();
            if let Some((prefix, tx)) = &ready
                && line.starts_with(prefix)
            {
                let _ = tx.send(line.trim_end().to_owned());
                ready = None;
            }
            let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
            out.push_str(&line);
            if !line.ends_with('\n') {
                out.push('\n');
            }
        }
    });
}

/// Our CA: `acme-frontend` in launcher mode in a temp state dir.
pub struct Ca {
    pub directory: String,
    pub ca_cert: PathBuf,
    /// The frontend's configuration file (for `akamu-cli admin --config`).
    pub config: PathBuf,
    pub http_port: u16,
    pub tls_port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Ca {
    /// Starts a CA whose validator probes `http_port` / `tls_port` on
    /// loopback and resolves names through `dns` (or only `*.localhost`).
    pub fn start(http_port: u16, tls_port: u16, dns: Option<SocketAddr>) -> Ca {
        Ca::start_with(http_port, tls_port, dns, "")
    }

    /// [`Ca::start`] with `extra` appended to the `[server]` table (it may
    /// open sub-tables such as `[server.eab_keys]`).
    pub fn start_with(http_port: u16, tls_port: u16, dns: Option<SocketAddr>, extra: &str) -> Ca {
        let dir = tempfile::Builder::new()
            .prefix("akamu-client-test-")
            .tempdir()
            .expect("tempdir");
        let state = dir.path().join("akamu-data");
        std::fs::create_dir_all(&state).expect("state dir");
        let s = state.display();
        let port = free_port();
        let dns_line = dns.map_or_else(String::new, |a| format!("dns_resolver_addr = \"{a}\"\n"));
        let config = format!(
            r#"listen_addr = "127.0.0.1:{port}"
base_url    = "https://localhost:{port}"
state_dir   = "{s}"

[database]
path = "{s}/akamu.db"

[ca]
key_file      = "{s}/ca.key.pem"
cert_file     = "{s}/ca.cert.pem"
validity_days = 90

[tls]
enabled     = true
cert_file   = "{s}/server.crt"
key_file    = "{s}/server.key"
server_name = "localhost"

[server]
http_validation_port     = {http_port}
tls_alpn_validation_port = {tls_port}
allow_private_targets    = true
{dns_line}{extra}
"#
        );
        let config_path = dir.path().join("akamu.toml");
        std::fs::write(&config_path, config).expect("write config");
        let mut cmd = Command::new(binary_path("acme-frontend"));
        cmd.arg("--config")
            .arg(&config_path)
            .current_dir(dir.path())
            .env("NO_COLOR", "1");
        let (proc, line) = Proc::spawn("acme-frontend", cmd, Some("READY "));
        let line = line.expect("READY line");
        let ready: serde_json::Value =
            serde_json::from_str(line.trim_start_matches("READY").trim()).expect("READY JSON");
        Ca {
            directory: ready["directory"].as_str().expect("directory").to_owned(),
            ca_cert: PathBuf::from(ready["ca_cert"].as_str().expect("ca_cert")),
            config: config_path,
            http_port,
            tls_port,
            _proc: proc,
            _dir: dir,
        }
    }

    pub fn root_pem(&self) -> Vec<u8> {
        std::fs::read(&self.ca_cert).expect("read CA cert")
    }
}

/// Pebble (Debian package `pebble`) on loopback with a TLS certificate we
/// make, real validation against our solver ports, names resolved by
/// `dns`.
pub struct Pebble {
    pub directory: String,
    /// The root that signed Pebble's HTTPS certificate (PEM).
    pub https_root: PathBuf,
    pub http_port: u16,
    pub tls_port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

/// Where Debian installs Pebble.
pub const PEBBLE: &str = "/usr/bin/pebble";

impl Pebble {
    pub fn start(http_port: u16, tls_port: u16, dns: SocketAddr) -> Pebble {
        assert!(
            Path::new(PEBBLE).is_file(),
            "{PEBBLE} is missing: `apt-get install pebble` (scripts/test.sh does)"
        );
        let dir = tempfile::Builder::new()
            .prefix("akamu-pebble-")
            .tempdir()
            .expect("tempdir");
        let (root_pem, cert_pem, key_pem) = https_cert();
        let root = dir.path().join("root.pem");
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&root, root_pem).expect("w");
        std::fs::write(&cert, cert_pem).expect("w");
        std::fs::write(&key, key_pem).expect("w");
        let port = free_port();
        let mgmt = free_port();
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{port}"),
            "managementListenAddress": format!("127.0.0.1:{mgmt}"),
            "certificate": cert,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("w");
        let mut cmd = Command::new(PEBBLE);
        cmd.arg("-config")
            .arg(&config_path)
            .arg("-dnsserver")
            .arg(dns.to_string())
            .current_dir(dir.path())
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0");
        let (proc, _) = Proc::spawn("pebble", cmd, None);
        // Wait until the HTTPS listener accepts connections.
        let deadline = Instant::now() + READY_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "pebble did not listen; output:\n{}",
                proc.output()
            );
            thread::sleep(Duration::from_millis(50));
        }
        Pebble {
            directory: format!("https://localhost:{port}/dir"),
            https_root: root,
            http_port,
            tls_port,
            _proc: proc,
            _dir: dir,
        }
    }

    pub fn root_pem(&self) -> Vec<u8> {
        std::fs::read(&self.https_root).expect("read root")
    }
}

/// A throw-away root and a `localhost`/`127.0.0.1` server certificate it
/// signed: (root PEM, server cert PEM, server key PEM).
fn https_cert() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let root_key = KeyPair::generate().expect("key");
    let mut root = CertificateParams::new(Vec::<String>::new()).expect("params");
    root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    root.distinguished_name
        .push(rcgen::DnType::CommonName, "akamu test root for pebble");
    let root_cert = root.self_signed(&root_key).expect("root");
    let issuer = Issuer::new(root, root_key);
    let key = KeyPair::generate().expect("key");
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    leaf.subject_alt_names
        .push(SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
    let cert = leaf.signed_by(&key, &issuer).expect("leaf");
    (root_cert.pem(), cert.pem(), key.serialize_pem())
}
