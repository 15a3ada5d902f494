//! The listener's TLS configuration, replaceable while serving: SIGHUP
//! reads `[tls]`'s files again (chain, key, client CAs) and the next
//! connection gets the new configuration; connections already accepted
//! keep the one they started with and finish as they are. A reload that
//! fails keeps the previous configuration and says why.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::Tls;
use crate::error::Error;

/// A TLS acceptor whose configuration can be swapped.
pub struct Acceptor {
    settings: Tls,
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<ServerConfig>>,
}

impl Acceptor {
    /// Builds the first configuration; any problem is a startup error.
    pub fn new(settings: Tls, cert_file: PathBuf, key_file: PathBuf) -> Result<Self, Error> {
        let config = super::server_config(&settings, &cert_file, &key_file)?;
        Ok(Self {
            settings,
            cert_file,
            key_file,
            current: RwLock::new(config),
        })
    }

    /// The acceptor for a new connection.
    pub fn current(&self) -> TlsAcceptor {
        let config = match self.current.read() {
            Ok(guard) => guard.clone(),
            // A writer never panics while holding the lock (it only
            // assigns); a poisoned lock still holds a whole configuration.
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        TlsAcceptor::from(config)
    }

    /// Reads the files again and, if they make a valid configuration,
    /// serves it to new connections.
    pub fn reload(&self) -> Result<(), Error> {
        super::files(&self.cert_file, &self.key_file)?;
        let config = super::server_config(&self.settings, &self.cert_file, &self.key_file)?;
        match self.current.write() {
            Ok(mut guard) => *guard = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }

    /// Reloads on every SIGHUP until the process ends. The handler is
    /// installed before this returns, so a SIGHUP right after start is not
    /// the default action (which would end the process).
    pub fn reload_on_sighup(self: &Arc<Self>) -> Result<(), Error> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hup = signal(SignalKind::hangup())
            .map_err(|e| Error::Startup(format!("cannot watch SIGHUP: {e}")))?;
        let this = self.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                match this.reload() {
                    Ok(()) => tracing::info!(
                        target: "frontend",
                        cert = %this.cert_file.display(),
                        "SIGHUP: TLS certificate and settings reloaded; new connections use them"
                    ),
                    Err(e) => tracing::error!(
                        target: "frontend",
                        cert = %this.cert_file.display(),
                        "SIGHUP: TLS reload failed, still serving the previous certificate: {e}"
                    ),
                }
            }
        });
        Ok(())
    }
}

/// Without TLS there is nothing to reload, but SIGHUP must not end the
/// process (its default action): it is logged and ignored.
pub fn ignore_sighup() -> Result<(), Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| Error::Startup(format!("cannot watch SIGHUP: {e}")))?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!(target: "frontend", "SIGHUP: [tls] is off, nothing to reload");
        }
    });
    Ok(())
}
