//! Building TBS certificates: the second of three steps (policy → tbs → sign).
//!
//! [`build_leaf`] turns a [`Checked`] request into a [`LintedTbs`] with
//! x509-cert's `CertificateBuilder` and our own [`BuilderProfile`]; the TBS is
//! decoded again and linted against what was checked before anything is
//! signed. [`LintedTbs::sign`] consumes the value, so each checked request is
//! signed at most once and exactly as built.
//!
//! Randomness (the serial) and time (from the `Checked`) are inputs.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use const_oid::db::rfc4519::{CN, O};
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{BitString, BitStringRef, GeneralizedTime, Ia5String, OctetString, Utf8StringRef};
use der::{Any, Decode, Encode, Header, Reader, SliceReader, Tag};
use rand::RngCore;
use shared_proto::{Identifier, IdentifierKind};
use signature::Keypair;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SubjectPublicKeyInfoOwned, SubjectPublicKeyInfoRef,
};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::{TbsCertificate, Version};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CertificatePolicies, CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::error::Error;
use crate::keys::{CaPublicKey, KeyBackend, SignatureAlgorithm};
use crate::policy::Checked;

/// Length of a leaf serial number in bytes.
pub const SERIAL_BYTES: usize = 16;

/// What a TBS needs to know about its issuer.
#[derive(Clone, Debug)]
pub struct IssuerInfo {
    /// The issuer's subject, copied into each certificate's issuer field.
    pub name: Name,
    /// The issuer's key identifier (its SKI), used as each leaf's AKI.
    pub key_id: Vec<u8>,
    /// The issuer's public key and signature algorithm, decoded once, which
    /// checks every signature.
    pub public_key: CaPublicKey,
}

impl IssuerInfo {
    /// The issuer `name` with the key `spki_der` (identified by `key_id`)
    /// signing with `algorithm`.
    pub fn new(
        name: Name,
        spki_der: Vec<u8>,
        key_id: Vec<u8>,
        algorithm: SignatureAlgorithm,
    ) -> Result<Self, Error> {
        Ok(Self {
            name,
            key_id,
            public_key: CaPublicKey::new(&spki_der, algorithm)?,
        })
    }

    /// The issuer's SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        self.public_key.spki_der()
    }

    /// The algorithm the issuer key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.public_key.algorithm()
    }
}

/// URLs a leaf points to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeafUrls {
    /// CRL distribution point.
    pub crl: Option<String>,
    /// OCSP responder (AIA).
    pub ocsp: Option<String>,
    /// The issuing CA's certificate (AIA caIssuers).
    pub ca_issuers: Option<String>,
}

/// A built and linted TBS certificate, ready to be signed once.
pub struct LintedTbs {
    builder: CertificateBuilder<FixedProfile>,
    issuer: IssuerAdapter,
    issuer_key: CaPublicKey,
    tbs_der: Vec<u8>,
    serial_hex: String,
    not_before: i64,
    not_after: i64,
}

/// A signed certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCertificate {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// Serial, lower-case hex without leading zero bytes.
    pub serial_hex: String,
    /// `notBefore`, Unix seconds.
    pub not_before: i64,
    /// `notAfter`, Unix seconds.
    pub not_after: i64,
}

