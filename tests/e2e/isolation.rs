//! Least privilege, proven at run time (issue 5): the three daemons run as
//! three different users created for the test, the signer in a network
//! namespace of its own; an ACME issuance still succeeds, and then:
//! - the frontend's user cannot read the CA key;
//! - a process whose uid is not on the signer's allow-list is refused by the
//!   signer socket;
//! - the signer has no network interface but loopback and no capabilities
//!   (CapEff = 0), nor do the other two.
//!
//! It needs root (to create users and a network namespace); CI runs as root.
//! Without root it says so and returns.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use instant_acme::NewAccount;

use crate::support::certs::{dns_sans, verify_chain};
use crate::support::client::{account_builder_trusting, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{binary_path, free_port};

const FRONTEND: &str = "akamu-t-frontend";
const SIGNER: &str = "akamu-t-signer";
const VALIDATOR: &str = "akamu-t-validator";
const STRANGER: &str = "akamu-t-stranger";

struct Daemon {
    name: &'static str,
    child: Child,
}

impl Daemon {
    /// Spawns `cmd` and waits for its READY line.
    fn start(name: &'static str, mut cmd: Command) -> Daemon {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if line.starts_with("READY ") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{name} did not print READY"));
        assert!(line.starts_with("READY "));
        Daemon { name, child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("{} did not stop on SIGTERM; killing", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_user(name: &str) -> (u32, u32) {
    if nix::unistd::User::from_name(name).ok().flatten().is_none() {
        let status = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--user-group",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .status()
            .expect("useradd");
        assert!(status.success(), "useradd {name}");
    }
    let user = nix::unistd::User::from_name(name)
        .expect("getpwnam")
        .expect("user exists");
    (user.uid.as_raw(), user.gid.as_raw())
}

fn dir(path: &Path, owner: (u32, u32), mode: u32) -> PathBuf {
    std::fs::create_dir_all(path).expect("mkdir");
    std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1)).expect("chown");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    path.to_owned()
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
}

fn cap_eff(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .map(|v| v.trim().to_owned())
        .expect("CapEff line")
}

fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("Uid line")
}

/// Interfaces in the network namespace of `pid`, from /proc/<pid>/net/dev.
fn interfaces(pid: u32) -> Vec<String> {
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).expect("net/dev");
    dev.lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(|s| s.trim().to_owned())
        .collect()
}

/// Runs `cmd` as `user`; returns (success, stdout+stderr).
fn run_as(user: &str, cmd: &[&str]) -> (bool, String) {
    let out = Command::new("runuser")
        .args(["-u", user, "--"])
        .args(cmd)
        .output()
        .expect("runuser");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_users_signer_without_network_issuance_works() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("isolation test skipped: it needs root (CI runs it as root)");
        return;
    }
    let frontend = ensure_user(FRONTEND);
    let signer = ensure_user(SIGNER);
    let validator = ensure_user(VALIDATOR);
    ensure_user(STRANGER);
    let root = (0, 0);

    // Each daemon gets a private state directory and its own socket
    // directory; the sockets themselves are open to all, and the signer's
    // and validator's SO_PEERCRED allow-lists name only the frontend.
    let top = tempfile::Builder::new()
        .prefix("akamu-isolation-")
        .tempdir_in("/tmp")
        .expect("tempdir");
    let base = dir(top.path(), root, 0o755);
    let signer_dir = dir(&base.join("signer"), signer, 0o700);
    let validator_dir = dir(&base.join("validator"), validator, 0o711);
    let frontend_dir = dir(&base.join("frontend"), frontend, 0o700);
    let run_signer = dir(&base.join("run/signer"), signer, 0o755);
    let run_validator = dir(&base.join("run/validator"), validator, 0o755);
    let conf = dir(&base.join("etc"), root, 0o755);
    let tls_dir = dir(&base.join("tls"), signer, 0o755);

    let dns = DnsServer::start().await;
    let http_port = free_port();
    let http = Http01Server::start(http_port).await;
    let listen_port = free_port();

    let statement_key = validator_dir.join("statement.key");
    write(
        &conf.join("validator.toml"),
        &format!(
            "socket_path = {:?}\nsocket_mode = 0o666\nallowed_uids = [{}]\nuser = \"{VALIDATOR}\"\n\
             statement_key_file = {:?}\nhttp_validation_port = {http_port}\n\
             dns_resolver_addr = \"{}\"\nallow_private_targets = true\n",
            run_validator.join("validator.sock"),
            frontend.0,
            statement_key,
            dns.addr(),
        ),
    );
    let mut cmd = Command::new(binary_path("validator-worker"));
    cmd.arg("--config").arg(conf.join("validator.toml"));
    let validator_proc = Daemon::start("validator", cmd);

    write(
        &conf.join("signer.toml"),
        &format!(
            "socket_path = {:?}\nsocket_mode = 0o666\nallowed_uids = [{}]\nuser = \"{SIGNER}\"\n\
             validator_public_key_file = {:?}\n\
             [ca]\nkey_file = {:?}\ncert_file = {:?}\n\
             [audit]\npath = {:?}\n\
             [server_certificate]\nnames = [\"localhost\", \"127.0.0.1\"]\ncert_file = {:?}\nkey_file = {:?}\n",
            run_signer.join("signer.sock"),
            frontend.0,
            shared_proto::statement::public_path(&statement_key),
            signer_dir.join("ca.key.pem"),
            tls_dir.join("ca.cert.pem"),
            signer_dir.join("audit.log"),
            tls_dir.join("server.crt"),
            tls_dir.join("server.key"),
        ),
    );
    // The signer gets a network namespace with nothing in it but loopback.
    let mut cmd = Command::new("unshare");
    cmd.arg("--net")
        .arg(binary_path("ca-signer"))
        .arg("--config")
        .arg(conf.join("signer.toml"));
    let signer_proc = Daemon::start("signer", cmd);

    // The frontend's HTTPS key: issued by the signer from its own config,
    // handed to the frontend's user by the operator (root), mode 0600.
    let server_key = frontend_dir.join("server.key");
    std::fs::copy(tls_dir.join("server.key"), &server_key).expect("copy key");
    std::os::unix::fs::chown(&server_key, Some(frontend.0), Some(frontend.1)).expect("chown");
    std::fs::set_permissions(&server_key, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    write(
        &conf.join("frontend.toml"),
        &format!(
            "listen_addr = \"127.0.0.1:{listen_port}\"\nbase_url = \"https://localhost:{listen_port}\"\n\
             state_dir = {:?}\nuser = \"{FRONTEND}\"\n\
             [database]\npath = {:?}\n\
             [tls]\nenabled = true\ncert_file = {:?}\nkey_file = {:?}\n\
             [server]\nhttp_validation_port = {http_port}\nallow_private_targets = true\n\
             [signer]\nsocket_path = {:?}\n[validator]\nsocket_path = {:?}\n\
             [launcher]\nenabled = false\n",
            frontend_dir,
            frontend_dir.join("akamu.db"),
            tls_dir.join("server.crt"),
            server_key,
            run_signer.join("signer.sock"),
            run_validator.join("validator.sock"),
        ),
    );
    let mut cmd = Command::new(binary_path("acme-frontend"));
    cmd.arg("--config").arg(conf.join("frontend.toml"));
    let frontend_proc = Daemon::start("frontend", cmd);

    // An ACME issuance works across the three users.
    let ca_cert = tls_dir.join("ca.cert.pem");
    let (account, _) = account_builder_trusting(&ca_cert)
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            format!("https://localhost:{listen_port}/acme/directory"),
            None,
        )
        .await
        .expect("account");
    let names = ["isolated.example.org"];
    let issued = issue_http01(&account, &http, &names).await;
    let work = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(work.path(), &ca_cert, &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["isolated.example.org"]);

    // Each daemon runs as its own user with no effective capabilities.
    for (proc_, user) in [
        (&frontend_proc, frontend),
        (&signer_proc, signer),
        (&validator_proc, validator),
    ] {
        assert_eq!(uid_of(proc_.pid()), user.0, "{} uid", proc_.name);
        assert_eq!(
            cap_eff(proc_.pid()),
            "0000000000000000",
            "{} CapEff",
            proc_.name
        );
    }

    // The signer sees no network but loopback; the validator does.
    assert_eq!(interfaces(signer_proc.pid()), vec!["lo"]);
    assert_ne!(interfaces(validator_proc.pid()), vec!["lo"]);

    // The frontend's user cannot read the CA key (nor list the signer's
    // state); the signer's can.
    let key = signer_dir.join("ca.key.pem");
    let key = key.to_str().expect("utf-8 path");
    let (ok, out) = run_as(FRONTEND, &["cat", key]);
    assert!(!ok, "the frontend's user read the CA key: {out}");
    assert!(out.contains("Permission denied"), "{out}");
    let (ok, out) = run_as(SIGNER, &["head", "-c", "10", key]);
    assert!(ok, "the signer's user cannot read its own key: {out}");

    // A process under a uid that is not on the allow-list is refused by the
    // signer socket: it reads status 2 (refused) after the preamble.
    let probe = r#"import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"AKAMU\x00" + int(sys.argv[2]).to_bytes(2, "big"))
r = b""
while len(r) < 9:
    c = s.recv(9 - len(r))
    if not c:
        break
    r += c
print("status", r[8] if len(r) == 9 else "closed")
"#;
    let sock = run_signer.join("signer.sock");
    let sock = sock.to_str().expect("utf-8 path");
    let version = shared_proto::PROTOCOL_VERSION.to_string();
    let (ok, out) = run_as(STRANGER, &["python3", "-c", probe, sock, &version]);
    assert!(ok, "probe failed to run: {out}");
    assert_eq!(out.trim(), "status 2", "a stranger must be refused");
    let (ok, out) = run_as(VALIDATOR, &["python3", "-c", probe, sock, &version]);
    assert!(ok, "probe failed to run: {out}");
    assert_eq!(
        out.trim(),
        "status 2",
        "the validator's uid is not allowed either"
    );
    // The frontend's uid is allowed (status 0): the same probe succeeds.
    let (ok, out) = run_as(FRONTEND, &["python3", "-c", probe, sock, &version]);
    assert!(ok, "probe failed to run: {out}");
    assert_eq!(out.trim(), "status 0", "the frontend's uid is allowed");

    drop(frontend_proc);
    drop(signer_proc);
    drop(validator_proc);
}
