//! RFC 8555 §7.4: finalizing an order with a CSR.
//!
//! The CSR is checked here (so a mistake is a `badCSR` and the order stays
//! `ready`), the order moves to `processing` with the CSR stored, and the
//! signer is asked at once. If the signer is unavailable the order stays
//! `processing` and `jobs` retries; clients poll.

use std::sync::Arc;

use akamu_pki::csr::ParsedCsr;
use http::StatusCode;
use serde::Deserialize;

use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::OrderStatus;
use crate::protocol::order::check_finalizable;
use crate::protocol::require_owner;
use crate::store;
use crate::{App, jobs, now};

#[derive(Deserialize)]
struct Payload {
    csr: String,
}

/// `POST /acme/order/{id}/finalize`.
pub async fn post(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    let account_id = auth.account()?.id.clone();
    let payload: Payload = auth.json()?;
    let oid = id.to_owned();
    let (order, authzs) = app
        .store
        .read(move |c| store::orders::with_authzs(c, &oid))
        .await?
        .ok_or(Error::NotFound)?;
    require_owner(&order.account_id, &account_id, "this order")?;
    let t = now();
    check_finalizable(order.status_at(&authzs, t))?;

    // The profile may have left the signer since the order was placed
    // (draft-ietf-acme-profiles: invalidProfile at finalize too).
    let ca = crate::ca::facts(app).await?;
    crate::ca::profile(&ca, order.profile.as_deref())?;

    let csr = akamu_jose::b64_decode(&payload.csr)
        .map_err(|_| Error::BadCsr("csr is not base64url".into()))?;
    if csr.len() > crate::protocol::MAX_CSR_BYTES {
        return Err(Error::BadCsr(format!(
            "the CSR is larger than {} bytes",
            crate::protocol::MAX_CSR_BYTES
        )));
    }
    let parsed = ParsedCsr::parse_and_verify(&csr).map_err(|e| Error::BadCsr(e.to_string()))?;
    let identifiers = order.identifiers()?;
    parsed
        .check_against(&identifiers)
        .map_err(|e| Error::BadCsr(e.to_string()))?;

    let oid = id.to_owned();
    let star = app
        .store
        .read(move |c| store::star::by_order(c, &oid))
        .await?;
    if star.is_some_and(|s| s.canceled_at.is_some()) {
        return Err(Error::AutoRenewalCanceled(
            "the order's auto-renewal was canceled".into(),
        ));
    }
    let oid = id.to_owned();
    let csr_stored = csr.clone();
    // RFC 9773 §5: the certificate the order replaces is claimed in the
    // same transaction that starts processing, so of two orders replacing
    // one certificate only one gets this far.
    let replaces = order.replaces_certificate.clone();
    let began = app
        .store
        .run(move |c| {
            if !store::orders::begin_processing(c, &oid, &csr_stored, t)? {
                return Ok(false);
            }
            // A STAR order keeps its CSR for the reissues.
            store::star::keep_csr(c, &oid, &csr_stored)?;
            if let Some(cert) = &replaces
                && !store::renewals::claim(c, cert, &oid, t)?
            {
                return Err(Error::AlreadyReplaced(format!(
                    "the certificate this order replaces was replaced by another order (certificate {cert})"
                )));
            }
            Ok(true)
        })
        .await?;
    if !began {
        return Err(Error::OrderNotReady(
            "the order is already being finalized".into(),
        ));
    }
    let mut processing = order;
    processing.status = OrderStatus::Processing;
    processing.updated = t;
    processing.csr = Some(csr);
    jobs::issue(app, processing, jobs::Attempt::First).await?;
    super::order::reply(app, id, &account_id, StatusCode::OK).await
}