/// Builds the TBS of a leaf for a checked request.
pub fn build_leaf(
    checked: Checked,
    issuer: &IssuerInfo,
    urls: &LeafUrls,
    rng: &mut dyn RngCore,
) -> Result<LintedTbs, Error> {
    let serial = random_serial(rng)?;
    let subject = match &checked.common_name {
        Some(cn) => name(&[(CN, cn)])?,
        None => Name::default(),
    };
    let spki = SubjectPublicKeyInfoOwned::from_der(&checked.spki_der)?;

    let mut usages = KeyUsages::DigitalSignature.into();
    if checked.rsa_subscriber {
        usages |= KeyUsages::KeyEncipherment;
    }
    let sans: Vec<GeneralName> = checked
        .sans
        .iter()
        .map(general_name)
        .collect::<Result<_, _>>()?;
    let mut extensions = vec![
        ext(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?,
        ext(&KeyUsage(usages), true)?,
        ext(&ExtendedKeyUsage(leaf_ekus(checked.client_auth)), false)?,
        // No SKI on leaves: BR §7.1.2.7.6 says NOT RECOMMENDED.
        ext(&authority_key_id(&issuer.key_id)?, false)?,
        // RFC 5280 §4.2.1.6: critical when the subject is empty.
        ext(&SubjectAltName(sans), checked.common_name.is_none())?,
    ];
    extensions.push(ext(&certificate_policies(&[CABF_DOMAIN_VALIDATED]), false)?);
    if let Some(url) = &urls.crl {
        extensions.push(ext(&crl_distribution_points(url)?, false)?);
    }
    let mut access = Vec::new();
    if let Some(url) = &urls.ocsp {
        access.push(AccessDescription {
            access_method: ID_AD_OCSP,
            access_location: uri(url)?,
        });
    }
    if let Some(url) = &urls.ca_issuers {
        access.push(AccessDescription {
            access_method: ID_AD_CA_ISSUERS,
            access_location: uri(url)?,
        });
    }
    if !access.is_empty() {
        extensions.push(ext(&AuthorityInfoAccessSyntax(access), false)?);
    }

    let profile = FixedProfile {
        subject,
        issuer: issuer.name.clone(),
        extensions,
    };
    let expect = Expectations {
        ca: false,
        sans: Some(checked.sans.iter().cloned().collect()),
        spki_der: checked.spki_der.clone(),
        client_auth: checked.client_auth,
        max_validity_secs: Some(checked.max_validity_secs),
        issuer_not_after: Some(checked.ca_not_after),
        issuer_key_id: issuer.key_id.clone(),
    };
    LintedTbs::new(
        profile,
        serial,
        checked.not_before,
        checked.not_after,
        spki,
        issuer,
        &expect,
    )
}

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

fn crl_distribution_points(url: &str) -> Result<CrlDistributionPoints, Error> {
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    }]))
}

fn certificate_policies(oids: &[ObjectIdentifier]) -> CertificatePolicies {
    CertificatePolicies(
        oids.iter()
            .map(|oid| PolicyInformation {
                policy_identifier: *oid,
                policy_qualifiers: None,
            })
            .collect(),
    )
}

/// CA/Browser Forum domain-validated policy (BR §7.1.6.1).
pub const CABF_DOMAIN_VALIDATED: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.140.1.2.1");

impl LintedTbs {
    fn new(
        profile: FixedProfile,
        serial: SerialNumber,
        not_before: i64,
        not_after: i64,
        spki: SubjectPublicKeyInfoOwned,
        issuer: &IssuerInfo,
        expect: &Expectations,
    ) -> Result<Self, Error> {
        let serial_hex = hex::encode(serial.as_bytes());
        let validity = Validity::new(time(not_before)?, time(not_after)?);
        let adapter = IssuerAdapter {
            spki_der: issuer.spki_der().to_vec(),
            algorithm: issuer.algorithm().algorithm_identifier(),
        };
        let mut builder = CertificateBuilder::new(profile, serial, validity, spki)?;
        let tbs_der = builder.finalize(&adapter)?;
        lint(&tbs_der, expect, &adapter.algorithm)?;
        Ok(Self {
            builder,
            issuer: adapter,
            issuer_key: issuer.public_key.clone(),
            tbs_der,
            serial_hex,
            not_before,
            not_after,
        })
    }

