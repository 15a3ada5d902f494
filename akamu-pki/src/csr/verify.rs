//! The self-signature of a request, verified one of two ways to the same
//! verdict.
//!
//! OpenSSL 3.0 decodes every SubjectPublicKeyInfo through its provider
//! decoder framework, which costs far more than checking the signature. The
//! common requests (ECDSA with SHA-256/384/512 on P-256/P-384/P-521 with an
//! uncompressed point, or RSA PKCS#1 v1.5 with SHA-256/384/512; no attribute
//! but `extensionRequest`) are therefore verified without it: the key is
//! built from the parsed SPKI (`EC_POINT_oct2point`, which refuses points off
//! the curve, or the RSA integers; [`crate::spki`]), and the signature is
//! checked over the `certificationRequestInfo` bytes sliced from the request
//! as received. Every other request, and every request that does not verify
//! that way, goes through openssl's own `X509_REQ` parse and verification as
//! before, so the set of accepted requests and every refusal are unchanged.

use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::{Decode, Header, Reader, SliceReader, Tag};
use openssl::ec::EcKey;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Public};
use x509_cert::request::CertReq;
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::{CsrError, ID_EXTENSION_REQ};
use crate::spki::{CommonKey, ecdsa_verify_digest};

#[cfg(test)]
mod tests;

/// Verifies the request's self-signature; returns the key it verified with.
pub(super) fn verify_signature(der: &[u8], req: &CertReq) -> Result<PKey<Public>, CsrError> {
    match verify_common(der, req) {
        Some(key) => Ok(key),
        None => {
            // Start openssl's path with an empty error queue, so that what
            // it reports is about this request only.
            drop(ErrorStack::get());
            verify_with_openssl(der)
        }
    }
}

/// openssl's own parse and verification of the whole request.
pub(super) fn verify_with_openssl(der: &[u8]) -> Result<PKey<Public>, CsrError> {
    let req = openssl::x509::X509Req::from_der(der).map_err(|e| CsrError::Parse(e.to_string()))?;
    let key = req
        .public_key()
        .map_err(|e| CsrError::Parse(format!("public key: {e}")))?;
    // The point at infinity is not a public key, and any signature can be
    // forged for it (Q = O makes u1·G + u2·Q independent of the key).
    // (openssl cannot even export such a key as an EC_KEY.)
    if key.id() == openssl::pkey::Id::EC
        && key
            .ec_key()
            .map_or(true, |ec| ec.public_key().is_infinity(ec.group()))
    {
        return Err(CsrError::Parse(
            "the public key is the point at infinity or not an EC point".into(),
        ));
    }
    match req.verify(&key) {
        Ok(true) => Ok(key),
        _ => Err(CsrError::Signature),
    }
}

/// The key of a common request (see the module docs) whose signature
/// verifies; `None` for any other request, or one that does not verify, which
/// [`verify_with_openssl`] then judges.
///
/// Accepting here implies that [`verify_with_openssl`] accepts too, with the
/// same key:
/// - x509-cert parsed the request as strict DER, so openssl's more lenient
///   parser reads the same structure. Beyond structure, openssl's `X509_REQ`
///   parse checks the subject (`d2i_X509_NAME`, run here on the same bytes),
///   the contents of primitive attribute values (only `extensionRequest` is
///   allowed here: a SEQUENCE openssl keeps as is), and decodes the key (built
///   here from the same point or integers, with the same on-curve check).
/// - The signature algorithm is one openssl pairs with the key's type, with
///   its standard parameters, and the signature BIT STRING has no unused bits.
/// - ECDSA is checked as openssl's `ECDSA_verify` does it (a strict DER
///   `ECDSA-Sig-Value` without trailing bytes, then `ECDSA_do_verify` of the
///   digest); RSA through the same `EVP_DigestVerify`. Both over the
///   `certificationRequestInfo` bytes as received, which is what
///   `X509_REQ_verify` verifies (its cached encoding).
pub(super) fn verify_common(der: &[u8], req: &CertReq) -> Option<PKey<Public>> {
    if !req
        .info
        .attributes
        .iter()
        .all(|a| a.oid == ID_EXTENSION_REQ)
    {
        return None;
    }
    let algorithm = CommonSignature::of(&req.algorithm)?;
    let signature = req.signature.as_bytes()?;
    let key = CommonKey::from_spki(&req.info.public_key)?;
    let (info_der, subject_der) = signed_parts(der).ok()?;
    openssl::x509::X509Name::from_der(subject_der).ok()?;
    let verified = match (&key, algorithm) {
        (CommonKey::Ec(ec), CommonSignature::Ecdsa(hash)) => {
            ecdsa_verify(ec, hash, info_der, signature)
        }
        (CommonKey::Rsa(rsa), CommonSignature::RsaPkcs1(hash)) => {
            rsa_pkcs1_verify(rsa, hash, info_der, signature)
        }
        _ => false,
    };
    if !verified {
        return None;
    }
    key.into_pkey().ok()
}

