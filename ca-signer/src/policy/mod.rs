//! The signer's leaf policy: the first of three steps (policy → tbs → sign).
//!
//! [`check`] takes an untrusted [`IssueRequest`] and either refuses it or
//! returns a [`Checked`], the only input [`crate::tbs::build_leaf`] accepts.
//! It re-parses and verifies the CSR (the signer trusts no caller), checks
//! that the CSR names exactly the identifiers, checks every identifier's
//! syntax, the subscriber key, and computes the validity window.
//!
//! Pure: `now` is a parameter, nothing here reads the clock or does I/O.
//!
//! The subscriber key checks (sizes, curves, ROCA, Fermat, blocklist) are
//! in [`public_key`].

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

use akamu_pki::csr::ParsedCsr;
use shared_proto::identifier::is_valid_dns_name;
use shared_proto::signer::IssueRequest;
use shared_proto::{Identifier, IdentifierKind};

use crate::config::KeyType;
use crate::error::{Error, PolicyRefusal};

pub mod public_key;
#[cfg(test)]
mod tests;

use public_key::check_key;
pub use public_key::{
    FERMAT_ROUNDS, check_public_key, fermat_factor, roca_fingerprint, spki_sha256,
};

/// Most identifiers one certificate may carry (Let's Encrypt's limit).
pub const MAX_IDENTIFIERS: usize = 100;
/// How far in the past a requested `notBefore` may lie.
pub const MAX_BACKDATE_SECS: i64 = 3600;
/// Longest commonName (X.520 `ub-common-name`).
const MAX_CN_CHARS: usize = 64;

/// The leaf profile the policy enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// The profile's name (`tls-server` by default), for the audit log.
    pub name: String,
    /// Validity of a leaf, in seconds; also the longest a request may ask for.
    pub validity_secs: i64,
    /// Most SANs per certificate.
    pub max_sans: usize,
    /// Add the clientAuth EKU.
    pub client_auth: bool,
    /// Put a DNS name in the subject commonName (never an IP address: an
    /// IP-only certificate has an empty subject).
    pub common_name: bool,
    /// Seconds after validation an authorization serves orders under this
    /// profile (told to the frontend, which reuses authorizations).
    pub authz_reuse_secs: Option<i64>,
    /// The CA certificate's `notAfter` (Unix seconds): no leaf outlives it.
    pub ca_not_after: i64,
    /// The subscriber key types accepted (`[profiles.<name>] key_types`);
    /// `None`: the [`KeyPolicy`] defaults.
    pub key_types: Option<Vec<KeyType>>,
}

impl Profile {
    /// A `tls-server` profile of `validity_days` under a CA expiring at
    /// `ca_not_after`.
    pub fn tls_server(validity_days: u32, ca_not_after: i64) -> Self {
        Self {
            name: crate::config::DEFAULT_PROFILE.to_owned(),
            validity_secs: i64::from(validity_days) * 86_400,
            max_sans: MAX_IDENTIFIERS,
            client_auth: false,
            common_name: true,
            authz_reuse_secs: None,
            ca_not_after,
            key_types: None,
        }
    }
}

/// What subscriber keys are accepted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPolicy {
    /// Accept ECDSA P-521.
    pub allow_p521: bool,
    /// Accept Ed25519.
    pub allow_ed25519: bool,
    /// When set, exactly these key types are accepted (a profile's
    /// `key_types`), whatever `allow_p521` and `allow_ed25519` say.
    pub key_types: Option<Vec<KeyType>>,
    /// SHA-256 hashes of refused SubjectPublicKeyInfos.
    pub blocked: Arc<BTreeSet<[u8; 32]>>,
}

/// A request that passed [`check`]: everything [`crate::tbs::build_leaf`]
/// needs, and nothing from the caller that was not checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    pub(crate) spki_der: Vec<u8>,
    pub(crate) common_name: Option<String>,
    pub(crate) sans: Vec<Identifier>,
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    pub(crate) rsa_subscriber: bool,
    pub(crate) client_auth: bool,
    pub(crate) ca_not_after: i64,
    pub(crate) max_validity_secs: i64,
    pub(crate) profile: String,
}

