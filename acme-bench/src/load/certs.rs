//! Subscriber keys and CSRs made before a phase, and the check of a
//! downloaded chain against them.

use std::sync::Mutex;

use akamu_jose::KeyType;
use anyhow::Result;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509ReqBuilder};

use super::LoadConfig;

/// A subscriber key and a CSR naming `name`.
pub struct Csr {
    /// The key.
    pub key: PKey<Private>,
    /// DER of the CSR.
    pub der: Vec<u8>,
}

/// Generates a key of `key_type` and a CSR for `name` (SAN only, no subject).
pub fn make_csr(key_type: KeyType, name: &str) -> Result<Csr> {
    let key = key_type.generate()?;
    let digest = match key_type {
        KeyType::EcP384 => MessageDigest::sha384(),
        KeyType::EcP521 => MessageDigest::sha512(),
        KeyType::Ed25519 | KeyType::Ed448 | KeyType::MlDsa(_) => MessageDigest::null(),
        KeyType::EcP256 | KeyType::Rsa(_) => MessageDigest::sha256(),
    };
    let mut req = X509ReqBuilder::new()?;
    req.set_pubkey(&key)?;
    let mut exts = Stack::new()?;
    exts.push(
        SubjectAlternativeName::new()
            .dns(name)
            .build(&req.x509v3_context(None))?,
    )?;
    req.add_extensions(&exts)?;
    req.sign(&key, digest)?;
    Ok(Csr {
        der: req.build().to_der()?,
        key,
    })
}

/// A prepared CSR for one ticket, taken by the client that runs it.
pub type CsrSlot = Mutex<Option<Result<Csr, String>>>;

/// Keys and CSRs for tickets `first..first+count`, made on blocking
/// threads before a phase, so that the load generator's key generation
/// (slow for RSA) neither competes with the CA for CPU nor counts as the
/// load generator's CPU in the measured window.
pub async fn make_csrs(cfg: &LoadConfig, first: u64, count: u64) -> Vec<CsrSlot> {
    let key_type = cfg.key_type;
    let workers = std::thread::available_parallelism().map_or(2, std::num::NonZero::get) as u64;
    let per = count.div_ceil(workers.max(1)).max(1);
    let mut set = tokio::task::JoinSet::new();
    let mut start = first;
    while start < first + count {
        let stop = (start + per).min(first + count);
        let names: Vec<String> = (start..stop).map(|t| cfg.order_name(t)).collect();
        set.spawn_blocking(move || {
            let csrs: Vec<(u64, Result<Csr, String>)> = (start..stop)
                .zip(names)
                .map(|(t, name)| (t, make_csr(key_type, &name).map_err(|e| e.to_string())))
                .collect();
            csrs
        });
        start = stop;
    }
    let mut all: Vec<(u64, Result<Csr, String>)> = Vec::new();
    while let Some(chunk) = set.join_next().await {
        if let Ok(chunk) = chunk {
            all.extend(chunk);
        }
    }
    all.sort_by_key(|(t, _)| *t);
    let mut out: Vec<CsrSlot> = (0..count).map(|_| Mutex::new(None)).collect();
    for (t, csr) in all {
        if let Some(slot) = usize::try_from(t - first).ok().and_then(|i| out.get_mut(i)) {
            *slot = Mutex::new(Some(csr));
        }
    }
    out
}

/// Checks a downloaded chain: the leaf names exactly `name`, carries the
/// CSR's key, and is signed by the next certificate.
pub fn verify_chain(pem: &str, name: &str, key: &PKey<Private>) -> Result<(), String> {
    let certs = X509::stack_from_pem(pem.as_bytes()).map_err(|e| format!("chain PEM: {e}"))?;
    let leaf = certs.first().ok_or("empty chain")?;
    let sans: Vec<String> = leaf
        .subject_alt_names()
        .map(|s| {
            s.iter()
                .filter_map(|n| n.dnsname().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if sans != [name.to_owned()] {
        return Err(format!("leaf names {sans:?}, expected [{name}]"));
    }
    let leaf_key = leaf.public_key().map_err(|e| format!("leaf key: {e}"))?;
    if !leaf_key.public_eq(key) {
        return Err("leaf key is not the CSR's key".into());
    }
    let issuer = certs.get(1).ok_or("no issuer certificate after the leaf")?;
    let issuer_key = issuer
        .public_key()
        .map_err(|e| format!("issuer key: {e}"))?;
    match leaf.verify(&issuer_key) {
        Ok(true) => Ok(()),
        Ok(false) => Err("leaf signature does not verify with the issuer's key".into()),
        Err(e) => Err(format!("verify leaf signature: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrs_for_every_key_type() {
        for kt in [
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Rsa(2048),
            KeyType::Ed25519,
            KeyType::MlDsa(akamu_jose::MlDsa::P44),
            KeyType::MlDsa(akamu_jose::MlDsa::P87),
        ] {
            let csr = make_csr(kt, "www.acme-bench.test").expect("csr");
            let req = openssl::x509::X509Req::from_der(&csr.der).expect("parse");
            assert!(req.verify(&csr.key).expect("verify"), "{kt}");
        }
    }

    #[test]
    fn verify_chain_checks_names_key_and_signature() {
        use openssl::asn1::Asn1Time;
        use openssl::x509::X509Builder;
        let ca_key = make_csr(KeyType::EcP256, "x").expect("key").key;
        let leaf_key = make_csr(KeyType::EcP256, "x").expect("key").key;
        let build = |subject_key: &PKey<Private>, signer: &PKey<Private>, san: Option<&str>| {
            let mut b = X509Builder::new().expect("builder");
            b.set_pubkey(subject_key).expect("key");
            b.set_not_before(&Asn1Time::days_from_now(0).expect("t"))
                .expect("nb");
            b.set_not_after(&Asn1Time::days_from_now(1).expect("t"))
                .expect("na");
            if let Some(san) = san {
                let ext = SubjectAlternativeName::new()
                    .dns(san)
                    .build(&b.x509v3_context(None, None))
                    .expect("san");
                b.append_extension(ext).expect("ext");
            }
            b.sign(signer, MessageDigest::sha256()).expect("sign");
            String::from_utf8(b.build().to_pem().expect("pem")).expect("utf8")
        };
        let ca = build(&ca_key, &ca_key, None);
        let good = build(&leaf_key, &ca_key, Some("a.acme-bench.test")) + &ca;
        verify_chain(&good, "a.acme-bench.test", &leaf_key).expect("good chain");
        assert!(
            verify_chain(&good, "b.acme-bench.test", &leaf_key).is_err(),
            "name"
        );
        assert!(
            verify_chain(&good, "a.acme-bench.test", &ca_key).is_err(),
            "key"
        );
        let forged = build(&leaf_key, &leaf_key, Some("a.acme-bench.test")) + &ca;
        assert!(
            verify_chain(&forged, "a.acme-bench.test", &leaf_key).is_err(),
            "signature"
        );
    }
}
