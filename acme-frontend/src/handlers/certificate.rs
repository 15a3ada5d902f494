//! RFC 8555 §7.4.2: certificate download, leaf first then the CA chain.

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

fn pem_reply(pem: String) -> Reply {
    Reply::empty(StatusCode::OK)
        .body(pem.into())
        .header(CONTENT_TYPE, PEM_CHAIN)
}

/// `GET /acme/cert/{id}`: certificates are public.
pub async fn get(app: &Arc<App>, id: &str) -> Result<Reply, Error> {
    Ok(pem_reply(load(app, id).await?.pem))
}

/// `POST /acme/cert/{id}` (POST-as-GET by the owning account).
pub async fn post(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    auth.require_post_as_get()?;
    let cert = load(app, id).await?;
    require_owner(&cert.account_id, &auth.account()?.id, "this certificate")?;
    Ok(pem_reply(cert.pem))
}
