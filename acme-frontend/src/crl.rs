//! CRLs: the holder of the jobs lease ([`crate::leader`]; the only front
//! end, without `[fleet] enabled`) asks the signer for a new CRL after
//! every revocation (ACME or operator, at any front end), before the
//! current one is half-way to its nextUpdate and once after its start (the
//! CA may have changed since the stored one was made), and stores it in the database
//! (`current_crl`); every front end keeps the stored CRL in memory, follows
//! the database within [`CHECK_EVERY`], and serves it at the path of the
//! signer's `crl_url` (learned over the RPC, see [`crate::ca`]) as
//! `application/pkix-crl`.
//!
//! **Invariant:** every front end serves the CRL the database holds (the
//! same bytes, whichever front end answers), at most [`CHECK_EVERY`]
//! behind; a revocation at any front end is in the served CRL within about
//! two [`CHECK_EVERY`] plus the signer's answer.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use shared_proto::signer::{CrlRequest, RevokedEntry, SignedCrl};

use crate::error::Error;
use crate::{App, now, store};

/// How often the revocation state is checked.
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The CRL being served and the revocation state it reflects.
#[derive(Default)]
pub struct CrlCache {
    current: RwLock<Option<(SignedCrl, (i64, i64))>>,
    /// Whether this process has made a CRL since it started: the first
    /// holder pass of a process makes one even if the stored one looks
    /// current (the CA may have changed since it was stored).
    made_here: std::sync::atomic::AtomicBool,
}

impl CrlCache {
    /// The current CRL, DER.
    pub fn der(&self) -> Option<Vec<u8>> {
        self.current
            .read()
            .ok()
            .and_then(|c| c.as_ref().map(|(crl, _)| crl.der.clone()))
    }

    /// `thisUpdate` of the current CRL, Unix seconds.
    pub fn this_update(&self) -> Option<i64> {
        self.current
            .read()
            .ok()
            .and_then(|c| c.as_ref().map(|(crl, _)| crl.this_update))
    }

    fn needs_refresh(&self, mark: (i64, i64), now: i64) -> bool {
        let Ok(current) = self.current.read() else {
            return true;
        };
        match current.as_ref() {
            None => true,
            Some((crl, seen)) => {
                *seen != mark || now >= crl.this_update + (crl.next_update - crl.this_update) / 2
            }
        }
    }
}

/// The URL path the CRL is served at, from the signer's `crl_url`.
pub fn serving_path(crl_url: &str) -> Option<String> {
    let rest = crl_url.split_once("://")?.1;
    let path = &rest[rest.find('/')?..];
    Some(path.split(['?', '#']).next().unwrap_or(path).to_owned())
}

/// Keeps the CRL fresh forever (idle while the signer publishes no
/// `crl_url`).
pub async fn refresh_forever(app: Arc<App>) {
    loop {
        if let Err(e) = refresh(&app).await {
            tracing::warn!(target: "frontend", error = %e, "CRL refresh failed; will retry");
        }
        tokio::select! {
            () = tokio::time::sleep(CHECK_EVERY) => {}
            () = app.revocations.notified() => {}
        }
    }
}

async fn refresh(app: &App) -> Result<(), Error> {
    if app
        .ca
        .cached()
        .and_then(|info| crate::ca::crl_path(&info))
        .is_none()
    {
        return Ok(());
    }
    follow(app).await?;
    if !app.leader.is_leader() {
        return Ok(());
    }
    let t = now();
    let mark = app.store.read(store::certificates::revocation_mark).await?;
    let made_here = app.crl.made_here.load(std::sync::atomic::Ordering::Relaxed);
    if made_here && !app.crl.needs_refresh(mark, t) {
        return Ok(());
    }
    let revoked = app
        .store
        .read(move |c| store::certificates::revoked_unexpired(c, t))
        .await?
        .into_iter()
        .map(|(serial_hex, revoked_at, reason)| RevokedEntry {
            serial_hex,
            revoked_at,
            reason,
        })
        .collect();
    let crl = app.peers.generate_crl(CrlRequest { revoked }).await??;
    let row = store::fleet::CrlRow {
        der: crl.der.clone(),
        number: i64::try_from(crl.number).unwrap_or(i64::MAX),
        this_update: crl.this_update,
        next_update: crl.next_update,
        mark,
    };
    let stored = app
        .store
        .run(move |c| store::fleet::store_crl(c, &row, !made_here))
        .await?;
    if !stored {
        // Another holder stored a newer one meanwhile: serve that.
        app.crl
            .made_here
            .store(true, std::sync::atomic::Ordering::Relaxed);
        return follow(app).await;
    }
    app.crl
        .made_here
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(target: "frontend", number = crl.number, entries = mark.0, "CRL updated");
    if let Ok(mut current) = app.crl.current.write() {
        *current = Some((crl, mark));
    }
    Ok(())
}

/// Loads the stored CRL when it is not the one in memory.
async fn follow(app: &App) -> Result<(), Error> {
    let Some((number, _)) = app.store.read(store::fleet::current_crl_version).await? else {
        return Ok(());
    };
    let held = app
        .crl
        .current
        .read()
        .ok()
        .and_then(|c| c.as_ref().map(|(crl, _)| crl.number));
    if held.and_then(|n| i64::try_from(n).ok()) == Some(number) {
        return Ok(());
    }
    let Some(row) = app.store.read(store::fleet::current_crl).await? else {
        return Ok(());
    };
    let crl = SignedCrl {
        der: row.der,
        number: u64::try_from(row.number).unwrap_or(0),
        this_update: row.this_update,
        next_update: row.next_update,
    };
    tracing::debug!(target: "frontend", number = crl.number, "serving the stored CRL");
    if let Ok(mut current) = app.crl.current.write() {
        *current = Some((crl, row.mark));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_of_crl_url() {
        assert_eq!(
            serving_path("http://ca.example/crl/ca.crl").as_deref(),
            Some("/crl/ca.crl")
        );
        assert_eq!(serving_path("https://h:8080/x?y=1").as_deref(), Some("/x"));
        assert_eq!(serving_path("http://h"), None);
        assert_eq!(serving_path("nonsense"), None);
    }
}
