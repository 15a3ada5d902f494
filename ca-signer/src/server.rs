//! The signer's server: load the CA, bind the socket (and, with `[tcp]`, the
//! mutual-TLS listener, [`daemon_kit::tls`]), then serve tarpc through the
//! shared accept loop ([`daemon_kit::accept`]). The signer only listens: it
//! opens no connection of its own.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use daemon_kit::Daemon;
use daemon_kit::accept::Acceptor;
use daemon_kit::tls::TlsListener;
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
    tls: Option<TlsListener>,
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
        let tls = match &config.tcp {
            None => None,
            Some(tcp) => {
                let tls = tcp.bind()?;
                tracing::info!(
                    target: "signer",
                    tcp = %tcp.listen_addr,
                    client_names = ?tcp.client_names,
                    "listening with mutual TLS"
                );
                Some(tls)
            }
        };
        Ok(Self {
            listener,
            socket_path: config.socket_path.clone(),
            allow: AllowList::new(config.allowed_uids.iter().copied()),
            tls,
            issuer: Arc::new(issuer),
        })
    }

    /// The socket the server listens on.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// The address of the mutual-TLS listener, with `[tcp]`.
    pub fn tcp_addr(&self) -> Option<std::net::SocketAddr> {
        self.tls.as_ref().and_then(|t| t.local_addr().ok())
    }

    /// The issuer shared by all connections.
    pub fn issuer(&self) -> &Arc<Issuer> {
        &self.issuer
    }

    /// Serves connections (on the socket, and on TCP with `[tcp]`) until
    /// `shutdown` completes, then removes the socket
    /// ([`daemon_kit::accept`]).
    pub async fn serve_until(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        let issuer = self.issuer;
        let mut acceptor =
            Acceptor::new(Daemon::Signer, self.listener, self.socket_path, self.allow);
        if let Some(tls) = self.tls {
            acceptor = acceptor.with_tls(tls);
        }
        acceptor
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
