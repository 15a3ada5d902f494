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
use std::sync::Arc;

use akamu_pki::csr::{ParsedCsr, public_key_from_spki};
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};
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

/// Rounds of Fermat factorisation tried on every RSA modulus.
pub const FERMAT_ROUNDS: u32 = 100;

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
    /// The CA certificate's `notAfter` (Unix seconds): no leaf outlives it.
    pub ca_not_after: i64,
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
            ca_not_after,
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
        common_name: pick_common_name(csr_cn.as_ref(), &sans),
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
    let rsa_subscriber = check_public_key(spki_der, &KeyPolicy::default())?;
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

/// SHA-256 of a DER SubjectPublicKeyInfo, the blocklist's key.
pub fn spki_sha256(spki_der: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(spki_der)
}

/// Checks the subscriber key against `keys`. Returns whether it is an RSA
/// key (which gets keyEncipherment).
///
/// RSA: 2048, 3072 or 4096 bits, e = 65537, not ROCA-fingerprinted, not
/// factorable by [`FERMAT_ROUNDS`] rounds of Fermat. ECDSA: P-256, P-384
/// (P-521 if allowed). Ed25519 if allowed. Never a blocked key.
pub fn check_public_key(spki_der: &[u8], keys: &KeyPolicy) -> Result<bool, KeyRefusal> {
    let key = public_key_from_spki(spki_der).map_err(|_| KeyRefusal::Unparsable)?;
    check_key(&key, spki_der, keys)
}

/// [`check_public_key`] for `key`, already decoded from `spki_der`.
fn check_key(key: &PKey<Public>, spki_der: &[u8], keys: &KeyPolicy) -> Result<bool, KeyRefusal> {
    // Compare the canonical re-encoding so a different encoding of the same
    // key cannot dodge the blocklist.
    let canonical = key
        .public_key_to_der()
        .map_err(|_| KeyRefusal::Unparsable)?;
    if keys.blocked.contains(&spki_sha256(&canonical))
        || keys.blocked.contains(&spki_sha256(spki_der))
    {
        return Err(KeyRefusal::Blocked);
    }
    match key.id() {
        Id::RSA => {
            let rsa = key.rsa().map_err(|_| KeyRefusal::Unparsable)?;
            let bits = rsa.n().num_bits().unsigned_abs();
            if ![2048, 3072, 4096].contains(&bits) {
                return Err(KeyRefusal::RsaSize { bits });
            }
            let f4 = BigNum::from_u32(65537).map_err(|_| KeyRefusal::Unparsable)?;
            if rsa.e() != &*f4 {
                return Err(KeyRefusal::RsaExponent);
            }
            if roca_fingerprint(rsa.n()) {
                return Err(KeyRefusal::Roca);
            }
            if fermat_factor(rsa.n(), FERMAT_ROUNDS).map_err(|_| KeyRefusal::Unparsable)? {
                return Err(KeyRefusal::Fermat);
            }
            Ok(true)
        }
        Id::EC => {
            let ec = key.ec_key().map_err(|_| KeyRefusal::Unparsable)?;
            match ec.group().curve_name() {
                // Decoding the key already checked the point is on the curve.
                Some(Nid::X9_62_PRIME256V1 | Nid::SECP384R1) => Ok(false),
                Some(Nid::SECP521R1) if keys.allow_p521 => Ok(false),
                Some(nid) => Err(KeyRefusal::Curve(
                    nid.short_name().unwrap_or("unknown").to_owned(),
                )),
                None => Err(KeyRefusal::Curve("explicit parameters".to_owned())),
            }
        }
        Id::ED25519 if keys.allow_ed25519 => Ok(false),
        other => Err(KeyRefusal::Algorithm(format!("{other:?}"))),
    }
}

