//! `validator-worker`: the Akāmu process that probes ACME challenges.
//!
//! `acme-frontend` asks it over a Unix socket ([`shared_proto::validator`])
//! to validate one challenge; it resolves the identifier, refuses reserved
//! addresses ([`address_policy`]), probes the applicant ([`http01`],
//! [`dns01`], [`tls_alpn01`]) and answers with a validation record or a
//! problem whose kind is decided in one place ([`error`]). It has no database
//! and no CA key.
//!
//! The same binary serves as a remote network perspective
//! (`[remote_perspective]`: its statements name it) or as a primary that
//! has every validation corroborated by remote perspectives
//! ([`perspectives`], BR §3.2.2.9).
//!
//! Entry point: [`run`].

pub mod address_policy;
pub mod caa;
pub mod config;
pub mod danger;
pub mod dns01;
pub mod dns_persist;
pub mod error;
pub mod http01;
pub mod metrics;
pub mod onion;
pub mod perspectives;
pub mod probe;
pub mod resolver;
pub mod server;
pub mod service;
pub mod tls_alpn01;

use std::sync::Arc;

use daemon_kit::Daemon;
use daemon_kit::accept::Acceptor;
use shared_proto::peer::AllowList;
use tokio::signal::unix::{SignalKind, signal};

pub use crate::config::Config;
pub use crate::error::Error;
use crate::probe::Prober;
use crate::service::ValidatorService;

/// Runs the validator until SIGTERM or SIGINT: binds the socket (and, with
/// `[tcp]`, the mutual-TLS listener), prints the `READY` line, serves
/// requests, and removes the socket on the way out.
pub async fn run(config: Config) -> Result<(), Error> {
    config.validate()?;
    let allow = AllowList::new(config.allowed_uids.iter().copied());
    let who = daemon_kit::privileges::drop_privileges(&daemon_kit::privileges::plan(
        config.user.as_deref(),
        config.group.as_deref(),
    ))?;
    tracing::info!(uid = who.uid, gid = who.gid, "privileges dropped");
    let key_path = config.statement_key_path();
    let key = Arc::new(shared_proto::statement::StatementKey::load_or_create(
        &key_path,
    )?);
    daemon_kit::privileges::check_private_file(&key_path)?;
    let prober = Arc::new(Prober::new(config.clone())?);
    let mut service = ValidatorService::new(prober)
        .with_statement_key(key)
        .with_perspectives(perspectives::Perspectives::new(
            config.perspectives.clone(),
            std::time::Duration::from_millis(config.perspective_timeout_ms),
            config.perspective_client.as_ref(),
        )?);
    if let Some(me) = &config.remote_perspective {
        tracing::info!(name = %me.name, rir = %me.rir, "serving as a remote perspective");
        service = service.as_perspective(shared_proto::statement::Perspective {
            name: me.name.clone(),
            rir: me.rir.clone(),
        });
    }
    if !config.perspectives.is_empty() {
        tracing::info!(
            perspectives = config.perspectives.len(),
            "primary: validations need multi-perspective corroboration"
        );
    }

    let io = |context| move |source| Error::Io { context, source };
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("installing SIGTERM handler"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("installing SIGINT handler"))?;

    let unix = match &config.socket_path {
        None => None,
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| Error::Bind {
                    path: path.clone(),
                    source,
                })?;
            }
            let listener =
                shared_proto::transport::bind(path, config.socket_mode).map_err(|source| {
                    Error::Bind {
                        path: path.clone(),
                        source,
                    }
                })?;
            Some((listener, path.clone()))
        }
    };
    tracing::info!(
        socket = ?config.socket_path,
        http_port = config.http_validation_port,
        tls_alpn_port = config.tls_alpn_validation_port,
        resolver = ?config.dns_resolver_addr,
        allow_private_targets = config.allow_private_targets,
        "validator listening"
    );
    let tls = match &config.tcp {
        None => None,
        Some(tcp) => {
            let tls = tcp.bind()?;
            tracing::info!(
                tcp = %tcp.listen_addr,
                client_names = ?tcp.client_names,
                "listening with mutual TLS"
            );
            Some(tls)
        }
    };
    // The READY line names the socket, or for a TCP-only perspective its
    // address (`tcp:<addr>`).
    let ready = match (&unix, &config.tcp) {
        (Some((_, path)), _) => path.clone(),
        (None, Some(tcp)) => std::path::PathBuf::from(format!("tcp:{}", tcp.listen_addr)),
        (None, None) => return Err(Error::InvalidConfig("nothing to listen on")),
    };
    daemon_kit::ready::print(Daemon::Validator, &ready).map_err(io("writing the READY line"))?;

    let shutdown = async move {
        tokio::select! {
            _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
        }
    };
    let acceptor = match (unix, tls) {
        (Some((listener, path)), Some(tls)) => {
            Acceptor::new(Daemon::Validator, listener, path, allow).with_tls(tls)
        }
        (Some((listener, path)), None) => Acceptor::new(Daemon::Validator, listener, path, allow),
        (None, Some(tls)) => Acceptor::tls_only(Daemon::Validator, tls),
        (None, None) => return Err(Error::InvalidConfig("nothing to listen on")),
    };
    server::serve_until(acceptor, service, shutdown).await;
    Ok(())
}

/// Seconds since the Unix epoch ([`daemon_kit::unix_now`]).
pub(crate) fn now_unix() -> i64 {
    daemon_kit::unix_now()
}
