//! Building TBS certificates: the second of three steps (policy → tbs → sign).
//!
//! [`build_leaf`] turns a [`Checked`](crate::policy::Checked) request into a
//! [`LintedTbs`] with x509-cert's `CertificateBuilder` and our own
//! `BuilderProfile`; the TBS is decoded again and linted against what was
//! checked before anything is signed. [`LintedTbs::sign`] consumes the
//! value, so each checked request is signed at most once and exactly as
//! built.
//!
//! Randomness (the serial) and time (from the `Checked`) are inputs.
//!
//! Files: [`leaf`] builds leaves, [`ca_cert`] roots and intermediates,
//! `lint` checks what was built, `ext` encodes extensions and `builder`
//! adapts our types to x509-cert's builder.

use std::time::Duration;

use const_oid::ObjectIdentifier;
use der::asn1::Utf8StringRef;
use der::asn1::{BitString, BitStringRef, GeneralizedTime};
use der::{Any, Decode, Encode, Header, Reader, SliceReader, Tag};
use rand::RngCore;
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::error::Error;
use crate::keys::{CaPublicKey, KeyBackend, SignatureAlgorithm};

mod builder;
pub mod ca_cert;
mod ext;
pub mod leaf;
mod lint;
#[cfg(test)]
mod tests;

use builder::{FixedProfile, IssuerAdapter};
pub use ca_cert::{CaProfile, build_ca, build_root, self_issuer};
pub(crate) use ext::{ext, find};
pub use leaf::{CABF_DOMAIN_VALIDATED, build_leaf};
use lint::{Expectations, lint};

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
    /// Its index in the transparency log, once appended (`None` while
    /// `[mtc]` is off).
    pub mtc_log_index: Option<u64>,
}

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
        let serial_hex = akamu_pki::serial::to_hex(serial.as_bytes());
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
        let signature = crate::metrics::sign(
            crate::metrics::SignatureKind::Certificate,
            key,
            &self.tbs_der,
        )?;
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
            mtc_log_index: None,
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

fn time(unix: i64) -> Result<Time, Error> {
    let secs = u64::try_from(unix).map_err(|_| Error::Lint("time before 1970"))?;
    // CertificateBuilder::new turns this into UTCTime up to 2049 (RFC 5280 §4.1.2.5).
    Ok(Time::GeneralTime(GeneralizedTime::from_unix_duration(
        Duration::from_secs(secs),
    )?))
}
