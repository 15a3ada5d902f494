//! The crate's one error type.

/// What can be wrong with a JWS, a JWK or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// A field is not valid base64url without padding.
    #[error("invalid base64url")]
    Base64,
    /// A JSON structure is malformed.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The `alg` is not one we accept.
    #[error("unsupported signature algorithm {0:?}")]
    UnsupportedAlg(String),
    /// The key does not fit the algorithm (e.g. ES256 with a P-384 key).
    #[error("algorithm {alg} does not match the key ({key})")]
    AlgKeyMismatch {
        /// The header's `alg`.
        alg: String,
        /// A description of the key.
        key: String,
    },
    /// The JWK is malformed or of an unsupported type.
    #[error("invalid JWK: {0}")]
    BadJwk(String),
    /// The key is too weak (RSA below 2048 bits).
    #[error("key too weak: {0}")]
    WeakKey(String),
    /// The signature does not verify.
    #[error("signature verification failed")]
    BadSignature,
    /// openssl failed while signing or generating.
    #[error("crypto failure: {0}")]
    Crypto(String),
}

impl From<openssl::error::ErrorStack> for JoseError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        Self::Crypto(e.to_string())
    }
}