    /// The DER TBSCertificate that [`LintedTbs::sign`] will sign.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs_der
    }

    /// Signs the TBS with `key`, which must be the issuer key it was built
    /// for, and checks the signature before returning the certificate.
    pub fn sign(self, key: &dyn KeyBackend) -> Result<SignedCertificate, Error> {
        if key.public_key_der() != self.issuer.spki_der.as_slice()
            || key.signature_algorithm().algorithm_identifier() != self.issuer.algorithm
        {
            return Err(Error::WrongSigningKey);
        }
        let signature = key.sign(&self.tbs_der)?;
        let cert = self
            .builder
            .assemble(BitString::from_bytes(&signature)?, &self.issuer)?;
        let der = cert.to_der()?;

        // A faulty key backend must not hand out a certificate that does not
        // verify: the certificate must carry exactly the linted TBS, the
        // issuer's algorithm and the signature the backend returned, and
        // that signature must verify over those TBS bytes under the CA's
        // public key (decoded once, when the CA was loaded).
        let carried = SignedParts::of(&der)?;
        if carried.tbs != self.tbs_der.as_slice()
            || carried.algorithm != self.issuer.algorithm.to_der()?.as_slice()
            || carried.signature != Some(signature.as_slice())
            || !self.issuer_key.verify(carried.tbs, &signature)?
        {
            return Err(Error::SignatureCheck);
        }
        Ok(SignedCertificate {
            der,
            serial_hex: self.serial_hex,
            not_before: self.not_before,
            not_after: self.not_after,
        })
    }
}

/// The parts of a signed DER structure (`Certificate`, `CertificateList`):
/// `SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING }`.
pub(crate) struct SignedParts<'a> {
    /// The TBS, DER (tag, length and contents).
    pub(crate) tbs: &'a [u8],
    /// The signatureAlgorithm, DER.
    pub(crate) algorithm: &'a [u8],
    /// The signature's bytes; `None` if the BIT STRING has unused bits.
    pub(crate) signature: Option<&'a [u8]>,
}

impl<'a> SignedParts<'a> {
    /// Splits `der`, which must hold exactly one such SEQUENCE.
    pub(crate) fn of(der: &'a [u8]) -> Result<Self, Error> {
        let mut reader = SliceReader::new(der)?;
        let header = Header::decode(&mut reader)?;
        header.tag().assert_eq(Tag::Sequence)?;
        if header.length() != reader.remaining_len() {
            return Err(Error::SignatureCheck);
        }
        let tbs = reader.tlv_bytes()?;
        let algorithm = reader.tlv_bytes()?;
        let signature = BitStringRef::decode(&mut reader)?.as_bytes();
        reader.finish()?;
        Ok(Self {
            tbs,
            algorithm,
            signature,
        })
    }
}

/// The key identifier of a public key: SHA-1 of the subjectPublicKey bits
/// (RFC 5280 §4.2.1.2, method 1).
pub fn key_id(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    openssl::sha::sha1(spki.subject_public_key.raw_bytes()).to_vec()
}

/// A 16-byte positive serial: the top bit cleared (positive) and the next one
/// set (so the DER INTEGER is always 16 bytes, never zero); 126 random bits.
pub fn random_serial(rng: &mut dyn RngCore) -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; SERIAL_BYTES];
    rng.fill_bytes(&mut bytes);
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    Ok(SerialNumber::new(&bytes)?)
}

/// A Name of one single-valued RDN per attribute, in the given order, each a
/// UTF8String.
pub fn name(attributes: &[(ObjectIdentifier, &str)]) -> Result<Name, Error> {
    let mut rdns = RdnSequence::default();
    for (oid, value) in attributes {
        let atv = AttributeTypeAndValue {
            oid: *oid,
            value: Any::encode_from(&Utf8StringRef::new(value)?)?,
        };
        rdns.push(RelativeDistinguishedName::try_from(vec![atv])?);
    }
    Ok(Name::hazmat_from_rdn_sequence(rdns))
}

