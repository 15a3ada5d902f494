//! Encoding and finding certificate extensions.

use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{Ia5String, OctetString};
use der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::certpolicy::PolicyInformation;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, CertificatePolicies, CrlDistributionPoints};

use crate::error::Error;

pub(super) fn crl_distribution_points(url: &str) -> Result<CrlDistributionPoints, Error> {
    Ok(CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    }]))
}

pub(super) fn certificate_policies(oids: &[ObjectIdentifier]) -> CertificatePolicies {
    CertificatePolicies(
        oids.iter()
            .map(|oid| PolicyInformation {
                policy_identifier: *oid,
                policy_qualifiers: None,
            })
            .collect(),
    )
}

/// The extension of type `T`, decoded, with its critical flag.
pub(crate) fn find<'a, T: Decode<'a, Error = der::Error> + AssociatedOid>(
    extensions: &'a [Extension],
) -> Result<Option<(bool, T)>, Error> {
    match extensions.iter().find(|e| e.extn_id == T::OID) {
        Some(e) => Ok(Some((e.critical, T::from_der(e.extn_value.as_bytes())?))),
        None => Ok(None),
    }
}

pub(super) fn uri(url: &str) -> Result<GeneralName, Error> {
    Ok(GeneralName::UniformResourceIdentifier(Ia5String::new(url)?))
}

pub(super) fn authority_key_id(id: &[u8]) -> Result<AuthorityKeyIdentifier, Error> {
    Ok(AuthorityKeyIdentifier {
        key_identifier: Some(OctetString::new(id)?),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    })
}

/// Encodes `value` as an extension.
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
