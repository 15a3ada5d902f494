//! tls-alpn-01 validation certificates (RFC 8737 §3) as the validator
//! checks the one a TLS server presents.

use std::net::IpAddr;

use rcgen::{CertificateParams, CustomExtension, KeyPair, SanType};
use validator_worker::probe::Host;
use validator_worker::tls_alpn01::check_certificate;

use crate::harness::run_deep;

fn sha256(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, data)
        .as_ref()
        .to_vec()
}

#[test]
fn validation_certificates() {
    let hash = sha256(b"token.thumbprint");
    let key = KeyPair::generate().unwrap();
    let mut seeds = Vec::new();
    let sans = [
        SanType::DnsName("a.test".try_into().unwrap()),
        SanType::IpAddress("127.0.0.1".parse().unwrap()),
        SanType::IpAddress("::1".parse().unwrap()),
    ];
    for (i, san) in sans.into_iter().enumerate() {
        let mut params = CertificateParams::default();
        params.subject_alt_names = vec![san];
        let mut ext = CustomExtension::new_acme_identifier(&hash);
        ext.set_criticality(i != 2);
        params.custom_extensions = vec![ext];
        seeds.push(params.self_signed(&key).unwrap().der().to_vec());
    }
    let hosts = [
        Host::Name("a.test".into()),
        Host::Ip("127.0.0.1".parse::<IpAddr>().unwrap()),
        Host::Ip("::1".parse::<IpAddr>().unwrap()),
    ];
    check_certificate(&seeds[0], &hash, &hosts[0]).unwrap();
    check_certificate(&seeds[1], &hash, &hosts[1]).unwrap();
    run_deep("tls-alpn-01-cert", &seeds, 1500, 1, |input| {
        let mut passed = false;
        for host in &hosts {
            if check_certificate(input, &hash, host).is_ok() {
                // Whatever passes still names the host and carries the hash.
                assert!(input.windows(32).any(|w| w == hash.as_slice()));
                passed = true;
            }
        }
        passed
    });
}
