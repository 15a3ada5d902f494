//! The accept loop of the signer and the validator: accept on the Unix
//! socket and, when given one, on a TCP listener with mutual TLS
//! ([`crate::tls`]); check each peer (on the Unix socket the `SO_PEERCRED`
//! allow-list, [`shared_proto::transport::accept_handshake`]; on TCP the TLS
//! handshake with a verified client certificate and the client-name
//! allow-list, at most [`crate::tls::MAX_PENDING_HANDSHAKES`] at once),
//! exchange the version preamble, then serve its tarpc
//! requests concurrently until the shutdown future completes; the socket
//! file is removed on the way out.
//!
//! **Invariant:** a connection reaches the service only after its peer
//! passed the allow-list and the version preamble (for TCP, after mutual
//! TLS too).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared_proto::peer::{AllowList, Peer};
use shared_proto::transport::{self, TransportError};
use tarpc::server::{BaseChannel, Channel};
use tarpc::{ClientMessage, RequestName, Response, ServerError, context};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{UnixListener, UnixStream};

use crate::tls::TlsListener;
use crate::{Daemon, event};

/// How long the loop pauses after a failed `accept` (usually `EMFILE`)
/// instead of spinning.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The Unix socket of an [`Acceptor`].
#[derive(Debug)]
struct UnixSide {
    listener: UnixListener,
    socket_path: PathBuf,
    allow: AllowList,
}

/// Bound listeners with their allow-lists, not yet serving.
#[derive(Debug)]
pub struct Acceptor {
    daemon: Daemon,
    unix: Option<UnixSide>,
    tls: Option<Arc<TlsListener>>,
}

impl Acceptor {
    /// An acceptor for `daemon` on `listener`, bound at `socket_path`
    /// (removed when serving ends), admitting the peers `allow` permits.
    pub fn new(
        daemon: Daemon,
        listener: UnixListener,
        socket_path: PathBuf,
        allow: AllowList,
    ) -> Self {
        Self {
            daemon,
            unix: Some(UnixSide {
                listener,
                socket_path,
                allow,
            }),
            tls: None,
        }
    }

    /// An acceptor for `daemon` on a mutual-TLS listener only.
    pub fn tls_only(daemon: Daemon, tls: TlsListener) -> Self {
        Self {
            daemon,
            unix: None,
            tls: Some(Arc::new(tls)),
        }
    }

    /// Also accepts on `tls`, beside the Unix socket.
    #[must_use]
    pub fn with_tls(mut self, tls: TlsListener) -> Self {
        self.tls = Some(Arc::new(tls));
        self
    }

    /// The Unix socket the acceptor listens on, if any.
    pub fn socket_path(&self) -> Option<&Path> {
        self.unix.as_ref().map(|u| u.socket_path.as_path())
    }

