//! The `ca-signer` binary: READY line, a call over its socket, clean exit on
//! SIGTERM, and no way for a peer on its socket to crash or wedge it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shared_proto::signer::SignerRpcClient;
use shared_proto::transport;
use test_kit::unix_peers::HostilePeers;

/// A running `ca-signer` with a file-backed CA in a temp dir.
struct Signer {
    child: Child,
    socket: PathBuf,
    dir: tempfile::TempDir,
}

impl Signer {
    /// Starts the binary and waits for its READY line.
    async fn start() -> Signer {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = nix::unistd::geteuid().as_raw();
        let socket = dir.path().join("signer.sock");
        let config = dir.path().join("signer.toml");
        std::fs::write(
            &config,
            format!(
                r#"
                socket_path = "{socket}"
                socket_mode = 0o600
                allowed_uids = [{me}]
                insecure_issue_without_statements = true
                [ca]
                key_file = "{dir}/ca/ca.key.pem"
                cert_file = "{dir}/ca/ca.cert.pem"
                key_type = "ec:P-384"
                hash_alg = "sha384"
                [server_certificate]
                names = ["localhost", "127.0.0.1"]
                cert_file = "{dir}/tls/server.crt"
                key_file = "{dir}/tls/server.key"
                "#,
                socket = socket.display(),
                dir = dir.path().display(),
            ),
        )
        .expect("config");

        let mut child = Command::new(env!("CARGO_BIN_EXE_ca-signer"))
            .arg("--config")
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).expect("read");
            line
        })
        .await
        .expect("join");
        let json: serde_json::Value = serde_json::from_str(
            line.trim_end()
                .strip_prefix("READY ")
                .expect("READY prefix"),
        )
        .expect("json");
        assert_eq!(json["service"], "signer");
        assert_eq!(json["socket"], socket.to_string_lossy().as_ref());
        assert_eq!(json["pid"], child.id());
        Signer { child, socket, dir }
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ca_info` over a fresh connection: the signer serves.
    async fn assert_serves(&self) {
        let stream = transport::connect(&self.socket).await.expect("connect");
        let client =
            SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream))
                .spawn();
        let ctx = shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL);
        let info = client.ca_info(ctx).await.expect("rpc").expect("CA info");
        assert_eq!(
            info.chain_pem.as_bytes(),
            std::fs::read(self.dir().join("ca/ca.cert.pem")).expect("read")
        );
    }

    /// Whether the process is still running (not exited, not a zombie).
    fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits; asserts a clean exit that removed the socket.
    async fn stop(self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
        let mut child = self.child;
        let status = tokio::task::spawn_blocking(move || child.wait().expect("wait"))
            .await
            .expect("join");
        assert!(status.success(), "{status:?}");
        assert!(!self.socket.exists(), "socket removed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_ready_serves_and_exits_on_sigterm() {
    let signer = Signer::start().await;
    assert!(signer.dir().join("tls/server.crt").exists());
    signer.assert_serves().await;
    signer.stop().await;
}

/// The preamble a client sends (`AKAMU\0` + version).
fn preamble() -> Vec<u8> {
    let mut p = b"AKAMU\0".to_vec();
    p.extend_from_slice(&shared_proto::PROTOCOL_VERSION.to_be_bytes());
    p
}

/// Peers that are allowed on the socket but send garbage (see
/// `test_kit::unix_peers`): each is dropped; the signer neither crashes nor
/// stops serving well-formed calls, and a silent peer is dropped at the
/// preamble deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_do_not_crash_or_wedge_the_signer() {
    let mut signer = Signer::start().await;
    let socket = signer.socket.clone();
    let peers = HostilePeers::run(&socket, &preamble(), transport::MAX_FRAME_BYTES, || {
        signer.running()
    })
    .await;
    signer.assert_serves().await;
    assert!(signer.running());
    peers
        .assert_silent_peer_dropped(shared_proto::deadline::CONNECT + Duration::from_secs(2))
        .await;
    signer.stop().await;
}

/// A signer configuration in `dir` with no validator key, plus `extra`
/// top-level lines; returns its path.
fn config_without_validator_key(dir: &Path, extra: &str) -> PathBuf {
    let me = nix::unistd::geteuid().as_raw();
    let path = dir.join("signer.toml");
    std::fs::write(
        &path,
        format!(
            "socket_path = {:?}\nallowed_uids = [{me}]\n{extra}\n[ca]\nkey_file = {:?}\ncert_file = {:?}\n",
            dir.join("signer.sock"),
            dir.join("ca/ca.key.pem"),
            dir.join("ca/ca.cert.pem"),
        ),
    )
    .expect("config");
    path
}

/// Without `validator_public_key_file` the signer would issue on its
/// caller's word: it refuses to start, unless the configuration says
/// `insecure_issue_without_statements = true`, and then it says so at every
/// start.
#[test]
fn refuses_to_start_without_a_validator_key_unless_told_it_is_insecure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_without_validator_key(dir.path(), "");
    let out = Command::new(env!("CARGO_BIN_EXE_ca-signer"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("validator_public_key_file"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("READY"),
        "no READY line"
    );
    assert!(!dir.path().join("signer.sock").exists());

    let config =
        config_without_validator_key(dir.path(), "insecure_issue_without_statements = true");
    for start in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ca-signer"))
            .arg("--config")
            .arg(&config)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read");
        assert!(line.starts_with("READY "), "start {start}: {line:?}");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
        let out = child.wait_with_output().expect("wait");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains("WARN") && l.contains("INSECURE")),
            "start {start} warns: {stderr}"
        );
    }
}
