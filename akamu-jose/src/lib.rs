//! JOSE for ACME (RFC 7515, 7517, 7518, 7638, 8037; RFC 8555 §6.2).
//!
//! No I/O: parse and verify flattened JWS objects, compute JWK thumbprints,
//! and sign requests. Shared by `acme-frontend` (verification) and the client
//! and tests (signing). Cryptography is openssl's, except that
//! [`VerifyingKey`] verifies ES256 and Ed25519 signatures with ring, which is
//! faster for them.

mod alg;
mod error;
mod jwk;
mod jws;
mod key;
mod key_type;
mod verifying_key;

pub use alg::Alg;
pub use error::JoseError;
pub use jwk::Jwk;
pub use jws::{FlattenedJws, ProtectedHeader, hmac_sign, hmac_verify, verify_signature};
pub use key::SigningKey;
pub use key_type::{KeyType, UnknownKeyType};
pub use verifying_key::VerifyingKey;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// base64url without padding (RFC 7515 §2).
pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes base64url without padding; padding or other alphabets are errors.
pub fn b64_decode(s: &str) -> Result<Vec<u8>, JoseError> {
    URL_SAFE_NO_PAD
        .decode(s.as_bytes())
        .map_err(|_| JoseError::Base64)
}