    /// Serves connections until `shutdown` completes, then removes the
    /// socket file.
    ///
    /// For each admitted connection, `make_handler` gets the peer (its Unix
    /// credentials or its TLS client name) and returns the request handler
    /// of that connection; with a tarpc service `svc` it is
    /// `move |ctx, req| tarpc::server::Serve::serve(svc.serve(), ctx, req)`.
    /// (A closure rather than a `Serve` value: only the caller, which knows
    /// the concrete service, can prove its request futures are `Send`.)
    pub async fn serve_until<Req, Resp, Make, Handler, Fut>(
        self,
        make_handler: Make,
        shutdown: impl Future<Output = ()>,
    ) where
        Req: RequestName + DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
        Make: Fn(Peer) -> Handler + Send + Sync + 'static,
        Handler: FnOnce(context::Context, Req) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
    {
        let daemon = self.daemon;
        let make_handler = Arc::new(make_handler);
        tokio::pin!(shutdown);
        loop {
            let unix_accept = async {
                match &self.unix {
                    Some(u) => u.listener.accept().await.map(|(s, _)| s),
                    None => std::future::pending().await,
                }
            };
            let tcp_accept = async {
                match &self.tls {
                    Some(t) => t.listener.accept().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                accepted = unix_accept => match (accepted, &self.unix) {
                    (Ok(stream), Some(unix)) => {
                        tokio::spawn(serve_unix(
                            daemon,
                            stream,
                            unix.allow.clone(),
                            Arc::clone(&make_handler),
                        ));
                    }
                    (Err(e), _) => {
                        event!(daemon, warn, error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    (Ok(_), None) => {}
                },
                accepted = tcp_accept => match (accepted, &self.tls) {
                    (Ok((tcp, addr)), Some(tls)) => match tls.handshake_slot() {
                        Some(slot) => {
                            tokio::spawn(serve_tls(
                                daemon,
                                tcp,
                                addr,
                                slot,
                                Arc::clone(tls),
                                Arc::clone(&make_handler),
                            ));
                        }
                        None => {
                            event!(
                                daemon,
                                warn,
                                peer = %addr,
                                "refused TLS connection: too many handshakes in progress"
                            );
                        }
                    },
                    (Err(e), _) => {
                        event!(daemon, warn, error = %e, "tcp accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                    (Ok(_), None) => {}
                },
            }
        }
        if let Some(unix) = &self.unix
            && let Err(e) = std::fs::remove_file(&unix.socket_path)
        {
            event!(daemon, warn, socket = %unix.socket_path.display(), error = %e, "cannot remove socket");
        }
        event!(daemon, info, "stopped");
    }
}

async fn serve_unix<Req, Resp, Make, Handler, Fut>(
    daemon: Daemon,
    mut stream: UnixStream,
    allow: AllowList,
    make_handler: Arc<Make>,
) where
    Req: RequestName + DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    Make: Fn(Peer) -> Handler + Send + Sync + 'static,
    Handler: FnOnce(context::Context, Req) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
{
    let peer = match transport::accept_handshake(&mut stream, &allow).await {
        Ok(peer) => peer,
        Err(TransportError::PeerNotAllowed { uid }) => {
            event!(
                daemon,
                warn,
                uid,
                "refused connection from a uid not on the allow-list"
            );
            return;
        }
        Err(e) => {
            event!(daemon, warn, error = %e, "connection handshake failed");
            return;
        }
    };
    event!(daemon, debug, uid = peer.uid, pid = ?peer.pid, "connection accepted");
    serve(daemon, stream, Peer::Unix(peer), &*make_handler).await;
}

async fn serve_tls<Req, Resp, Make, Handler, Fut>(
    daemon: Daemon,
    tcp: tokio::net::TcpStream,
    addr: std::net::SocketAddr,
    slot: tokio::sync::OwnedSemaphorePermit,
    tls: Arc<TlsListener>,
    make_handler: Arc<Make>,
) where
    Req: RequestName + DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    Make: Fn(Peer) -> Handler + Send + Sync + 'static,
    Handler: FnOnce(context::Context, Req) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
{
    let handshake = tls.handshake(tcp, addr).await;
    // The slot is for the handshake only; admitted peers are trusted.
    drop(slot);
    let (stream, peer) = match handshake {
        Ok(admitted) => admitted,
        Err(reason) => {
            event!(daemon, warn, peer = %addr, %reason, "refused TLS connection");
            return;
        }
    };
    event!(daemon, info, peer = %peer, "TLS connection accepted");
    serve(daemon, stream, peer, &*make_handler).await;
}

/// Serves the tarpc requests of an admitted connection until it closes.
async fn serve<S, Req, Resp, Make, Handler, Fut>(
    daemon: Daemon,
    stream: S,
    peer: Peer,
    make_handler: &Make,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
    Req: RequestName + DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    Make: Fn(Peer) -> Handler + Send + Sync + 'static,
    Handler: FnOnce(context::Context, Req) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
{
    let name = peer.to_string();
    let handler = make_handler(peer);
    BaseChannel::with_defaults(transport::framed::<_, ClientMessage<Req>, Response<Resp>>(
        stream,
    ))
    .execute(tarpc::server::serve(handler))
    .for_each(|request| async {
        tokio::spawn(request);
    })
    .await;
    event!(daemon, debug, peer = %name, "connection closed");
}
