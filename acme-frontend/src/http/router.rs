//! Dispatch: the [`Resource`] table says what a path is and which methods it
//! answers; this match says which handler serves it.

use std::sync::Arc;

use http::Method;

use super::resource::{LOG_TILE_PREFIX, Resource};
use super::{Reply, Request};
use crate::App;
use crate::error::Error;
use crate::handlers;

/// The methods the CRL distribution point and the log's tiles answer.
const CRL_ALLOW: &str = "GET, HEAD";

/// Dispatches one request.
pub async fn route(app: &Arc<App>, req: Request) -> Result<Reply, Error> {
    let m = &req.method;
    if is_crl_path(app, &req.path) {
        return match *m {
            Method::GET | Method::HEAD => handlers::crl::get(app),
            _ => Err(Error::MethodNotAllowed(CRL_ALLOW)),
        };
    }
    if let Some(rest) = req.path.strip_prefix(LOG_TILE_PREFIX) {
        return match *m {
            Method::GET | Method::HEAD => handlers::log::tile(app, rest).await,
            _ => Err(Error::MethodNotAllowed(CRL_ALLOW)),
        };
    }
    let resource = Resource::parse(&req.path).ok_or(Error::NotFound)?;
    if !resource.allows(m) {
        return Err(Error::MethodNotAllowed(resource.allow()));
    }
    match resource {
        Resource::Directory if *m == Method::POST => handlers::directory::post(app, &req).await,
        Resource::Directory => handlers::directory::get(app),
        Resource::NewNonce if *m == Method::POST => handlers::new_nonce::post(app, &req).await,
        Resource::NewNonce => Ok(handlers::new_nonce::get(m)),
        Resource::NewAccount => handlers::new_account::post(app, &req).await,
        Resource::Account(id) => handlers::account::post(app, &req, id).await,
        Resource::Orders(id) => handlers::account::orders(app, &req, id).await,
        Resource::NewOrder => handlers::new_order::post(app, &req).await,
        Resource::NewAuthz => handlers::new_authz::post(app, &req).await,
        Resource::RevokeCert => handlers::revoke_cert::post(app, &req).await,
        Resource::KeyChange => handlers::key_change::post(app, &req).await,
        Resource::Order(id) => handlers::order::post(app, &req, id).await,
        Resource::Finalize(id) => handlers::finalize::post(app, &req, id).await,
        Resource::Authz(id) => handlers::authz::post(app, &req, id).await,
        Resource::Challenge(authz, kind) => handlers::challenge::post(app, &req, authz, kind).await,
        Resource::Certificate(id) => handlers::certificate::post(app, &req, id).await,
        Resource::StarCertificate(id) if *m == Method::POST => {
            handlers::certificate::star_post(app, &req, id).await
        }
        Resource::StarCertificate(id) => handlers::certificate::star_get(app, id).await,
        Resource::Issuer(n) if *m == Method::POST => handlers::issuer::post(app, &req, n).await,
        Resource::Issuer(n) => handlers::issuer::get(app, n).await,
        Resource::RenewalInfo(id) => handlers::renewal_info::get(app, id).await,
        Resource::LogCheckpoint => handlers::log::checkpoint(app).await,
        Resource::LogKey => handlers::log::key(app).await,
    }
}

/// The `endpoint` label of a request for `path`: its resource's name,
/// `crl`, or `unknown` (a small fixed set, never the path itself).
pub fn endpoint(app: &App, path: &str) -> &'static str {
    match Resource::parse(path) {
        Some(r) => r.name(),
        None if is_crl_path(app, path) => "crl",
        None if path.starts_with(LOG_TILE_PREFIX) => "tile",
        None => "unknown",
    }
}

/// Whether `path` is the CRL distribution point the signer puts in its
/// leaves (known once the signer told the CA's facts).
fn is_crl_path(app: &App, path: &str) -> bool {
    app.ca
        .cached()
        .and_then(|info| crate::ca::crl_path(&info))
        .is_some_and(|p| p == path)
}
