//! onion-csr-01 (RFC 9799 §3.2): the applicant proves control of a v3
//! hidden service by a CSR signed with the service's Ed25519 key (the key
//! the `.onion` address encodes) that carries this challenge's nonce (the
//! challenge token, as RFC 9799 has it) or its key authorization (as the
//! reference and our client build it) in the CA/Browser Forum
//! `caSigningNonce` attribute (2.23.140.41) and at least 64 bits of its own in
//! `applicantSigningNonce` (2.23.140.42). Nothing goes over the network.

use der::asn1::{OctetStringRef, Utf8StringRef};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode};
use openssl::pkey::{Id, PKey};
use shared_proto::Identifier;
use shared_proto::identifier::onion_v3_key;
use shared_proto::validator::{ChallengeType, MAX_ONION_CSR, ValidationRecord};
use x509_cert::request::CertReq;

use crate::error::{ProbeError, RequestError};

/// `id-Ed25519` (RFC 8410).
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
/// CA/B Forum `caSigningNonce`.
pub const CA_SIGNING_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.140.41");
/// CA/B Forum `applicantSigningNonce`.
pub const APPLICANT_SIGNING_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.140.42");
/// Least entropy of the applicant's nonce (RFC 9799 §3.2: 64 bits).
const MIN_APPLICANT_NONCE: usize = 8;

fn refuse(why: impl Into<String>) -> ProbeError {
    ProbeError::OnionCsr(why.into())
}

/// Validates an onion-csr-01 response for `identifier`: `csr` (DER) must
/// be signed by the key of the identifier's v3 address and carry `token`
/// (the challenge's `nonce`) or `key_authorization` as its CA signing
/// nonce.
pub fn validate(
    identifier: &Identifier,
    token: &str,
    key_authorization: &str,
    csr: Option<&[u8]>,
) -> Result<ValidationRecord, ProbeError> {
    let Some(address_key) = onion_v3_key(&identifier.value) else {
        return Err(RequestError::Unsupported {
            challenge: ChallengeType::OnionCsr01,
            identifier: identifier.to_string(),
            reason: "only version 3 .onion addresses can be validated (RFC 9799 §2)",
        }
        .into());
    };
    let Some(der) = csr else {
        return Err(refuse("the challenge response carries no CSR"));
    };
    if der.len() > MAX_ONION_CSR {
        return Err(refuse(format!(
            "the CSR is {} bytes, more than {MAX_ONION_CSR}",
            der.len()
        )));
    }
    let req = CertReq::from_der(der).map_err(|e| refuse(format!("the CSR does not parse: {e}")))?;
    let spki = &req.info.public_key;
    if spki.algorithm.oid != ED25519 || req.algorithm.oid != ED25519 {
        return Err(refuse("the CSR's key and signature must be Ed25519"));
    }
    if spki.subject_public_key.raw_bytes() != address_key {
        return Err(refuse(format!(
            "the CSR's key is not the key of {}",
            identifier.base_name()
        )));
    }
    let tbs = req
        .info
        .to_der()
        .map_err(|e| refuse(format!("the CSR does not re-encode: {e}")))?;
    let key = PKey::public_key_from_raw_bytes(&address_key, Id::ED25519)
        .map_err(|_| refuse("the address does not hold an Ed25519 key"))?;
    let verified = openssl::sign::Verifier::new_without_digest(&key)
        .and_then(|mut v| v.verify_oneshot(req.signature.raw_bytes(), &tbs))
        .unwrap_or(false);
    if !verified {
        return Err(refuse(format!(
            "the CSR is not signed by the key of {}",
            identifier.base_name()
        )));
    }
    let mut ca_nonce_ok = false;
    let mut applicant_nonce_ok = false;
    for attr in req.info.attributes.iter() {
        let Some(value) = attr.values.iter().next() else {
            continue;
        };
        if attr.oid == CA_SIGNING_NONCE {
            let text = value
                .decode_as::<Utf8StringRef<'_>>()
                .map_err(|_| refuse("caSigningNonce is not a UTF8String"))?;
            ca_nonce_ok = text.as_str() == key_authorization || text.as_str() == token;
        } else if attr.oid == APPLICANT_SIGNING_NONCE {
            let bytes = value
                .decode_as::<&OctetStringRef>()
                .map_err(|_| refuse("applicantSigningNonce is not an OCTET STRING"))?;
            applicant_nonce_ok = bytes.as_bytes().len() >= MIN_APPLICANT_NONCE;
        }
    }
    if !ca_nonce_ok {
        return Err(refuse(
            "the CSR's caSigningNonce is neither this challenge's nonce nor its key authorization",
        ));
    }
    if !applicant_nonce_ok {
        return Err(refuse(format!(
            "the CSR needs an applicantSigningNonce of at least {MIN_APPLICANT_NONCE} bytes"
        )));
    }
    Ok(ValidationRecord::name_only(
        identifier.base_name().to_owned(),
        crate::now_unix(),
    ))
}
