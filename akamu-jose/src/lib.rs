//! JOSE for ACME (RFC 7515, 7517, 7518, 7638, 8037, 9964; RFC 8555 §6.2).
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

pub use alg::{Alg, MlDsa};
pub use error::JoseError;
pub use jwk::Jwk;
pub use jws::{FlattenedJws, ProtectedHeader, hmac_sign, hmac_verify, verify_signature};
pub use key::SigningKey;
pub use key_type::{KeyType, UnknownKeyType};
pub use verifying_key::VerifyingKey;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Parses `bytes` as a JSON *object* into `T`.
///
/// serde's derived `Deserialize` also accepts a struct written as a JSON
/// array of its fields in order (`["ES256", …]`); JWS (RFC 7515 §7.2.1) and
/// ACME (RFC 8555 §6.2, §7) only know objects, so every JWS member, protected
/// header and request payload is parsed through here and anything else is
/// refused before serde sees it.
///
/// The whole text must also be UTF-8 (RFC 8259 §8.1): serde_json checks the
/// strings it decodes, but not those it skips (members a type ignores).
pub fn from_json_object<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, serde_json::Error> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| serde::de::Error::custom(format!("not UTF-8: {e}")))?;
    if text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('{')
    {
        serde_json::from_str(text)
    } else {
        Err(serde::de::Error::custom("expected a JSON object"))
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jws_written_as_an_array_is_refused() {
        let key = SigningKey::generate(Alg::Es256).expect("key");
        let jws = key
            .sign_flattened(serde_json::json!({"url": "u", "nonce": "n"}), b"{}")
            .expect("sign");
        // The same three members, as serde would also accept them: an array.
        let array = serde_json::json!([jws["protected"], jws["payload"], jws["signature"]]);
        let err = FlattenedJws::parse(array.to_string().as_bytes()).expect_err("array body");
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
        assert!(FlattenedJws::parse(jws.to_string().as_bytes()).is_ok());
        assert!(FlattenedJws::parse(format!(" \n\t{jws}").as_bytes()).is_ok());
    }

    #[test]
    fn a_protected_header_written_as_an_array_is_refused() {
        let protected = b64(br#"["ES256", "nonce", "https://ca/acme/new-order", null, "https://ca/acme/account/1", null]"#);
        let jws = FlattenedJws {
            protected,
            payload: String::new(),
            signature: String::new(),
        };
        let err = jws.header().expect_err("array header");
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
    }

    #[test]
    fn only_objects_parse() {
        #[derive(serde::Deserialize, Debug)]
        struct P {
            #[allow(dead_code)]
            a: u8,
        }
        assert!(from_json_object::<P>(br#"{"a": 1}"#).is_ok());
        for bad in [&b"[1]"[..], b"", b"  ", b"null", b"1", b"\"a\""] {
            assert!(from_json_object::<P>(bad).is_err(), "{bad:?}");
        }
        // An ignored member holding bytes that are not UTF-8.
        let err = from_json_object::<P>(b"{\"a\": 1, \"b\": \"\xff\"}").expect_err("not UTF-8");
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }
}
