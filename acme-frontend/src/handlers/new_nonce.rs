//! RFC 8555 §7.2: fresh nonces. The nonce itself is added to every response
//! by `http::response::finish`.

use http::{Method, StatusCode};

use crate::App;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};

/// `HEAD` → 200, `GET` → 204 (RFC 8555 §7.2), never cached.
pub fn get(method: &Method) -> Reply {
    let status = if *method == Method::HEAD {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    Reply::empty(status).no_store()
}

/// `POST /acme/new-nonce`: a POST-as-GET by an account (RFC 8555 §6.3). It
/// is answered as the GET it stands for, `204 No Content`: §6.3 says a
/// POST-as-GET has "the same semantics as a GET request for the same
/// resource", and §7.2 gives GET 204 (HEAD 200). Boulder answers 200; a
/// client reads only the `Replay-Nonce`, which both carry.
pub async fn post(app: &App, req: &Request) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    auth.require_post_as_get()?;
    Ok(get(&Method::GET))
}
