//! The crate's one error type and the RFC 7807 / RFC 8555 §6.7 problem
//! documents servers send.

use serde::Deserialize;

use crate::Identifier;

/// Everything that can go wrong talking to an ACME server.
///
/// The first five variants are the reference's. `Acme` carries the HTTP
/// status and the subproblems besides `acme_type` and `detail` (match it with
/// `ClientError::Acme { acme_type, detail, .. }`); the other variants are
/// additions for failures the reference's five cannot name precisely.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// JWK/JWS error from akamu-jose.
    #[error("JOSE error: {0}")]
    Jose(#[from] akamu_jose::JoseError),
    /// HTTP transport error: connection, TLS, timeout, oversized or
    /// malformed response.
    #[error("HTTP error: {0}")]
    Http(String),
    /// The server answered with a problem document (RFC 8555 §6.7).
    #[error("ACME error {acme_type}: {detail}{}", subproblem_suffix(subproblems))]
    Acme {
        /// The problem type, e.g. `urn:ietf:params:acme:error:badNonce`.
        acme_type: String,
        /// The human-readable detail (may be empty).
        detail: String,
        /// The HTTP status of the response, when the problem came in one
        /// (problems embedded in orders and challenges have none).
        status: Option<u16>,
        /// Per-identifier problems (RFC 8555 §6.7.1).
        subproblems: Vec<Subproblem>,
    },
    /// Key generation, key parsing, CSR or certificate error.
    #[error("crypto error: {0}")]
    Crypto(String),
    /// I/O error (binding a solver port, reading a file).
    #[error("I/O error: {0}")]
    Io(String),
    /// The server answered with an error status but no problem document
    /// (e.g. a plain 404 for an endpoint it does not have).
    #[error("HTTP status {status} from {url}")]
    HttpStatus {
        /// The HTTP status code.
        status: u16,
        /// The URL requested.
        url: String,
    },
    /// An argument was refused before anything was sent (e.g. revocation
    /// reason 7, an unknown key type, an unsupported EAB algorithm).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The server does not advertise what the call needs (e.g. no
    /// `renewalInfo` or `meta.auto-renewal` in its directory).
    #[error("not supported by this server: {0}")]
    Unsupported(String),
    /// Polling hit its deadline before the object reached a final state.
    #[error("timed out after {secs} s waiting for {what} (last status: {last_status})")]
    Timeout {
        /// What was being waited for (`order`, `authorization`).
        what: &'static str,
        /// The deadline in seconds.
        secs: u64,
        /// The last status seen.
        last_status: String,
    },
    /// An order or authorization became `invalid` and the server gave no
    /// problem document explaining why.
    #[error("{what} {url} is invalid")]
    Invalid {
        /// `order` or `authorization`.
        what: &'static str,
        /// Its URL.
        url: String,
    },
}

impl ClientError {
    /// The ACME problem type, when this is a problem from the server.
    pub fn acme_type(&self) -> Option<&str> {
        match self {
            Self::Acme { acme_type, .. } => Some(acme_type),
            _ => None,
        }
    }

    /// Whether this is the ACME problem `urn:ietf:params:acme:error:<short>`.
    pub fn is_acme(&self, short: &str) -> bool {
        self.acme_type()
            .and_then(|t| t.strip_prefix(ACME_ERROR_PREFIX))
            .is_some_and(|t| t == short)
    }
}

impl From<openssl::error::ErrorStack> for ClientError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Self::Crypto(e.to_string())
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e.to_string())
    }
}

impl From<Problem> for ClientError {
    fn from(p: Problem) -> Self {
        Self::Acme {
            acme_type: p.r#type,
            detail: p.detail,
            status: p.status,
            subproblems: p.subproblems,
        }
    }
}

/// The namespace of RFC 8555's error types.
pub const ACME_ERROR_PREFIX: &str = "urn:ietf:params:acme:error:";

/// A problem document (RFC 7807) as ACME uses it (RFC 8555 §6.7).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Problem {
    /// The problem type URI.
    #[serde(default)]
    pub r#type: String,
    /// Human-readable detail.
    #[serde(default)]
    pub detail: String,
    /// The HTTP status the server gave in the document.
    #[serde(default)]
    pub status: Option<u16>,
    /// Per-identifier problems.
    #[serde(default)]
    pub subproblems: Vec<Subproblem>,
}

/// One per-identifier problem inside a [`Problem`] (RFC 8555 §6.7.1).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Subproblem {
    /// The problem type URI.
    #[serde(default)]
    pub r#type: String,
    /// Human-readable detail.
    #[serde(default)]
    pub detail: String,
    /// The identifier this subproblem is about.
    #[serde(default)]
    pub identifier: Option<Identifier>,
}

fn subproblem_suffix(subs: &[Subproblem]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for s in subs {
        let who = s
            .identifier
            .as_ref()
            .map_or_else(String::new, |i| format!("{}: ", i.value));
        let _ = write!(out, "; {who}{} {}", s.r#type, s.detail);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_with_subproblems_becomes_acme_error() {
        let p: Problem = serde_json::from_str(
            r#"{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"no","status":400,
                "subproblems":[{"type":"urn:ietf:params:acme:error:rejectedIdentifier","detail":"bad",
                "identifier":{"type":"dns","value":"x.example"}}]}"#,
        )
        .expect("parse");
        let e = ClientError::from(p);
        assert!(e.is_acme("rejectedIdentifier"));
        let text = e.to_string();
        assert!(
            text.contains("x.example: urn:ietf:params:acme:error:rejectedIdentifier bad"),
            "{text}"
        );
        let ClientError::Acme {
            status,
            subproblems,
            ..
        } = e
        else {
            panic!("not Acme");
        };
        assert_eq!(status, Some(400));
        assert_eq!(subproblems.len(), 1);
    }
}
