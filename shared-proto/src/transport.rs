//! The transport shared by both services: a Unix socket, or TCP with mutual
//! TLS ([`connect_tls`]; the server side is `daemon_kit::tls`).
//!
//! A connection is set up in three steps, all under [`deadline::CONNECT`]:
//! 1. the server identifies the peer: on a Unix socket it reads the peer's
//!    uid with `SO_PEERCRED` and checks it against its [`AllowList`]; on TCP
//!    the TLS 1.3 handshake verifies the client's certificate against the
//!    client CA and the server checks its names against its
//!    [`ClientNames`](crate::peer::ClientNames);
//! 2. the client sends a preamble (`AKAMU\0` + [`PROTOCOL_VERSION`]) and the
//!    server answers with its own version and a status byte (refused when
//!    step 1 did not admit the peer);
//! 3. both sides wrap the stream in length-delimited bincode frames capped at
//!    [`MAX_FRAME_BYTES`] and hand it to tarpc.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tarpc::serde_transport::{self, Transport};
use tarpc::tokio_serde::formats::Bincode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixListener, UnixStream};
use tokio_util::codec::LengthDelimitedCodec;

use crate::PROTOCOL_VERSION;
use crate::deadline;
use crate::peer::{AllowList, PeerCred, peer_cred};
use crate::tls::ClientTls;

/// Largest frame either side accepts (1 MiB: a CSR, a chain or a CRL fits).
pub const MAX_FRAME_BYTES: usize = 1 << 20;

const MAGIC: &[u8; 6] = b"AKAMU\0";
const STATUS_OK: u8 = 0;
const STATUS_VERSION: u8 = 1;
const STATUS_REFUSED: u8 = 2;

/// A bincode transport over a stream.
pub type FramedTransport<S, Item, SinkItem> = Transport<S, Item, SinkItem, Bincode<Item, SinkItem>>;

/// A bincode transport over a Unix stream.
pub type UnixTransport<Item, SinkItem> = FramedTransport<UnixStream, Item, SinkItem>;

/// A byte stream a connection can run on: a Unix stream or a TLS stream
/// over TCP, boxed by clients that dial either ([`Stream`]).
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// A connected stream of either kind.
pub type Stream = Box<dyn Io>;

/// A TLS stream over TCP, client side.
pub type TlsClientStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Why a connection could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The socket could not be reached or broke during the preamble.
    #[error("socket I/O: {0}")]
    Io(#[from] io::Error),
    /// The peer did not finish the preamble within [`deadline::CONNECT`].
    #[error("protocol preamble timed out")]
    Timeout,
    /// The peer speaks another protocol version.
    #[error("protocol version mismatch: ours {ours}, theirs {theirs}")]
    VersionMismatch {
        /// Our [`PROTOCOL_VERSION`].
        ours: u16,
        /// The peer's.
        theirs: u16,
    },
    /// The server refused us: our uid, or over TLS our certificate's name,
    /// is not on its allow-list.
    #[error(
        "the server refused this process (not on its allow-list: our uid, or over TLS our certificate's name)"
    )]
    Refused,
    /// The peer's uid is not on our allow-list.
    #[error("peer uid {uid} is not on the allow-list")]
    PeerNotAllowed {
        /// The refused uid.
        uid: u32,
    },
    /// The peer sent something that is not our preamble.
    #[error("peer sent an invalid protocol preamble")]
    BadPreamble,
    /// The TLS handshake failed, or the server refused our certificate
    /// (TLS 1.3 servers say so in an alert after the client's handshake).
    #[error("TLS: {0}")]
    Tls(#[source] io::Error),
}

/// Wraps a connected stream in capped, length-delimited bincode frames.
pub fn framed<S, Item, SinkItem>(stream: S) -> FramedTransport<S, Item, SinkItem>
where
    S: AsyncRead + AsyncWrite,
    Item: for<'de> serde::Deserialize<'de>,
    SinkItem: serde::Serialize,
{
    let framed = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME_BYTES)
        .new_framed(stream);
    serde_transport::new(framed, Bincode::default())
}

/// Binds a listening socket at `path`, replacing a stale socket file, and sets
/// its mode (for example `0o660`: owner and the allowed peer's group).
pub fn bind(path: &Path, mode: u32) -> io::Result<UnixListener> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(listener)
}

/// Client side: connects to `path` and exchanges the preamble.
pub async fn connect(path: &Path) -> Result<UnixStream, TransportError> {
    tokio::time::timeout(deadline::CONNECT, async {
        let mut stream = UnixStream::connect(path).await?;
        client_preamble(&mut stream).await?;
        Ok(stream)
    })
    .await
    .map_err(|_| TransportError::Timeout)?
}

