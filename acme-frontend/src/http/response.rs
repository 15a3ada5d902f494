//! The headers common to every response, added in [`finish`], and the
//! problem document of a failed request.

use bytes::Bytes;
use http::Method;
use http::header::CONTENT_TYPE;
use http_body_util::Full;

use super::message::{REPLAY_NONCE, Reply};
use crate::App;
use crate::error::{Error, Problem};

/// Turns a handler result into the HTTP response: problem documents for
/// errors, and on every response a fresh `Replay-Nonce` and the directory
/// `Link` (RFC 8555 §6.5, §7.1).
pub fn finish(
    app: &App,
    method: &Method,
    result: Result<Reply, Error>,
) -> http::Response<Full<Bytes>> {
    let mut reply = match result {
        Ok(r) => r,
        Err(e) => {
            let problem = Problem::from(&e);
            crate::metrics::problem(&problem.kind);
            if problem.status >= 500 {
                tracing::warn!(target: "frontend", kind = %problem.kind, detail = %problem.detail, "request failed");
            } else {
                tracing::debug!(target: "frontend", kind = %problem.kind, detail = %problem.detail, "request refused");
            }
            let body = serde_json::to_vec(&problem).unwrap_or_default();
            let reply = Reply::empty(problem.status_code())
                .body(Bytes::from(body))
                .header(CONTENT_TYPE, "application/problem+json");
            let reply = match &problem.location {
                Some(l) => reply.location(l),
                None => reply,
            };
            let reply = match problem.retry_after {
                Some(secs) => reply.header(http::header::RETRY_AFTER, &secs.to_string()),
                None => reply,
            };
            match problem.allow {
                Some(methods) => reply.header(http::header::ALLOW, methods),
                None => reply,
            }
        }
    };
    reply = reply
        .header(REPLAY_NONCE, &app.nonces.issue(crate::now()))
        .link(&app.urls.directory(), "index");
    let mut builder = http::Response::builder().status(reply.status);
    if let Some(h) = builder.headers_mut() {
        *h = reply.headers;
    }
    let body = if *method == Method::HEAD {
        Bytes::new()
    } else {
        reply.body
    };
    builder
        .body(Full::new(body))
        .unwrap_or_else(|_| http::Response::new(Full::new(Bytes::new())))
}