impl Checked {
    /// The name of the profile the request was checked against (recorded
    /// with the issuance).
    pub fn profile(&self) -> &str {
        &self.profile
    }
    /// The subscriber's SubjectPublicKeyInfo, DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }
    /// The subject commonName the leaf will carry, if any.
    pub fn common_name(&self) -> Option<&str> {
        self.common_name.as_deref()
    }
    /// The SANs, sorted and without duplicates.
    pub fn sans(&self) -> &[Identifier] {
        &self.sans
    }
    /// `notBefore`, Unix seconds.
    pub fn not_before(&self) -> i64 {
        self.not_before
    }
    /// `notAfter`, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
}

/// Checks an issuance request against `profile` and `keys` at time `now`
/// (Unix seconds).
pub fn check(
    profile: &Profile,
    keys: &KeyPolicy,
    request: &IssueRequest,
    now: i64,
) -> Result<Checked, Error> {
    let sans = check_identifiers(&request.identifiers, is_valid_dns_name, profile.max_sans)?;
    // The key the CSR's signature verified with is the one the policy checks:
    // the SPKI is decoded once.
    let (csr, key) = ParsedCsr::parse_and_verify_with_key(&request.csr_der)?;
    csr.check_against(&request.identifiers)?;
    let profile_keys;
    let keys = match &profile.key_types {
        Some(types) => {
            profile_keys = KeyPolicy {
                key_types: Some(types.clone()),
                ..keys.clone()
            };
            &profile_keys
        }
        None => keys,
    };
    let rsa_subscriber = check_key(&key, &csr.spki_der, keys)?;
    let (not_before, not_after) = validity(profile, request.not_before, request.not_after, now)?;
    // check_against proved the CSR's CN is one of the identifiers; normalise
    // it the same way the identifiers are.
    let csr_cn = csr
        .common_name
        .as_deref()
        .map(normalise)
        .filter(|cn| sans.contains(cn));
    Ok(Checked {
        spki_der: csr.spki_der,
        common_name: if profile.common_name {
            pick_common_name(csr_cn.as_ref(), &sans)
        } else {
            None
        },
        sans,
        not_before,
        not_after,
        rsa_subscriber,
        client_auth: profile.client_auth,
        ca_not_after: profile.ca_not_after,
        max_validity_secs: profile.validity_secs,
        profile: profile.name.clone(),
    })
}

/// Checks the names of the frontend's own HTTPS certificate, which come from
/// the signer's configuration rather than a caller. Single-label names such as
/// `localhost` are allowed here, and only here.
pub fn check_server_certificate(
    profile: &Profile,
    names: &[String],
    spki_der: &[u8],
    now: i64,
) -> Result<Checked, Error> {
    let identifiers: Vec<Identifier> = names.iter().map(String::as_str).map(normalise).collect();
    let sans = check_identifiers(&identifiers, is_valid_local_name, MAX_IDENTIFIERS)?;
    // The key is the signer's own, of the configured `key_type`: every type
    // offered there is accepted (P-521 and Ed25519 included).
    let own_key = KeyPolicy {
        allow_p521: true,
        allow_ed25519: true,
        ..KeyPolicy::default()
    };
    let rsa_subscriber = check_public_key(spki_der, &own_key)?;
    let (not_before, not_after) = validity(profile, None, None, now)?;
    Ok(Checked {
        spki_der: spki_der.to_vec(),
        common_name: pick_common_name(identifiers.first(), &sans),
        sans,
        not_before,
        not_after,
        rsa_subscriber,
        client_auth: false,
        ca_not_after: profile.ca_not_after,
        max_validity_secs: profile.validity_secs,
        profile: profile.name.clone(),
    })
}

