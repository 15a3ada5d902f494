//! The accept loop of the signer and the validator: accept on the Unix
//! socket, check each peer (`SO_PEERCRED` allow-list and protocol preamble,
//! [`shared_proto::transport::accept_handshake`]), then serve its tarpc
//! requests concurrently until the shutdown future completes; the socket
//! file is removed on the way out.
//!
//! **Invariant:** a connection reaches the service only after its peer
//! passed the allow-list and the version preamble.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared_proto::peer::{AllowList, PeerCred};
use shared_proto::transport::{self, TransportError};
use tarpc::server::{BaseChannel, Channel};
use tarpc::{ClientMessage, RequestName, Response, ServerError, context};
use tokio::net::{UnixListener, UnixStream};

use crate::{Daemon, event};

/// How long the loop pauses after a failed `accept` (usually `EMFILE`)
/// instead of spinning.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// A bound socket with its allow-list, not yet serving.
#[derive(Debug)]
pub struct Acceptor {
    daemon: Daemon,
    listener: UnixListener,
    socket_path: PathBuf,
    allow: AllowList,
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
            listener,
            socket_path,
            allow,
        }
    }

    /// The socket the acceptor listens on.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Serves connections until `shutdown` completes, then removes the
    /// socket file.
    ///
    /// For each admitted connection, `make_handler` gets the peer's
    /// credentials and returns the request handler of that connection; with
    /// a tarpc service `svc` it is
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
        Make: Fn(PeerCred) -> Handler + Send + Sync + 'static,
        Handler: FnOnce(context::Context, Req) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<Resp, ServerError>> + Send + 'static,
    {
        let daemon = self.daemon;
        let make_handler = Arc::new(make_handler);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(
                            daemon,
                            stream,
                            self.allow.clone(),
                            Arc::clone(&make_handler),
                        ));
                    }
                    Err(e) => {
                        event!(daemon, warn, error = %e, "accept failed");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
        if let Err(e) = std::fs::remove_file(&self.socket_path) {
            event!(daemon, warn, socket = %self.socket_path.display(), error = %e, "cannot remove socket");
        }
        event!(daemon, info, "stopped");
    }
}

async fn serve_connection<Req, Resp, Make, Handler, Fut>(
    daemon: Daemon,
    mut stream: UnixStream,
    allow: AllowList,
    make_handler: Arc<Make>,
) where
    Req: RequestName + DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    Make: Fn(PeerCred) -> Handler + Send + Sync + 'static,
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
    let handler = make_handler(peer);
    BaseChannel::with_defaults(transport::framed::<ClientMessage<Req>, Response<Resp>>(
        stream,
    ))
    .execute(tarpc::server::serve(handler))
    .for_each(|request| async {
        tokio::spawn(request);
    })
    .await;
    event!(daemon, debug, uid = peer.uid, "connection closed");
}
