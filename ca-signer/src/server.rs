//! The signer's server: load the CA, bind the socket, then serve tarpc
//! through the shared accept loop ([`daemon_kit::accept`]).

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use daemon_kit::Daemon;
use daemon_kit::accept::Acceptor;
use shared_proto::peer::AllowList;
use shared_proto::signer::SignerRpc;
use shared_proto::transport;
use tarpc::server::Serve;
use tokio::net::UnixListener;

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

    /// Serves connections until `shutdown` completes, then removes the socket
    /// ([`daemon_kit::accept`]).
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let issuer = self.issuer;
        Acceptor::new(Daemon::Signer, self.listener, self.socket_path, self.allow)
            .serve_until(
                move |peer| {
                    let service = SignerService::new(Arc::clone(&issuer), peer).serve();
                    move |ctx, req| Serve::serve(service, ctx, req)
                },
                shutdown,
            )
            .await;
        Ok(())
    }
}
