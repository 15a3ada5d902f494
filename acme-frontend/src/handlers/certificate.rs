//! RFC 8555 §7.4.2: certificate download (POST-as-GET), leaf first then the
//! CA chain, with `Link: rel="up"` to the issuer ([`super::issuer`]).
//!
//! No `Link: rel="alternate"` is sent: RFC 8555 §7.4.2 offers it for other
//! chains from the same leaf to other trust anchors, and the signer serves
//! exactly one chain (its certificate and the one chain file configured
//! above it), so there is no alternative to link to.

use std::sync::Arc;

use http::StatusCode;
use http::header::CONTENT_TYPE;

use crate::App;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::require_owner;
use crate::store;

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
