//! RFC 8555 §7.4.2: certificate download (POST-as-GET), leaf first then the
//! CA chain, with `Link: rel="up"` to the issuer ([`super::issuer`]); and
//! RFC 8739 §3.3: a STAR order's rolling certificate, with
//! `Cert-Not-Before`/`Cert-Not-After`.
//!
//! No `Link: rel="alternate"` is sent: RFC 8555 §7.4.2 offers it for other
//! chains from the same leaf to other trust anchors, and the signer serves
//! exactly one chain (its certificate and the one chain file configured
//! above it), so there is no alternative to link to.

use std::sync::Arc;

use http::StatusCode;
use http::header::CONTENT_TYPE;

use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::require_owner;
use crate::store;
use crate::{App, now};

/// The media type of a PEM chain (RFC 8555 §9.1).
pub const PEM_CHAIN: &str = "application/pem-certificate-chain";

async fn load(app: &App, id: &str) -> Result<store::models::CertRow, Error> {
    let cid = id.to_owned();
    app.store
        .read(move |c| store::certificates::by_id(c, &cid))
        .await?
        .ok_or(Error::NotFound)
}

fn pem_reply(app: &App, pem: String) -> Reply {
    let up = super::issuer::up_of(app, &pem);
    let reply = Reply::empty(StatusCode::OK)
        .body(pem.into())
        .header(CONTENT_TYPE, PEM_CHAIN);
    match up {
        Some(url) => reply.link(&url, "up"),
        None => reply,
    }
}

/// `POST /acme/cert/{id}` (POST-as-GET by the owning account).
pub async fn post(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    auth.require_post_as_get()?;
    let cert = load(app, id).await?;
    require_owner(&cert.account_id, &auth.account()?.id, "this certificate")?;
    Ok(pem_reply(app, cert.pem))
}

/// A STAR order, its STAR row and its current certificate.
type StarOrder = (
    store::models::OrderRow,
    store::models::StarRow,
    Option<store::models::CertRow>,
);

/// The STAR order `order_id`, its STAR row and current certificate.
async fn load_star(app: &App, order_id: &str) -> Result<StarOrder, Error> {
    let oid = order_id.to_owned();
    app.store
        .read(move |c| {
            let Some(order) = store::orders::by_id(c, &oid)? else {
                return Ok(None);
            };
            let Some(star) = store::star::by_order(c, &oid)? else {
                return Ok(None);
            };
            let cert = match &order.certificate_id {
                Some(id) => store::certificates::by_id(c, id)?,
                None => None,
            };
            Ok(Some((order, star, cert)))
        })
        .await?
        .ok_or(Error::NotFound)
}

/// The current chain of a STAR order, unless it was canceled or is past
/// its end-date (RFC 8739 §3.3).
fn star_reply(
    app: &App,
    star: &store::models::StarRow,
    cert: Option<store::models::CertRow>,
    now: i64,
) -> Result<Reply, Error> {
    if star.canceled_at.is_some() {
        return Err(Error::AutoRenewalCanceled(
            "the STAR order was canceled".into(),
        ));
    }
    if now >= star.end_date {
        return Err(Error::AutoRenewalExpired(
            "the STAR order is past its end-date".into(),
        ));
    }
    let cert = cert.ok_or(Error::NotFound)?;
    let not_before = super::views::http_date(cert.not_before);
    let not_after = super::views::http_date(cert.not_after);
    Ok(pem_reply(app, cert.pem)
        .header(
            http::HeaderName::from_static("cert-not-before"),
            &not_before,
        )
        .header(http::HeaderName::from_static("cert-not-after"), &not_after))
}

/// `POST /acme/cert/star/{order-id}` (POST-as-GET by the owning account).
pub async fn star_post(app: &Arc<App>, req: &Request, order_id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    auth.require_post_as_get()?;
    let (order, star, cert) = load_star(app, order_id).await?;
    require_owner(&order.account_id, &auth.account()?.id, "this order")?;
    star_reply(app, &star, cert, now())
}

/// `GET /acme/cert/star/{order-id}`: only when both the order
/// (`allow-certificate-get`) and `[server] star_allow_certificate_get`
/// allow it.
pub async fn star_get(app: &Arc<App>, order_id: &str) -> Result<Reply, Error> {
    let (_, star, cert) = load_star(app, order_id).await?;
    if !(star.allow_certificate_get && app.config.server.star_allow_certificate_get) {
        return Err(Error::Unauthorized(
            "this STAR certificate is served to its account only (POST-as-GET)".into(),
        ));
    }
    star_reply(app, &star, cert, now())
}
