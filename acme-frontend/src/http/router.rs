//! Path → handler table. Paths are the Akāmu reference's.

use std::sync::Arc;

use http::Method;

use super::{Reply, Request};
use crate::App;
use crate::error::Error;
use crate::handlers;

/// Dispatches one request.
pub async fn route(app: &Arc<App>, req: Request) -> Result<Reply, Error> {
    let segments: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let m = &req.method;
    match (m, segments.as_slice()) {
        (&Method::GET | &Method::HEAD, ["acme", "directory"]) => handlers::directory::get(app),
        (&Method::GET | &Method::HEAD, ["acme", "new-nonce"]) => Ok(handlers::new_nonce::get(m)),
        (&Method::POST, ["acme", "new-account"]) => handlers::new_account::post(app, &req).await,
        (&Method::POST, ["acme", "account", id]) => handlers::account::post(app, &req, id).await,
        (&Method::POST, ["acme", "orders", id]) => handlers::account::orders(app, &req, id).await,
        (&Method::POST, ["acme", "new-order"]) => handlers::new_order::post(app, &req).await,
        (&Method::POST, ["acme", "new-authz"]) => handlers::new_authz::post(app, &req).await,
        (&Method::POST, ["acme", "revoke-cert"]) => handlers::revoke_cert::post(app, &req).await,
        (&Method::POST, ["acme", "key-change"]) => handlers::key_change::post(app, &req).await,
        (&Method::POST, ["acme", "order", id]) => handlers::order::post(app, &req, id).await,
        (&Method::POST, ["acme", "order", id, "finalize"]) => {
            handlers::finalize::post(app, &req, id).await
        }
        (&Method::POST, ["acme", "authz", id]) => handlers::authz::post(app, &req, id).await,
        (&Method::POST, ["acme", "chall", authz, kind]) => {
            handlers::challenge::post(app, &req, authz, kind).await
        }
        (&Method::GET | &Method::HEAD, ["acme", "cert", id]) => {
            handlers::certificate::get(app, id).await
        }
        (&Method::POST, ["acme", "cert", id]) => handlers::certificate::post(app, &req, id).await,
        (&Method::GET | &Method::HEAD, _) if is_crl_path(app, &req.path) => handlers::crl::get(app),
        (_, _) if is_crl_path(app, &req.path) => Err(Error::MethodNotAllowed("GET, HEAD")),
        (_, path) => match allowed_methods(path) {
            Some(allow) => Err(Error::MethodNotAllowed(allow)),
            None => Err(Error::NotFound),
        },
    }
}

fn is_crl_path(app: &App, path: &str) -> bool {
    app.config
        .ca
        .crl_url
        .as_deref()
        .and_then(crate::crl::serving_path)
        .is_some_and(|p| p == path)
}

/// The methods a resource of this server answers (the `Allow` header of a
/// 405), or `None` when `path` names no resource (the CRL path, set by the
/// configuration, is handled in [`route`]).
fn allowed_methods(path: &[&str]) -> Option<&'static str> {
    match path {
        ["acme", "directory"] => Some("GET, HEAD"),
        ["acme", "new-nonce"] => Some("GET, HEAD"),
        ["acme", "cert", _] => Some("GET, HEAD, POST"),
        [
            "acme",
            "new-account" | "new-order" | "new-authz" | "revoke-cert" | "key-change",
        ]
        | ["acme", "account" | "orders" | "order" | "authz", _]
        | ["acme", "order", _, "finalize"]
        | ["acme", "chall", _, _] => Some("POST"),
        _ => None,
    }
}