/// Primes of the ROCA fingerprint (CVE-2017-15361, Nemec et al. 2017).
const ROCA_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// Whether `n` has the ROCA fingerprint: for every prime p of
/// [`ROCA_PRIMES`], `n mod p` lies in the subgroup of (Z/pZ)* generated by
/// 65537. Moduli from the vulnerable Infineon library always do; a random
/// modulus does with negligible probability.
pub fn roca_fingerprint(n: &BigNumRef) -> bool {
    ROCA_PRIMES.iter().all(|&p| {
        let Ok(residue) = n.mod_word(p) else {
            return false;
        };
        let p = u64::from(p);
        let g = 65537 % p;
        let mut x = 1u64;
        loop {
            if x == residue {
                return true;
            }
            x = x * g % p;
            if x == 1 {
                return false;
            }
        }
    })
}

/// Whether Fermat's method factors `n` within `rounds` steps: some
/// `a` in `ceil(sqrt(n)) .. + rounds` makes `a² − n` a perfect square, which
/// happens when the primes are close together.
pub fn fermat_factor(n: &BigNumRef, rounds: u32) -> Result<bool, openssl::error::ErrorStack> {
    let mut ctx = BigNumContext::new()?;
    let mut a = isqrt(n, &mut ctx)?;
    let mut sq = BigNum::new()?;
    sq.sqr(&a, &mut ctx)?;
    if &*sq < n {
        a.add_word(1)?;
    }
    let mut b2 = BigNum::new()?;
    for _ in 0..rounds {
        sq.sqr(&a, &mut ctx)?;
        b2.checked_sub(&sq, n)?;
        let b = isqrt(&b2, &mut ctx)?;
        sq.sqr(&b, &mut ctx)?;
        if sq == b2 {
            return Ok(true);
        }
        a.add_word(1)?;
    }
    Ok(false)
}

