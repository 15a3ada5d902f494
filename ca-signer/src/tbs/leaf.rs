//! The TBS of a leaf certificate.

use std::net::IpAddr;

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::CN;
use const_oid::db::rfc5280::{ID_AD_CA_ISSUERS, ID_AD_OCSP, ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use der::Decode;
use der::asn1::{Ia5String, OctetString};
use rand::RngCore;
use shared_proto::{Identifier, IdentifierKind};
use spki::SubjectPublicKeyInfoOwned;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, BasicConstraints, ExtendedKeyUsage, KeyUsage,
    KeyUsages, SubjectAltName,
};
use x509_cert::name::Name;

use super::ext::{authority_key_id, certificate_policies, crl_distribution_points, ext, uri};
use super::{Expectations, FixedProfile, IssuerInfo, LeafUrls, LintedTbs, name, random_serial};
use crate::error::Error;
use crate::policy::Checked;

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

/// CA/Browser Forum domain-validated policy (BR §7.1.6.1).
pub const CABF_DOMAIN_VALIDATED: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.23.140.1.2.1");

/// The EKUs of a leaf: serverAuth, and clientAuth if the profile says so.
pub(super) fn leaf_ekus(client_auth: bool) -> Vec<ObjectIdentifier> {
    let mut ekus = vec![ID_KP_SERVER_AUTH];
    if client_auth {
        ekus.push(ID_KP_CLIENT_AUTH);
    }
    ekus
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
