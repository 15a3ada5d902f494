//! PKCS#10 certificate requests: parse with x509-cert, verify the
//! self-signature with openssl, and compare the requested names with an
//! order's identifiers (RFC 8555 §7.4).
//!
//! Both the frontend (to answer `badCSR` early) and the signer (which trusts no
//! caller) run these checks.
//!
//! # Two ways to the same verdict
//!
//! OpenSSL 3.0 decodes every SubjectPublicKeyInfo through its provider
//! decoder framework, which costs far more than checking the signature. The
//! common requests (ECDSA with SHA-256/384/512 on P-256/P-384/P-521 with an
//! uncompressed point, or RSA PKCS#1 v1.5 with SHA-256/384/512; no attribute
//! but `extensionRequest`) are therefore verified without it: the key is
//! built from the parsed SPKI (`EC_POINT_oct2point`, which refuses points off
//! the curve, or the RSA integers), and the signature is checked over the
//! `certificationRequestInfo` bytes sliced from the request as received.
//! Every other request, and every request that does not verify that way,
//! goes through openssl's own `X509_REQ` parse and verification as before, so
//! the set of accepted requests and every refusal are unchanged.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::OnceLock;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::CN;
use const_oid::db::rfc5280::{ID_CE_BASIC_CONSTRAINTS, ID_CE_SUBJECT_ALT_NAME};
use const_oid::db::rfc5912::{
    ECDSA_WITH_SHA_256, ECDSA_WITH_SHA_384, ECDSA_WITH_SHA_512, ID_EC_PUBLIC_KEY, RSA_ENCRYPTION,
    SECP_256_R_1, SECP_384_R_1, SECP_521_R_1, SHA_256_WITH_RSA_ENCRYPTION,
    SHA_384_WITH_RSA_ENCRYPTION, SHA_512_WITH_RSA_ENCRYPTION,
};
use der::asn1::UintRef;
use der::{Decode, Encode, Header, Reader, SliceReader, Tag};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{BasicConstraints, SubjectAltName};
use x509_cert::request::CertReq;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};

use crate::Identifier;

/// `pkcs-9-at-extensionRequest` (RFC 2985).
const ID_EXTENSION_REQ: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.14");

/// What a CSR asks for, after its signature has been verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCsr {
    /// The subscriber's SubjectPublicKeyInfo, DER.
    pub spki_der: Vec<u8>,
    /// The subject's commonName, if any.
    pub common_name: Option<String>,
    /// Every identifier the CSR names (SAN dNSName and iPAddress entries and
    /// the commonName), normalised.
    pub identifiers: BTreeSet<Identifier>,
    /// Whether the CSR asks for `cA=TRUE`.
    pub requests_ca: bool,
}

/// Why a CSR was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CsrError {
    /// Not a DER PKCS#10 request.
    #[error("CSR is not valid DER PKCS#10: {0}")]
    Parse(String),
    /// The self-signature does not verify with the CSR's key.
    #[error("CSR signature does not verify")]
    Signature,
    /// A SAN of a type other than dNSName or iPAddress, or a malformed one.
    #[error("CSR has an unsupported subjectAltName entry: {0}")]
    UnsupportedName(String),
    /// BasicConstraints cA=TRUE requested.
    #[error("CSR requests a CA certificate (cA=TRUE)")]
    RequestsCa,
    /// The CSR's names differ from the order's identifiers.
    #[error("CSR names do not match the order: {0}")]
    NameMismatch(String),
}

impl ParsedCsr {
    /// Parses `der` and verifies its self-signature.
    pub fn parse_and_verify(der: &[u8]) -> Result<Self, CsrError> {
        Self::parse_and_verify_with_key(der).map(|(csr, _)| csr)
    }

    /// Like [`ParsedCsr::parse_and_verify`], and also returns the public key
    /// the signature was verified with, so that a caller checking the key
    /// (the signer's key policy) need not decode [`ParsedCsr::spki_der`]
    /// again.
    pub fn parse_and_verify_with_key(der: &[u8]) -> Result<(Self, PKey<Public>), CsrError> {
        Self::parse_with(der, verify_signature)
    }

