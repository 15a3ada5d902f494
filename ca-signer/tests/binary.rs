//! The `ca-signer` binary: READY line, a call over its socket, clean exit on
//! SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use shared_proto::signer::SignerRpcClient;
use shared_proto::transport;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_prints_ready_serves_and_exits_on_sigterm() {
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
    assert!(dir.path().join("tls/server.crt").exists());

    let stream = transport::connect(&socket).await.expect("connect");
    let client =
        SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream)).spawn();
    let ctx = shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL);
    let chain = client.ca_chain(ctx).await.expect("rpc").expect("chain");
    assert_eq!(
        chain.pem.as_bytes(),
        std::fs::read(dir.path().join("ca/ca.cert.pem")).expect("read")
    );

    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("kill");
    let status = tokio::task::spawn_blocking(move || child.wait().expect("wait"))
        .await
        .expect("join");
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "socket removed");
}
