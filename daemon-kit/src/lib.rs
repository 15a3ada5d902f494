//! Plumbing the Akāmu daemons share, written once: the accept loop of the
//! signer and the validator ([`accept`], with mutual TLS over TCP in
//! [`tls`]), the `READY` line a launcher waits
//! for ([`ready`]), the clock ([`clock`]), atomic file writes ([`files`]),
//! the figures reported to `/metrics` ([`figures`]),
//! dropping privileges ([`privileges`]), logging set-up ([`logging`]) and
//! handing freed heap back to the system ([`memory`]).
//!
//! Arrows point down: this crate uses `shared-proto`'s transport and
//! allow-list; `shared-proto` (the contract) never depends on it.

pub mod accept;
pub mod clock;
pub mod figures;
pub mod files;
pub mod heap;
pub mod logging;
pub mod memory;
pub mod privileges;
pub mod ready;
pub mod tls;

pub use clock::{TEST_CLOCK_ENV, unix_now, unix_now_ms};

/// A daemon served through [`accept`] and announced by [`ready`]: its name is
/// the `service` of the `READY` line and the tracing target of its logs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Daemon {
    /// `ca-signer`.
    Signer,
    /// `validator-worker`.
    Validator,
}

impl Daemon {
    /// The component name: `signer` or `validator`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Signer => "signer",
            Self::Validator => "validator",
        }
    }
}

/// Emits a tracing event at `$level` with the daemon's name as its target
/// (tracing needs a constant target, hence one arm per daemon).
macro_rules! event {
    ($daemon:expr, $level:ident, $($rest:tt)*) => {
        match $daemon {
            $crate::Daemon::Signer => tracing::$level!(target: "signer", $($rest)*),
            $crate::Daemon::Validator => tracing::$level!(target: "validator", $($rest)*),
        }
    };
}
pub(crate) use event;