/// The validity window for a leaf: `(notBefore, notAfter)` in Unix seconds.
///
/// `notBefore` is the requested one if it is no more than
/// [`MAX_BACKDATE_SECS`] in the past, else `now`. `notAfter` is the requested
/// one or `notBefore` + the profile's validity (cut at the CA's `notAfter`).
/// A requested `notAfter` longer than the profile allows, or after the CA's
/// `notAfter`, is refused.
pub fn validity(
    profile: &Profile,
    requested_not_before: Option<i64>,
    requested_not_after: Option<i64>,
    now: i64,
) -> Result<(i64, i64), PolicyRefusal> {
    let not_before = match requested_not_before {
        Some(nb) if nb >= now.saturating_sub(MAX_BACKDATE_SECS) => nb,
        _ => now,
    };
    let max_not_after = not_before.saturating_add(profile.validity_secs);
    let not_after = match requested_not_after {
        Some(na) if na <= not_before => return Err(PolicyRefusal::EmptyValidity),
        Some(na) if na > max_not_after => {
            return Err(PolicyRefusal::ValidityTooLong {
                requested_secs: na.saturating_sub(not_before),
                max_secs: profile.validity_secs,
            });
        }
        Some(na) if na > profile.ca_not_after => return Err(PolicyRefusal::BeyondIssuer),
        Some(na) => na,
        None => max_not_after.min(profile.ca_not_after),
    };
    if not_after <= not_before {
        return Err(PolicyRefusal::CaExpired);
    }
    Ok((not_before, not_after))
}

/// Checks every identifier's syntax with `dns_ok` for DNS names; returns them
/// sorted and deduplicated.
fn check_identifiers(
    identifiers: &[Identifier],
    dns_ok: fn(&str) -> bool,
    max: usize,
) -> Result<Vec<Identifier>, PolicyRefusal> {
    if identifiers.is_empty() {
        return Err(PolicyRefusal::NoIdentifiers);
    }
    if identifiers.len() > max.min(MAX_IDENTIFIERS) {
        return Err(PolicyRefusal::TooManyIdentifiers(identifiers.len()));
    }
    let mut out = BTreeSet::new();
    for id in identifiers {
        match id.kind {
            IdentifierKind::Dns => {
                // .onion names: version 3 addresses only (RFC 9799 §2);
                // only an onion-csr-01 statement, or one of http-01 or
                // tls-alpn-01 (reached through Tor), covers them.
                if !dns_ok(&id.value)
                    || id.value != id.value.to_ascii_lowercase()
                    || (shared_proto::identifier::is_onion(&id.value)
                        && shared_proto::identifier::onion_v3_key(&id.value).is_none())
                {
                    return Err(PolicyRefusal::InvalidDnsName(id.value.clone()));
                }
            }
            IdentifierKind::Ip => {
                let canonical = id.value.parse::<IpAddr>().ok().map(|ip| ip.to_string());
                if canonical.as_deref() != Some(id.value.as_str()) {
                    return Err(PolicyRefusal::InvalidIpAddress(id.value.clone()));
                }
            }
        }
        out.insert(id.clone());
    }
    Ok(out.into_iter().collect())
}

/// LDH labels like [`is_valid_dns_name`], but one label is enough
/// (`localhost`). Only for names from the signer's own configuration.
fn is_valid_local_name(name: &str) -> bool {
    is_valid_dns_name(name)
        || (!name.is_empty()
            && name.len() <= 63
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.bytes().all(|b| b.is_ascii_digit()))
}

/// An identifier from a name: an IP literal if it parses as one, else DNS.
fn normalise(name: &str) -> Identifier {
    match name.parse::<IpAddr>() {
        Ok(ip) => Identifier::ip(ip),
        Err(_) => Identifier::dns(name),
    }
}

/// The subject CN: the preferred identifier if it fits in a CN, else the first
/// SAN that does, else none (the SAN extension is then critical). Only DNS
/// names: an IP address in the CN is discouraged by the Baseline
/// Requirements, and clients such as certbot 5 read the CN as a DNS name.
fn pick_common_name(preferred: Option<&Identifier>, sans: &[Identifier]) -> Option<String> {
    preferred
        .into_iter()
        .chain(sans)
        .filter(|id| id.kind == shared_proto::IdentifierKind::Dns)
        .map(|id| &id.value)
        .find(|v| v.chars().count() <= MAX_CN_CHARS)
        .cloned()
}