    /// Parses `der`, verifying its signature with `verify`.
    fn parse_with(
        der: &[u8],
        verify: fn(&[u8], &CertReq) -> Result<PKey<Public>, CsrError>,
    ) -> Result<(Self, PKey<Public>), CsrError> {
        let req = CertReq::from_der(der).map_err(|e| CsrError::Parse(e.to_string()))?;
        let key = verify(der, &req)?;

        let spki_der = req
            .info
            .public_key
            .to_der()
            .map_err(|e| CsrError::Parse(e.to_string()))?;

        let mut common_name = None;
        for atv in req.info.subject.iter() {
            if atv.oid == CN {
                let cn = decode_directory_string(&atv.value)
                    .ok_or_else(|| CsrError::Parse("commonName is not a string".into()))?;
                common_name = Some(cn);
            }
        }

        let mut identifiers = BTreeSet::new();
        let mut requests_ca = false;
        for attr in req.info.attributes.iter() {
            if attr.oid != ID_EXTENSION_REQ {
                continue;
            }
            for value in attr.values.iter() {
                let exts: Vec<x509_cert::ext::Extension> = value
                    .decode_as()
                    .map_err(|e| CsrError::Parse(format!("extensionRequest: {e}")))?;
                for ext in exts {
                    if ext.extn_id == ID_CE_SUBJECT_ALT_NAME {
                        let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                            .map_err(|e| CsrError::Parse(format!("subjectAltName: {e}")))?;
                        for name in san.0 {
                            identifiers.insert(general_name_to_identifier(&name)?);
                        }
                    } else if ext.extn_id == ID_CE_BASIC_CONSTRAINTS {
                        let bc = BasicConstraints::from_der(ext.extn_value.as_bytes())
                            .map_err(|e| CsrError::Parse(format!("basicConstraints: {e}")))?;
                        requests_ca |= bc.ca;
                    }
                }
            }
        }
        if let Some(cn) = &common_name {
            identifiers.insert(name_to_identifier(cn));
        }
        let csr = Self {
            spki_der,
            common_name,
            identifiers,
            requests_ca,
        };
        Ok((csr, key))
    }

    /// Checks that the CSR names exactly `order` and does not ask for a CA.
    pub fn check_against(&self, order: &[Identifier]) -> Result<(), CsrError> {
        if self.requests_ca {
            return Err(CsrError::RequestsCa);
        }
        let wanted: BTreeSet<Identifier> = order.iter().cloned().collect();
        let extra: Vec<String> = self
            .identifiers
            .difference(&wanted)
            .map(|i| i.to_string())
            .collect();
        let missing: Vec<String> = wanted
            .difference(&self.identifiers)
            .map(|i| i.to_string())
            .collect();
        if extra.is_empty() && missing.is_empty() {
            return Ok(());
        }
        let mut parts = Vec::new();
        if !extra.is_empty() {
            parts.push(format!("not in the order: {}", extra.join(", ")));
        }
        if !missing.is_empty() {
            parts.push(format!("missing from the CSR: {}", missing.join(", ")));
        }
        Err(CsrError::NameMismatch(parts.join("; ")))
    }
}

