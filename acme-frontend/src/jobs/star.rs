//! STAR (RFC 8739) reissues: every [`CHECK_EVERY`], each STAR order whose
//! next certificate is due (`star_orders.next_issue`, in the database, so
//! the schedule survives restarts and a late start catches up at once)
//! gets a new certificate from the signer, without a new validation, with
//! the CSR kept from its finalize; the certificate is stored like any
//! other and becomes the order's current one, and the next one is
//! scheduled ([`crate::protocol::star`]).
//!
//! The nominal start of a reissue is fixed in the database before the
//! signer is asked, so a retry (after a crash, a dead signer) asks for the
//! same certificate and the signer answers with the one it already signed.
//! A refusal (the signer's record of the order says no) ends the order's
//! reissues; an unavailable signer is retried at the next check.
//!
//! Runs only when STAR is on (`[server] star_min_lifetime_secs`), and only
//! on the holder of the jobs lease ([`crate::leader`]).

use std::sync::Arc;
use std::time::Duration;

use shared_proto::signer::{IssueRequest, SignerError, StarTerms};

use crate::error::Error;
use crate::protocol::CertificateStatus;
use crate::protocol::star;
use crate::store::models::{CertRow, StarRow};
use crate::{App, now, random_id, store};

/// How often due reissues are looked for.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Most reissues started by one check.
const BATCH: i64 = 100;

/// Runs the reissue check forever (returns at once when STAR is off).
pub async fn reissue_forever(app: Arc<App>) {
    if app.config.server.star_min_lifetime_secs.is_none() {
        return;
    }
    loop {
        if app.leader.is_leader()
            && let Err(e) = reissue_due(&app).await
        {
            tracing::warn!(target: "frontend", error = %e, "STAR reissue check failed; retrying");
        }
        tokio::time::sleep(CHECK_EVERY).await;
    }
}

/// Starts a reissue for every STAR order due now.
async fn reissue_due(app: &Arc<App>) -> Result<(), Error> {
    let t = now();
    let due = app
        .store
        .read(move |c| store::star::due(c, t, BATCH))
        .await?;
    for row in due {
        let app = app.clone();
        tokio::spawn(async move {
            let order = row.order_id.clone();
            if let Err(e) = reissue(&app, row).await {
                tracing::warn!(target: "frontend", order = %order, error = %e, "STAR reissue failed");
            }
        });
    }
    Ok(())
}

/// Issues the next certificate of STAR order `row`.
async fn reissue(app: &Arc<App>, row: StarRow) -> Result<(), Error> {
    let key = format!("star:{}", row.order_id);
    let Some(_claim) = app.issuance_in_flight.claim(&key) else {
        return Ok(());
    };
    let started = tokio::time::Instant::now();
    let terms = row.terms();
    let oid = row.order_id.clone();
    let t = now();
    let Some(start) = app
        .store
        .run(move |c| store::star::begin_reissue(c, &oid, t))
        .await?
    else {
        return Ok(());
    };
    let Some((not_before, not_after)) = star::window(&terms, start) else {
        let oid = row.order_id.clone();
        app.store.run(move |c| store::star::stop(c, &oid)).await?;
        return Ok(());
    };
    let oid = row.order_id.clone();
    let order = app
        .store
        .read(move |c| store::orders::by_id(c, &oid))
        .await?
        .ok_or_else(|| Error::Internal(format!("STAR order {} has no order", row.order_id)))?;
    let csr = row
        .csr
        .clone()
        .ok_or_else(|| Error::Internal(format!("STAR order {} has no CSR kept", row.order_id)))?;
    let request = IssueRequest {
        csr_der: csr,
        identifiers: order.identifiers()?,
        not_before: Some(not_before),
        not_after: Some(not_after),
        account_uri: app.urls.account(&order.account_id),
        order_id: order.id.clone(),
        statements: Vec::new(),
        profile: order.profile.clone(),
        processing_since: Some(start),
        star: Some(StarTerms {
            end_date: terms.end_date,
            lifetime_secs: terms.lifetime,
            lifetime_adjust_secs: terms.lifetime_adjust,
            reissue: true,
        }),
    };
    match app.peers.issue(request).await {
        Ok(Ok(cert)) => {
            let t = now();
            let serial = cert.serial_hex.clone();
            let cert_row = CertRow {
                id: random_id(12),
                order_id: order.id.clone(),
                account_id: order.account_id.clone(),
                serial_number: cert.serial_hex,
                status: CertificateStatus::Valid,
                der: cert.der,
                pem: cert.chain_pem,
                not_before: cert.not_before,
                not_after: cert.not_after,
                revoked_at: None,
                revocation_reason: None,
                created: t,
                mtc_log_index: cert.mtc_log_index.and_then(|i| i64::try_from(i).ok()),
            };
            let next = star::next_due(&terms, start);
            app.store
                .run_durable(move |c| store::star::complete_reissue(c, cert_row, next, t))
                .await?;
            crate::metrics::issued(started.elapsed());
            tracing::info!(target: "frontend", order = %order.id, serial = %serial, next_due = ?next, "STAR certificate reissued");
        }
        Ok(Err(SignerError::Internal)) => {
            tracing::warn!(target: "frontend", order = %order.id, "signer failed internally on a STAR reissue; will retry");
        }
        Ok(Err(refusal)) => {
            tracing::error!(target: "frontend", order = %order.id, error = %refusal, "the signer refused a STAR reissue; the order's reissues stop");
            let oid = order.id.clone();
            app.store.run(move |c| store::star::stop(c, &oid)).await?;
        }
        Err(e) => {
            tracing::warn!(target: "frontend", order = %order.id, error = %e, "signer unavailable for a STAR reissue; will retry");
        }
    }
    Ok(())
}
