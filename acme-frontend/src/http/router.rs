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
            Method::GET | Method::HEAD => Box::pin(handlers::log::tile(app, rest)).await,
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
        // Boxed here and below: the handlers whose state is large (those
        // holding a signer call; see the test below).
        Resource::Finalize(id) => Box::pin(handlers::finalize::post(app, &req, id)).await,
        Resource::Authz(id) => handlers::authz::post(app, &req, id).await,
        Resource::Challenge(authz, kind) => handlers::challenge::post(app, &req, authz, kind).await,
        Resource::Certificate(id) => handlers::certificate::post(app, &req, id).await,
        Resource::StarCertificate(id) if *m == Method::POST => {
            handlers::certificate::star_post(app, &req, id).await
        }
        Resource::StarCertificate(id) => handlers::certificate::star_get(app, id).await,
        Resource::Issuer(n) if *m == Method::POST => {
            Box::pin(handlers::issuer::post(app, &req, n)).await
        }
        Resource::Issuer(n) => Box::pin(handlers::issuer::get(app, n)).await,
        Resource::RenewalInfo(id) => handlers::renewal_info::get(app, id).await,
        Resource::LogCheckpoint => Box::pin(handlers::log::checkpoint(app)).await,
        Resource::LogKey => Box::pin(handlers::log::key(app)).await,
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    pub(crate) fn future_size<A, B, Fut>(_: impl FnOnce(A, B) -> Fut) -> usize {
        std::mem::size_of::<Fut>()
    }

    #[test]
    fn a_request_future_is_small() {
        // Every request's future is allocated once (boxed by the server);
        // it is as large as the largest handler's state held inline, so
        // the large handlers (in a release build: finalize ≈ 12 KB, those
        // calling the signer ≈ 10 KB, the others ≤ 1.5 KB; new-order was
        // 10 KB until the rare fetch of the CA's facts was boxed) are boxed
        // inside `route` and allocated only when called. Unboxed, this was
        // 14 KB for every request.
        let size = future_size(|a: &'static Arc<App>, r: Request| route(a, r));
        assert!(size <= 4096, "route's future is {size} bytes");
        // New-order is not boxed: it stays small as long as the rare
        // fetch of the CA's facts from the signer is boxed (`ca::facts`).
        let size = future_size(|a: &'static Arc<App>, r: &'static Request| {
            handlers::new_order::post(a, r)
        });
        assert!(size <= 4096, "new-order's future is {size} bytes");
    }
}
