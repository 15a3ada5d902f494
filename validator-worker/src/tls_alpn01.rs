//! tls-alpn-01 (RFC 8737; IP identifiers RFC 8738 §6).
//!
//! Connects to a resolved, policy-checked address on the tls-alpn-01 port,
//! offers exactly the `acme-tls/1` ALPN protocol with SNI set to the name (the
//! reverse-DNS name for an IP identifier), requires the server to select
//! `acme-tls/1`, and checks the end-entity certificate: a critical
//! id-pe-acmeIdentifier extension holding SHA-256 of the key authorization, and
//! exactly one subjectAltName entry equal to the identifier. The chain is not
//! validated (see [`crate::danger`]).

use std::fmt::Write as _;
use std::net::IpAddr;

use const_oid::ObjectIdentifier;
use der::Decode;
use der::asn1::OctetString;
use rustls::pki_types::{DnsName, ServerName};
use shared_proto::Identifier;
use shared_proto::validator::{ChallengeType, ValidationRecord};
use x509_cert::Certificate;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

use crate::error::{CertError, ProbeError, RequestError, TlsError};
use crate::probe::{Host, Prober};

/// id-pe-acmeIdentifier (RFC 8737 §6.1).
pub const ID_PE_ACME_IDENTIFIER: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.31");

/// Validates a tls-alpn-01 challenge for `identifier`.
pub async fn validate(
    prober: &Prober,
    identifier: &Identifier,
    key_authorization: &str,
) -> Result<ValidationRecord, ProbeError> {
    if identifier.is_wildcard() {
        return Err(RequestError::Unsupported {
            challenge: ChallengeType::TlsAlpn01,
            identifier: identifier.to_string(),
            reason: "wildcard identifiers can only be validated with dns-01 (RFC 8737 §3)",
        }
        .into());
    }
    let host = Host::from_identifier(identifier)?;
    let port = prober.config.tls_alpn_validation_port;
    let resolved = prober.resolve(&host, true).await?;
    let (stream, addr) = prober.connect(&host, port, &resolved).await?;

    let sni = sni_name(&host).map_err(|_| RequestError::BadIdentifier(identifier.value.clone()))?;
    let connector = tokio_rustls::TlsConnector::from(prober.acme_tls.clone());
    let tls = connector
        .connect(sni, stream)
        .await
        .map_err(|cause| TlsError::Handshake {
            host: host.to_string(),
            port,
            addr,
            cause,
        })?;
    let (_, session) = tls.get_ref();
    if session.alpn_protocol() != Some(crate::probe::ACME_TLS_ALPN) {
        return Err(TlsError::NoAlpn {
            host: host.to_string(),
            port,
            addr,
        }
        .into());
    }
    let Some(end_entity) = session.peer_certificates().and_then(|c| c.first()) else {
        return Err(TlsError::NoCertificate {
            host: host.to_string(),
            port,
            addr,
        }
        .into());
    };
    let expected = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    check_certificate(end_entity.as_ref(), expected.as_ref(), &host).map_err(|cause| {
        TlsError::Certificate {
            host: host.to_string(),
            port,
            addr,
            cause,
        }
    })?;
    Ok(ValidationRecord {
        url: None,
        hostname: host.to_string(),
        port: Some(port),
        address_used: resolved.address_used(addr),
        addresses_resolved: resolved.all,
        validated_at: crate::now_unix(),
        statement: None,
        persist_until: None,
        persist_hash: None,
    })
}

/// The SNI to send: the name, or for an IP identifier its reverse-DNS name
/// (RFC 8738 §6).
fn sni_name(host: &Host) -> Result<ServerName<'static>, rustls::pki_types::InvalidDnsNameError> {
    let name = match host {
        Host::Name(n) => n.clone(),
        Host::Ip(ip) => reverse_name(*ip),
    };
    Ok(ServerName::DnsName(DnsName::try_from(name)?))
}

/// `1.0.0.127.in-addr.arpa` / nibble-reversed `…ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                // Writing to a String cannot fail.
                let _ = write!(out, "{:x}.{:x}.", byte & 0x0f, byte >> 4);
            }
            out.push_str("ip6.arpa");
            out
        }
    }
}

/// Checks an RFC 8737 §3 validation certificate against the expected hash and
/// the identifier.
pub fn check_certificate(der: &[u8], expected_hash: &[u8], host: &Host) -> Result<(), CertError> {
    let cert = Certificate::from_der(der).map_err(CertError::Parse)?;
    let extensions = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or_default();

    let mut acme = extensions
        .iter()
        .filter(|e| e.extn_id == ID_PE_ACME_IDENTIFIER);
    let ext = acme.next().ok_or(CertError::MissingAcmeIdentifier)?;
    if acme.next().is_some() {
        return Err(CertError::DuplicateExtension("id-pe-acmeIdentifier"));
    }
    if !ext.critical {
        return Err(CertError::NotCritical);
    }
    let value = OctetString::from_der(ext.extn_value.as_bytes())
        .map_err(|_| CertError::BadAcmeIdentifier)?;
    if value.as_bytes().len() != 32 {
        return Err(CertError::BadAcmeIdentifier);
    }
    if value.as_bytes() != expected_hash {
        return Err(CertError::HashMismatch);
    }

    let mut sans = extensions
        .iter()
        .filter(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME);
    let san = sans.next().ok_or(CertError::MissingSan)?;
    if sans.next().is_some() {
        return Err(CertError::DuplicateExtension("subjectAltName"));
    }
    let SubjectAltName(names) =
        SubjectAltName::from_der(san.extn_value.as_bytes()).map_err(CertError::BadSan)?;
    let [only] = names.as_slice() else {
        return Err(CertError::SanCount(names.len()));
    };
    let matches = match (only, host) {
        (GeneralName::DnsName(d), Host::Name(n)) => d.as_str().eq_ignore_ascii_case(n),
        (GeneralName::IpAddress(o), Host::Ip(IpAddr::V4(a))) => o.as_bytes() == a.octets(),
        (GeneralName::IpAddress(o), Host::Ip(IpAddr::V6(a))) => o.as_bytes() == a.octets(),
        _ => false,
    };
    if !matches {
        return Err(CertError::SanMismatch {
            found: describe(only),
        });
    }
    Ok(())
}

fn describe(name: &GeneralName) -> String {
    match name {
        GeneralName::DnsName(d) => format!(
            "dNSName {:?}",
            crate::error::sanitize_excerpt(d.as_str().as_bytes(), 253)
        ),
        GeneralName::IpAddress(o) => match o.as_bytes().len() {
            4 | 16 => {
                let b = o.as_bytes();
                let ip: Option<IpAddr> = <[u8; 4]>::try_from(b)
                    .map(IpAddr::from)
                    .ok()
                    .or_else(|| <[u8; 16]>::try_from(b).map(IpAddr::from).ok());
                ip.map_or_else(|| "iPAddress".to_owned(), |ip| format!("iPAddress {ip}"))
            }
            n => format!("iPAddress of {n} bytes"),
        },
        _ => "of an unsupported type".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("127.0.0.1".parse().expect("ip")),
            "1.0.0.127.in-addr.arpa"
        );
        assert_eq!(
            reverse_name("2001:db8::567:89ab".parse().expect("ip")),
            "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        assert!(sni_name(&Host::Ip("::1".parse().expect("ip"))).is_ok());
    }
}
