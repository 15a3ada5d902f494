//! What the validator enforces, learned from it: its CAA identities, for
//! the directory's `meta.caaIdentities`. The validator owns them (it checks
//! CAA against them); the frontend keeps only this copy of the validator's
//! answer to `validator_info`, fetched at start, after every reconnection
//! to the validator and every [`REFRESH_EVERY`].

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use shared_proto::validator::ValidatorInfo;

use crate::App;

/// How often the facts are re-read even without a reconnection.
const REFRESH_EVERY: Duration = Duration::from_secs(300);

/// The validator's last answer to `validator_info`.
#[derive(Default)]
pub struct ValidatorFacts {
    current: RwLock<Option<Arc<ValidatorInfo>>>,
}

impl ValidatorFacts {
    /// The facts as last fetched, if any.
    pub fn cached(&self) -> Option<Arc<ValidatorInfo>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, info: ValidatorInfo) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(info));
    }
}

/// Keeps the facts current: re-reads them after each new connection to the
/// validator and every [`REFRESH_EVERY`].
pub async fn refresh_forever(app: Arc<App>) {
    loop {
        match app.peers.validator_info().await {
            Ok(info) => {
                tracing::info!(target: "frontend", caa_identities = ?info.caa_identities, "validator facts");
                app.validator_facts.store(info);
            }
            Err(e) => {
                tracing::warn!(target: "frontend", error = %e, "cannot read the validator's facts; will retry");
            }
        }
        tokio::select! {
            () = app.peers.validator_connected().notified() => {}
            () = tokio::time::sleep(REFRESH_EVERY) => {}
        }
    }
}
