//! The signer's leaf policy: the first of three steps (policy → tbs → sign).
//!
//! [`check`] takes an untrusted [`IssueRequest`] and either refuses it or
//! returns a [`Checked`], the only input [`crate::tbs::build_leaf`] accepts.
//! It re-parses and verifies the CSR (the signer trusts no caller), checks
//! that the CSR names exactly the identifiers, checks every identifier's
//! syntax, the subscriber key, and computes the validity window.
//!
//! Pure: `now` is a parameter, nothing here reads the clock or does I/O.

use std::collections::BTreeSet;
use std::net::IpAddr;

use openssl::bn::BigNum;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
use shared_proto::csr::ParsedCsr;
use shared_proto::identifier::is_valid_dns_name;
use shared_proto::signer::IssueRequest;
use shared_proto::{Identifier, IdentifierKind};

use crate::error::{Error, KeyRefusal, PolicyRefusal};

/// Most identifiers one certificate may carry (Let's Encrypt's limit).
pub const MAX_IDENTIFIERS: usize = 100;
/// How far in the past a requested `notBefore` may lie.
pub const MAX_BACKDATE_SECS: i64 = 3600;
/// Longest commonName (X.520 `ub-common-name`).
const MAX_CN_CHARS: usize = 64;

/// The leaf profile the policy enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Longest validity of a leaf, in days.
    pub validity_days: u32,
    /// The CA certificate's `notAfter` (Unix seconds): no leaf outlives it.
    pub ca_not_after: i64,
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
}

impl Checked {
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

/// Checks an issuance request against `profile` at time `now` (Unix seconds).
pub fn check(profile: &Profile, request: &IssueRequest, now: i64) -> Result<Checked, Error> {
    let sans = check_identifiers(&request.identifiers, is_valid_dns_name)?;
    let csr = ParsedCsr::parse_and_verify(&request.csr_der)?;
    csr.check_against(&request.identifiers)?;
    let rsa_subscriber = check_public_key(&csr.spki_der)?;
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
        common_name: pick_common_name(csr_cn.as_ref(), &sans),
        sans,
        not_before,
        not_after,
        rsa_subscriber,
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
    let sans = check_identifiers(&identifiers, is_valid_local_name)?;
    let rsa_subscriber = check_public_key(spki_der)?;
    let (not_before, not_after) = validity(profile, None, None, now)?;
    Ok(Checked {
        spki_der: spki_der.to_vec(),
        common_name: pick_common_name(identifiers.first(), &sans),
        sans,
        not_before,
        not_after,
        rsa_subscriber,
    })
}

/// Checks the subscriber key. Returns whether it is an RSA key (which gets
/// keyEncipherment).
pub fn check_public_key(spki_der: &[u8]) -> Result<bool, KeyRefusal> {
    let key: PKey<Public> =
        PKey::public_key_from_der(spki_der).map_err(|_| KeyRefusal::Unparsable)?;
    match key.id() {
        Id::RSA => {
            let rsa = key.rsa().map_err(|_| KeyRefusal::Unparsable)?;
            let bits = rsa.n().num_bits().unsigned_abs();
            if !(2048..=8192).contains(&bits) {
                return Err(KeyRefusal::RsaSize { bits });
            }
            let f4 = BigNum::from_u32(65537).map_err(|_| KeyRefusal::Unparsable)?;
            if rsa.e() != &*f4 {
                return Err(KeyRefusal::RsaExponent);
            }
            Ok(true)
        }
        Id::EC => {
            let ec = key.ec_key().map_err(|_| KeyRefusal::Unparsable)?;
            match ec.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1 | Nid::SECP384R1 | Nid::SECP521R1) => {
                    // public_key_from_der already checked the point is on the curve.
                    Ok(false)
                }
                Some(nid) => Err(KeyRefusal::Curve(
                    nid.short_name().unwrap_or("unknown").to_owned(),
                )),
                None => Err(KeyRefusal::Curve("explicit parameters".to_owned())),
            }
        }
        Id::ED25519 => Ok(false),
        other => Err(KeyRefusal::Algorithm(format!("{other:?}"))),
    }
}

