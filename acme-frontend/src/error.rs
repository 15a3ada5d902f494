//! The frontend's one error type and its only mapping to RFC 7807 problem
//! documents with RFC 8555 error types (§6.7).
//!
//! **Invariant:** problem documents are built here and nowhere else; internal
//! detail is logged and the client sees `serverInternal`.

use http::StatusCode;
use serde::Serialize;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error("{0}")]
    Malformed(String),
    /// The nonce is missing, unknown or used.
    #[error("{0}")]
    BadNonce(String),
    /// The JWS algorithm is not supported.
    #[error("{0}")]
    BadSignatureAlgorithm(String),
    /// The client may not do this.
    #[error("{0}")]
    Unauthorized(String),
    /// No account for this key or URL.
    #[error("{0}")]
    AccountDoesNotExist(String),
    /// A contact URI scheme we do not support.
    #[error("{0}")]
    UnsupportedContact(String),
    /// A contact URI that is invalid.
    #[error("{0}")]
    InvalidContact(String),
    /// The CSR is unacceptable.
    #[error("{0}")]
    BadCsr(String),
    /// The subscriber key is unacceptable.
    #[error("{0}")]
    BadPublicKey(String),
    /// The order is not ready to be finalized.
    #[error("{0}")]
    OrderNotReady(String),
    /// This CA will not issue for the identifier.
    #[error("{0}")]
    RejectedIdentifier(String),
    /// The identifier type is unsupported.
    #[error("{0}")]
    UnsupportedIdentifier(String),
    /// Terms of service must be agreed to (RFC 8555 §7.3.3).
    #[error("{detail}")]
    UserActionRequired {
        /// Explanation.
        detail: String,
        /// Where the user should go.
        instance: String,
    },
    /// No such resource.
    #[error("no such resource")]
    NotFound,
    /// The method is not allowed on this resource; the ones that are
    /// (the `Allow` header of the 405, RFC 9110 §15.5.6).
    #[error("method not allowed (allowed: {0})")]
    MethodNotAllowed(&'static str),
    /// Wrong `Content-Type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Body larger than `max_body_bytes`.
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The requested certificate profile is not offered
    /// (draft-aaron-acme-profiles).
    #[error("{0}")]
    InvalidProfile(String),
    /// The revocation reason code is not allowed (RFC 8555 §7.6).
    #[error("{0}")]
    BadRevocationReason(String),
    /// The certificate is already revoked.
    #[error("{0}")]
    AlreadyRevoked(String),
    /// This server requires External Account Binding (RFC 8555 §7.3.4).
    #[error("{0}")]
    ExternalAccountRequired(String),
    /// The resource conflicts with an existing one, found at `location`
    /// (RFC 8555 §7.3.5: the new key belongs to another account).
    #[error("{detail}")]
    Conflict {
        /// Explanation.
        detail: String,
        /// The conflicting resource.
        location: String,
    },
    /// A server-side failure; the string is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
    /// A dependency (signer, validator) is unavailable right now.
    #[error("{0}")]
    Unavailable(String),
}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Self {
        Self::Internal(format!("database: {e}"))
    }
}

/// An RFC 7807 problem document.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// `urn:ietf:params:acme:error:<name>`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Human-readable explanation.
    pub detail: String,
    /// The HTTP status, repeated in the body.
    pub status: u16,
    /// For `userActionRequired`: where to go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// For `badSignatureAlgorithm`: what we accept (RFC 8555 §6.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    /// Sent as the `Location` header, not in the body (409 conflicts).
    #[serde(skip)]
    pub location: Option<String>,
    /// Sent as the `Allow` header, not in the body (405).
    #[serde(skip)]
    pub allow: Option<&'static str>,
}

/// The ACME error namespace.
pub const ACME_ERROR_NS: &str = "urn:ietf:params:acme:error:";

