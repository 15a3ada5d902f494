//! `ca-signer`: Akāmu's signer. It holds the CA key, builds every
//! certificate from its own profile and signs it; it trusts no caller.
//!
//! Issuance is three steps, each consuming the previous one's output:
//! [`policy::check`] turns an untrusted request into a [`policy::Checked`],
//! [`tbs::build_leaf`] turns that into a [`tbs::LintedTbs`], and
//! [`tbs::LintedTbs::sign`] consumes it with a [`keys::KeyBackend`]; the
//! result is appended to the [`audit`] log before it leaves the signer. CRLs
//! follow the same shape in [`crl`]; root and intermediate certificates are
//! made by [`ceremony`] (driven by `akamu-cli ceremony`).
//!
//! Entry points: [`run`] (the binary), [`server::Server`] (tests and
//! embedding), [`service::SignerService`] (the tarpc handler).

pub mod audit;
pub mod blocklist;
pub mod ca;
pub mod ceremony;
pub mod config;
pub mod crl;
pub mod error;
pub mod files;
pub mod inflight;
pub mod keys;
pub mod metrics;
pub mod mtc;
pub mod policy;
pub mod recent;
pub mod server;
pub mod server_cert;
pub mod service;
pub mod star;
pub mod tbs;

pub use config::Config;
pub use error::Error;

/// Starts the signer and serves until SIGTERM or SIGINT, then removes the
/// socket and returns `Ok(())`.
///
/// Once the socket is listening it prints exactly one line to stdout:
/// `READY {"service":"signer","socket":"<path>","pid":<pid>}`.
pub async fn run(config: Config) -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut term = signal(SignalKind::terminate()).map_err(Error::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(Error::Runtime)?;
    let who = daemon_kit::privileges::drop_privileges(&daemon_kit::privileges::plan(
        config.user.as_deref(),
        config.group.as_deref(),
    ))?;
    tracing::info!(target: "signer", uid = who.uid, gid = who.gid, "privileges dropped");
    for secret in config.secret_files().iter().filter(|p| p.exists()) {
        daemon_kit::privileges::check_private_file(secret)?;
    }
    let server = server::Server::start(&config)?;
    print_ready(server.socket_path())?;
    server
        .serve_until(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(target: "signer", "SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!(target: "signer", "SIGINT: shutting down"),
            }
        })
        .await
}

/// The READY line for a socket path ([`daemon_kit::ready`]).
pub fn ready_line(socket: &std::path::Path) -> String {
    daemon_kit::ready::line(daemon_kit::Daemon::Signer, socket, std::process::id())
}

fn print_ready(socket: &std::path::Path) -> Result<(), Error> {
    daemon_kit::ready::print(daemon_kit::Daemon::Signer, socket).map_err(Error::Runtime)
}

/// The current time in Unix seconds: the only place the signer reads the
/// clock ([`daemon_kit::unix_now`]). Everything below takes `now` as a
/// parameter.
pub fn unix_now() -> i64 {
    daemon_kit::unix_now()
}
