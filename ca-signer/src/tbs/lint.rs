//! Linting a TBS before it is signed: decoded again and checked against
//! what was checked and built.

use std::collections::BTreeSet;
use std::net::IpAddr;

use const_oid::ObjectIdentifier;
use der::{Decode, Encode};
use shared_proto::Identifier;
use spki::AlgorithmIdentifierOwned;
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
};

use super::ext::find;
use super::leaf::leaf_ekus;
use crate::error::Error;

/// What the lint expects of a TBS.
pub(crate) struct Expectations {
    pub(crate) ca: bool,
    pub(crate) sans: Option<BTreeSet<Identifier>>,
    pub(crate) spki_der: Vec<u8>,
    pub(crate) client_auth: bool,
    pub(crate) max_validity_secs: Option<i64>,
    pub(crate) issuer_not_after: Option<i64>,
    pub(crate) issuer_key_id: Vec<u8>,
}

/// Decodes the TBS we just encoded and checks it against the profile. A
/// failure is a bug in this crate, never the caller's fault.
pub(super) fn lint(
    tbs_der: &[u8],
    expect: &Expectations,
    algorithm: &AlgorithmIdentifierOwned,
) -> Result<(), Error> {
    let tbs = TbsCertificate::from_der(tbs_der)?;
    if tbs.version() != Version::V3 {
        return Err(Error::Lint("not a v3 certificate"));
    }
    let serial = tbs.serial_number().as_bytes();
    if serial.is_empty()
        || serial.len() > 20
        || serial[0] & 0x80 != 0
        || serial.iter().all(|b| *b == 0)
    {
        return Err(Error::Lint(
            "serial is not a positive integer of at most 20 octets",
        ));
    }
    // BR §7.1: at least 64 bits from a CSPRNG; ours are 126 random bits in
    // 16 octets. A leaf serial shorter than 9 octets cannot hold 64 bits.
    if expect.sans.is_some() && serial.len() < 9 {
        return Err(Error::Lint("leaf serial shorter than 64 bits of entropy"));
    }
    if tbs.signature() != algorithm {
        return Err(Error::Lint(
            "signature algorithm differs from the issuer key's",
        ));
    }
    if SHA1_ALGORITHMS.contains(&algorithm.oid) {
        return Err(Error::Lint("SHA-1 signature algorithm"));
    }
    let validity = tbs.validity();
    let not_before = validity.not_before.to_unix_duration().as_secs();
    let not_after = validity.not_after.to_unix_duration().as_secs();
    if not_before >= not_after {
        return Err(Error::Lint("empty validity"));
    }
    if let Some(max) = expect.max_validity_secs
        && i64::try_from(not_after - not_before).map_or(true, |d| d > max)
    {
        return Err(Error::Lint("validity longer than the profile allows"));
    }
    if let Some(limit) = expect.issuer_not_after
        && i64::try_from(not_after).map_or(true, |na| na > limit)
    {
        return Err(Error::Lint("notAfter after the issuer's notAfter"));
    }
    if tbs.subject_public_key_info().to_der()? != expect.spki_der {
        return Err(Error::Lint("subject key differs from the checked key"));
    }
    lint_key(&expect.spki_der)?;
    let extensions = tbs.extensions().ok_or(Error::Lint("no extensions"))?;
    let mut seen = BTreeSet::new();
    for e in extensions {
        if !seen.insert(e.extn_id) {
            return Err(Error::Lint("duplicate extension"));
        }
    }
    let bc = find::<BasicConstraints>(extensions)?.ok_or(Error::Lint("no basicConstraints"))?;
    if !bc.0 || bc.1.ca != expect.ca {
        return Err(Error::Lint("basicConstraints not critical or cA wrong"));
    }
    let (ku_critical, ku) = find::<KeyUsage>(extensions)?.ok_or(Error::Lint("no keyUsage"))?;
    if !ku_critical || ku.key_cert_sign() != expect.ca {
        return Err(Error::Lint("keyUsage not critical or keyCertSign wrong"));
    }
    if ku.crl_sign() != expect.ca {
        return Err(Error::Lint("keyUsage cRLSign wrong"));
    }
    if !expect.ca && !ku.digital_signature() {
        return Err(Error::Lint("leaf keyUsage without digitalSignature"));
    }
    if expect.ca && find::<SubjectKeyIdentifier>(extensions)?.is_none() {
        return Err(Error::Lint("missing subjectKeyIdentifier"));
    }
    let (_, aki) = find::<AuthorityKeyIdentifier>(extensions)?
        .ok_or(Error::Lint("missing authorityKeyIdentifier"))?;
    if aki.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(expect.issuer_key_id.as_slice()) {
        return Err(Error::Lint(
            "authorityKeyIdentifier is not the issuer's key id",
        ));
    }
    if let Some(want) = &expect.sans {
        let eku =
            find::<ExtendedKeyUsage>(extensions)?.ok_or(Error::Lint("no extendedKeyUsage"))?;
        if eku.1.0 != leaf_ekus(expect.client_auth) {
            return Err(Error::Lint("extendedKeyUsage differs from the profile"));
        }
        let (_, san) =
            find::<SubjectAltName>(extensions)?.ok_or(Error::Lint("no subjectAltName"))?;
        let got: BTreeSet<Identifier> = san
            .0
            .iter()
            .map(identifier_of)
            .collect::<Option<_>>()
            .ok_or(Error::Lint("unexpected subjectAltName entry"))?;
        if &got != want || got.len() != san.0.len() {
            return Err(Error::Lint(
                "subjectAltName differs from the checked identifiers",
            ));
        }
    }
    Ok(())
}

/// SHA-1 based signature algorithms, never used.
const SHA1_ALGORITHMS: [ObjectIdentifier; 2] = [
    const_oid::db::rfc5912::SHA_1_WITH_RSA_ENCRYPTION,
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.1"),
];

/// The subject key's type and size: RSA ≥ 2048 bits, EC on P-256/P-384/P-521,
/// Ed25519, Ed448 or ML-DSA-44/65/87 (the policy and the profile decide which
/// of those are accepted).
fn lint_key(spki_der: &[u8]) -> Result<(), Error> {
    let key = akamu_pki::csr::public_key_from_spki(spki_der)?;
    let ok = match key.id() {
        openssl::pkey::Id::RSA => key.bits() >= 2048,
        openssl::pkey::Id::EC => matches!(
            key.ec_key()?.group().curve_name(),
            Some(
                openssl::nid::Nid::X9_62_PRIME256V1
                    | openssl::nid::Nid::SECP384R1
                    | openssl::nid::Nid::SECP521R1
            )
        ),
        openssl::pkey::Id::ED25519 | openssl::pkey::Id::ED448 => true,
        _ => akamu_jose::MlDsa::of_key(&key).is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Lint("subject key type or size not allowed"))
    }
}

fn identifier_of(name: &GeneralName) -> Option<Identifier> {
    match name {
        GeneralName::DnsName(d) => Some(Identifier::dns(d.as_str())),
        GeneralName::IpAddress(o) => match o.as_bytes().len() {
            4 => <[u8; 4]>::try_from(o.as_bytes())
                .ok()
                .map(|a| Identifier::ip(IpAddr::from(a))),
            16 => <[u8; 16]>::try_from(o.as_bytes())
                .ok()
                .map(|a| Identifier::ip(IpAddr::from(a))),
            _ => None,
        },
        _ => None,
    }
}
