//! Building and signing v2 CRLs (RFC 5280 §5) for the issuing CA.
//!
//! The CRL is encoded with x509-cert's `crl` types directly rather than its
//! `CrlBuilder`, which copies an intermediate issuer's AKI instead of deriving
//! it from the issuer's SKI (see CRATE-NOTES). Extensions: AKI (the issuer's
//! SKI) and CRL Number; entries carry a reasonCode unless the reason is
//! unspecified (Baseline Requirements §7.2.2).
//!
//! Like certificates, a CRL is built and linted first ([`build`] →
//! [`LintedCrl`]) and signed once ([`LintedCrl::sign`]).

use std::collections::BTreeMap;
use std::time::Duration;

use der::asn1::{BitString, GeneralizedTime, UtcTime};
use der::{Decode, Encode};
use openssl::x509::X509Crl;
use shared_proto::signer::RevokedEntry;
use x509_cert::certificate::Version;
use x509_cert::crl::{CertificateList, RevokedCert, TbsCertList};
use x509_cert::ext::pkix::crl::CrlNumber;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CrlReason};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Time;

use crate::error::{Error, PolicyRefusal};
use crate::keys::{CaPublicKey, KeyBackend};
use crate::tbs::{IssuerInfo, ext};

/// A CRL TBS, built and linted, ready to be signed once.
pub struct LintedCrl {
    tbs: TbsCertList,
    tbs_der: Vec<u8>,
    issuer_key: CaPublicKey,
    number: u64,
    entries: usize,
}

/// A signed CRL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCrlDer {
    /// The CRL, DER.
    pub der: Vec<u8>,
    /// Its CRL Number.
    pub number: u64,
    /// Number of entries.
    pub entries: usize,
}

