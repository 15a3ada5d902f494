//! JWS request bodies, protected headers and JWKs (akamu-jose), taken
//! through the steps the frontend's `auth::authenticate` takes: flattened
//! JWS → protected header → `alg` → JWK → key → signature.

use akamu_jose::{Alg, FlattenedJws, Jwk, SigningKey, VerifyingKey, b64};

use crate::harness::{run, run_deep};

const ALGS: &[Alg] = &[
    Alg::Es256,
    Alg::Es384,
    Alg::Rs256,
    Alg::Ps256,
    Alg::EdDsa,
    Alg::MlDsa44,
];

fn keys() -> Vec<SigningKey> {
    ALGS.iter()
        .map(|alg| SigningKey::generate(*alg).unwrap())
        .collect()
}

fn bodies(keys: &[SigningKey]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let header = if i % 2 == 0 {
            serde_json::json!({
                "nonce": "b3Jkx0Yq7oA", "url": "https://ca.test/acme/new-order",
                "jwk": key.public_jwk().unwrap().to_json(),
            })
        } else {
            serde_json::json!({
                "nonce": "b3Jkx0Yq7oA", "url": "https://ca.test/acme/new-order",
                "kid": "https://ca.test/acme/acct/1",
            })
        };
        let payload = br#"{"identifiers":[{"type":"dns","value":"a.test"}]}"#;
        let jws = key.sign_flattened(header, payload).unwrap();
        out.push(jws.to_string().into_bytes());
    }
    out
}

/// What the frontend does with a body, minus nonce and account lookups:
/// every step may refuse, none may panic. True when it got as far as the
/// signature check.
fn authenticate(body: &[u8], known: &[VerifyingKey]) -> bool {
    let Ok(jws) = FlattenedJws::parse(body) else {
        return false;
    };
    let _ = jws.payload_bytes();
    let Ok(header) = jws.header() else {
        return false;
    };
    let Some(alg) = Alg::parse(&header.alg) else {
        return false;
    };
    let key = match (&header.jwk, &header.kid) {
        (Some(jwk), None) => {
            let Ok(jwk) = Jwk::from_json(jwk) else {
                return false;
            };
            let _ = jwk.thumbprint();
            if jwk.check_alg(alg).is_err() {
                return false;
            }
            match VerifyingKey::from_jwk(jwk) {
                Ok(key) => key,
                Err(_) => return false,
            }
        }
        (None, Some(kid)) => known[kid.len() % known.len()].clone(),
        _ => return false,
    };
    let _ = jws.verify_with(alg, &key);
    true
}

#[test]
fn jws_bodies() {
    let keys = keys();
    let known: Vec<VerifyingKey> = keys
        .iter()
        .map(|k| VerifyingKey::from_jwk(k.public_jwk().unwrap()).unwrap())
        .collect();
    let seeds = bodies(&keys);
    // The seeds verify: the target reaches the signature check.
    for (seed, key) in seeds.iter().zip(&known) {
        let jws = FlattenedJws::parse(seed).unwrap();
        let alg = Alg::parse(&jws.header().unwrap().alg).unwrap();
        jws.verify_with(alg, key).unwrap();
    }
    run_deep("jws-body", &seeds, 600, 1, |input| {
        authenticate(input, &known)
    });
}

/// Mutates the protected header's JSON and re-encodes it, so the cases get
/// past base64url and reach the header's and the JWK's parsers.
#[test]
fn jws_protected_headers() {
    let keys = keys();
    let known: Vec<VerifyingKey> = keys
        .iter()
        .map(|k| VerifyingKey::from_jwk(k.public_jwk().unwrap()).unwrap())
        .collect();
    let bodies = bodies(&keys);
    let parsed: Vec<FlattenedJws> = bodies
        .iter()
        .map(|b| FlattenedJws::parse(b).unwrap())
        .collect();
    let seeds: Vec<Vec<u8>> = parsed
        .iter()
        .map(|j| akamu_jose::b64_decode(&j.protected).unwrap())
        .collect();
    run_deep("jws-protected", &seeds, 600, 1, |input| {
        let base = &parsed[input.len() % parsed.len()];
        let jws = serde_json::json!({
            "protected": b64(input),
            "payload": base.payload,
            "signature": base.signature,
        });
        authenticate(jws.to_string().as_bytes(), &known)
    });
}

/// A JWK alone: parse, thumbprint, key construction and a signature check
/// under every algorithm.
#[test]
fn jwks() {
    let keys = keys();
    let seeds: Vec<Vec<u8>> = keys
        .iter()
        .map(|k| k.public_jwk().unwrap().to_json().to_string().into_bytes())
        .collect();
    let all = [
        Alg::Es256,
        Alg::Es384,
        Alg::Es512,
        Alg::Rs256,
        Alg::Rs384,
        Alg::Rs512,
        Alg::Ps256,
        Alg::Ps384,
        Alg::Ps512,
        Alg::EdDsa,
        Alg::MlDsa44,
        Alg::MlDsa65,
        Alg::MlDsa87,
    ];
    run("jwk", &seeds, 600, |input| {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) else {
            return;
        };
        let Ok(jwk) = Jwk::from_json(&value) else {
            return;
        };
        let _ = jwk.thumbprint();
        let _ = jwk.describe();
        let _ = jwk.to_public_key();
        let Ok(key) = VerifyingKey::from_jwk(jwk.clone()) else {
            return;
        };
        for alg in all {
            if jwk.check_alg(alg).is_ok() {
                let _ = key.verify(alg, b"input", &[0u8; 64]);
                let _ = key.verify(alg, b"input", input);
            }
        }
    });
}

/// External account binding MACs (RFC 8555 §7.3.4).
#[test]
fn eab_macs() {
    let seeds = vec![b"HS256".to_vec(), b"HS384".to_vec(), b"HS512".to_vec()];
    run("eab-hmac", &seeds, 300, |input| {
        let alg = String::from_utf8_lossy(&input[..input.len().min(8)]).into_owned();
        let key = &input[input.len().min(8)..];
        if let Ok(mac) = akamu_jose::hmac_sign(&alg, key, b"input") {
            akamu_jose::hmac_verify(&alg, key, b"input", &mac).unwrap();
        }
        let _ = akamu_jose::hmac_verify(&alg, key, b"input", input);
    });
}