/// The validity window for a leaf: `(notBefore, notAfter)` in Unix seconds.
///
/// `notBefore` is the requested one if it is no more than
/// [`MAX_BACKDATE_SECS`] in the past, else `now`. `notAfter` is the requested
/// one or `notBefore + validity_days`, never more than `validity_days` after
/// `notBefore` and never after the CA certificate's `notAfter`.
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
    let max_not_after = not_before.saturating_add(i64::from(profile.validity_days) * 86_400);
    let not_after = match requested_not_after {
        Some(na) if na <= not_before => return Err(PolicyRefusal::EmptyValidity),
        Some(na) => na.min(max_not_after),
        None => max_not_after,
    }
    .min(profile.ca_not_after);
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
) -> Result<Vec<Identifier>, PolicyRefusal> {
    if identifiers.is_empty() {
        return Err(PolicyRefusal::NoIdentifiers);
    }
    if identifiers.len() > MAX_IDENTIFIERS {
        return Err(PolicyRefusal::TooManyIdentifiers(identifiers.len()));
    }
    let mut out = BTreeSet::new();
    for id in identifiers {
        match id.kind {
            IdentifierKind::Dns => {
                if !dns_ok(&id.value) || id.value != id.value.to_ascii_lowercase() {
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
/// SAN that does, else none (the SAN extension is then critical).
fn pick_common_name(preferred: Option<&Identifier>, sans: &[Identifier]) -> Option<String> {
    preferred
        .into_iter()
        .chain(sans)
        .map(|id| &id.value)
        .find(|v| v.chars().count() <= MAX_CN_CHARS)
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const NOW: i64 = 1_800_000_000;

    fn profile() -> Profile {
        Profile {
            validity_days: 90,
            ca_not_after: NOW + 3650 * DAY,
        }
    }

    #[test]
    fn validity_table() {
        let p = profile();
        type Case = (Option<i64>, Option<i64>, Result<(i64, i64), PolicyRefusal>);
        let cases: &[Case] = &[
            (None, None, Ok((NOW, NOW + 90 * DAY))),
            // Backdating up to an hour is honoured, more falls back to now.
            (
                Some(NOW - 3600),
                None,
                Ok((NOW - 3600, NOW - 3600 + 90 * DAY)),
            ),
            (Some(NOW - 3601), None, Ok((NOW, NOW + 90 * DAY))),
            (Some(NOW + DAY), None, Ok((NOW + DAY, NOW + 91 * DAY))),
            // A shorter notAfter is honoured, a longer one is capped.
            (None, Some(NOW + 7 * DAY), Ok((NOW, NOW + 7 * DAY))),
            (None, Some(NOW + 400 * DAY), Ok((NOW, NOW + 90 * DAY))),
            (None, Some(NOW), Err(PolicyRefusal::EmptyValidity)),
            (
                Some(NOW + DAY),
                Some(NOW + DAY),
                Err(PolicyRefusal::EmptyValidity),
            ),
        ];
        for (nb, na, want) in cases {
            assert_eq!(&validity(&p, *nb, *na, NOW), want, "nb={nb:?} na={na:?}");
        }
    }

    #[test]
    fn validity_never_outlives_the_ca() {
        let p = Profile {
            validity_days: 90,
            ca_not_after: NOW + 10 * DAY,
        };
        assert_eq!(validity(&p, None, None, NOW), Ok((NOW, NOW + 10 * DAY)));
        assert_eq!(
            validity(&p, Some(NOW + 11 * DAY), None, NOW),
            Err(PolicyRefusal::CaExpired)
        );
    }

    #[test]
    fn identifier_table() {
        let ok = [
            vec![Identifier::dns("a.example.org")],
            vec![
                Identifier::dns("*.example.org"),
                Identifier::ip("::1".parse().expect("ip")),
            ],
        ];
        for ids in ok {
            assert!(
                check_identifiers(&ids, is_valid_dns_name).is_ok(),
                "{ids:?}"
            );
        }
        let bad = |kind, value: &str| Identifier {
            kind,
            value: value.to_owned(),
        };
        let refused = [
            (vec![], PolicyRefusal::NoIdentifiers),
            (
                vec![Identifier::dns("localhost")],
                PolicyRefusal::InvalidDnsName("localhost".into()),
            ),
            (
                vec![Identifier::dns("under_score.example")],
                PolicyRefusal::InvalidDnsName("under_score.example".into()),
            ),
            (
                vec![bad(IdentifierKind::Dns, "UPPER.example.org")],
                PolicyRefusal::InvalidDnsName("UPPER.example.org".into()),
            ),
            (
                vec![bad(IdentifierKind::Ip, "010.0.0.1")],
                PolicyRefusal::InvalidIpAddress("010.0.0.1".into()),
            ),
            (
                vec![bad(IdentifierKind::Ip, "::0001")],
                PolicyRefusal::InvalidIpAddress("::0001".into()),
            ),
        ];
        for (ids, want) in refused {
            assert_eq!(check_identifiers(&ids, is_valid_dns_name), Err(want));
        }
        let many: Vec<_> = (0..=MAX_IDENTIFIERS)
            .map(|i| Identifier::dns(&format!("n{i}.example.org")))
            .collect();
        assert_eq!(
            check_identifiers(&many, is_valid_dns_name),
            Err(PolicyRefusal::TooManyIdentifiers(MAX_IDENTIFIERS + 1))
        );
    }

    #[test]
    fn local_names_only_for_the_server_certificate() {
        assert!(is_valid_local_name("localhost"));
        assert!(is_valid_local_name("a.example.org"));
        assert!(!is_valid_local_name("under_score"));
        assert!(!is_valid_local_name("123"));
        assert!(!is_valid_dns_name("localhost"));
    }

    #[test]
    fn common_name_prefers_the_csr_cn_and_fits_64_chars() {
        let long = Identifier::dns(&format!("{}.example.org", "a".repeat(60)));
        let short = Identifier::dns("b.example.org");
        let sans = vec![long.clone(), short.clone()];
        assert_eq!(
            pick_common_name(Some(&long), &sans).as_deref(),
            Some("b.example.org")
        );
        assert_eq!(pick_common_name(None, &[long]), None);
        assert_eq!(
            pick_common_name(Some(&short), &sans).as_deref(),
            Some("b.example.org")
        );
    }

    #[test]
    fn key_policy() {
        let ec = |nid| {
            let g = openssl::ec::EcGroup::from_curve_name(nid).expect("group");
            let k = openssl::ec::EcKey::generate(&g).expect("ec");
            PKey::from_ec_key(k)
                .expect("pkey")
                .public_key_to_der()
                .expect("der")
        };
        assert_eq!(check_public_key(&ec(Nid::X9_62_PRIME256V1)), Ok(false));
        assert_eq!(check_public_key(&ec(Nid::SECP384R1)), Ok(false));
        assert!(matches!(
            check_public_key(&ec(Nid::SECP256K1)),
            Err(KeyRefusal::Curve(_))
        ));
        let rsa = |bits, e: u32| {
            let e = BigNum::from_u32(e).expect("e");
            let k = openssl::rsa::Rsa::generate_with_e(bits, &e).expect("rsa");
            PKey::from_rsa(k)
                .expect("pkey")
                .public_key_to_der()
                .expect("der")
        };
        assert_eq!(check_public_key(&rsa(2048, 65537)), Ok(true));
        assert_eq!(
            check_public_key(&rsa(1024, 65537)),
            Err(KeyRefusal::RsaSize { bits: 1024 })
        );
        assert_eq!(
            check_public_key(&rsa(2048, 3)),
            Err(KeyRefusal::RsaExponent)
        );
        let ed = PKey::generate_ed25519()
            .expect("ed")
            .public_key_to_der()
            .expect("der");
        assert_eq!(check_public_key(&ed), Ok(false));
        assert_eq!(check_public_key(b"junk"), Err(KeyRefusal::Unparsable));
    }
}
