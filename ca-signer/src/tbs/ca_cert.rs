//! The TBS of a CA certificate: a root, or an intermediate.

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::{CN, O};
use const_oid::db::rfc5280::ID_AD_CA_ISSUERS;
use der::Decode;
use der::asn1::OctetString;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, BasicConstraints, ExtendedKeyUsage, KeyUsage,
    KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use super::ext::{authority_key_id, certificate_policies, crl_distribution_points, ext, uri};
use super::{Expectations, FixedProfile, IssuerInfo, LintedTbs, key_id, name};
use crate::error::Error;
use crate::keys::KeyBackend;

/// Builds the TBS of a self-signed root for `key` with subject CN + O:
/// BasicConstraints critical cA=TRUE, KeyUsage critical keyCertSign+cRLSign,
/// SKI and an AKI with the same key id.
pub fn build_root(
    common_name: &str,
    organization: &str,
    key: &dyn KeyBackend,
    serial: u64,
    not_before: i64,
    not_after: i64,
) -> Result<LintedTbs, Error> {
    let profile = CaProfile {
        subject: name(&[(CN, common_name), (O, organization)])?,
        path_len: None,
        ekus: Vec::new(),
        crl_url: None,
        policies: Vec::new(),
        ca_issuers_url: None,
    };
    let issuer = self_issuer(&profile.subject, key)?;
    build_ca(
        &profile,
        key.public_key_der(),
        &issuer,
        SerialNumber::from(serial),
        not_before,
        not_after,
    )
}

/// What a CA certificate (root or intermediate) carries.
#[derive(Clone, Debug)]
pub struct CaProfile {
    /// The CA's subject.
    pub subject: Name,
    /// BasicConstraints pathLenConstraint.
    pub path_len: Option<u8>,
    /// Extended key usages (none for a root).
    pub ekus: Vec<ObjectIdentifier>,
    /// CRL distribution point of the issuer's CRL.
    pub crl_url: Option<String>,
    /// certificatePolicies OIDs (none for a root).
    pub policies: Vec<ObjectIdentifier>,
    /// AIA caIssuers: URL of the issuer's certificate (intermediates).
    pub ca_issuers_url: Option<String>,
}

/// The issuer description of a self-signed certificate for `key`.
pub fn self_issuer(subject: &Name, key: &dyn KeyBackend) -> Result<IssuerInfo, Error> {
    let spki = SubjectPublicKeyInfoOwned::from_der(key.public_key_der())?;
    IssuerInfo::new(
        subject.clone(),
        key.public_key_der().to_vec(),
        key_id(&spki),
        key.signature_algorithm(),
    )
}

/// Builds the TBS of a CA certificate for the key `subject_spki_der`, issued
/// by `issuer` (itself for a root): BasicConstraints critical cA=TRUE with
/// `path_len`, KeyUsage critical keyCertSign+cRLSign(+digitalSignature),
/// SKI, AKI = the issuer's key id, and the profile's EKUs, CRL DP and
/// policies.
pub fn build_ca(
    profile: &CaProfile,
    subject_spki_der: &[u8],
    issuer: &IssuerInfo,
    serial: SerialNumber,
    not_before: i64,
    not_after: i64,
) -> Result<LintedTbs, Error> {
    let spki = SubjectPublicKeyInfoOwned::from_der(subject_spki_der)?;
    let id = key_id(&spki);
    let mut extensions = vec![
        ext(
            &BasicConstraints {
                ca: true,
                path_len_constraint: profile.path_len,
            },
            true,
        )?,
        ext(&KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign), true)?,
        ext(&SubjectKeyIdentifier(OctetString::new(id)?), false)?,
        ext(&authority_key_id(&issuer.key_id)?, false)?,
    ];
    if !profile.ekus.is_empty() {
        extensions.push(ext(&ExtendedKeyUsage(profile.ekus.clone()), false)?);
    }
    if let Some(url) = &profile.crl_url {
        extensions.push(ext(&crl_distribution_points(url)?, false)?);
    }
    if !profile.policies.is_empty() {
        extensions.push(ext(&certificate_policies(&profile.policies), false)?);
    }
    if let Some(url) = &profile.ca_issuers_url {
        let ad = AccessDescription {
            access_method: ID_AD_CA_ISSUERS,
            access_location: uri(url)?,
        };
        extensions.push(ext(&AuthorityInfoAccessSyntax(vec![ad]), false)?);
    }
    let builder_profile = FixedProfile {
        subject: profile.subject.clone(),
        issuer: issuer.name.clone(),
        extensions,
    };
    let expect = Expectations {
        ca: true,
        sans: None,
        spki_der: subject_spki_der.to_vec(),
        client_auth: false,
        max_validity_secs: None,
        issuer_not_after: None,
        issuer_key_id: issuer.key_id.clone(),
    };
    LintedTbs::new(
        builder_profile,
        serial,
        not_before,
        not_after,
        spki,
        issuer,
        &expect,
    )
}
