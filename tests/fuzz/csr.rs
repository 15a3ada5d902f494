//! PKCS#10 requests (akamu-pki `csr`): parsed, self-signature verified (fast
//! path and openssl's), names compared with an order, as the frontend at
//! finalize and the signer on every request do.

use akamu_jose::KeyType;
use shared_proto::Identifier;

use crate::harness::run;

#[test]
fn csrs() {
    let names = ["a.test", "*.b.test", "127.0.0.1", "::1"];
    let mut seeds = Vec::new();
    for key_type in ["ec:P-256", "ec:P-384", "rsa:2048", "ed25519", "ml-dsa-44"] {
        let key = key_type.parse::<KeyType>().unwrap().generate().unwrap();
        seeds.push(akamu_client::build_csr(&names, &key).unwrap());
        seeds.push(akamu_client::build_csr(&names[..1], &key).unwrap());
    }
    let order = vec![
        Identifier::dns("a.test"),
        Identifier::dns("*.b.test"),
        Identifier::ip("127.0.0.1".parse().unwrap()),
        Identifier::ip("::1".parse().unwrap()),
    ];
    for seed in &seeds {
        akamu_pki::csr::ParsedCsr::parse_and_verify(seed).unwrap();
    }
    run("csr", &seeds, 800, |input| {
        if let Ok(csr) = akamu_pki::csr::ParsedCsr::parse_and_verify(input) {
            let _ = csr.check_against(&order);
            let _ = csr.check_against(&order[..1]);
        }
    });
}
