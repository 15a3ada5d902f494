//! `validator-worker`: the Akāmu process that probes ACME challenges.
//!
//! `acme-frontend` asks it over a Unix socket ([`shared_proto::validator`])
//! to validate one challenge; it resolves the identifier, refuses reserved
//! addresses ([`address_policy`]), probes the applicant ([`http01`],
//! [`dns01`], [`tls_alpn01`]) and answers with a validation record or a
//! problem whose kind is decided in one place ([`error`]). It has no database
//! and no CA key.
//!
//! Entry point: [`run`].

pub mod address_policy;
pub mod config;
pub mod danger;
pub mod dns01;
pub mod error;
pub mod http01;
pub mod probe;
pub mod resolver;
pub mod server;
pub mod service;
pub mod tls_alpn01;

use std::io::Write as _;
use std::sync::Arc;

use shared_proto::peer::AllowList;
use tokio::signal::unix::{SignalKind, signal};

pub use crate::config::Config;
pub use crate::error::Error;
use crate::probe::Prober;
use crate::service::ValidatorService;

/// Runs the validator until SIGTERM or SIGINT: binds the socket, prints the
/// `READY` line, serves requests, and removes the socket on the way out.
pub async fn run(config: Config) -> Result<(), Error> {
    config.validate()?;
    let path = config.socket_path.clone();
    let allow = AllowList::new(config.allowed_uids.iter().copied());
    let who = shared_proto::privileges::drop_privileges(&shared_proto::privileges::plan(
        config.user.as_deref(),
        config.group.as_deref(),
    ))?;
    tracing::info!(uid = who.uid, gid = who.gid, "privileges dropped");
    let key_path = config.statement_key_path();
    let key = Arc::new(shared_proto::statement::StatementKey::load_or_create(
        &key_path,
    )?);
    shared_proto::privileges::check_private_file(&key_path)?;
    let prober = Arc::new(Prober::new(config.clone())?);
    let service = ValidatorService::new(prober).with_statement_key(key);

    let io = |context| move |source| Error::Io { context, source };
    let mut sigterm = signal(SignalKind::terminate()).map_err(io("installing SIGTERM handler"))?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(io("installing SIGINT handler"))?;

    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|source| Error::Bind {
            path: path.clone(),
            source,
        })?;
    }
    let listener =
        shared_proto::transport::bind(&path, config.socket_mode).map_err(|source| Error::Bind {
            path: path.clone(),
            source,
        })?;
    tracing::info!(
        socket = %path.display(),
        http_port = config.http_validation_port,
        tls_alpn_port = config.tls_alpn_validation_port,
        resolver = ?config.dns_resolver_addr,
        allow_private_targets = config.allow_private_targets,
        "validator listening"
    );
    print_ready(&path).map_err(io("writing the READY line"))?;

    tokio::select! {
        () = server::serve(listener, allow, service) => {}
        _ = sigterm.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = sigint.recv() => tracing::info!("SIGINT: shutting down"),
    }
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!(socket = %path.display(), error = %e, "cannot remove socket");
    }
    Ok(())
}

/// The machine-readable line a launcher or test harness waits for.
pub fn ready_line(path: &std::path::Path, pid: u32) -> String {
    let socket = serde_json::Value::String(path.to_string_lossy().into_owned());
    format!(r#"READY {{"service":"validator","socket":{socket},"pid":{pid}}}"#)
}

fn print_ready(path: &std::path::Path) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", ready_line(path, std::process::id()))?;
    out.flush()
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_is_exact_json() {
        let line = ready_line(std::path::Path::new("akamu-data/validator.sock"), 42);
        assert_eq!(
            line,
            r#"READY {"service":"validator","socket":"akamu-data/validator.sock","pid":42}"#
        );
        let json: serde_json::Value =
            serde_json::from_str(line.strip_prefix("READY ").expect("prefix")).expect("json");
        assert_eq!(json["pid"], 42);
    }
}