/// The DER of the `certificationRequestInfo` and of its subject, sliced from
/// the request as received.
fn signed_parts(der: &[u8]) -> der::Result<(&[u8], &[u8])> {
    let mut request = SliceReader::new(der)?;
    Header::decode(&mut request)?
        .tag()
        .assert_eq(Tag::Sequence)?;
    let info = request.tlv_bytes()?;
    let mut fields = SliceReader::new(info)?;
    Header::decode(&mut fields)?
        .tag()
        .assert_eq(Tag::Sequence)?;
    let _version = fields.tlv_bytes()?;
    let subject = fields.tlv_bytes()?;
    Ok((info, subject))
}

/// A digest of the common signature algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => openssl::sha::sha256(data).to_vec(),
            Self::Sha384 => openssl::sha::sha384(data).to_vec(),
            Self::Sha512 => openssl::sha::sha512(data).to_vec(),
        }
    }

    fn message_digest(self) -> MessageDigest {
        match self {
            Self::Sha256 => MessageDigest::sha256(),
            Self::Sha384 => MessageDigest::sha384(),
            Self::Sha512 => MessageDigest::sha512(),
        }
    }
}

/// The signature algorithms verified without openssl's `X509_REQ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CommonSignature {
    /// ecdsa-with-SHA*, parameters absent (RFC 5758).
    Ecdsa(Hash),
    /// sha*WithRSAEncryption, parameters NULL (RFC 4055).
    RsaPkcs1(Hash),
}

impl CommonSignature {
    fn of(algorithm: &AlgorithmIdentifierOwned) -> Option<Self> {
        let oid = algorithm.oid;
        match &algorithm.parameters {
            None if oid == ECDSA_WITH_SHA_256 => Some(Self::Ecdsa(Hash::Sha256)),
            None if oid == ECDSA_WITH_SHA_384 => Some(Self::Ecdsa(Hash::Sha384)),
            None if oid == ECDSA_WITH_SHA_512 => Some(Self::Ecdsa(Hash::Sha512)),
            Some(p) if *p == der::asn1::Any::null() => {
                if oid == SHA_256_WITH_RSA_ENCRYPTION {
                    Some(Self::RsaPkcs1(Hash::Sha256))
                } else if oid == SHA_384_WITH_RSA_ENCRYPTION {
                    Some(Self::RsaPkcs1(Hash::Sha384))
                } else if oid == SHA_512_WITH_RSA_ENCRYPTION {
                    Some(Self::RsaPkcs1(Hash::Sha512))
                } else {
                    None
                }
            }
            _ => None,
        }
    }
}

/// Whether `signature` (a DER `ECDSA-Sig-Value`) verifies over `data`, as
/// openssl's `ECDSA_verify` decides it.
fn ecdsa_verify(key: &EcKey<Public>, hash: Hash, data: &[u8], signature: &[u8]) -> bool {
    ecdsa_verify_digest(key, &hash.digest(data), signature)
}

/// Whether a PKCS#1 v1.5 `signature` verifies over `data`.
fn rsa_pkcs1_verify(key: &PKey<Public>, hash: Hash, data: &[u8], signature: &[u8]) -> bool {
    openssl::sign::Verifier::new(hash.message_digest(), key)
        .and_then(|mut v| v.verify_oneshot(signature, data))
        .unwrap_or(false)
}
