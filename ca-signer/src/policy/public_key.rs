//! The subscriber key policy: RSA sizes and exponent, EC curves, Ed25519
//! when allowed, Ed448 and ML-DSA when a profile lists them, the blocklist,
//! and the ROCA and Fermat weak-key checks.

use akamu_pki::csr::public_key_from_spki;
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Public};

use super::KeyPolicy;
use crate::config::KeyType;
use crate::error::KeyRefusal;

/// Rounds of Fermat factorisation tried on every RSA modulus.
pub const FERMAT_ROUNDS: u32 = 100;

/// SHA-256 of a DER SubjectPublicKeyInfo, the blocklist's key.
pub fn spki_sha256(spki_der: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(spki_der)
}

/// Checks the subscriber key against `keys`. Returns whether it is an RSA
/// key (which gets keyEncipherment).
///
/// RSA: 2048, 3072 or 4096 bits, e = 65537, not ROCA-fingerprinted, not
/// factorable by [`FERMAT_ROUNDS`] rounds of Fermat. ECDSA: P-256, P-384
/// (P-521 if allowed). Ed25519 if allowed. When the policy carries a
/// profile's `key_types`, exactly those (Ed448 and ML-DSA-44/65/87 only
/// this way). Never a blocked key.
pub fn check_public_key(spki_der: &[u8], keys: &KeyPolicy) -> Result<bool, KeyRefusal> {
    let key = public_key_from_spki(spki_der).map_err(|_| KeyRefusal::Unparsable)?;
    check_key(&key, spki_der, keys)
}

/// [`check_public_key`] for `key`, already decoded from `spki_der`.
pub(super) fn check_key(
    key: &PKey<Public>,
    spki_der: &[u8],
    keys: &KeyPolicy,
) -> Result<bool, KeyRefusal> {
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
    let listed = |t: KeyType| keys.key_types.as_ref().is_some_and(|l| l.contains(&t));
    if let Some(list) = &keys.key_types {
        match KeyType::of_key(key) {
            Some(t) if list.contains(&t) => {}
            Some(KeyType::Rsa(bits)) if list.iter().any(|t| matches!(t, KeyType::Rsa(_))) => {
                return Err(KeyRefusal::RsaSize { bits });
            }
            found => {
                let names: Vec<String> = list.iter().map(ToString::to_string).collect();
                return Err(KeyRefusal::Algorithm(format!(
                    "{} (the profile accepts {})",
                    found.map_or_else(|| format!("{:?}", key.id()), |t| t.to_string()),
                    names.join(", ")
                )));
            }
        }
    }
    if let Some(set) = akamu_jose::MlDsa::of_key(key) {
        // Decoding checked the encoded key's length for its parameter set.
        return if listed(KeyType::MlDsa(set)) {
            Ok(false)
        } else {
            Err(KeyRefusal::Algorithm(KeyType::MlDsa(set).to_string()))
        };
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
                Some(Nid::SECP521R1) if keys.allow_p521 || listed(KeyType::EcP521) => Ok(false),
                Some(nid) => Err(KeyRefusal::Curve(
                    nid.short_name().unwrap_or("unknown").to_owned(),
                )),
                None => Err(KeyRefusal::Curve("explicit parameters".to_owned())),
            }
        }
        Id::ED25519 if keys.allow_ed25519 || listed(KeyType::Ed25519) => Ok(false),
        Id::ED448 if listed(KeyType::Ed448) => Ok(false),
        other => Err(KeyRefusal::Algorithm(format!("{other:?}"))),
    }
}

/// Primes of the ROCA fingerprint (CVE-2017-15361, Nemec et al. 2017).
pub(super) const ROCA_PRIMES: [u32; 38] = [
    3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
];

/// Whether `n` has the ROCA fingerprint: for every prime p of
/// `ROCA_PRIMES`, `n mod p` lies in the subgroup of (Z/pZ)* generated by
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
pub(super) fn isqrt(
    n: &BigNumRef,
    ctx: &mut BigNumContext,
) -> Result<BigNum, openssl::error::ErrorStack> {
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
