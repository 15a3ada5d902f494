//! Hostile peers for a daemon's Unix socket (the signer's, the
//! validator's): allowed to connect, but speaking garbage. A daemon that
//! trusts no caller drops each of them and goes on serving.
//!
//! The wire format they abuse is shared-proto's transport: an 8-byte
//! preamble (`AKAMU\0` + version) answered with 9 bytes whose last is the
//! status (0 = OK), then 4-byte big-endian length-prefixed bincode frames.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// How long a daemon may take to drop a peer that sent garbage.
const DROP_WITHIN: Duration = Duration::from_secs(5);

/// Reads until the peer closes the connection (or `limit` passes); returns
/// whether it closed.
pub async fn closed_within(s: &mut UnixStream, limit: Duration) -> bool {
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

/// Connects and completes the preamble (`preamble` = what a client sends),
/// asserting the daemon's OK status.
pub async fn handshaken(socket: &Path, preamble: &[u8]) -> UnixStream {
    let mut s = UnixStream::connect(socket).await.expect("connect");
    s.write_all(preamble).await.expect("preamble");
    let mut reply = [0u8; 9];
    s.read_exact(&mut reply).await.expect("preamble reply");
    assert_eq!(reply[8], 0, "preamble status OK");
    s
}

/// A peer that connected first and never said anything, kept open while
/// [`HostilePeers::run`] sends the others.
pub struct HostilePeers {
    silent: UnixStream,
}

impl HostilePeers {
    /// Sends, each on its own connection: a wrong preamble, a frame header
    /// announcing 2 GiB, a frame one byte over `max_frame` sent in full, and
    /// 64 frames that are no request (random bytes; bincode length prefixes
    /// of 2^60). Asserts that the daemon drops every one of them and that
    /// `alive` (the daemon process still running) holds after each.
    pub async fn run(
        socket: &Path,
        preamble: &[u8],
        max_frame: usize,
        mut alive: impl FnMut() -> bool,
    ) -> HostilePeers {
        let silent = UnixStream::connect(socket).await.expect("connect");

        let mut s = UnixStream::connect(socket).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.expect("write");
        assert!(closed_within(&mut s, DROP_WITHIN).await, "bad preamble");

        let mut s = handshaken(socket, preamble).await;
        s.write_all(&0x8000_0000u32.to_be_bytes())
            .await
            .expect("write");
        assert!(
            closed_within(&mut s, DROP_WITHIN).await,
            "2 GiB frame header"
        );

        let mut s = handshaken(socket, preamble).await;
        let len = max_frame + 1;
        let mut frame = u32::try_from(len).expect("fits").to_be_bytes().to_vec();
        frame.resize(4 + len, 0xAB);
        let _ = s.write_all(&frame).await; // the daemon may close mid-write
        assert!(
            closed_within(&mut s, DROP_WITHIN).await,
            "frame over the cap"
        );
        assert!(alive(), "the daemon died on a frame over the cap");

        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..64usize {
            let mut s = handshaken(socket, preamble).await;
            let body: Vec<u8> = if round % 2 == 0 {
                (0..(round * 37 + 1))
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed.to_le_bytes()[0]
                    })
                    .collect()
            } else {
                (0..(round / 2 + 1))
                    .flat_map(|_| (1u64 << 60).to_le_bytes())
                    .collect()
            };
            let mut frame = u32::try_from(body.len())
                .expect("fits")
                .to_be_bytes()
                .to_vec();
            frame.extend_from_slice(&body);
            s.write_all(&frame).await.expect("write");
            assert!(
                closed_within(&mut s, DROP_WITHIN).await,
                "garbage frame {round} left the connection open"
            );
            assert!(alive(), "the daemon died on garbage frame {round}");
        }
        HostilePeers { silent }
    }

    /// Asserts that the silent peer is dropped within `limit` of its
    /// connection (the daemon's preamble deadline plus slack).
    pub async fn assert_silent_peer_dropped(mut self, limit: Duration) {
        assert!(
            closed_within(&mut self.silent, limit).await,
            "a peer that never sends its preamble is dropped"
        );
    }
}