/// The EKUs of a leaf: serverAuth, and clientAuth if the profile says so.
fn leaf_ekus(client_auth: bool) -> Vec<ObjectIdentifier> {
    let mut ekus = vec![ID_KP_SERVER_AUTH];
    if client_auth {
        ekus.push(ID_KP_CLIENT_AUTH);
    }
    ekus
}

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
fn lint(
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
/// or Ed25519 (the policy decides which of those are accepted).
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
        openssl::pkey::Id::ED25519 => true,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::Lint("subject key type or size not allowed"))
    }
}

pub(crate) fn find<'a, T: Decode<'a, Error = der::Error> + AssociatedOid>(
    extensions: &'a [Extension],
) -> Result<Option<(bool, T)>, Error> {
    match extensions.iter().find(|e| e.extn_id == T::OID) {
        Some(e) => Ok(Some((e.critical, T::from_der(e.extn_value.as_bytes())?))),
        None => Ok(None),
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

fn general_name(id: &Identifier) -> Result<GeneralName, Error> {
    Ok(match id.kind {
        IdentifierKind::Dns => GeneralName::DnsName(Ia5String::new(&id.value)?),
        IdentifierKind::Ip => {
            let ip: IpAddr = id
                .value
                .parse()
                .map_err(|_| Error::Lint("IP identifier does not parse"))?;
            let octets = match ip {
                IpAddr::V4(v4) => v4.octets().to_vec(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            GeneralName::IpAddress(OctetString::new(octets)?)
        }
    })
}

fn uri(url: &str) -> Result<GeneralName, Error> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
}

fn authority_key_id(id: &[u8]) -> Result<AuthorityKeyIdentifier, Error> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

pub(crate) fn ext<T: Encode + AssociatedOid>(
    value: &T,
    critical: bool,
) -> Result<Extension, Error> {
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

fn time(unix: i64) -> Result<Time, Error> {
    let secs = u64::try_from(unix).map_err(|_| Error::Lint("time before 1970"))?;
    // CertificateBuilder::new turns this into UTCTime up to 2049 (RFC 5280 §4.1.2.5).
    Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(
        Duration::from_secs(secs),
    )?))
}

/// Our [`BuilderProfile`]: subject, issuer and extensions fixed in advance.
struct FixedProfile {
    subject: Name,
    issuer: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// Presents the issuer's public key and algorithm to x509-cert's builder,
/// which wants a `Keypair`; the private key stays behind [`KeyBackend`].
#[derive(Clone)]
struct IssuerAdapter {
    spki_der: Vec<u8>,
    algorithm: AlgorithmIdentifierOwned,
}

/// The issuer's public key as the builder sees it.
#[derive(Clone)]
struct IssuerPublicKey(Vec<u8>);

impl Keypair for IssuerAdapter {
    type VerifyingKey = IssuerPublicKey;

    fn verifying_key(&self) -> IssuerPublicKey {
        IssuerPublicKey(self.spki_der.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for IssuerAdapter {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.algorithm.clone())
    }
}

impl EncodePublicKey for IssuerPublicKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.as_slice())?)
    }
}

#[cfg(test)]
mod tests {
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Padding;
    use openssl::sign::RsaPssSaltlen;
    use openssl::x509::X509;

    use super::*;
    use crate::config::{HashAlg, KeyType};
    use crate::keys::file::FileKey;
    use crate::policy::{self, Profile};

    const NOW: i64 = 1_800_000_000;
    const YEAR: i64 = 365 * 86_400;

    /// Turns a good signature into a bad one.
    type Spoil = Box<dyn Fn(Vec<u8>) -> Vec<u8> + Send + Sync>;