/// Client side over TCP: connects to `addr` (`host:port`), runs the TLS 1.3
/// handshake with `tls` (verifying the server's certificate and name,
/// presenting ours) and exchanges the preamble, all within
/// [`deadline::CONNECT`]. A server that refuses our certificate or its name
/// is reported as [`TransportError::Tls`] or [`TransportError::Refused`].
pub async fn connect_tls(addr: &str, tls: &ClientTls) -> Result<TlsClientStream, TransportError> {
    tokio::time::timeout(deadline::CONNECT, async {
        let tcp = TcpStream::connect(addr).await?;
        // Small request/response frames: no Nagle delay.
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::clone(&tls.config));
        let mut stream = connector
            .connect(tls.server_name.clone(), tcp)
            .await
            .map_err(TransportError::Tls)?;
        client_preamble(&mut stream).await.map_err(|e| match e {
            // The server's verdict on our certificate arrives as an alert
            // on the first read.
            TransportError::Io(io) if io.get_ref().is_some() => TransportError::Tls(io),
            other => other,
        })?;
        Ok(stream)
    })
    .await
    .map_err(|_| TransportError::Timeout)?
}

/// Client side of the preamble, on a connected stream.
pub async fn client_preamble<S>(stream: &mut S) -> Result<(), TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    stream.write_all(&preamble(PROTOCOL_VERSION, None)).await?;
    stream.flush().await?;
    let mut reply = [0u8; 9];
    stream.read_exact(&mut reply).await?;
    let theirs = parse_preamble(&reply[..8])?;
    match reply[8] {
        STATUS_OK if theirs == PROTOCOL_VERSION => Ok(()),
        STATUS_REFUSED => Err(TransportError::Refused),
        _ => Err(TransportError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs,
        }),
    }
}

/// Server side: checks the peer's uid against `allow` and exchanges the
/// preamble. On success the stream is ready for [`framed`].
pub async fn accept_handshake(
    stream: &mut UnixStream,
    allow: &AllowList,
) -> Result<PeerCred, TransportError> {
    let peer = peer_cred(stream)?;
    tokio::time::timeout(
        deadline::CONNECT,
        server_preamble(stream, allow.permits(&peer)),
    )
    .await
    .map_err(|_| TransportError::Timeout)?
    .map_err(|e| match e {
        TransportError::Refused => TransportError::PeerNotAllowed { uid: peer.uid },
        other => other,
    })?;
    Ok(peer)
}

/// Server side of the preamble, on a stream whose peer was identified:
/// `admitted` says whether it passed the allow-list. A peer that did not is
/// answered "refused" and reported as [`TransportError::Refused`]. The
/// caller puts it under [`deadline::CONNECT`].
pub async fn server_preamble<S>(stream: &mut S, admitted: bool) -> Result<(), TransportError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Read the client's preamble first, even from a peer we will refuse:
    // answering before the client has written would make its write fail
    // with EPIPE and hide the reason. Eight bytes under a deadline.
    let mut hello = [0u8; 8];
    stream.read_exact(&mut hello).await?;
    if !admitted {
        let _ = stream
            .write_all(&preamble(PROTOCOL_VERSION, Some(STATUS_REFUSED)))
            .await;
        let _ = stream.flush().await;
        return Err(TransportError::Refused);
    }
    let theirs = parse_preamble(&hello)?;
    if theirs != PROTOCOL_VERSION {
        stream
            .write_all(&preamble(PROTOCOL_VERSION, Some(STATUS_VERSION)))
            .await?;
        stream.flush().await?;
        return Err(TransportError::VersionMismatch {
            ours: PROTOCOL_VERSION,
            theirs,
        });
    }
    stream
        .write_all(&preamble(PROTOCOL_VERSION, Some(STATUS_OK)))
        .await?;
    stream.flush().await?;
    Ok(())
}

fn preamble(version: u16, status: Option<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend(status);
    out
}

fn parse_preamble(bytes: &[u8]) -> Result<u16, TransportError> {
    match bytes {
        [m0, m1, m2, m3, m4, m5, v0, v1] if [*m0, *m1, *m2, *m3, *m4, *m5] == *MAGIC => {
            Ok(u16::from_be_bytes([*v0, *v1]))
        }
        _ => Err(TransportError::BadPreamble),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handshake_allows_listed_uid_and_refuses_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.sock");
        let listener = bind(&path, 0o600).expect("bind");
        let me = nix::unistd::geteuid().as_raw();

        let server = tokio::spawn(async move {
            let mut results = Vec::new();
            for allow in [AllowList::new([me]), AllowList::new([me.wrapping_add(1)])] {
                let (mut s, _) = listener.accept().await.expect("accept");
                results.push(accept_handshake(&mut s, &allow).await.map(|p| p.uid));
            }
            results
        });
        assert!(connect(&path).await.is_ok());
        assert!(matches!(connect(&path).await, Err(TransportError::Refused)));
        let results = server.await.expect("join");
        assert_eq!(results[0].as_ref().ok(), Some(&me));
        assert!(matches!(
            results[1],
            Err(TransportError::PeerNotAllowed { .. })
        ));
    }

    #[tokio::test]
    async fn version_mismatch_is_reported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.sock");
        let listener = bind(&path, 0o600).expect("bind");
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 8];
            s.read_exact(&mut buf).await.expect("read");
            s.write_all(&preamble(PROTOCOL_VERSION + 1, Some(STATUS_VERSION)))
                .await
                .expect("write");
        });
        assert!(matches!(
            connect(&path).await,
            Err(TransportError::VersionMismatch { .. })
        ));
    }

    #[test]
    fn bind_refuses_to_replace_a_regular_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("file");
        std::fs::write(&path, b"x").expect("write");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("rt");
        let _guard = rt.enter();
        assert!(bind(&path, 0o600).is_err());
    }
}
