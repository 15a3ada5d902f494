//! Flattened JWS objects (RFC 7515 §7.2.2) as ACME uses them (RFC 8555 §6.2).

use openssl::bn::BigNum;
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, PKeyRef, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use serde::{Deserialize, Serialize};

use crate::{Alg, JoseError, b64_decode};

/// A flattened JWS. ACME forbids the unprotected header, so any member other
/// than these three is an error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlattenedJws {
    /// base64url of the protected header JSON.
    pub protected: String,
    /// base64url of the payload (empty for POST-as-GET).
    pub payload: String,
    /// base64url of the signature.
    pub signature: String,
}

/// The protected header members ACME uses.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ProtectedHeader {
    /// Signature algorithm.
    pub alg: String,
    /// Anti-replay nonce (RFC 8555 §6.5).
    pub nonce: Option<String>,
    /// The request URL (RFC 8555 §6.4).
    pub url: Option<String>,
    /// The signing key, for requests not tied to an account yet.
    pub jwk: Option<serde_json::Value>,
    /// The account URL.
    pub kid: Option<String>,
    /// Critical extensions (RFC 7515 §4.1.11); we understand none.
    pub crit: Option<serde_json::Value>,
}

impl FlattenedJws {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Self, JoseError> {
        crate::from_json_object(body).map_err(|e| JoseError::Json(e.to_string()))
    }

    /// Decodes and parses the protected header.
    pub fn header(&self) -> Result<ProtectedHeader, JoseError> {
        let raw = b64_decode(&self.protected)?;
        crate::from_json_object(&raw).map_err(|e| JoseError::Json(format!("protected header: {e}")))
    }

    /// The decoded payload.
    pub fn payload_bytes(&self) -> Result<Vec<u8>, JoseError> {
        b64_decode(&self.payload)
    }

    /// `ASCII(protected) || '.' || ASCII(payload)`.
    pub fn signing_input(&self) -> Vec<u8> {
        let mut input = Vec::with_capacity(self.protected.len() + self.payload.len() + 1);
        input.extend_from_slice(self.protected.as_bytes());
        input.push(b'.');
        input.extend_from_slice(self.payload.as_bytes());
        input
    }

    /// Verifies the signature with `key` under `alg`.
    pub fn verify(&self, alg: Alg, key: &PKeyRef<Public>) -> Result<(), JoseError> {
        let sig = b64_decode(&self.signature)?;
        verify_signature(alg, key, &self.signing_input(), &sig)
    }
}

/// Verifies a JWS signature in its JOSE encoding (raw `r‖s` for ECDSA).
pub fn verify_signature(
    alg: Alg,
    key: &PKeyRef<Public>,
    input: &[u8],
    sig: &[u8],
) -> Result<(), JoseError> {
    let ok = match alg {
        Alg::Es256 | Alg::Es384 | Alg::Es512 => {
            let (digest, width) = ec_params(alg);
            if sig.len() != 2 * width {
                return Err(JoseError::BadSignature);
            }
            let r = BigNum::from_slice(&sig[..width])?;
            let s = BigNum::from_slice(&sig[width..])?;
            let der = EcdsaSig::from_private_components(r, s)?.to_der()?;
            let mut v = Verifier::new(digest, key)?;
            v.update(input)?;
            v.verify(&der).unwrap_or(false)
        }
        Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
            let (digest, pss) = rsa_params(alg);
            let mut v = Verifier::new(digest, key)?;
            if pss {
                v.set_rsa_padding(Padding::PKCS1_PSS)?;
                v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                v.set_rsa_mgf1_md(digest)?;
            } else {
                v.set_rsa_padding(Padding::PKCS1)?;
            }
            v.update(input)?;
            v.verify(sig).unwrap_or(false)
        }
        Alg::EdDsa => {
            let mut v = Verifier::new_without_digest(key)?;
            v.verify_oneshot(sig, input).unwrap_or(false)
        }
        Alg::MlDsa44 | Alg::MlDsa65 | Alg::MlDsa87 => {
            // RFC 9964: raw FIPS 204 signatures over the signing input,
            // pure ML-DSA with the empty context (openssl's default).
            let expected = alg.ml_dsa().map(|set| set.signature_len());
            if Some(sig.len()) != expected {
                return Err(JoseError::BadSignature);
            }
            let mut v = Verifier::new_without_digest(key)?;
            v.verify_oneshot(sig, input).unwrap_or(false)
        }
    };
    if ok {
        Ok(())
    } else {
        Err(JoseError::BadSignature)
    }
}

/// Digest and padding (PSS or PKCS#1 v1.5) for an RSA algorithm; PSS uses
/// MGF1 with the same digest and a salt of the digest's length (RFC 7518
/// §3.5).
pub(crate) fn rsa_params(alg: Alg) -> (MessageDigest, bool) {
    match alg {
        Alg::Rs384 => (MessageDigest::sha384(), false),
        Alg::Rs512 => (MessageDigest::sha512(), false),
        Alg::Ps256 => (MessageDigest::sha256(), true),
        Alg::Ps384 => (MessageDigest::sha384(), true),
        Alg::Ps512 => (MessageDigest::sha512(), true),
        _ => (MessageDigest::sha256(), false),
    }
}

/// Digest and coordinate width for an ECDSA algorithm.
pub(crate) fn ec_params(alg: Alg) -> (MessageDigest, usize) {
    match alg {
        Alg::Es384 => (MessageDigest::sha384(), 48),
        Alg::Es512 => (MessageDigest::sha512(), 66),
        _ => (MessageDigest::sha256(), 32),
    }
}

fn hmac_digest(alg: &str) -> Result<MessageDigest, JoseError> {
    match alg {
        "HS256" => Ok(MessageDigest::sha256()),
        "HS384" => Ok(MessageDigest::sha384()),
        "HS512" => Ok(MessageDigest::sha512()),
        other => Err(JoseError::UnsupportedAlg(other.to_owned())),
    }
}

/// HMAC for External Account Binding (RFC 8555 §7.3.4): `HS256/384/512`.
pub fn hmac_sign(alg: &str, key: &[u8], input: &[u8]) -> Result<Vec<u8>, JoseError> {
    let pkey = PKey::hmac(key)?;
    let mut s = Signer::new(hmac_digest(alg)?, &pkey)?;
    s.update(input)?;
    Ok(s.sign_to_vec()?)
}

/// Verifies an HMAC in constant time.
pub fn hmac_verify(alg: &str, key: &[u8], input: &[u8], mac: &[u8]) -> Result<(), JoseError> {
    let expected = hmac_sign(alg, key, input)?;
    if expected.len() == mac.len() && openssl::memcmp::eq(&expected, mac) {
        Ok(())
    } else {
        Err(JoseError::BadSignature)
    }
}
