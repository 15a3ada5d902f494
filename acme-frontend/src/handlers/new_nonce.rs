//! RFC 8555 §7.2: fresh nonces. The nonce itself is added to every response
//! by `http::response::finish`.

use http::{Method, StatusCode};

use crate::http::Reply;

/// `HEAD` → 200, `GET` → 204, never cached.
pub fn get(method: &Method) -> Reply {
    let status = if *method == Method::HEAD {
        StatusCode::OK
    } else {
        StatusCode::NO_CONTENT
    };
    Reply::empty(status).no_store()
}