/// ⌊√n⌋ by Newton's method.
fn isqrt(n: &BigNumRef, ctx: &mut BigNumContext) -> Result<BigNum, openssl::error::ErrorStack> {
    if n.num_bits() < 2 {
        return n.to_owned();
    }
    // 2^ceil(bits/2) ≥ √n: start above the root and descend.
    let mut x = BigNum::new()?;
    x.set_bit((n.num_bits() + 1) / 2)?;
    loop {
        let mut q = BigNum::new()?;
        q.checked_div(n, &x, ctx)?;
        let mut sum = BigNum::new()?;
        sum.checked_add(&x, &q)?;
        let mut y = BigNum::new()?;
        y.rshift1(&sum)?;
        if y >= x {
            return Ok(x);
        }
        x = y;
    }
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
        Profile::tls_server(90, NOW + 3650 * DAY)
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
            (
                None,
                Some(NOW + 3650 * DAY),
                Err(PolicyRefusal::ValidityTooLong {
                    requested_secs: 3650 * DAY,
                    max_secs: 90 * DAY,
                }),
            ),
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
        let p = Profile::tls_server(90, NOW + 10 * DAY);
        assert_eq!(validity(&p, None, None, NOW), Ok((NOW, NOW + 10 * DAY)));
        assert_eq!(
            validity(&p, None, Some(NOW + 11 * DAY), NOW),
            Err(PolicyRefusal::BeyondIssuer)
        );
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
                check_identifiers(&ids, is_valid_dns_name, MAX_IDENTIFIERS).is_ok(),
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
            assert_eq!(
                check_identifiers(&ids, is_valid_dns_name, MAX_IDENTIFIERS),
                Err(want)
            );
        }
        let many: Vec<_> = (0..=MAX_IDENTIFIERS)
            .map(|i| Identifier::dns(&format!("n{i}.example.org")))
            .collect();
        assert_eq!(
            check_identifiers(&many, is_valid_dns_name, MAX_IDENTIFIERS),
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
        let any = KeyPolicy::default();
        let ec = |nid| {
            let g = openssl::ec::EcGroup::from_curve_name(nid).expect("group");
            let k = openssl::ec::EcKey::generate(&g).expect("ec");
            PKey::from_ec_key(k)
                .expect("pkey")
                .public_key_to_der()
                .expect("der")
        };
        assert_eq!(
            check_public_key(&ec(Nid::X9_62_PRIME256V1), &any),
            Ok(false)
        );
        assert_eq!(check_public_key(&ec(Nid::SECP384R1), &any), Ok(false));
        let p521 = ec(Nid::SECP521R1);
        assert!(matches!(
            check_public_key(&p521, &any),
            Err(KeyRefusal::Curve(_))
        ));
        let allow = KeyPolicy {
            allow_p521: true,
            allow_ed25519: true,
            ..KeyPolicy::default()
        };
        assert_eq!(check_public_key(&p521, &allow), Ok(false));
        assert!(matches!(
            check_public_key(&ec(Nid::SECP256K1), &allow),
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
        assert_eq!(check_public_key(&rsa(2048, 65537), &any), Ok(true));
        assert_eq!(
            check_public_key(&rsa(1024, 65537), &any),
            Err(KeyRefusal::RsaSize { bits: 1024 })
        );
        assert_eq!(
            check_public_key(&rsa(2560, 65537), &any),
            Err(KeyRefusal::RsaSize { bits: 2560 })
        );
        assert_eq!(
            check_public_key(&rsa(2048, 3), &any),
            Err(KeyRefusal::RsaExponent)
        );
        let ed = PKey::generate_ed25519()
            .expect("ed")
            .public_key_to_der()
            .expect("der");
        assert!(matches!(
            check_public_key(&ed, &any),
            Err(KeyRefusal::Algorithm(_))
        ));
        assert_eq!(check_public_key(&ed, &allow), Ok(false));
        assert_eq!(check_public_key(b"junk", &any), Err(KeyRefusal::Unparsable));

        let key = ec(Nid::X9_62_PRIME256V1);
        let blocked = KeyPolicy {
            blocked: Arc::new([spki_sha256(&key)].into_iter().collect()),
            ..KeyPolicy::default()
        };
        assert_eq!(check_public_key(&key, &blocked), Err(KeyRefusal::Blocked));
    }

    /// An RSA public key with modulus `n` and e = 65537, as SPKI DER.
    fn spki_with_modulus(n: &BigNumRef) -> Vec<u8> {
        let rsa = openssl::rsa::Rsa::from_public_components(
            n.to_owned().expect("n"),
            BigNum::from_u32(65537).expect("e"),
        )
        .expect("rsa");
        PKey::from_rsa(rsa)
            .expect("pkey")
            .public_key_to_der()
            .expect("der")
    }

    #[test]
    fn roca_fingerprint_is_detected() {
        // n ≡ 1 (mod every fingerprint prime): 1 lies in every subgroup, so
        // such a modulus carries the fingerprint.
        let mut m = BigNum::from_u32(1).expect("1");
        let mut ctx = BigNumContext::new().expect("ctx");
        for p in ROCA_PRIMES {
            let mut next = BigNum::new().expect("bn");
            next.checked_mul(&m, &BigNum::from_u32(p).expect("p"), &mut ctx)
                .expect("mul");
            m = next;
        }
        let mut n = BigNum::new().expect("bn");
        n.set_bit(2047).expect("bit");
        let mut r = BigNum::new().expect("bn");
        r.nnmod(&n, &m, &mut ctx).expect("mod");
        let mut fingerprinted = BigNum::new().expect("bn");
        fingerprinted.checked_sub(&n, &r).expect("sub");
        fingerprinted.add_word(1).expect("add");
        let base = fingerprinted.to_owned().expect("c");
        fingerprinted.checked_add(&base, &m).expect("add");
        assert_eq!(fingerprinted.num_bits(), 2048);
        assert!(roca_fingerprint(&fingerprinted));
        assert_eq!(
            check_public_key(&spki_with_modulus(&fingerprinted), &KeyPolicy::default()),
            Err(KeyRefusal::Roca)
        );
        let good = openssl::rsa::Rsa::generate(2048).expect("rsa");
        assert!(!roca_fingerprint(good.n()));
    }

    #[test]
    fn fermat_breaks_close_primes() {
        let mut ctx = BigNumContext::new().expect("ctx");
        let mut p = BigNum::new().expect("bn");
        p.generate_prime(1024, false, None, None).expect("prime");
        let mut q = p.to_owned().expect("q");
        loop {
            q.add_word(2).expect("add");
            if q.is_prime(20, &mut ctx).expect("test") {
                break;
            }
        }
        let mut n = BigNum::new().expect("bn");
        n.checked_mul(&p, &q, &mut ctx).expect("mul");
        assert!(fermat_factor(&n, FERMAT_ROUNDS).expect("fermat"));
        assert_eq!(
            check_public_key(&spki_with_modulus(&n), &KeyPolicy::default()),
            Err(KeyRefusal::Fermat)
        );
        let good = openssl::rsa::Rsa::generate(2048).expect("rsa");
        assert!(!fermat_factor(good.n(), FERMAT_ROUNDS).expect("fermat"));
        let base = BigNum::from_u32(1_000_003).expect("bn");
        let mut root = BigNum::new().expect("bn");
        root.sqr(&base, &mut ctx).expect("sqr");
        assert_eq!(
            isqrt(&root, &mut ctx).expect("isqrt"),
            BigNum::from_u32(1_000_003).expect("bn")
        );
    }

    // ---- Requests through `check`: the CSR's key, decoded once ----

    use akamu_pki::csr::CsrError;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::ecdsa::EcdsaSig;
    use openssl::hash::MessageDigest;
    use openssl::pkey::Private;

    fn request_for(csr_der: Vec<u8>) -> IssueRequest {
        IssueRequest {
            csr_der,
            identifiers: vec![Identifier::dns("a.example.org")],
            not_before: None,
            not_after: None,
            account_uri: "https://acme.example.org/acme/acct/1".to_owned(),
            order_id: "order-1".to_owned(),
            statements: Vec::new(),
            profile: None,
            processing_since: None,
        }
    }

    /// A CSR for `a.example.org` made by openssl.
    fn openssl_csr(key: &PKey<Private>) -> Vec<u8> {
        let mut b = openssl::x509::X509ReqBuilder::new().expect("req");
        b.set_pubkey(key).expect("pubkey");
        let mut san = openssl::x509::extension::SubjectAlternativeName::new();
        san.dns("a.example.org");
        let mut exts = openssl::stack::Stack::new().expect("stack");
        exts.push(san.build(&b.x509v3_context(None)).expect("san"))
            .expect("push");
        b.add_extensions(&exts).expect("exts");
        let md = if key.id() == Id::ED25519 {
            MessageDigest::null()
        } else {
            MessageDigest::sha256()
        };
        b.sign(key, md).expect("sign");
        b.build().to_der().expect("der")
    }

    fn ec_key(nid: Nid) -> EcKey<Private> {
        EcKey::generate(&EcGroup::from_curve_name(nid).expect("group")).expect("ec")
    }

    fn rsa_key(bits: u32, e: u32) -> PKey<Private> {
        let e = BigNum::from_u32(e).expect("e");
        PKey::from_rsa(openssl::rsa::Rsa::generate_with_e(bits, &e).expect("rsa")).expect("pkey")
    }

    /// `der` with its key's point bytes replaced by `point` (same curve),
    /// signed again with `sign` over the new certificationRequestInfo.
    fn with_point(der: &[u8], point: &[u8], sign: impl FnOnce(&[u8]) -> Vec<u8>) -> Vec<u8> {
        use der::asn1::BitString;
        use der::{Decode, Encode};
        let mut req = x509_cert::request::CertReq::from_der(der).expect("parse");
        req.info.public_key.subject_public_key = BitString::from_bytes(point).expect("bits");
        let info = req.info.to_der().expect("info");
        req.signature = BitString::from_bytes(&sign(&info)).expect("bits");
        req.to_der().expect("der")
    }

    #[test]
    fn csr_keys_are_judged_as_before() {
        let p = profile();
        let any = KeyPolicy::default();
        let check_csr = |der: Vec<u8>, keys: &KeyPolicy| check(&p, keys, &request_for(der), NOW);

        let ec = ec_key(Nid::X9_62_PRIME256V1);
        let ec_pkey = PKey::from_ec_key(ec.clone()).expect("pkey");
        let good = check_csr(openssl_csr(&ec_pkey), &any).expect("P-256");
        assert!(!good.rsa_subscriber);
        assert_eq!(good.spki_der(), ec_pkey.public_key_to_der().expect("spki"));
        let rsa = check_csr(openssl_csr(&rsa_key(2048, 65537)), &any).expect("RSA-2048");
        assert!(rsa.rsa_subscriber);

        let refused = |der: Vec<u8>, keys: &KeyPolicy| match check_csr(der, keys) {
            Err(Error::PublicKey(r)) => Some(r),
            _ => None,
        };
        assert_eq!(
            refused(openssl_csr(&rsa_key(2048, 3)), &any),
            Some(KeyRefusal::RsaExponent)
        );
        assert_eq!(
            refused(openssl_csr(&rsa_key(1024, 65537)), &any),
            Some(KeyRefusal::RsaSize { bits: 1024 })
        );
        let p521 = openssl_csr(&PKey::from_ec_key(ec_key(Nid::SECP521R1)).expect("pkey"));
        assert!(matches!(
            refused(p521.clone(), &any),
            Some(KeyRefusal::Curve(_))
        ));
        let allow = KeyPolicy {
            allow_p521: true,
            allow_ed25519: true,
            ..KeyPolicy::default()
        };
        assert!(check_csr(p521, &allow).is_ok());
        let k1 = openssl_csr(&PKey::from_ec_key(ec_key(Nid::SECP256K1)).expect("pkey"));
        assert!(matches!(refused(k1, &allow), Some(KeyRefusal::Curve(_))));
        let ed = openssl_csr(&PKey::generate_ed25519().expect("ed25519"));
        assert!(matches!(
            refused(ed.clone(), &any),
            Some(KeyRefusal::Algorithm(_))
        ));
        assert!(check_csr(ed, &allow).is_ok());
        let blocked = KeyPolicy {
            blocked: Arc::new(
                [spki_sha256(&ec_pkey.public_key_to_der().expect("spki"))]
                    .into_iter()
                    .collect(),
            ),
            ..KeyPolicy::default()
        };
        assert_eq!(
            refused(openssl_csr(&ec_pkey), &blocked),
            Some(KeyRefusal::Blocked)
        );

        // A flipped signature byte.
        let mut der = openssl_csr(&ec_pkey);
        let last = der.len() - 1;
        der[last] ^= 0x01;
        assert!(matches!(
            check_csr(der, &any),
            Err(Error::Csr(CsrError::Signature))
        ));
        // A key whose point is not on the curve (signed by the real key).
        let mut ctx = BigNumContext::new().expect("ctx");
        let mut off_curve = ec
            .public_key()
            .to_bytes(
                ec.group(),
                openssl::ec::PointConversionForm::UNCOMPRESSED,
                &mut ctx,
            )
            .expect("point");
        off_curve[64] ^= 0x01;
        let der = with_point(&openssl_csr(&ec_pkey), &off_curve, |m| {
            EcdsaSig::sign(&openssl::sha::sha256(m), &ec)
                .and_then(|s| s.to_der())
                .expect("sign")
        });
        assert!(matches!(
            check_csr(der, &any),
            Err(Error::Csr(CsrError::Parse(_)))
        ));
        // The point at infinity is not a key, whatever the signature
        // (akamu_pki::csr's tests forge one that verifies for it).
        let der = with_point(&openssl_csr(&ec_pkey), &[0x00], |_| {
            vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01]
        });
        let verdict = check_csr(der, &any);
        assert!(
            matches!(verdict, Err(Error::Csr(CsrError::Parse(_)))),
            "{verdict:?}"
        );
    }
}
