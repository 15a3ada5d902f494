//! The `ca-signer` binary: READY line, a call over its socket, clean exit on
//! SIGTERM, and no way for a peer on its socket to crash or wedge it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use shared_proto::signer::SignerRpcClient;
use shared_proto::transport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

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

    /// `ca_chain` over a fresh connection: the signer serves.
    async fn assert_serves(&self) {
        let stream = transport::connect(&self.socket).await.expect("connect");
        let client =
            SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream))
                .spawn();
        let ctx = shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL);
        let chain = client.ca_chain(ctx).await.expect("rpc").expect("chain");
        assert_eq!(
            chain.pem.as_bytes(),
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

/// Connects and completes the preamble, returning the raw stream.
async fn handshaken(socket: &Path) -> UnixStream {
    let mut s = UnixStream::connect(socket).await.expect("connect");
    s.write_all(&preamble()).await.expect("preamble");
    let mut reply = [0u8; 9];
    s.read_exact(&mut reply).await.expect("preamble reply");
    assert_eq!(reply[8], 0, "status OK");
    s
}

/// Reads until the signer closes the connection (or `limit` passes);
/// returns whether it closed.
async fn closed_within(s: &mut UnixStream, limit: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// Peers that are allowed on the socket but send garbage: a wrong preamble,
/// frames larger than the cap, frames that are no bincode request, length
/// prefixes claiming huge vectors, and a peer that never speaks. Each is
/// dropped; the signer neither crashes nor stops serving well-formed calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_do_not_crash_or_wedge_the_signer() {
    let mut signer = Signer::start().await;
    let socket = signer.socket.clone();

    // A silent peer holds a connection open while the others run.
    let silent = UnixStream::connect(&socket).await.expect("connect");

    // Not our preamble.
    let mut s = UnixStream::connect(&socket).await.expect("connect");
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "bad preamble"
    );

    // A frame header announcing 2 GiB: over the 1 MiB cap.
    let mut s = handshaken(&socket).await;
    s.write_all(&0x8000_0000u32.to_be_bytes())
        .await
        .expect("write");
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "oversized frame"
    );

    // A frame of exactly one byte over the cap, sent in full.
    let mut s = handshaken(&socket).await;
    let len = transport::MAX_FRAME_BYTES + 1;
    let mut frame = u32::try_from(len).expect("fits").to_be_bytes().to_vec();
    frame.resize(4 + len, 0xAB);
    let _ = s.write_all(&frame).await; // the signer may close mid-write
    assert!(
        closed_within(&mut s, Duration::from_secs(5)).await,
        "frame over the cap"
    );

    // Frames that are no request: random bytes, and bincode whose length
    // prefixes claim 2^60 elements.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for round in 0..64 {
        let mut s = handshaken(&socket).await;
        let body: Vec<u8> = if round % 2 == 0 {
            (0..(round * 37 + 1))
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        } else {
            let mut b = Vec::new();
            for _ in 0..(round / 2 + 1) {
                b.extend_from_slice(&(1u64 << 60).to_le_bytes());
            }
            b
        };
        let mut frame = u32::try_from(body.len())
            .expect("fits")
            .to_be_bytes()
            .to_vec();
        frame.extend_from_slice(&body);
        s.write_all(&frame).await.expect("write");
        assert!(
            closed_within(&mut s, Duration::from_secs(5)).await,
            "garbage frame {round} left the connection open"
        );
        assert!(signer.running(), "the signer died on garbage frame {round}");
    }

    // Still serving while the silent peer is connected; the silent peer is
    // dropped once the preamble deadline passes.
    signer.assert_serves().await;
    assert!(signer.running());
    let mut silent = silent;
    assert!(
        closed_within(
            &mut silent,
            shared_proto::deadline::CONNECT + Duration::from_secs(2)
        )
        .await,
        "a peer that never sends its preamble is dropped after the deadline"
    );
    signer.stop().await;
}
