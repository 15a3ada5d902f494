//! The retention clean-up: every [`PRUNE_EVERY`], deletes orders,
//! authorizations and challenges that expired more than `[server]
//! retention_days` ago (what is kept is listed in `store::retention`), and
//! rate-limit buckets that are full again.
//!
//! **Invariant:** the clean-up never holds the writer for long: each batch
//! is one short writer job of at most [`BATCH`] orders and [`BATCH`]
//! authorizations (with their links and challenges), and the next batch
//! waits [`PAUSE`], so requests' writes are committed between batches.

use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::store::Store;
use crate::store::retention::{self, Pruned};
use crate::{App, now};

/// How often the clean-up runs (its first run is [`FIRST_RUN_AFTER`] after
/// the start).
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Delay before the first run, so start-up work goes first.
pub const FIRST_RUN_AFTER: Duration = Duration::from_secs(60);
/// How often a front end that does not hold the jobs lease (or pruned
/// less than [`PRUNE_EVERY`] ago) looks again.
pub const LEADER_CHECK: Duration = Duration::from_secs(60);
/// How often redeemed nonces are pruned.
pub const NONCE_PRUNE_EVERY: Duration = Duration::from_secs(60);
/// Most orders, and most authorizations, deleted by one batch.
pub const BATCH: i64 = 500;
/// Pause between two batches.
pub const PAUSE: Duration = Duration::from_millis(50);

/// The instant before which something expired is due for deletion.
pub fn cutoff(now: i64, retention_days: u32) -> i64 {
    now - i64::from(retention_days) * 86_400
}

/// Runs the clean-up forever, with the configured retention.
/// Only the holder of the jobs lease prunes ([`crate::leader`]); a front
/// end that takes the lease over prunes within [`LEADER_CHECK`] of that.
pub async fn prune_forever(app: Arc<App>) {
    let days = app.config.server.retention_days;
    tokio::time::sleep(FIRST_RUN_AFTER).await;
    let mut last: Option<tokio::time::Instant> = None;
    loop {
        if !app.leader.is_leader() || last.is_some_and(|at| at.elapsed() < PRUNE_EVERY) {
            tokio::time::sleep(LEADER_CHECK).await;
            continue;
        }
        last = Some(tokio::time::Instant::now());
        match prune(&app.store, cutoff(now(), days), BATCH, PAUSE).await {
            Ok(done) if done.is_empty() => {}
            Ok(done) => tracing::info!(
                target: "frontend",
                orders = done.orders,
                authorizations = done.authorizations,
                challenges = done.challenges,
                retention_days = days,
                "deleted expired rows past retention"
            ),
            Err(e) => {
                tracing::warn!(target: "frontend", error = %e, "retention clean-up failed; retrying later")
            }
        }
        match prune_buckets(&app.store, BATCH, PAUSE).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::info!(target: "frontend", buckets = n, "deleted full rate-limit buckets")
            }
            Err(e) => {
                tracing::warn!(target: "frontend", error = %e, "rate-limit bucket clean-up failed; retrying later")
            }
        }
    }
}

/// Deletes redeemed nonces that are too old to be accepted anyway (with a
/// margin for clock differences), every [`NONCE_PRUNE_EVERY`], on the
/// holder of the jobs lease; idle without `[fleet] enabled` (nonces are in
/// memory then).
pub async fn prune_nonces_forever(app: Arc<App>) {
    if !app.config.fleet.enabled {
        return;
    }
    loop {
        tokio::time::sleep(NONCE_PRUNE_EVERY).await;
        if !app.leader.is_leader() {
            continue;
        }
        let before = now() - crate::nonces::PRUNE_MARGIN_SECS;
        loop {
            match app
                .store
                .run(move |c| crate::store::fleet::prune_nonces(c, before, BATCH))
                .await
            {
                Ok(n) if n < usize::try_from(BATCH).unwrap_or(usize::MAX) => break,
                Ok(_) => tokio::time::sleep(PAUSE).await,
                Err(e) => {
                    tracing::warn!(target: "frontend", error = %e, "pruning redeemed nonces failed; retrying later");
                    break;
                }
            }
        }
    }
}

/// Deletes rate-limit buckets that are full now (a row whose TAT is past
/// says nothing a missing row does not), `batch` per writer job; how many.
pub async fn prune_buckets(store: &Store, batch: i64, pause: Duration) -> Result<usize, Error> {
    let mut total = 0;
    loop {
        let n = store
            .run(move |c| crate::store::rate_limits::prune_full(c, crate::now_ms(), batch))
            .await?;
        total += n;
        if i64::try_from(n).unwrap_or(i64::MAX) < batch {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}

/// Deletes everything due before `cutoff`, `batch` rows of a kind per
/// writer job, pausing `pause` between jobs, until a batch finds less than
/// a full load. Returns the totals.
pub async fn prune(
    store: &Store,
    cutoff: i64,
    batch: i64,
    pause: Duration,
) -> Result<Pruned, Error> {
    let mut total = Pruned::default();
    loop {
        let done = store
            .run(move |c| retention::prune_batch(c, cutoff, batch))
            .await?;
        total.add(done);
        let full = i64::try_from(done.orders.max(done.authorizations)).unwrap_or(i64::MAX);
        if full < batch {
            return Ok(total);
        }
        tokio::time::sleep(pause).await;
    }
}
