//! The jobs lease: of several front ends on one database (`[fleet]
//! enabled`), the one holding the `jobs` row of the `leases` table runs the
//! background jobs (recovery sweep, STAR reissues, retention clean-up, CRL
//! generation, pruning of redeemed nonces); the others serve requests only.
//!
//! The holder renews the row every third of `[fleet] lease_secs`; when it
//! dies, the row expires and the next front end to try takes it, so the
//! jobs keep running. A front end considers itself the holder only until a
//! sixth of the lease before the row's expiry (measured from the start of
//! its last successful renewal), so a holder that cannot reach the
//! database stops before another may take over. Clocks of the front ends'
//! hosts must agree to well within that margin (NTP).
//!
//! Without `[fleet] enabled` this process is the only front end and always
//! runs the jobs; no lease row is written.
//!
//! **Invariant:** every background job checks [`Leadership::is_leader`]
//! before each pass; per-request work (a challenge's probe, a finalize's
//! issuance) runs where the request arrived.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::error::Error;
use crate::store::{self, Store};
use crate::{App, now_ms};

/// The lease's name in the `leases` table.
pub const JOBS_LEASE: &str = "jobs";

/// Whether this front end runs the background jobs now.
pub struct Leadership {
    fleet: bool,
    holder: String,
    lease: Duration,
    until: Mutex<Option<Instant>>,
}

impl Leadership {
    /// Leadership for `holder` with leases of `lease`; `fleet = false`
    /// means always the leader.
    pub fn new(fleet: bool, holder: String, lease: Duration) -> Self {
        Self {
            fleet,
            holder,
            lease,
            until: Mutex::new(None),
        }
    }

    /// This front end's name in the lease row.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Whether several front ends share the database.
    pub fn fleet(&self) -> bool {
        self.fleet
    }

    /// Whether this front end runs the background jobs now.
    pub fn is_leader(&self) -> bool {
        if !self.fleet {
            return true;
        }
        self.until
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|until| Instant::now() < until)
    }

    /// One attempt to take or renew the lease; true when held.
    pub async fn try_take(&self, store: &Store) -> Result<bool, Error> {
        if !self.fleet {
            return Ok(true);
        }
        let started = Instant::now();
        let holder = self.holder.clone();
        let lease_ms = i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX);
        let held = store
            .run(move |c| store::fleet::take_lease(c, JOBS_LEASE, &holder, now_ms(), lease_ms))
            .await?;
        let was = self.is_leader();
        let mut until = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        *until = held.then(|| started + self.lease - self.lease / 6);
        drop(until);
        if held && !was {
            tracing::info!(target: "frontend", holder = %self.holder, "took the jobs lease: this front end runs the background jobs");
        } else if !held && was {
            tracing::warn!(target: "frontend", holder = %self.holder, "lost the jobs lease: another front end runs the background jobs");
        }
        Ok(held)
    }

    /// Gives the lease up (clean shutdown), so another front end takes it
    /// at its next try rather than at the lease's expiry.
    pub async fn release(&self, store: &Store) {
        if !self.fleet || !self.is_leader() {
            return;
        }
        *self.until.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let holder = self.holder.clone();
        if let Err(e) = store
            .run(move |c| store::fleet::release_lease(c, JOBS_LEASE, &holder))
            .await
        {
            tracing::warn!(target: "frontend", error = %e, "releasing the jobs lease");
        }
    }
}

/// Takes and renews the jobs lease forever (returns at once without
/// `[fleet] enabled`).
pub async fn hold_forever(app: Arc<App>) {
    if !app.leader.fleet() {
        return;
    }
    let every = app.leader.lease / 3;
    loop {
        if let Err(e) = app.leader.try_take(&app.store).await {
            tracing::warn!(target: "frontend", error = %e, "jobs lease: the database did not answer; will retry");
            // Not renewed: `is_leader` turns false on its own at the
            // local deadline.
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_a_dead_holder_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("l.db");
        let a_store = Store::open(&path).expect("open");
        let b_store = Store::open(&path).expect("open again");
        let take = |store: &Store, who: &'static str, at: i64| {
            let store = store.clone();
            async move {
                store
                    .run(move |c| store::fleet::take_lease(c, JOBS_LEASE, who, at, 1_000))
                    .await
                    .expect("take")
            }
        };
        assert!(take(&a_store, "a", 10_000).await, "free lease");
        assert!(!take(&b_store, "b", 10_500).await, "held by a");
        assert!(take(&a_store, "a", 10_600).await, "renewed by a");
        assert!(!take(&b_store, "b", 11_599).await, "a's renewal holds");
        // a stops renewing: at the expiry b takes over, and a cannot come
        // back while b renews.
        assert!(take(&b_store, "b", 11_600).await, "expired: b takes it");
        assert!(!take(&a_store, "a", 11_700).await, "b holds it now");
        let holder = b_store
            .read(|c| store::fleet::lease_holder(c, JOBS_LEASE))
            .await
            .expect("read");
        assert_eq!(holder, Some(("b".to_owned(), 12_600)));
        // A clean release lets the other take it at once; a release by a
        // non-holder changes nothing.
        a_store
            .run(|c| store::fleet::release_lease(c, JOBS_LEASE, "a"))
            .await
            .expect("release");
        assert!(!take(&a_store, "a", 11_800).await);
        b_store
            .run(|c| store::fleet::release_lease(c, JOBS_LEASE, "b"))
            .await
            .expect("release");
        assert!(take(&a_store, "a", 11_900).await);
    }

    #[tokio::test]
    async fn leadership_follows_the_row_and_lapses_without_renewal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("l.db")).expect("open");
        let single = Leadership::new(false, "x".into(), Duration::from_secs(3));
        assert!(single.is_leader(), "one front end always leads");

        let lease = Duration::from_millis(600);
        let a = Leadership::new(true, "a".into(), lease);
        let b = Leadership::new(true, "b".into(), lease);
        assert!(!a.is_leader(), "no lease taken yet");
        assert!(a.try_take(&store).await.expect("take"));
        assert!(a.is_leader());
        assert!(!b.try_take(&store).await.expect("try"));
        assert!(!b.is_leader());
        // a stops renewing: its own deadline (lease - lease/6) passes
        // before the row expires, then b takes over.
        tokio::time::sleep(lease - lease / 6).await;
        assert!(!a.is_leader(), "a stops before its row expires");
        tokio::time::sleep(lease / 6 + Duration::from_millis(50)).await;
        assert!(b.try_take(&store).await.expect("take over"));
        assert!(b.is_leader());
        b.release(&store).await;
        assert!(!b.is_leader());
        assert!(a.try_take(&store).await.expect("take after release"));
    }
}