    /// A backend that signs with `inner` and hands back `spoil` of it.
    struct Faulty<'a> {
        inner: &'a dyn KeyBackend,
        spoil: Spoil,
    }

    impl KeyBackend for Faulty<'_> {
        fn public_key_der(&self) -> &[u8] {
            self.inner.public_key_der()
        }
        fn signature_algorithm(&self) -> SignatureAlgorithm {
            self.inner.signature_algorithm()
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
            Ok((self.spoil)(self.inner.sign(message)?))
        }
    }

    /// An RSA key signing RSASSA-PSS with SHA-256, MGF1-SHA-256 and a salt
    /// of `salt` bytes.
    struct Pss {
        pkey: PKey<Private>,
        spki_der: Vec<u8>,
        salt: i32,
    }

    impl Pss {
        fn new(salt: i32) -> Self {
            let pkey =
                PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("pkey");
            let spki_der = pkey.public_key_to_der().expect("spki");
            Self {
                pkey,
                spki_der,
                salt,
            }
        }
    }

    impl KeyBackend for Pss {
        fn public_key_der(&self) -> &[u8] {
            &self.spki_der
        }
        fn signature_algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::RsaPssSha256
        }
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
            let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), &self.pkey)?;
            signer.set_rsa_padding(Padding::PKCS1_PSS)?;
            signer.set_rsa_pss_saltlen(RsaPssSaltlen::custom(self.salt))?;
            signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
            Ok(signer.sign_oneshot_to_vec(message)?)
        }
    }

    fn root(key: &dyn KeyBackend) -> Result<SignedCertificate, Error> {
        build_root("Test CA", "Akāmu", key, 1, NOW, NOW + YEAR)?.sign(key)
    }

    /// A leaf for `a.example.org` issued by the root of `ca`.
    fn leaf_tbs(ca: &dyn KeyBackend) -> LintedTbs {
        let subject = FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key");
        let checked = policy::check_server_certificate(
            &Profile::tls_server(90, NOW + YEAR),
            &["a.example.org".to_owned()],
            subject.public_key_der(),
            NOW,
        )
        .expect("checked");
        let issuer = self_issuer(&name(&[(CN, "Test CA")]).expect("name"), ca).expect("issuer");
        build_leaf(checked, &issuer, &LeafUrls::default(), &mut rand::rng()).expect("leaf")
    }

    /// What openssl's `X509_verify` says of `der` under `key`'s public key.
    fn openssl_verifies(der: &[u8], key: &dyn KeyBackend) -> bool {
        let public = PKey::public_key_from_der(key.public_key_der()).expect("spki");
        X509::from_der(der)
            .expect("certificate")
            .verify(&public)
            .expect("verify")
    }

    fn spoilers() -> Vec<(&'static str, Spoil)> {
        vec![
            (
                "flipped last byte",
                Box::new(|mut s: Vec<u8>| {
                    let last = s.len() - 1;
                    s[last] ^= 0x01;
                    s
                }),
            ),
            (
                "flipped first byte",
                Box::new(|mut s: Vec<u8>| {
                    s[0] ^= 0x80;
                    s
                }),
            ),
            (
                "trailing byte",
                Box::new(|mut s: Vec<u8>| {
                    s.push(0);
                    s
                }),
            ),
            ("empty", Box::new(|_| Vec::new())),
        ]
    }

    #[test]
    fn good_signatures_pass_the_check_and_openssl_agrees() {
        let keys: Vec<Box<dyn KeyBackend>> = vec![
            Box::new(FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key")),
            Box::new(FileKey::generate(KeyType::EcP384, HashAlg::Sha384).expect("key")),
            Box::new(FileKey::generate(KeyType::EcP521, HashAlg::Sha512).expect("key")),
            Box::new(FileKey::generate(KeyType::Rsa(2048), HashAlg::Sha256).expect("key")),
            Box::new(FileKey::generate(KeyType::Ed25519, HashAlg::Sha512).expect("key")),
            Box::new(Pss::new(32)),
        ];
        for key in &keys {
            let alg = key.signature_algorithm();
            let signed = root(key.as_ref()).unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert!(openssl_verifies(&signed.der, key.as_ref()), "{alg:?} root");
            let leaf = leaf_tbs(key.as_ref());
            let tbs_der = leaf.tbs_der().to_vec();
            let signed = leaf
                .sign(key.as_ref())
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            assert!(openssl_verifies(&signed.der, key.as_ref()), "{alg:?} leaf");
            let parts = SignedParts::of(&signed.der).expect("parts");
            assert_eq!(
                parts.tbs,
                tbs_der.as_slice(),
                "{alg:?}: the linted TBS is signed"
            );
        }
    }

    #[test]
    fn a_faulty_backend_never_yields_a_certificate() {
        let keys: Vec<Box<dyn KeyBackend>> = vec![
            Box::new(FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key")),
            Box::new(FileKey::generate(KeyType::Rsa(2048), HashAlg::Sha384).expect("key")),
            Box::new(FileKey::generate(KeyType::Ed25519, HashAlg::Sha512).expect("key")),
            Box::new(Pss::new(32)),
        ];
        for key in &keys {
            let alg = key.signature_algorithm();
            for (what, spoil) in spoilers() {
                let faulty = Faulty {
                    inner: key.as_ref(),
                    spoil,
                };
                assert!(
                    matches!(root(&faulty), Err(Error::SignatureCheck)),
                    "{alg:?} root, {what}"
                );
                assert!(
                    matches!(
                        leaf_tbs(key.as_ref()).sign(&faulty),
                        Err(Error::SignatureCheck)
                    ),
                    "{alg:?} leaf, {what}"
                );
            }
            // A valid signature by another key of the same kind.
            let other: Box<dyn KeyBackend> = match alg {
                SignatureAlgorithm::RsaPssSha256 => Box::new(Pss::new(32)),
                _ => {
                    let kt = match alg {
                        SignatureAlgorithm::EcdsaSha256 => KeyType::EcP256,
                        SignatureAlgorithm::Ed25519 => KeyType::Ed25519,
                        _ => KeyType::Rsa(2048),
                    };
                    Box::new(FileKey::generate(kt, alg.hash()).expect("key"))
                }
            };
            let tbs = leaf_tbs(key.as_ref());
            let foreign = other.sign(tbs.tbs_der()).expect("sign");
            let impostor = Faulty {
                inner: key.as_ref(),
                spoil: Box::new(move |_| foreign.clone()),
            };
            assert!(
                matches!(tbs.sign(&impostor), Err(Error::SignatureCheck)),
                "{alg:?}: another key's signature"
            );
        }
    }

    #[test]
    fn pss_signatures_must_use_the_profile_salt() {
        // A salt of 0 verifies for openssl only with salt length 0: the CA's
        // algorithm identifier says 32.
        let key = Pss::new(0);
        assert!(matches!(root(&key), Err(Error::SignatureCheck)));
        // openssl, told the certificate's parameters, refuses it too.
        let sig = key.sign(b"message").expect("sign");
        let public = PKey::public_key_from_der(key.public_key_der()).expect("spki");
        let mut verifier =
            openssl::sign::Verifier::new(MessageDigest::sha256(), &public).expect("v");
        verifier
            .set_rsa_padding(Padding::PKCS1_PSS)
            .expect("padding");
        verifier
            .set_rsa_pss_saltlen(RsaPssSaltlen::custom(32))
            .expect("salt");
        verifier
            .set_rsa_mgf1_md(MessageDigest::sha256())
            .expect("mgf1");
        assert!(!verifier.verify_oneshot(&sig, b"message").unwrap_or(false));
        let key =
            CaPublicKey::new(key.public_key_der(), SignatureAlgorithm::RsaPssSha256).expect("key");
        assert!(!key.verify(b"message", &sig).expect("verify"));
    }

    #[test]
    fn signed_parts_must_be_exactly_one_structure() {
        let key = FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key");
        let der = root(&key).expect("root").der;
        let parts = SignedParts::of(&der).expect("parts");
        assert_eq!(
            parts.algorithm,
            key.signature_algorithm()
                .algorithm_identifier()
                .to_der()
                .expect("alg")
                .as_slice()
        );
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(SignedParts::of(&trailing).is_err());
        assert!(SignedParts::of(&der[..der.len() - 1]).is_err());
    }
}