impl Problem {
    /// A problem of ACME error type `name` (e.g. `malformed`).
    pub fn acme(name: &str, status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{ACME_ERROR_NS}{name}"),
            detail: detail.into(),
            status: status.as_u16(),
            instance: None,
            algorithms: None,
            location: None,
            allow: None,
        }
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl From<&Error> for Problem {
    fn from(e: &Error) -> Self {
        use StatusCode as S;
        let d = e.to_string();
        match e {
            Error::Malformed(_) => Problem::acme("malformed", S::BAD_REQUEST, d),
            Error::BadNonce(_) => Problem::acme("badNonce", S::BAD_REQUEST, d),
            Error::BadSignatureAlgorithm(_) => Problem {
                algorithms: Some(akamu_jose::Alg::ALL.iter().map(|s| s.to_string()).collect()),
                ..Problem::acme("badSignatureAlgorithm", S::BAD_REQUEST, d)
            },
            Error::Unauthorized(_) => Problem::acme("unauthorized", S::UNAUTHORIZED, d),
            Error::AccountDoesNotExist(_) => {
                Problem::acme("accountDoesNotExist", S::BAD_REQUEST, d)
            }
            Error::UnsupportedContact(_) => Problem::acme("unsupportedContact", S::BAD_REQUEST, d),
            Error::InvalidContact(_) => Problem::acme("invalidContact", S::BAD_REQUEST, d),
            Error::BadCsr(_) => Problem::acme("badCSR", S::BAD_REQUEST, d),
            Error::BadPublicKey(_) => Problem::acme("badPublicKey", S::BAD_REQUEST, d),
            Error::OrderNotReady(_) => Problem::acme("orderNotReady", S::FORBIDDEN, d),
            Error::RejectedIdentifier(_) => Problem::acme("rejectedIdentifier", S::BAD_REQUEST, d),
            Error::UnsupportedIdentifier(_) => {
                Problem::acme("unsupportedIdentifier", S::BAD_REQUEST, d)
            }
            Error::UserActionRequired { instance, .. } => Problem {
                instance: Some(instance.clone()),
                ..Problem::acme("userActionRequired", S::FORBIDDEN, d)
            },
            Error::NotFound => Problem::acme("malformed", S::NOT_FOUND, d),
            Error::MethodNotAllowed(allow) => Problem {
                allow: Some(allow),
                ..Problem::acme("malformed", S::METHOD_NOT_ALLOWED, d)
            },
            Error::UnsupportedMediaType(_) => {
                Problem::acme("malformed", S::UNSUPPORTED_MEDIA_TYPE, d)
            }
            Error::PayloadTooLarge(_) => Problem::acme("malformed", S::PAYLOAD_TOO_LARGE, d),
            Error::InvalidProfile(_) => Problem::acme("invalidProfile", S::BAD_REQUEST, d),
            Error::BadRevocationReason(_) => {
                Problem::acme("badRevocationReason", S::BAD_REQUEST, d)
            }
            Error::AlreadyRevoked(_) => Problem::acme("alreadyRevoked", S::BAD_REQUEST, d),
            Error::ExternalAccountRequired(_) => {
                Problem::acme("externalAccountRequired", S::FORBIDDEN, d)
            }
            Error::Conflict { location, .. } => Problem {
                location: Some(location.clone()),
                ..Problem::acme("malformed", S::CONFLICT, d)
            },
            Error::Internal(detail) => {
                tracing::error!(target: "frontend", %detail, "internal error");
                Problem::acme(
                    "serverInternal",
                    S::INTERNAL_SERVER_ERROR,
                    "internal server error",
                )
            }
            Error::Unavailable(_) => Problem::acme("serverInternal", S::SERVICE_UNAVAILABLE, d),
        }
    }
}

/// Maps a JOSE failure onto the ACME error a client should see.
impl From<akamu_jose::JoseError> for Error {
    fn from(e: akamu_jose::JoseError) -> Self {
        use akamu_jose::JoseError as J;
        match e {
            J::UnsupportedAlg(_) => Self::BadSignatureAlgorithm(e.to_string()),
            J::WeakKey(_) => Self::BadPublicKey(e.to_string()),
            J::BadSignature => Self::Malformed("JWS signature verification failed".into()),
            J::Crypto(_) => Self::Malformed(format!("JWS could not be verified: {e}")),
            J::Base64 | J::Json(_) | J::AlgKeyMismatch { .. } | J::BadJwk(_) => {
                Self::Malformed(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_acme_type_and_status() {
        let cases: Vec<(Error, &str, u16)> = vec![
            (Error::Malformed("x".into()), "malformed", 400),
            (Error::BadNonce("x".into()), "badNonce", 400),
            (
                Error::BadSignatureAlgorithm("x".into()),
                "badSignatureAlgorithm",
                400,
            ),
            (Error::Unauthorized("x".into()), "unauthorized", 401),
            (
                Error::AccountDoesNotExist("x".into()),
                "accountDoesNotExist",
                400,
            ),
            (
                Error::UnsupportedContact("x".into()),
                "unsupportedContact",
                400,
            ),
            (Error::InvalidContact("x".into()), "invalidContact", 400),
            (Error::BadCsr("x".into()), "badCSR", 400),
            (Error::BadPublicKey("x".into()), "badPublicKey", 400),
            (Error::OrderNotReady("x".into()), "orderNotReady", 403),
            (
                Error::RejectedIdentifier("x".into()),
                "rejectedIdentifier",
                400,
            ),
            (
                Error::UnsupportedIdentifier("x".into()),
                "unsupportedIdentifier",
                400,
            ),
            (Error::NotFound, "malformed", 404),
            (Error::UnsupportedMediaType("x".into()), "malformed", 415),
            (Error::PayloadTooLarge(1), "malformed", 413),
            (
                Error::Internal("secret detail".into()),
                "serverInternal",
                500,
            ),
        ];
        for (err, kind, status) in cases {
            let p = Problem::from(&err);
            assert_eq!(p.kind, format!("{ACME_ERROR_NS}{kind}"));
            assert_eq!(p.status, status);
        }
        let p = Problem::from(&Error::Internal("secret detail".into()));
        assert!(!p.detail.contains("secret"));
        let p = Problem::from(&Error::BadSignatureAlgorithm("x".into()));
        assert!(
            p.algorithms
                .is_some_and(|a| a.contains(&"ES256".to_string()))
        );
    }

    #[test]
    fn jose_errors_map() {
        use akamu_jose::JoseError as J;
        assert!(matches!(
            Error::from(J::UnsupportedAlg("none".into())),
            Error::BadSignatureAlgorithm(_)
        ));
        assert!(matches!(Error::from(J::BadSignature), Error::Malformed(_)));
        assert!(matches!(Error::from(J::Base64), Error::Malformed(_)));
    }
}
