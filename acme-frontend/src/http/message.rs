//! Requests as handlers see them and replies as they return them: plain
//! data below the router, with no knowledge of the listener or the app.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_TYPE, HeaderName, HeaderValue, LINK, LOCATION, RETRY_AFTER,
};
use http::{HeaderMap, Method, StatusCode};

/// A request, fully read and within the body limit.
pub struct Request {
    /// The method.
    pub method: Method,
    /// The path (no query).
    pub path: String,
    /// The absolute URL the client addressed (`base_url` + path + query);
    /// a JWS `url` must equal it.
    pub url: String,
    /// The query string, if any.
    pub query: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
    /// The client's address: the TCP peer, or what a trusted proxy
    /// forwarded (`client_ip`).
    pub client_ip: std::net::IpAddr,
}

/// A handler's reply before the common headers are added.
pub struct Reply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

/// `Replay-Nonce`.
pub const REPLAY_NONCE: HeaderName = HeaderName::from_static("replay-nonce");

impl Reply {
    /// An empty reply.
    pub fn empty(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Bytes::new(),
        }
    }

    /// A JSON reply.
    pub fn json(status: StatusCode, value: &serde_json::Value) -> Self {
        Self::empty(status)
            .body(Bytes::from(value.to_string()))
            .header(CONTENT_TYPE, "application/json")
    }

    /// Replaces the body.
    pub fn body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    /// Adds a header; values that are not valid header text are dropped
    /// (they only come from our own URLs).
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.append(name, v);
        }
        self
    }

    /// Adds `Location`.
    pub fn location(self, url: &str) -> Self {
        self.header(LOCATION, url)
    }

    /// Adds `Retry-After` in seconds.
    pub fn retry_after(self, secs: u32) -> Self {
        self.header(RETRY_AFTER, &secs.to_string())
    }

    /// Adds `Cache-Control: no-store`.
    pub fn no_store(self) -> Self {
        self.header(CACHE_CONTROL, "no-store")
    }

    /// Adds a `Link` with a relation.
    pub fn link(self, url: &str, rel: &str) -> Self {
        self.header(LINK, &format!("<{url}>;rel=\"{rel}\""))
    }
}