/// Builds the TBS of a CRL numbered `number`, valid from `this_update` to
/// `next_update` (Unix seconds), listing `revoked`. Duplicate serials are
/// listed once (the earliest revocation wins).
pub fn build(
    issuer: &IssuerInfo,
    revoked: &[RevokedEntry],
    number: u64,
    this_update: i64,
    next_update: i64,
) -> Result<LintedCrl, Error> {
    if next_update <= this_update {
        return Err(Error::Lint("CRL nextUpdate not after thisUpdate"));
    }
    let mut by_serial: BTreeMap<Vec<u8>, (i64, Option<CrlReason>)> = BTreeMap::new();
    for entry in revoked {
        let serial = parse_serial(&entry.serial_hex)?;
        let reason = reason(entry.reason)?;
        if entry.revoked_at < 0 {
            return Err(PolicyRefusal::BadRevocation(format!(
                "revocation time of {} before 1970",
                entry.serial_hex
            ))
            .into());
        }
        let slot = by_serial
            .entry(serial)
            .or_insert((entry.revoked_at, reason));
        if entry.revoked_at < slot.0 {
            *slot = (entry.revoked_at, reason);
        }
    }
    let mut entries = Vec::with_capacity(by_serial.len());
    for (serial, (at, reason)) in &by_serial {
        let crl_entry_extensions = match reason {
            Some(r) => Some(vec![ext(r, false)?]),
            None => None,
        };
        entries.push(RevokedCert {
            serial_number: SerialNumber::new(serial)?,
            revocation_date: time(*at)?,
            crl_entry_extensions,
        });
    }
    let aki = AuthorityKeyIdentifier {
        key_identifier: Some(der::asn1::OctetString::new(issuer.key_id.clone())?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    let tbs = TbsCertList {
        version: Version::V2,
        signature: issuer.algorithm().algorithm_identifier(),
        issuer: issuer.name.clone(),
        this_update: time(this_update)?,
        next_update: Some(time(next_update)?),
        revoked_certificates: (!entries.is_empty()).then_some(entries),
        crl_extensions: Some(vec![
            ext(&aki, false)?,
            ext(&CrlNumber::try_from(number)?, false)?,
        ]),
    };
    let tbs_der = tbs.to_der()?;
    lint(&tbs_der, issuer, number)?;
    Ok(LintedCrl {
        tbs,
        tbs_der,
        issuer_key: issuer.public_key.clone(),
        number,
        entries: by_serial.len(),
    })
}

impl LintedCrl {
    /// The DER TBSCertList that [`LintedCrl::sign`] will sign.
    pub fn tbs_der(&self) -> &[u8] {
        &self.tbs_der
    }

    /// Signs with `key` (the issuer's) and checks the signature.
    pub fn sign(self, key: &dyn KeyBackend) -> Result<SignedCrlDer, Error> {
        if key.public_key_der() != self.issuer_key.spki_der()
            || key.signature_algorithm().algorithm_identifier() != self.tbs.signature
        {
            return Err(Error::WrongSigningKey);
        }
        let signature =
            crate::metrics::sign(crate::metrics::SignatureKind::Crl, key, &self.tbs_der)?;
        let crl = CertificateList {
            signature_algorithm: self.tbs.signature.clone(),
            tbs_cert_list: self.tbs,
            signature: BitString::from_bytes(&signature)?,
        };
        let der = crl.to_der()?;
        if !X509Crl::from_der(&der)?.verify(self.issuer_key.pkey())? {
            return Err(Error::SignatureCheck);
        }
        Ok(SignedCrlDer {
            der,
            number: self.number,
            entries: self.entries,
        })
    }
}

/// Decodes the TBS again and checks what a relying party relies on.
fn lint(tbs_der: &[u8], issuer: &IssuerInfo, number: u64) -> Result<(), Error> {
    let tbs = TbsCertList::<x509_cert::certificate::Rfc5280>::from_der(tbs_der)?;
    if tbs.version != Version::V2 {
        return Err(Error::Lint("CRL is not v2"));
    }
    if tbs.issuer != issuer.name {
        return Err(Error::Lint("CRL issuer differs from the CA subject"));
    }
    let exts = tbs.crl_extensions.as_deref().unwrap_or_default();
    let aki =
        crate::tbs::find::<AuthorityKeyIdentifier>(exts)?.ok_or(Error::Lint("CRL without AKI"))?;
    if aki.1.key_identifier.as_ref().map(|k| k.as_bytes()) != Some(issuer.key_id.as_slice()) {
        return Err(Error::Lint("CRL AKI is not the issuer's SKI"));
    }
    let n = crate::tbs::find::<CrlNumber>(exts)?.ok_or(Error::Lint("CRL without CRL Number"))?;
    if n.1.0 != der::asn1::Uint::try_from(number)? {
        return Err(Error::Lint("CRL Number differs"));
    }
    Ok(())
}

/// Parses a lower-case hex serial into its unsigned magnitude bytes.
fn parse_serial(hex_serial: &str) -> Result<Vec<u8>, Error> {
    let magnitude = akamu_pki::serial::decode(hex_serial)
        .map_err(|e| PolicyRefusal::BadRevocation(format!("serial {hex_serial:?}: {e}")))?;
    // A positive INTEGER: a leading 0x00 when the top bit is set.
    let mut out = Vec::with_capacity(magnitude.len() + 1);
    if magnitude.first().is_some_and(|b| b & 0x80 != 0) {
        out.push(0);
    }
    out.extend(magnitude);
    Ok(out)
}

/// The reasonCode for an RFC 5280 CRLReason value: `None` for unspecified.
/// Values outside CRLReason (7, negative, above 10) are refused. Which codes
/// subscribers and operators may use is the frontend's decision.
fn reason(code: Option<i32>) -> Result<Option<CrlReason>, Error> {
    Ok(match code {
        None | Some(0) => None,
        Some(1) => Some(CrlReason::KeyCompromise),
        Some(2) => Some(CrlReason::CaCompromise),
        Some(3) => Some(CrlReason::AffiliationChanged),
        Some(4) => Some(CrlReason::Superseded),
        Some(5) => Some(CrlReason::CessationOfOperation),
        Some(6) => Some(CrlReason::CertificateHold),
        Some(8) => Some(CrlReason::RemoveFromCRL),
        Some(9) => Some(CrlReason::PrivilegeWithdrawn),
        Some(10) => Some(CrlReason::AaCompromise),
        Some(other) => {
            return Err(PolicyRefusal::BadRevocation(format!(
                "reason code {other} is not an RFC 5280 CRLReason (0-6, 8-10)"
            ))
            .into());
        }
    })
}

/// UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §5.1.2.4).
pub fn time(unix: i64) -> Result<Time, Error> {
    let secs = u64::try_from(unix).map_err(|_| Error::Lint("time before 1970"))?;
    let d = Duration::from_secs(secs);
    Ok(match UtcTime::from_unix_duration(d) {
        Ok(t) => Time::UtcTime(t),
        Err(_) => Time::GeneralTime(GeneralizedTime::from_unix_duration(d)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_parsing() {
        assert_eq!(parse_serial("01").expect("01"), vec![1]);
        assert_eq!(parse_serial("abc").expect("abc"), vec![0x0a, 0xbc]);
        assert_eq!(parse_serial("80").expect("80"), vec![0, 0x80]);
        // The one serial spelling (akamu_pki::serial) accepts any case.
        assert_eq!(parse_serial("AB").expect("AB"), vec![0, 0xab]);
        for bad in ["", "zz", "00", &"11".repeat(21)] {
            assert!(parse_serial(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reasons() {
        assert_eq!(reason(None).expect("none"), None);
        assert_eq!(reason(Some(0)).expect("0"), None);
        assert_eq!(reason(Some(1)).expect("1"), Some(CrlReason::KeyCompromise));
        for bad in [-1, 7, 11] {
            assert!(reason(Some(bad)).is_err(), "{bad}");
        }
    }
}
