//! Judging issued certificates the way a user would: `openssl verify`
//! against the CA certificate, and the SANs read with the openssl crate.

use std::path::Path;
use std::process::Command;

use openssl::x509::X509;

/// Splits a PEM bundle into its certificates (leaf first, as downloaded).
pub(crate) fn split_chain(chain_pem: &str) -> Vec<X509> {
    X509::stack_from_pem(chain_pem.as_bytes())
        .unwrap_or_else(|e| panic!("downloaded chain is not PEM certificates ({e}):\n{chain_pem}"))
}

/// The leaf (first certificate) of a PEM chain.
pub(crate) fn leaf_of(chain_pem: &str) -> X509 {
    split_chain(chain_pem)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no certificate in the chain:\n{chain_pem}"))
}

/// The serial of `cert` as openssl prints it (upper-case hex), for
/// comparing two certificates.
pub(crate) fn serial(cert: &X509) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .expect("serial")
}

/// `notAfter − notBefore` of `cert`, seconds.
pub(crate) fn lifetime_secs(cert: &X509) -> i64 {
    let d = cert.not_before().diff(cert.not_after()).expect("diff");
    i64::from(d.days) * 86_400 + i64::from(d.secs)
}

/// The DNS SANs of `cert`, sorted.
pub(crate) fn dns_sans(cert: &X509) -> Vec<String> {
    let mut names: Vec<String> = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| n.dnsname().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The IP-address SANs of `cert`, as text, sorted.
pub(crate) fn ip_sans(cert: &X509) -> Vec<String> {
    let mut ips: Vec<String> = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| n.ipaddress())
                .filter_map(|b| match b.len() {
                    4 => <[u8; 4]>::try_from(b)
                        .ok()
                        .map(|a| std::net::IpAddr::from(a).to_string()),
                    16 => <[u8; 16]>::try_from(b)
                        .ok()
                        .map(|a| std::net::IpAddr::from(a).to_string()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    ips.sort();
    ips
}

/// Verifies a PEM bundle (leaf first, then the CA) with `openssl verify`
/// against the CA certificate and asserts its SANs are exactly `dns` and
/// `ips` (any order) and nothing else. Returns the leaf.
pub(crate) fn verify_with_sans(
    dir: &Path,
    ca_cert: &Path,
    chain_pem: &str,
    dns: &[&str],
    ips: &[&str],
) -> X509 {
    let leaf = verify_chain(dir, ca_cert, chain_pem);
    let mut want_dns: Vec<String> = dns.iter().map(|s| (*s).to_owned()).collect();
    want_dns.sort();
    let mut want_ips: Vec<String> = ips.iter().map(|s| (*s).to_owned()).collect();
    want_ips.sort();
    assert_eq!(dns_sans(&leaf), want_dns, "DNS SANs of the leaf");
    assert_eq!(ip_sans(&leaf), want_ips, "IP SANs of the leaf");
    assert_eq!(
        san_count(&leaf),
        dns.len() + ips.len(),
        "no SAN beyond the requested ones"
    );
    leaf
}

/// Number of SAN entries of any kind (DNS, IP, email, URI, …).
pub(crate) fn san_count(cert: &X509) -> usize {
    cert.subject_alt_names().map_or(0, |s| s.len())
}

/// Runs `openssl verify -CAfile root [-untrusted chain] leaf` and asserts
/// it prints `leaf: OK` and exits 0.
pub(crate) fn openssl_verify(root: &Path, untrusted: Option<&Path>, leaf: &Path) {
    let mut cmd = Command::new("openssl");
    cmd.arg("verify").arg("-CAfile").arg(root);
    if let Some(chain) = untrusted {
        cmd.arg("-untrusted").arg(chain);
    }
    cmd.arg(leaf);
    let out = cmd.output().expect("run openssl (install the openssl CLI)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim_end().ends_with(": OK"),
        "openssl verify failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
}

/// Writes the leaf and the rest of the chain to `dir/leaf.pem` and
/// `dir/chain.pem`, then runs [`openssl_verify`] with the CA certificate as
/// the only trust anchor. Returns the leaf.
pub(crate) fn verify_chain(dir: &Path, ca_cert: &Path, chain_pem: &str) -> X509 {
    let certs = split_chain(chain_pem);
    assert!(
        certs.len() >= 2,
        "the chain should hold the leaf then the CA, got {} certificate(s)",
        certs.len()
    );
    let leaf = certs[0].clone();
    let root =
        X509::from_pem(&std::fs::read(ca_cert).expect("read CA cert")).expect("CA cert is PEM");
    assert_eq!(
        certs[certs.len() - 1].to_der().expect("der"),
        root.to_der().expect("der"),
        "the last certificate of the chain should be the CA certificate from READY"
    );
    let leaf_path = dir.join("leaf.pem");
    let chain_path = dir.join("chain.pem");
    let root_path = dir.join("root.pem");
    std::fs::write(&leaf_path, leaf.to_pem().expect("pem")).expect("write leaf");
    let mut rest = Vec::new();
    for c in &certs[1..] {
        rest.extend(c.to_pem().expect("pem"));
    }
    std::fs::write(&chain_path, rest).expect("write chain");
    std::fs::write(&root_path, root.to_pem().expect("pem")).expect("write root");
    openssl_verify(&root_path, Some(&chain_path), &leaf_path);
    leaf
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn sans_and_verify_work_on_a_small_chain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut root_params =
            rcgen::CertificateParams::new(vec!["root.example.org".to_owned()]).expect("params");
        root_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        root_params.distinguished_name = rcgen::DistinguishedName::new();
        root_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "e2e test root");
        let root_key = rcgen::KeyPair::generate().expect("key");
        let root_pem = root_params
            .self_signed(&root_key)
            .expect("self-signed")
            .pem();
        let issuer = rcgen::Issuer::new(root_params, root_key);
        let leaf_key = rcgen::KeyPair::generate().expect("key");
        let mut leaf_params = rcgen::CertificateParams::new(vec![
            "b.example.org".to_owned(),
            "a.example.org".to_owned(),
        ])
        .expect("params");
        leaf_params.distinguished_name = rcgen::DistinguishedName::new();
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).expect("sign");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, &root_pem).expect("write");
        let chain = format!("{}{}", leaf.pem(), root_pem);
        let leaf = verify_chain(dir.path(), &ca_path, &chain);
        assert_eq!(dns_sans(&leaf), vec!["a.example.org", "b.example.org"]);
        assert_eq!(san_count(&leaf), 2);
    }
}
