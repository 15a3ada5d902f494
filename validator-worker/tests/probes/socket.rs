//! The real binary on a real Unix socket, driven by a tarpc client.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http::StatusCode;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use shared_proto::Identifier;
use shared_proto::transport::{connect, framed};
use shared_proto::validator::{ChallengeType, ProblemKind, ValidatorRpcClient};
use tarpc::context;

use crate::support::{HttpServer, KEY_AUTH, challenge_path, lo4, request, respond};

/// Kills the child on drop so a failing test leaves nothing behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An http-01 server that answers the test token with its key authorization.
async fn challenge_server() -> HttpServer {
    HttpServer::start(|path: &str| {
        if path == challenge_path() {
            respond(StatusCode::OK, KEY_AUTH)
        } else {
            respond(StatusCode::NOT_FOUND, "")
        }
    })
    .await
}

/// Starts the binary with its socket under `dir` and http-01 probes sent to
/// `http_port`; waits for its READY line. Returns the process and the socket.
async fn start(dir: &Path, http_port: u16) -> (Proc, PathBuf) {
    start_with(dir, http_port, "").await
}

/// [`start`] with `extra` lines appended to the configuration.
async fn start_with(dir: &Path, http_port: u16, extra: &str) -> (Proc, PathBuf) {
    let socket = dir.join("run").join("validator.sock");
    let config = dir.join("validator.toml");
    let uid = nix::unistd::geteuid().as_raw();
    std::fs::write(
        &config,
        format!(
            "socket_path = {:?}\nallowed_uids = [{uid}]\nhttp_validation_port = {http_port}\n\
             dns_resolver_addr = \"127.0.0.1:9\"\nallow_private_targets = true\n{extra}",
            socket.display().to_string(),
        ),
    )
    .expect("write config");

    let child = Command::new(env!("CARGO_BIN_EXE_validator-worker"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn validator-worker");
    let mut child = Proc(child);
    let stdout = child.0.stdout.take().expect("stdout");
    let pid = child.0.id();

    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read READY");
        line
    })
    .await
    .expect("join");
    assert_eq!(
        line.trim_end(),
        format!(
            r#"READY {{"service":"validator","socket":"{}","pid":{pid}}}"#,
            socket.display()
        )
    );
    (child, socket)
}

#[tokio::test]
async fn validates_http01_over_the_socket_and_exits_on_sigterm() {
    let server = challenge_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, socket) = start(dir.path(), server.port()).await;
    let pid = child.0.id();

    let stream = connect(&socket).await.expect("connect");
    let client = ValidatorRpcClient::new(Default::default(), framed(stream)).spawn();
    let record = client
        .validate_challenge(
            context::current(),
            request(Identifier::ip(lo4()), ChallengeType::Http01),
        )
        .await
        .expect("rpc")
        .expect("valid");
    assert_eq!(record.address_used, Some(lo4()));
    assert_eq!(server.seen().len(), 1);

    // The record carries a statement signed by the key the validator
    // generated next to its socket (mode 0600), which the signer can verify.
    let key_path = socket.with_file_name("validator-statement.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key_path)
            .expect("statement key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let verifier = shared_proto::statement::StatementVerifier::from_file(
        &shared_proto::statement::public_path(&key_path),
    )
    .expect("public key");
    let signed = record.statement.as_ref().expect("statement");
    let statement = verifier.verify(signed).expect("statement verifies");
    assert_eq!(statement.identifier, Identifier::ip(lo4()));
    assert_eq!(statement.challenge_type, ChallengeType::Http01);

    // A malformed request comes back as a problem, not an RPC error.
    let mut bad = request(Identifier::ip(lo4()), ChallengeType::Http01);
    bad.token = "short".into();
    let problem = client
        .validate_challenge(context::current(), bad)
        .await
        .expect("rpc")
        .expect_err("malformed");
    assert_eq!(problem.kind, ProblemKind::Malformed);

    let raw_pid = i32::try_from(pid).expect("pid fits");
    kill(Pid::from_raw(raw_pid), Signal::SIGTERM).expect("SIGTERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = child.0.wait().expect("wait");
        drop(child);
        status
    })
    .await
    .expect("join");
    assert!(status.success(), "exit status {status}");
    assert!(!socket.exists(), "socket removed on SIGTERM");
}

/// Peers that are allowed on the socket but send garbage (see
/// `test_kit::unix_peers`): each is dropped, the validator keeps serving,
/// and a silent peer is dropped at the preamble deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_do_not_crash_or_wedge_the_validator() {
    let server = challenge_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, socket) = start(dir.path(), server.port()).await;
    let mut preamble = b"AKAMU\0".to_vec();
    preamble.extend_from_slice(&shared_proto::PROTOCOL_VERSION.to_be_bytes());
    let peers = test_kit::unix_peers::HostilePeers::run(
        &socket,
        &preamble,
        shared_proto::transport::MAX_FRAME_BYTES,
        || matches!(child.0.try_wait(), Ok(None)),
    )
    .await;

    let stream = connect(&socket).await.expect("connect");
    let client = ValidatorRpcClient::new(Default::default(), framed(stream)).spawn();
    client
        .validate_challenge(
            context::current(),
            request(Identifier::ip(lo4()), ChallengeType::Http01),
        )
        .await
        .expect("rpc")
        .expect("still validates");
    peers
        .assert_silent_peer_dropped(shared_proto::deadline::CONNECT + Duration::from_secs(2))
        .await;
    assert!(matches!(child.0.try_wait(), Ok(None)), "still running");
}

/// The frontend asks for the authorization's expiry, but the validator
/// signs no statement that lasts longer than its own
/// `statement_max_age_secs` after the validation; a shorter request is
/// kept.
#[tokio::test]
async fn statements_last_at_most_the_validators_maximum() {
    let server = challenge_server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_child, socket) =
        start_with(dir.path(), server.port(), "statement_max_age_secs = 600\n").await;
    let stream = connect(&socket).await.expect("connect");
    let client = ValidatorRpcClient::new(Default::default(), framed(stream)).spawn();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let verifier = shared_proto::statement::StatementVerifier::from_file(
        &shared_proto::statement::public_path(&socket.with_file_name("validator-statement.key")),
    )
    .expect("public key");
    let verifier = &verifier;
    let validate = |authz_expires: i64| {
        let client = client.clone();
        async move {
            let mut req = request(Identifier::ip(lo4()), ChallengeType::Http01);
            req.authz_expires = authz_expires;
            let record = client
                .validate_challenge(context::current(), req)
                .await
                .expect("rpc")
                .expect("valid");
            let signed = record.statement.expect("statement");
            verifier.verify(&signed).expect("verifies").clone()
        }
    };
    let long = validate(now + 30 * 86_400).await;
    assert_eq!(long.expires, long.validated_at + 600, "capped: {long:?}");
    let short = validate(now + 60).await;
    assert_eq!(short.expires, now + 60, "a shorter expiry is kept");
}
