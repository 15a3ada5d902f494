//! The frontend's one error type and its only mapping to RFC 7807 problem
//! documents with RFC 8555 error types (§6.7).
//!
//! **Invariant:** problem documents are built here and nowhere else; the
//! conversions from the signer's and the validator's errors live here too.
//! Internal detail is logged and the client sees `serverInternal`.

use std::path::PathBuf;

use http::StatusCode;
use serde::Serialize;
use shared_proto::signer::SignerError;
use shared_proto::validator::ValidationProblem;

use crate::rpc::CallError;

/// Everything a request or a background job can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed.
    #[error("{0}")]
    Malformed(String),
    /// The JWS envelope failed a check (RFC 8555 §6.2–§6.5).
    #[error(transparent)]
    Jws(#[from] JwsError),
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
    /// The certificate a new order `replaces` was already replaced by a
    /// finalized order (RFC 9773 §5).
    #[error("{0}")]
    AlreadyReplaced(String),
    /// A STAR order was canceled: its certificate URL is gone (RFC 8739
    /// §3.3, `autoRenewalCanceled`).
    #[error("{0}")]
    AutoRenewalCanceled(String),
    /// A STAR order is past its `end-date` (RFC 8739 §3.3,
    /// `autoRenewalExpired`).
    #[error("{0}")]
    AutoRenewalExpired(String),
    /// A STAR order cannot be canceled in its state (RFC 8739 §3.1.2,
    /// `autoRenewalCancellationInvalid`).
    #[error("{0}")]
    AutoRenewalCancellationInvalid(String),
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
    /// A rate limit refused the request (RFC 8555 §6.6); made only by
    /// `rate_limits::refuse`.
    #[error("{detail}")]
    RateLimited {
        /// The limit (its `[rate_limits]` table name).
        limit: &'static str,
        /// Seconds until the limit allows the request (`Retry-After`);
        /// `None` when only an operator can lift it.
        retry_after_secs: Option<u64>,
        /// Explanation, naming the limit.
        detail: String,
    },
    /// The signer answered with a refusal or an internal failure.
    #[error("{0}")]
    Signer(#[from] SignerError),
    /// The validator found the challenge not fulfilled.
    #[error("{0}")]
    Validation(#[from] ValidationProblem),
    /// The signer or the validator could not be reached in time.
    #[error(transparent)]
    Peer(#[from] CallError),
    /// A resource that is not there yet (the first CRL before the signer
    /// signed it).
    #[error("{0}")]
    NotYetAvailable(&'static str),
    /// Work this server could not finish (the detail is safe to show).
    #[error("{0}")]
    Unfinished(&'static str),
    /// The database failed.
    #[error(transparent)]
    Database(#[from] DatabaseError),
    /// A file could not be read or written.
    #[error("{context} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `binding`, …).
        context: &'static str,
        /// The file or address.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The configuration or the environment does not allow starting.
    #[error("{0}")]
    Startup(String),
    /// An invariant of this process did not hold (a bug, or a database
    /// changed behind its back); the string is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why the JWS envelope of a request was refused (RFC 8555 §6.2–§6.5).
#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    /// The body is not a flattened JWS (§6.2).
    #[error("request is not a flattened JWS: {0}")]
    NotFlattened(String),
    /// The protected header has `crit` (RFC 7515 §4.1.11).
    #[error("unsupported critical JWS header extensions")]
    CriticalHeader,
    /// The `alg` is not one this server verifies (§6.2).
    #[error("JWS algorithm {0:?} is not supported")]
    UnsupportedAlg(String),
    /// The protected header has no `url` (§6.4).
    #[error("JWS header has no url")]
    NoUrl,
    /// The `url` is not the URL the request was sent to (§6.4).
    #[error("JWS url {signed:?} does not match the request URL {requested:?}")]
    UrlMismatch {
        /// The `url` in the header.
        signed: String,
        /// The URL addressed.
        requested: String,
    },
    /// Both `jwk` and `kid` (§6.2).
    #[error("JWS header has both jwk and kid")]
    BothJwkAndKid,
    /// Neither `jwk` nor `kid` (§6.2).
    #[error("JWS header has neither jwk nor kid")]
    NeitherJwkNorKid,
    /// `jwk` where the resource needs `kid` (§6.2).
    #[error("this request must be signed with kid, not jwk")]
    KidRequired,
    /// `kid` where the resource needs `jwk` (§6.2).
    #[error("this request must be signed with jwk, not kid")]
    JwkRequired,
    /// No `nonce` (§6.5).
    #[error("JWS header has no nonce")]
    NoNonce,
    /// A nonce this server did not issue, or already consumed (§6.5).
    #[error("nonce is unknown, expired or already used")]
    BadNonce,
    /// The key, the signature or the encoding failed (akamu-jose).
    #[error(transparent)]
    Jose(#[from] akamu_jose::JoseError),
}

/// Why the database failed.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// A query or a commit failed.
    #[error("database: {0}")]
    Query(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database could not be opened or prepared.
    #[error("opening database {path}: {detail}")]
    Open {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// A batch did not commit; every job in it failed.
    #[error("database batch not committed: {0}")]
    Batch(String),
    /// The writer thread is gone (the process is shutting down).
    #[error("the database writer dropped the request")]
    WriterGone,
    /// A stored value does not parse (a status, identifiers, a key).
    #[error("stored {what} does not parse: {value:?}")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The value found.
        value: String,
    },
}

/// Maps a JOSE failure onto the ACME error a client should see.
impl From<akamu_jose::JoseError> for Error {
    fn from(e: akamu_jose::JoseError) -> Self {
        Self::Jws(JwsError::Jose(e))
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
    /// Sent as the `Retry-After` header in seconds, not in the body (429).
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

/// The ACME error namespace.
pub const ACME_ERROR_NS: &str = "urn:ietf:params:acme:error:";

impl Problem {
    /// A problem of ACME error type `name` (e.g. `malformed`). Private: the
    /// only way to a problem is `From<&Error>`.
    fn acme(name: &str, status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("{ACME_ERROR_NS}{name}"),
            detail: detail.into(),
            status: status.as_u16(),
            instance: None,
            algorithms: None,
            location: None,
            allow: None,
            retry_after: None,
        }
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `serverInternal` answer for a failure whose detail stays in the
    /// log.
    fn internal(e: &Error) -> Self {
        tracing::error!(target: "frontend", error = %e, "internal error");
        Problem::acme(
            "serverInternal",
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal server error",
        )
    }
}

impl From<&Error> for Problem {
    fn from(e: &Error) -> Self {
        use StatusCode as S;
        let d = e.to_string();
        match e {
            Error::Malformed(_) => Problem::acme("malformed", S::BAD_REQUEST, d),
            Error::Jws(jws) => jws_problem(jws, d),
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
            Error::AlreadyReplaced(_) => Problem::acme("alreadyReplaced", S::CONFLICT, d),
            Error::AutoRenewalCanceled(_) => Problem::acme("autoRenewalCanceled", S::FORBIDDEN, d),
            Error::AutoRenewalExpired(_) => Problem::acme("autoRenewalExpired", S::FORBIDDEN, d),
            Error::AutoRenewalCancellationInvalid(_) => {
                Problem::acme("autoRenewalCancellationInvalid", S::FORBIDDEN, d)
            }
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
            Error::RateLimited {
                retry_after_secs, ..
            } => Problem {
                retry_after: *retry_after_secs,
                ..Problem::acme("rateLimited", S::TOO_MANY_REQUESTS, d)
            },
            Error::Signer(refusal) => signer_problem(refusal, e),
            // RFC 8555 §6.7 and RFC 8659: CAA forbids issuance, 403.
            Error::Validation(p)
                if matches!(
                    p.kind,
                    shared_proto::validator::ProblemKind::Caa
                        | shared_proto::validator::ProblemKind::Unauthorized
                ) =>
            {
                Problem::acme(p.kind.acme_type(), S::FORBIDDEN, &p.detail)
            }
            Error::Validation(p) => Problem::acme(p.kind.acme_type(), S::BAD_REQUEST, &p.detail),
            Error::Peer(_) | Error::NotYetAvailable(_) => {
                Problem::acme("serverInternal", S::SERVICE_UNAVAILABLE, d)
            }
            Error::Unfinished(_) => Problem::acme("serverInternal", S::INTERNAL_SERVER_ERROR, d),
            Error::Database(_) | Error::Io { .. } | Error::Startup(_) | Error::Internal(_) => {
                Problem::internal(e)
            }
        }
    }
}

/// The problem for a refused JWS envelope.
fn jws_problem(e: &JwsError, d: String) -> Problem {
    use StatusCode as S;
    use akamu_jose::JoseError as J;
    let bad_alg = || Problem {
        algorithms: Some(akamu_jose::Alg::ALL.iter().map(|s| s.to_string()).collect()),
        ..Problem::acme("badSignatureAlgorithm", S::BAD_REQUEST, d.clone())
    };
    match e {
        JwsError::UnsupportedAlg(_) | JwsError::Jose(J::UnsupportedAlg(_)) => bad_alg(),
        JwsError::NoNonce | JwsError::BadNonce => Problem::acme("badNonce", S::BAD_REQUEST, d),
        JwsError::UrlMismatch { .. } => Problem::acme("unauthorized", S::UNAUTHORIZED, d),
        JwsError::Jose(J::WeakKey(_)) => Problem::acme("badPublicKey", S::BAD_REQUEST, d),
        JwsError::Jose(J::BadSignature) => Problem::acme(
            "malformed",
            S::BAD_REQUEST,
            "JWS signature verification failed",
        ),
        JwsError::Jose(J::Crypto(_)) => Problem::acme(
            "malformed",
            S::BAD_REQUEST,
            format!("JWS could not be verified: {d}"),
        ),
        JwsError::Jose(J::Base64 | J::Json(_) | J::AlgKeyMismatch { .. } | J::BadJwk(_))
        | JwsError::NotFlattened(_)
        | JwsError::CriticalHeader
        | JwsError::NoUrl
        | JwsError::BothJwkAndKid
        | JwsError::NeitherJwkNorKid
        | JwsError::KidRequired
        | JwsError::JwkRequired => Problem::acme("malformed", S::BAD_REQUEST, d),
    }
}

/// The problem for a signer's refusal (RFC 8555 §7.4: the order becomes
/// invalid with it).
fn signer_problem(refusal: &SignerError, e: &Error) -> Problem {
    use StatusCode as S;
    match refusal {
        SignerError::BadCsr(d) => Problem::acme("badCSR", S::BAD_REQUEST, d),
        SignerError::BadPublicKey(d) => Problem::acme("badPublicKey", S::BAD_REQUEST, d),
        SignerError::Unvalidated(name) => Problem::acme(
            "unauthorized",
            S::UNAUTHORIZED,
            format!("the CA has no valid validation of {name} for this account"),
        ),
        SignerError::PolicyRefused(d) => Problem::acme(
            "badCSR",
            S::BAD_REQUEST,
            format!("refused by the CA's issuance policy: {d}"),
        ),
        SignerError::Caa(d) => Problem::acme(
            "caa",
            S::FORBIDDEN,
            format!("the CA's issuance policy needs a recent CAA check: {d}"),
        ),
        SignerError::Internal => Problem::internal(e),
    }
}

/// `e` as the problem JSON stored with an invalid order or challenge.
pub fn problem_json(e: &Error) -> String {
    // Serialising strings and integers cannot fail.
    serde_json::to_string(&Problem::from(e)).unwrap_or_default()
}

/// `e` as the problem object of a resource's `error` member.
pub fn problem_value(e: &Error) -> serde_json::Value {
    serde_json::to_value(Problem::from(e)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_maps_to_its_acme_type_and_status() {
        use shared_proto::validator::ProblemKind;
        let cases: Vec<(Error, &str, u16)> = vec![
            (Error::Malformed("x".into()), "malformed", 400),
            (JwsError::BadNonce.into(), "badNonce", 400),
            (JwsError::NoNonce.into(), "badNonce", 400),
            (
                JwsError::UnsupportedAlg("none".into()).into(),
                "badSignatureAlgorithm",
                400,
            ),
            (
                JwsError::UrlMismatch {
                    signed: "a".into(),
                    requested: "b".into(),
                }
                .into(),
                "unauthorized",
                401,
            ),
            (JwsError::BothJwkAndKid.into(), "malformed", 400),
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
            (Error::AlreadyReplaced("x".into()), "alreadyReplaced", 409),
            (
                Error::AutoRenewalCanceled("x".into()),
                "autoRenewalCanceled",
                403,
            ),
            (
                Error::AutoRenewalExpired("x".into()),
                "autoRenewalExpired",
                403,
            ),
            (
                Error::AutoRenewalCancellationInvalid("x".into()),
                "autoRenewalCancellationInvalid",
                403,
            ),
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
            (SignerError::BadCsr("x".into()).into(), "badCSR", 400),
            (
                SignerError::BadPublicKey("x".into()).into(),
                "badPublicKey",
                400,
            ),
            (
                SignerError::Unvalidated("a.example".into()).into(),
                "unauthorized",
                401,
            ),
            (SignerError::PolicyRefused("x".into()).into(), "badCSR", 400),
            (SignerError::Internal.into(), "serverInternal", 500),
            (
                ValidationProblem::new(ProblemKind::Dns, "no TXT").into(),
                "dns",
                400,
            ),
            (
                ValidationProblem::new(ProblemKind::Caa, "CAA forbids").into(),
                "caa",
                403,
            ),
            (SignerError::Caa("a.example".into()).into(), "caa", 403),
            (
                DatabaseError::Batch("secret detail".into()).into(),
                "serverInternal",
                500,
            ),
            (
                Error::Internal("secret detail".into()),
                "serverInternal",
                500,
            ),
            (Error::NotYetAvailable("later"), "serverInternal", 503),
            (
                Error::RateLimited {
                    limit: "new_orders_per_account",
                    retry_after_secs: Some(3),
                    detail: "x".into(),
                },
                "rateLimited",
                429,
            ),
        ];
        for (err, kind, status) in cases {
            let p = Problem::from(&err);
            assert_eq!(p.kind, format!("{ACME_ERROR_NS}{kind}"), "{err:?}");
            assert_eq!(p.status, status, "{err:?}");
        }
        for secret in [
            Error::Internal("secret detail".into()),
            DatabaseError::Batch("secret detail".into()).into(),
        ] {
            assert!(!Problem::from(&secret).detail.contains("secret"));
        }
        let p = Problem::from(&Error::from(JwsError::UnsupportedAlg("x".into())));
        assert!(
            p.algorithms
                .is_some_and(|a| a.contains(&"ES256".to_string()))
        );
    }

    #[test]
    fn jose_errors_map() {
        use akamu_jose::JoseError as J;
        let kind = |e: J| Problem::from(&Error::from(e)).kind;
        assert_eq!(
            kind(J::UnsupportedAlg("none".into())),
            format!("{ACME_ERROR_NS}badSignatureAlgorithm")
        );
        assert_eq!(kind(J::BadSignature), format!("{ACME_ERROR_NS}malformed"));
        assert_eq!(kind(J::Base64), format!("{ACME_ERROR_NS}malformed"));
        assert_eq!(
            kind(J::WeakKey("512 bits".into())),
            format!("{ACME_ERROR_NS}badPublicKey")
        );
    }
}
