//! ACME Renewal Information (RFC 9773): the certificate identifier and the
//! suggested renewal window.

use akamu_jose::b64;
use openssl::x509::X509;
use serde::Deserialize;

use crate::{AcmeClient, ClientError, pem_to_der};

/// The server's suggested renewal window (RFC 9773 §4.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenewalInfo {
    /// Start of the window, RFC 3339.
    pub window_start: String,
    /// End of the window, RFC 3339.
    pub window_end: String,
    /// `Retry-After` of the response, in seconds: when to ask again.
    pub retry_after_secs: Option<u64>,
    /// `explanationURL`, when the server gave one.
    pub explanation_url: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenewalInfoBody {
    suggested_window: Window,
    #[serde(default, rename = "explanationURL")]
    explanation_url: Option<String>,
}

#[derive(Deserialize)]
struct Window {
    start: String,
    end: String,
}

/// The RFC 9773 §4.1 certificate identifier of a DER certificate:
/// `base64url(AKI keyIdentifier) "." base64url(serial DER bytes)`.
pub fn renewal_cert_id(cert_der: &[u8]) -> Result<String, ClientError> {
    let cert = X509::from_der(cert_der)
        .map_err(|e| ClientError::Crypto(format!("cannot parse the certificate: {e}")))?;
    let aki = cert.authority_key_id().ok_or_else(|| {
        ClientError::InvalidArgument(
            "the certificate has no Authority Key Identifier keyIdentifier".into(),
        )
    })?;
    let serial = cert.serial_number().to_bn()?;
    Ok(cert_id_from_parts(
        aki.as_slice(),
        &serial_der_bytes(&serial.to_vec()),
    ))
}

/// Joins a key identifier and the content octets of a DER serial INTEGER.
pub fn cert_id_from_parts(key_identifier: &[u8], serial_der: &[u8]) -> String {
    format!("{}.{}", b64(key_identifier), b64(serial_der))
}

/// The content octets of a DER INTEGER for a non-negative magnitude: a
/// leading zero when the top bit is set, `00` for zero.
fn serial_der_bytes(magnitude: &[u8]) -> Vec<u8> {
    match magnitude.first() {
        None => vec![0],
        Some(b) if b & 0x80 != 0 => {
            let mut v = Vec::with_capacity(magnitude.len() + 1);
            v.push(0);
            v.extend_from_slice(magnitude);
            v
        }
        Some(_) => magnitude.to_vec(),
    }
}

impl AcmeClient {
    /// Asks the server when to renew the (first) certificate in `cert_pem`
    /// (RFC 9773 §4.2). [`ClientError::Unsupported`] when the directory
    /// advertises no `renewalInfo`; the server's error when it has no answer.
    pub async fn get_renewal_info(&self, cert_pem: &[u8]) -> Result<RenewalInfo, ClientError> {
        let der = pem_to_der(cert_pem).into_iter().next().ok_or_else(|| {
            ClientError::InvalidArgument("no PEM certificate in the input".into())
        })?;
        let id = renewal_cert_id(&der)?;
        let Some(base) = self.directory().renewal_info.clone() else {
            return Err(ClientError::Unsupported(
                "the directory advertises no renewalInfo endpoint (RFC 9773)".into(),
            ));
        };
        let url = format!("{}/{id}", base.trim_end_matches('/'));
        let resp = self.get(&url).await?;
        let body: RenewalInfoBody = resp.json("renewal info")?;
        Ok(RenewalInfo {
            window_start: body.suggested_window.start,
            window_end: body.suggested_window.end,
            retry_after_secs: resp.retry_after().map(|d| d.as_secs()),
            explanation_url: body.explanation_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use openssl::asn1::{Asn1Object, Asn1OctetString, Asn1Time};
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::x509::{X509Extension, X509NameBuilder};

    use super::*;

    /// RFC 9773 §4.1's example: keyIdentifier 69:88:5B:6B:87:46:40:41:E1:B3:
    /// 7B:84:7B:A0:AE:2C:DE:01:C8:D4 and serial 0x87654321 give
    /// `aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE`.
    const AKI: [u8; 20] = [
        0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3, 0x7B, 0x84, 0x7B, 0xA0, 0xAE,
        0x2C, 0xDE, 0x01, 0xC8, 0xD4,
    ];
    const EXPECTED: &str = "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE";

    #[test]
    fn rfc9773_example_from_parts() {
        let serial = serial_der_bytes(&[0x87, 0x65, 0x43, 0x21]);
        assert_eq!(serial, [0x00, 0x87, 0x65, 0x43, 0x21]);
        assert_eq!(cert_id_from_parts(&AKI, &serial), EXPECTED);
        assert_eq!(serial_der_bytes(&[0x12]), [0x12]);
        assert_eq!(serial_der_bytes(&[]), [0]);
    }

    #[test]
    fn rfc9773_example_from_a_certificate() {
        let key = openssl::pkey::PKey::generate_ed25519().expect("key");
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("v3");
        let serial = BigNum::from_hex_str("87654321").expect("bn");
        b.set_serial_number(&serial.to_asn1_integer().expect("int"))
            .expect("serial");
        let mut name = X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "ari test").expect("cn");
        let name = name.build();
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(&key).expect("pubkey");
        b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
            .expect("nb");
        b.set_not_after(&Asn1Time::days_from_now(1).expect("t"))
            .expect("na");
        // AuthorityKeyIdentifier ::= SEQUENCE { [0] keyIdentifier }
        let mut aki_der = vec![0x30, 22, 0x80, 20];
        aki_der.extend_from_slice(&AKI);
        let oid = Asn1Object::from_str("2.5.29.35").expect("oid");
        let value = Asn1OctetString::new_from_bytes(&aki_der).expect("octets");
        b.append_extension(X509Extension::new_from_der(&oid, false, &value).expect("ext"))
            .expect("append");
        b.sign(&key, MessageDigest::null()).expect("sign");
        let der = b.build().to_der().expect("der");
        assert_eq!(renewal_cert_id(&der).expect("id"), EXPECTED);
    }
}
