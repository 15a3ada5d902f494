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
    let csr_stored = csr.clone();
    let began = app
        .store
        .run(move |c| store::orders::begin_processing(c, &oid, &csr_stored, t))
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
