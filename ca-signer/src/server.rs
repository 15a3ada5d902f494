//! The accept loop: bind the socket, check each peer, serve tarpc.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use shared_proto::peer::AllowList;
use shared_proto::signer::SignerRpc;
use shared_proto::transport::{self, TransportError};
use tarpc::server::{BaseChannel, Channel};
use tokio::net::{UnixListener, UnixStream};

use crate::config::Config;
use crate::error::Error;
use crate::service::{Issuer, SignerService};
use crate::{ca, server_cert};

/// A signer with its CA loaded and its socket bound, not yet serving.
pub struct Server {
    listener: UnixListener,
    socket_path: PathBuf,
    allow: AllowList,
    issuer: Arc<Issuer>,
}

impl Server {
    /// Loads or creates the CA, issues the server certificate if one is
    /// configured and due, and binds the socket. Must be called inside a tokio
    /// runtime.
    pub fn start(config: &Config) -> Result<Self, Error> {
        let now = crate::unix_now();
        let key = config.key_config().ok_or(Error::ConfigValue {
            field: "ca.key_file",
            problem: "required unless [signer.key] is set".to_owned(),
        })?;
        let (ca, _origin) = ca::load_or_create_with(&config.ca, &key, now)?;
        let issuer = Issuer::new(ca, config)?;
        if let Some(sc) = &config.server_certificate {
            server_cert::ensure(sc, &issuer, now, &mut rand::rng())?;
        }
        let listener =
            transport::bind(&config.socket_path, config.socket_mode).map_err(|source| {
                Error::Socket {
                    path: config.socket_path.clone(),
                    source,
                }
            })?;
        tracing::info!(
            target: "signer",
            socket = %config.socket_path.display(),
            allowed_uids = ?config.allowed_uids,
            "listening"
        );
        Ok(Self {
            listener,
            socket_path: config.socket_path.clone(),
            allow: AllowList::new(config.allowed_uids.iter().copied()),
            issuer: Arc::new(issuer),
        })
    }

    /// The socket the server listens on.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The issuer shared by all connections.
    pub fn issuer(&self) -> &Arc<Issuer> {
        &self.issuer
    }

    /// Serves connections until `shutdown` completes, then removes the socket.
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        tokio::spawn(serve_connection(stream, self.allow.clone(), Arc::clone(&self.issuer)));
                    }
                    Err(e) => {
                        // Usually EMFILE: back off briefly instead of spinning.
                        tracing::warn!(target: "signer", error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
        if let Err(e) = std::fs::remove_file(&self.socket_path) {
            tracing::warn!(target: "signer", socket = %self.socket_path.display(), error = %e, "cannot remove socket");
        }
        tracing::info!(target: "signer", "stopped");
        Ok(())
    }
}

async fn serve_connection(mut stream: UnixStream, allow: AllowList, issuer: Arc<Issuer>) {
    let peer = match transport::accept_handshake(&mut stream, &allow).await {
        Ok(peer) => peer,
        Err(TransportError::PeerNotAllowed { uid }) => {
            tracing::warn!(target: "signer", uid, "refused connection from a uid not on the allow-list");
            return;
        }
        Err(e) => {
            tracing::warn!(target: "signer", error = %e, "connection handshake failed");
            return;
        }
    };
    tracing::debug!(target: "signer", uid = peer.uid, pid = ?peer.pid, "connection accepted");
    BaseChannel::with_defaults(transport::framed(stream))
        .execute(SignerService::new(issuer, peer).serve())
        .for_each(|request| async {
            tokio::spawn(request);
        })
        .await;
    tracing::debug!(target: "signer", uid = peer.uid, "connection closed");
}