/// Verifies the request's self-signature; returns the key it verified with.
fn verify_signature(der: &[u8], req: &CertReq) -> Result<PKey<Public>, CsrError> {
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
fn verify_with_openssl(der: &[u8]) -> Result<PKey<Public>, CsrError> {
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
fn verify_common(der: &[u8], req: &CertReq) -> Option<PKey<Public>> {
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

/// Decodes a DER SubjectPublicKeyInfo into an openssl key.
///
/// The common keys (EC on P-256, P-384 or P-521 with a named curve and an
/// uncompressed point; RSA with NULL parameters) are built directly from the
/// parsed SPKI; anything else goes through [`PKey::public_key_from_der`].
/// Either way the result is the same key, a point off its curve is refused,
/// and `public_key_to_der` gives the same bytes.
pub fn public_key_from_spki(spki_der: &[u8]) -> Result<PKey<Public>, ErrorStack> {
    if let Ok(spki) = SubjectPublicKeyInfoOwned::from_der(spki_der)
        && let Some(key) = CommonKey::from_spki(&spki)
        && let Ok(pkey) = key.into_pkey()
    {
        return Ok(pkey);
    }
    PKey::public_key_from_der(spki_der)
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

/// A public key built without openssl's decoder framework.
enum CommonKey {
    Ec(EcKey<Public>),
    Rsa(PKey<Public>),
}

impl CommonKey {
    /// The key of `spki` if it is a common one and valid, else `None`.
    fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Option<Self> {
        let bits = spki.subject_public_key.as_bytes()?;
        let algorithm = &spki.algorithm;
        if algorithm.oid == ID_EC_PUBLIC_KEY {
            let curve: ObjectIdentifier = algorithm.parameters.as_ref()?.decode_as().ok()?;
            ec_public_key(named_group(curve)?, bits).map(Self::Ec)
        } else if algorithm.oid == RSA_ENCRYPTION
            && algorithm.parameters == Some(der::asn1::Any::null())
        {
            rsa_public_key(bits).map(Self::Rsa)
        } else {
            None
        }
    }

    fn into_pkey(self) -> Result<PKey<Public>, ErrorStack> {
        match self {
            Self::Ec(ec) => PKey::from_ec_key(ec),
            Self::Rsa(pkey) => Ok(pkey),
        }
    }
}

/// The group of a named curve we build keys for, made once per process.
fn named_group(curve: ObjectIdentifier) -> Option<&'static EcGroup> {
    static P256: OnceLock<Option<EcGroup>> = OnceLock::new();
    static P384: OnceLock<Option<EcGroup>> = OnceLock::new();
    static P521: OnceLock<Option<EcGroup>> = OnceLock::new();
    let (cell, nid) = if curve == SECP_256_R_1 {
        (&P256, Nid::X9_62_PRIME256V1)
    } else if curve == SECP_384_R_1 {
        (&P384, Nid::SECP384R1)
    } else if curve == SECP_521_R_1 {
        (&P521, Nid::SECP521R1)
    } else {
        return None;
    };
    cell.get_or_init(|| EcGroup::from_curve_name(nid).ok())
        .as_ref()
}

/// An EC public key from an uncompressed point (`04 ‖ X ‖ Y`).
/// `EC_POINT_oct2point` refuses coordinates that are out of range or not on
/// the curve; the point at infinity has another encoding and is left to
/// openssl's decoder like every other form.
fn ec_public_key(group: &EcGroup, point: &[u8]) -> Option<EcKey<Public>> {
    let field_len = usize::try_from(group.degree().div_ceil(8)).ok()?;
    if point.first() != Some(&0x04) || point.len() != 1 + 2 * field_len {
        return None;
    }
    let mut ctx = BigNumContext::new().ok()?;
    let point = EcPoint::from_bytes(group, point, &mut ctx).ok()?;
    if point.is_infinity(group) || !point.is_on_curve(group, &mut ctx).unwrap_or(false) {
        return None;
    }
    EcKey::from_public_key(group, &point).ok()
}

/// `RSAPublicKey` (RFC 8017 §A.1.1), strict DER.
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

/// An RSA public key from a DER `RSAPublicKey`.
fn rsa_public_key(der: &[u8]) -> Option<PKey<Public>> {
    let key = RsaPublicKey::from_der(der).ok()?;
    let n = BigNum::from_slice(key.modulus.as_bytes()).ok()?;
    let e = BigNum::from_slice(key.public_exponent.as_bytes()).ok()?;
    PKey::from_rsa(Rsa::from_public_components(n, e).ok()?).ok()
}

/// Whether `signature` (a DER `ECDSA-Sig-Value`) verifies over `data`, as
/// openssl's `ECDSA_verify` decides it.
fn ecdsa_verify(key: &EcKey<Public>, hash: Hash, data: &[u8], signature: &[u8]) -> bool {
    ecdsa_verify_digest(key, &hash.digest(data), signature)
}

/// Whether `signature` (a DER `ECDSA-Sig-Value`) verifies for `digest`, as
/// openssl's `ECDSA_verify` decides it: a strict DER encoding without
/// trailing bytes, then `ECDSA_do_verify`.
pub fn ecdsa_verify_digest(key: &EcKey<Public>, digest: &[u8], signature: &[u8]) -> bool {
    let Ok(sig) = EcdsaSig::from_der(signature) else {
        return false;
    };
    if sig.to_der().ok().as_deref() != Some(signature) {
        return false;
    }
    sig.verify(digest, key).unwrap_or(false)
}

/// Whether a PKCS#1 v1.5 `signature` verifies over `data`.
fn rsa_pkcs1_verify(key: &PKey<Public>, hash: Hash, data: &[u8], signature: &[u8]) -> bool {
    openssl::sign::Verifier::new(hash.message_digest(), key)
        .and_then(|mut v| v.verify_oneshot(signature, data))
        .unwrap_or(false)
}

fn decode_directory_string(any: &der::Any) -> Option<String> {
    use der::asn1::{Ia5StringRef, PrintableStringRef, Utf8StringRef};
    if let Ok(s) = any.decode_as::<Utf8StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = any.decode_as::<PrintableStringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    if let Ok(s) = any.decode_as::<Ia5StringRef<'_>>() {
        return Some(s.as_str().to_owned());
    }
    None
}

/// A commonName is an IP identifier if it parses as an address, else DNS.
fn name_to_identifier(name: &str) -> Identifier {
    match name.parse::<IpAddr>() {
        Ok(ip) => Identifier::ip(ip),
        Err(_) => Identifier::dns(name),
    }
}

fn general_name_to_identifier(name: &GeneralName) -> Result<Identifier, CsrError> {
    match name {
        GeneralName::DnsName(dns) => Ok(Identifier::dns(dns.as_str())),
        GeneralName::IpAddress(octets) => {
            let bytes = octets.as_bytes();
            let ip = match bytes.len() {
                4 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(bytes);
                    IpAddr::from(a)
                }
                16 => {
                    let mut a = [0u8; 16];
                    a.copy_from_slice(bytes);
                    IpAddr::from(a)
                }
                n => {
                    return Err(CsrError::UnsupportedName(format!(
                        "iPAddress of {n} octets"
                    )));
                }
            };
            Ok(Identifier::ip(ip))
        }
        other => Err(CsrError::UnsupportedName(format!("{other:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr(names: &[&str], cn: Option<&str>, ca: bool) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, cn);
        }
        if ca {
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        }
        params.serialize_request(&key).expect("csr").der().to_vec()
    }

    #[test]
    fn parses_names_and_cn() {
        let der = csr(
            &["a.example.org", "B.example.org", "192.0.2.1"],
            Some("a.example.org"),
            false,
        );
        let parsed = ParsedCsr::parse_and_verify(&der).expect("parse");
        let ids = [
            Identifier::dns("a.example.org"),
            Identifier::dns("b.example.org"),
            Identifier::ip("192.0.2.1".parse().expect("ip")),
        ];
        parsed.check_against(&ids).expect("matches");
        assert_eq!(parsed.common_name.as_deref(), Some("a.example.org"));
    }

    #[test]
    fn extra_and_missing_names_are_refused() {
        let der = csr(&["a.example.org", "evil.example.org"], None, false);
        let parsed = ParsedCsr::parse_and_verify(&der).expect("parse");
        let err = parsed
            .check_against(&[Identifier::dns("a.example.org")])
            .unwrap_err();
        assert!(matches!(err, CsrError::NameMismatch(ref m) if m.contains("evil.example.org")));
        let err = parsed
            .check_against(&[
                Identifier::dns("a.example.org"),
                Identifier::dns("evil.example.org"),
                Identifier::dns("c.example.org"),
            ])
            .unwrap_err();
        assert!(matches!(err, CsrError::NameMismatch(ref m) if m.contains("missing")));
    }

    #[test]
    fn cn_outside_sans_is_a_mismatch() {
        let der = csr(&["a.example.org"], Some("other.example.org"), false);
        let parsed = ParsedCsr::parse_and_verify(&der).expect("parse");
        assert!(
            parsed
                .check_against(&[Identifier::dns("a.example.org")])
                .is_err()
        );
    }

    #[test]
    fn ca_request_is_refused() {
        let der = csr(&["a.example.org"], None, true);
        let parsed = ParsedCsr::parse_and_verify(&der).expect("parse");
        assert!(parsed.requests_ca);
        assert_eq!(
            parsed.check_against(&[Identifier::dns("a.example.org")]),
            Err(CsrError::RequestsCa)
        );
    }

    #[test]
    fn tampered_signature_is_refused() {
        let mut der = csr(&["a.example.org"], None, false);
        let last = der.len() - 1;
        der[last] ^= 0x01;
        assert_eq!(ParsedCsr::parse_and_verify(&der), Err(CsrError::Signature));
    }

    #[test]
    fn garbage_is_a_parse_error() {
        assert!(matches!(
            ParsedCsr::parse_and_verify(b"\x30\x03abc"),
            Err(CsrError::Parse(_))
        ));
    }

    // ---- The two verification paths give the same verdict ----

    use der::asn1::{Any, BitString};
    use openssl::ec::{Asn1Flag, PointConversionForm};
    use openssl::pkey::{Id, Private};
    use openssl::x509::X509ReqBuilder;

    /// What a request gives: the parse, and the key's DER (`None` when
    /// openssl cannot encode the key).
    type Verdict = Result<(ParsedCsr, Option<Vec<u8>>), CsrError>;

    fn shape(r: Result<(ParsedCsr, PKey<Public>), CsrError>) -> Verdict {
        r.map(|(csr, key)| (csr, key.public_key_to_der().ok()))
    }

    /// The verdict of `parse_and_verify_with_key`.
    fn verdict(der: &[u8]) -> Verdict {
        shape(ParsedCsr::parse_and_verify_with_key(der))
    }

    /// The reference: openssl's `X509_REQ` parse and verification for every
    /// request, as before the fast path existed.
    fn reference(der: &[u8]) -> Verdict {
        drop(ErrorStack::get());
        shape(ParsedCsr::parse_with(der, |d, _| verify_with_openssl(d)))
    }

    /// Whether the request is verified without openssl's decoder.
    fn fast(der: &[u8]) -> bool {
        CertReq::from_der(der)
            .ok()
            .and_then(|req| verify_common(der, &req))
            .is_some()
    }

    fn ec_key(nid: Nid) -> EcKey<Private> {
        EcKey::generate(&EcGroup::from_curve_name(nid).expect("group")).expect("ec")
    }

    fn rsa_key(bits: u32, e: u32) -> PKey<Private> {
        let e = BigNum::from_u32(e).expect("e");
        PKey::from_rsa(Rsa::generate_with_e(bits, &e).expect("rsa")).expect("pkey")
    }

    /// A CSR for `a.example.org` made by openssl with `key` and `md`.
    fn openssl_csr(key: &PKey<Private>, md: MessageDigest) -> Vec<u8> {
        let mut b = X509ReqBuilder::new().expect("req");
        b.set_pubkey(key).expect("pubkey");
        let mut san = openssl::x509::extension::SubjectAlternativeName::new();
        san.dns("a.example.org");
        let mut exts = openssl::stack::Stack::new().expect("stack");
        exts.push(san.build(&b.x509v3_context(None)).expect("san"))
            .expect("push");
        b.add_extensions(&exts).expect("exts");
        b.sign(key, md).expect("sign");
        b.build().to_der().expect("der")
    }

    /// `der` with the SPKI `spki`, signed again by `sign` over the new
    /// certificationRequestInfo.
    fn with_spki(der: &[u8], spki: &[u8], sign: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut req = CertReq::from_der(der).expect("parse");
        req.info.public_key = SubjectPublicKeyInfoOwned::from_der(spki).expect("spki");
        let info = req.info.to_der().expect("info");
        req.signature = BitString::from_bytes(&sign(&info)).expect("bits");
        req.to_der().expect("der")
    }

    /// An ecPublicKey SPKI on `curve` with the point bytes `point`.
    fn ec_spki(curve: ObjectIdentifier, point: &[u8]) -> Vec<u8> {
        SubjectPublicKeyInfoOwned {
            algorithm: AlgorithmIdentifierOwned {
                oid: ID_EC_PUBLIC_KEY,
                parameters: Some(Any::encode_from(&curve).expect("oid")),
            },
            subject_public_key: BitString::from_bytes(point).expect("bits"),
        }
        .to_der()
        .expect("spki")
    }

    fn point(key: &EcKey<Private>, form: PointConversionForm) -> Vec<u8> {
        let mut ctx = BigNumContext::new().expect("ctx");
        key.public_key()
            .to_bytes(key.group(), form, &mut ctx)
            .expect("point")
    }

    fn ecdsa_sha256(key: &EcKey<Private>) -> impl FnOnce(&[u8]) -> Vec<u8> + '_ {
        |m| {
            EcdsaSig::sign(&openssl::sha::sha256(m), key)
                .and_then(|s| s.to_der())
                .expect("sign")
        }
    }

    /// An ECDSA P-256 SHA-256 signature that verifies for the public key at
    /// infinity (d = 0): with Q = O, u1·G + u2·Q = k·G whatever u2 is.
    fn forged_for_infinity(message: &[u8]) -> Vec<u8> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        let mut ctx = BigNumContext::new().expect("ctx");
        let mut n = BigNum::new().expect("bn");
        group.order(&mut n, &mut ctx).expect("order");
        let k = BigNum::from_u32(12_345).expect("k");
        let mut r_point = EcPoint::new(&group).expect("point");
        r_point.mul_generator2(&group, &k, &mut ctx).expect("kG");
        let (mut x, mut y) = (BigNum::new().expect("x"), BigNum::new().expect("y"));
        r_point
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .expect("affine");
        let mut r = BigNum::new().expect("r");
        r.nnmod(&x, &n, &mut ctx).expect("r");
        let e = BigNum::from_slice(&openssl::sha::sha256(message)).expect("e");
        let mut k_inv = BigNum::new().expect("k⁻¹");
        k_inv.mod_inverse(&k, &n, &mut ctx).expect("k⁻¹");
        let mut s = BigNum::new().expect("s");
        s.mod_mul(&e, &k_inv, &n, &mut ctx).expect("s");
        EcdsaSig::from_private_components(r, s)
            .and_then(|sig| sig.to_der())
            .expect("sig")
    }

    /// Valid requests of every common kind.
    fn common_requests() -> Vec<(String, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for nid in [Nid::X9_62_PRIME256V1, Nid::SECP384R1, Nid::SECP521R1] {
            let key = PKey::from_ec_key(ec_key(nid)).expect("pkey");
            for (name, md) in [
                ("sha256", MessageDigest::sha256()),
                ("sha384", MessageDigest::sha384()),
                ("sha512", MessageDigest::sha512()),
            ] {
                out.push((
                    format!("{nid:?} {name}"),
                    openssl_csr(&key, md),
                    key.public_key_to_der().expect("spki"),
                ));
            }
        }
        let rsa = rsa_key(2048, 65537);
        for (name, md) in [
            ("sha256", MessageDigest::sha256()),
            ("sha384", MessageDigest::sha384()),
            ("sha512", MessageDigest::sha512()),
        ] {
            out.push((
                format!("RSA-2048 {name}"),
                openssl_csr(&rsa, md),
                rsa.public_key_to_der().expect("spki"),
            ));
        }
        out
    }

    #[test]
    fn common_requests_verify_without_the_decoder_and_return_their_key() {
        for (name, der, spki) in common_requests() {
            assert!(fast(&der), "{name}");
            let got = verdict(&der);
            assert_eq!(got, reference(&der), "{name}");
            let (csr, key) = got.expect(&name);
            assert_eq!(key.as_deref(), Some(spki.as_slice()), "{name}");
            assert_eq!(csr.spki_der, spki, "{name}");
            csr.check_against(&[Identifier::dns("a.example.org")])
                .expect(&name);
        }
        // rcgen's P-256 requests too.
        let der = csr(&["a.example.org"], Some("a.example.org"), false);
        assert!(fast(&der));
        assert_eq!(verdict(&der), reference(&der));
    }

    #[test]
    fn other_requests_are_left_to_openssl_and_still_verify() {
        let cases = [
            (
                "Ed25519",
                openssl_csr(
                    &PKey::generate_ed25519().expect("ed25519"),
                    MessageDigest::null(),
                ),
            ),
            (
                "secp256k1",
                openssl_csr(
                    &PKey::from_ec_key(ec_key(Nid::SECP256K1)).expect("pkey"),
                    MessageDigest::sha256(),
                ),
            ),
            (
                "ECDSA SHA-1",
                openssl_csr(
                    &PKey::from_ec_key(ec_key(Nid::X9_62_PRIME256V1)).expect("pkey"),
                    MessageDigest::sha1(),
                ),
            ),
            (
                "RSA SHA-224",
                openssl_csr(&rsa_key(2048, 65537), MessageDigest::sha224()),
            ),
        ];
        for (name, der) in cases {
            assert!(!fast(&der), "{name}");
            let got = verdict(&der);
            assert!(got.is_ok(), "{name}: {got:?}");
            assert_eq!(got, reference(&der), "{name}");
        }
    }

    #[test]
    fn flipped_signature_bytes_are_refused_as_before() {
        for (name, der, _) in common_requests() {
            let req = CertReq::from_der(&der).expect("parse");
            let sig_len = req.signature.raw_bytes().len();
            // The signature is the last thing in the request.
            for i in [der.len() - sig_len, der.len() - sig_len / 2, der.len() - 1] {
                let mut bad = der.clone();
                bad[i] ^= 0x01;
                let got = verdict(&bad);
                assert_eq!(got, Err(CsrError::Signature), "{name} byte {i}");
                assert_eq!(got, reference(&bad), "{name} byte {i}");
            }
        }
    }

    #[test]
    fn a_key_off_its_curve_is_refused_as_before() {
        for (nid, curve) in [
            (Nid::X9_62_PRIME256V1, SECP_256_R_1),
            (Nid::SECP384R1, SECP_384_R_1),
            (Nid::SECP521R1, SECP_521_R_1),
        ] {
            let key = ec_key(nid);
            let group = key.group();
            let mut bad_point = point(&key, PointConversionForm::UNCOMPRESSED);
            let last = bad_point.len() - 1;
            bad_point[last] ^= 0x01;
            // openssl's oct2point refuses the point, so neither the fast key
            // nor openssl's decoder accepts it.
            let mut ctx = BigNumContext::new().expect("ctx");
            assert!(EcPoint::from_bytes(group, &bad_point, &mut ctx).is_err());
            assert!(ec_public_key(named_group(curve).expect("group"), &bad_point).is_none());

            let base = openssl_csr(
                &PKey::from_ec_key(key.clone()).expect("pkey"),
                MessageDigest::sha256(),
            );
            let der = with_spki(&base, &ec_spki(curve, &bad_point), ecdsa_sha256(&key));
            let got = verdict(&der);
            assert!(matches!(got, Err(CsrError::Parse(_))), "{nid:?}: {got:?}");
            assert_eq!(got, reference(&der), "{nid:?}");
        }
    }

    #[test]
    fn other_point_encodings_and_explicit_curves_get_openssl_verdict() {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let base = openssl_csr(
            &PKey::from_ec_key(key.clone()).expect("pkey"),
            MessageDigest::sha256(),
        );
        let mut explicit = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("group");
        explicit.set_asn1_flag(Asn1Flag::EXPLICIT_CURVE);
        let explicit_spki =
            PKey::from_ec_key(EcKey::from_public_key(&explicit, key.public_key()).expect("ec"))
                .and_then(|k| k.public_key_to_der())
                .expect("spki");
        let cases = [
            (
                "compressed",
                with_spki(
                    &base,
                    &ec_spki(SECP_256_R_1, &point(&key, PointConversionForm::COMPRESSED)),
                    ecdsa_sha256(&key),
                ),
            ),
            (
                "hybrid",
                with_spki(
                    &base,
                    &ec_spki(SECP_256_R_1, &point(&key, PointConversionForm::HYBRID)),
                    ecdsa_sha256(&key),
                ),
            ),
            (
                "explicit parameters",
                with_spki(&base, &explicit_spki, ecdsa_sha256(&key)),
            ),
            (
                "point at infinity",
                with_spki(&base, &ec_spki(SECP_256_R_1, &[0x00]), forged_for_infinity),
            ),
        ];
        for (name, der) in cases {
            assert!(!fast(&der), "{name}");
            assert_eq!(verdict(&der), reference(&der), "{name}");
        }
        // A signature forged for the point at infinity is refused.
        let forged = with_spki(&base, &ec_spki(SECP_256_R_1, &[0x00]), forged_for_infinity);
        assert!(
            matches!(
                ParsedCsr::parse_and_verify(&forged),
                Err(CsrError::Parse(ref d)) if d.contains("infinity")
            ),
            "{:?}",
            ParsedCsr::parse_and_verify(&forged)
        );
    }

    /// `der` with `edit` applied to its certificationRequestInfo, signed
    /// again by `key`.
    fn edited(der: &[u8], key: &EcKey<Private>, edit: impl FnOnce(&mut CertReq)) -> Vec<u8> {
        let mut req = CertReq::from_der(der).expect("parse");
        edit(&mut req);
        let info = req.info.to_der().expect("info");
        req.signature = BitString::from_bytes(&ecdsa_sha256(key)(&info)).expect("bits");
        req.to_der().expect("der")
    }

    #[test]
    fn what_openssl_refuses_beyond_strict_der_is_still_refused() {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let base = openssl_csr(
            &PKey::from_ec_key(key.clone()).expect("pkey"),
            MessageDigest::sha256(),
        );
        // A subject attribute that is not valid UTF-8: x509-cert keeps the
        // value as ANY, openssl's name parser refuses it.
        let bad_subject = edited(&base, &key, |req| {
            let atv = x509_cert::attr::AttributeTypeAndValue {
                oid: const_oid::db::rfc4519::O,
                value: Any::new(Tag::Utf8String, vec![0xff, 0xfe]).expect("any"),
            };
            let mut rdns = x509_cert::name::RdnSequence::default();
            rdns.push(
                x509_cert::name::RelativeDistinguishedName::try_from(vec![atv]).expect("rdn"),
            );
            req.info.subject = x509_cert::name::Name::hazmat_from_rdn_sequence(rdns);
        });
        // challengePassword holding a BOOLEAN of two octets.
        let bad_attribute = edited(&base, &key, |req| {
            let mut values = der::asn1::SetOfVec::new();
            values
                .insert(Any::new(Tag::Boolean, vec![0, 0]).expect("any"))
                .expect("insert");
            req.info
                .attributes
                .insert(x509_cert::attr::Attribute {
                    oid: ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.7"),
                    values,
                })
                .expect("insert");
        });
        for (name, der) in [("subject", bad_subject), ("attribute", bad_attribute)] {
            assert!(CertReq::from_der(&der).is_ok(), "{name}: strict DER");
            assert!(!fast(&der), "{name}");
            let got = verdict(&der);
            assert!(matches!(got, Err(CsrError::Parse(_))), "{name}: {got:?}");
            assert_eq!(got, reference(&der), "{name}");
        }
    }

    #[test]
    fn mutated_requests_get_the_same_verdict_on_both_paths() {
        // xorshift64*: deterministic, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_f491_4f6c_dd1d)
        };
        for (name, der, _) in common_requests() {
            for _ in 0..150 {
                let mut bad = der.clone();
                let r = next();
                let i = usize::try_from(r % bad.len() as u64).expect("index");
                let bit = 1u8 << ((r >> 32) % 8);
                bad[i] ^= bit;
                assert_eq!(
                    verdict(&bad),
                    reference(&bad),
                    "{name}: byte {i} ^ {bit:#x}"
                );
            }
        }
    }

    #[test]
    fn public_key_from_spki_gives_openssl_key() {
        let key = ec_key(Nid::X9_62_PRIME256V1);
        let mut off_curve = point(&key, PointConversionForm::UNCOMPRESSED);
        off_curve[64] ^= 0x01;
        let rsa = rsa_key(2048, 65537);
        let rsa_spki = rsa.public_key_to_der().expect("spki");
        let mut rsa_no_params = SubjectPublicKeyInfoOwned::from_der(&rsa_spki).expect("spki");
        rsa_no_params.algorithm.parameters = None;
        let mut trailing = rsa_spki.clone();
        trailing.push(0);
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "P-256",
                ec_spki(
                    SECP_256_R_1,
                    &point(&key, PointConversionForm::UNCOMPRESSED),
                ),
            ),
            (
                "P-384",
                PKey::from_ec_key(ec_key(Nid::SECP384R1))
                    .and_then(|k| k.public_key_to_der())
                    .expect("spki"),
            ),
            (
                "P-521",
                PKey::from_ec_key(ec_key(Nid::SECP521R1))
                    .and_then(|k| k.public_key_to_der())
                    .expect("spki"),
            ),
            (
                "compressed",
                ec_spki(SECP_256_R_1, &point(&key, PointConversionForm::COMPRESSED)),
            ),
            ("off the curve", ec_spki(SECP_256_R_1, &off_curve)),
            ("infinity", ec_spki(SECP_256_R_1, &[0x00])),
            (
                "wrong curve",
                ec_spki(
                    SECP_384_R_1,
                    &point(&key, PointConversionForm::UNCOMPRESSED),
                ),
            ),
            ("RSA", rsa_spki.clone()),
            (
                "RSA e=3",
                rsa_key(2048, 3).public_key_to_der().expect("spki"),
            ),
            (
                "RSA without parameters",
                rsa_no_params.to_der().expect("spki"),
            ),
            ("trailing byte", trailing),
            (
                "Ed25519",
                PKey::generate_ed25519()
                    .and_then(|k| k.public_key_to_der())
                    .expect("spki"),
            ),
            ("junk", b"junk".to_vec()),
        ];
        for (name, spki) in cases {
            let ours = public_key_from_spki(&spki)
                .map(|k| (k.id(), k.bits(), k.public_key_to_der().ok()))
                .ok();
            let openssl = PKey::public_key_from_der(&spki)
                .map(|k| (k.id(), k.bits(), k.public_key_to_der().ok()))
                .ok();
            assert_eq!(ours, openssl, "{name}");
        }
        // The common keys re-encode to exactly their input.
        let p256 = ec_spki(
            SECP_256_R_1,
            &point(&key, PointConversionForm::UNCOMPRESSED),
        );
        let k = public_key_from_spki(&p256).expect("P-256");
        assert_eq!(k.id(), Id::EC);
        assert_eq!(k.public_key_to_der().expect("der"), p256);
        assert_eq!(
            public_key_from_spki(&rsa_spki)
                .and_then(|k| k.public_key_to_der())
                .expect("der"),
            rsa_spki
        );
    }
}
