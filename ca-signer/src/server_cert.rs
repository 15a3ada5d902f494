//! The frontend's own HTTPS certificate, issued by the signer at start from
//! its configuration (`[server_certificate]`), never on request.
//!
//! It is reused while it is issued by the current CA, names exactly the
//! configured names, matches its key, has the configured key type and more
//! than [`RENEW_BEFORE_SECS`] left; otherwise a new key and certificate
//! replace it. A certificate this CA did not sign is an operator's: it is
//! never overwritten (the frontend serves it as it is), and a certificate
//! without its key (or a key without its certificate) is refused.

use std::collections::BTreeSet;
use std::net::IpAddr;

use openssl::asn1::Asn1Time;
use openssl::pkey::PKey;
use openssl::x509::X509;
use rand::RngCore;

use crate::ca;
use crate::config::{HashAlg, KeyType, ServerCertificate};
use crate::error::Error;
use crate::files::{self, CERT_MODE, KEY_MODE};
use crate::keys::KeyBackend;
use crate::keys::file::FileKey;
use crate::policy;
use crate::service::Issuer;

/// The `detail` of the audit record of a server certificate. ACME issuances
/// carry `account=… order=…` instead; `akamu-cli audit reconcile` tells the
/// two apart by it (server certificates are not in the frontend's database).
pub const AUDIT_DETAIL: &str = "server certificate";

/// Reissue when the certificate expires within this many seconds (7 days).
pub const RENEW_BEFORE_SECS: i64 = 7 * 86_400;

/// What [`ensure`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The existing certificate and key were kept.
    Reused,
    /// A new key and certificate were written.
    Issued,
    /// The files hold a certificate this CA did not sign (an operator's):
    /// left as they are.
    Foreign,
}

/// Makes sure `config`'s files hold a valid certificate from `issuer`.
pub fn ensure(
    config: &ServerCertificate,
    issuer: &Issuer,
    now: i64,
    rng: &mut dyn RngCore,
) -> Result<Outcome, Error> {
    match (config.cert_file.exists(), config.key_file.exists()) {
        (true, true) if !signed_by_ca(config, issuer) => {
            tracing::warn!(target: "signer", cert = %config.cert_file.display(), "server certificate was not issued by this CA; leaving it as it is");
            return Ok(Outcome::Foreign);
        }
        (true, false) | (false, true) => {
            return Err(Error::ConfigValue {
                field: "server_certificate",
                problem: format!(
                    "TLS cert and key must both be present or both absent ({} and {})",
                    config.cert_file.display(),
                    config.key_file.display()
                ),
            });
        }
        _ => {}
    }
    match reusable(config, issuer, now) {
        Ok(true) => {
            tracing::info!(target: "signer", cert = %config.cert_file.display(), "server certificate is current; reusing it");
            return Ok(Outcome::Reused);
        }
        Ok(false) => {}
        Err(e) => {
            tracing::info!(target: "signer", cert = %config.cert_file.display(), reason = %e, "server certificate unusable; reissuing");
        }
    }
    let key = FileKey::generate(config.key_type, HashAlg::Sha256)?;
    let checked = policy::check_server_certificate(
        &issuer.profile(),
        &config.names,
        key.public_key_der(),
        now,
    )?;
    let signed = issuer.sign_checked(checked, None, AUDIT_DETAIL, None, now, rng)?;
    let chain = format!("{}{}", ca::pem(&signed.der)?, issuer.ca().chain_pem());
    files::write_atomic(&config.key_file, &key.to_pkcs8_pem()?, KEY_MODE)?;
    files::write_atomic(&config.cert_file, chain.as_bytes(), CERT_MODE)?;
    tracing::info!(
        target: "signer",
        serial = %signed.serial_hex,
        names = ?config.names,
        cert = %config.cert_file.display(),
        "issued server certificate"
    );
    Ok(Outcome::Issued)
}

/// Whether the existing files can be kept. Errors mean "no" with a reason.
fn reusable(config: &ServerCertificate, issuer: &Issuer, now: i64) -> Result<bool, Error> {
    if !config.cert_file.exists() || !config.key_file.exists() {
        return Ok(false);
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })
    };
    let chain = X509::stack_from_pem(&read(&config.cert_file)?)?;
    let Some(leaf) = chain.first() else {
        return Ok(false);
    };
    let ca_key = PKey::public_key_from_der(issuer.ca().key().public_key_der())?;
    if !leaf.verify(&ca_key)? {
        return Ok(false);
    }
    let key = PKey::private_key_from_pem(&read(&config.key_file)?)?;
    if !leaf.public_key()?.public_eq(&key) {
        return Ok(false);
    }
    if key_type_of(&key) != Some(config.key_type) {
        return Ok(false);
    }
    if leaf.not_after() <= Asn1Time::from_unix(now.saturating_add(RENEW_BEFORE_SECS))? {
        return Ok(false);
    }
    let wanted: BTreeSet<String> = config.names.iter().map(|n| canonical(n)).collect();
    let mut have = BTreeSet::new();
    for name in leaf.subject_alt_names().iter().flatten() {
        if let Some(dns) = name.dnsname() {
            have.insert(canonical(dns));
        } else if let Some(ip) = name.ipaddress() {
            let ip = match ip.len() {
                4 => <[u8; 4]>::try_from(ip).ok().map(IpAddr::from),
                16 => <[u8; 16]>::try_from(ip).ok().map(IpAddr::from),
                _ => None,
            };
            have.extend(ip.map(|ip| ip.to_string()));
        }
    }
    Ok(have == wanted)
}

/// Whether the first certificate of `cert_file` is signed by this CA's key
/// (false when it cannot be read: then it is not one we wrote either).
fn signed_by_ca(config: &ServerCertificate, issuer: &Issuer) -> bool {
    let Ok(pem) = std::fs::read(&config.cert_file) else {
        return false;
    };
    let Some(leaf) = X509::stack_from_pem(&pem)
        .ok()
        .and_then(|chain| chain.into_iter().next())
    else {
        return false;
    };
    PKey::public_key_from_der(issuer.ca().key().public_key_der())
        .and_then(|ca_key| leaf.verify(&ca_key))
        .unwrap_or(false)
}

/// The configured key type a key is of, if any.
fn key_type_of<T: openssl::pkey::HasPublic>(key: &PKey<T>) -> Option<KeyType> {
    use openssl::nid::Nid;
    use openssl::pkey::Id;
    match key.id() {
        Id::EC => match key.ec_key().ok()?.group().curve_name()? {
            Nid::X9_62_PRIME256V1 => Some(KeyType::EcP256),
            Nid::SECP384R1 => Some(KeyType::EcP384),
            Nid::SECP521R1 => Some(KeyType::EcP521),
            _ => None,
        },
        Id::RSA => Some(KeyType::Rsa(key.bits())),
        Id::ED25519 => Some(KeyType::Ed25519),
        _ => None,
    }
}

fn canonical(name: &str) -> String {
    match name.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => name.trim_end_matches('.').to_ascii_lowercase(),
    }
}
