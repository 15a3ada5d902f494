//! Leaf issuance through the public API: profile, refusals, CA key types,
//! the server certificate, and the real socket with its allow-list.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ca_signer::config::{self, Config, HashAlg, KeyType, ServerCertificate};
use ca_signer::server::Server;
use ca_signer::server_cert::{self, Outcome};
use ca_signer::service::Issuer;
use ca_signer::{Error, ca};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509ReqBuilder, X509StoreContext, X509VerifyResult};
use shared_proto::Identifier;
use shared_proto::signer::{IssueRequest, IssuedCertificate, SignerError, SignerRpcClient};
use shared_proto::transport::{self, TransportError};

const DAY: i64 = 86_400;

fn now() -> i64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    i64::try_from(secs).expect("time")
}

fn ca_config(dir: &Path, key_type: KeyType) -> config::Ca {
    config::Ca {
        key_file: Some(dir.join("ca.key.pem")),
        cert_file: dir.join("ca.cert.pem"),
        chain_file: None,
        crl_validity_hours: 24,
        key_type,
        hash_alg: HashAlg::Sha256,
        validity_days: 90,
        ca_validity_years: 10,
        common_name: "Akāmu Test CA".to_owned(),
        organization: "Akāmu".to_owned(),
        crl_url: None,
        ocsp_url: None,
        ca_issuers_url: None,
    }
}

fn full_config(dir: &Path, ca: config::Ca) -> Config {
    Config {
        socket_path: dir.join("run/signer.sock"),
        socket_mode: 0o600,
        allowed_uids: vec![0],
        tcp: None,
        ca,
        signer: config::Signer::default(),
        audit: config::Audit {
            path: Some(dir.join("audit/audit.log")),
            ..config::Audit::default()
        },
        mtc: config::Mtc::default(),
        policy: config::Policy::default(),
        profiles: Default::default(),
        server_certificate: None,
        validator_public_key_file: None,
        perspectives: Vec::new(),
        // These tests are about the policy, the TBS and the audit log, not
        // the statements (tests/statements.rs).
        insecure_issue_without_statements: true,
        user: None,
        group: None,
    }
}

fn issuer(dir: &Path, cfg: &config::Ca) -> Issuer {
    issuer_with(dir, full_config(dir, cfg.clone()))
}

fn issuer_with(_dir: &Path, config: Config) -> Issuer {
    let (ca, _) = ca::load_or_create(&config.ca, now()).expect("CA");
    Issuer::new(ca, &config).expect("issuer")
}

/// A CSR from rcgen (ECDSA P-256) for `names`, with an optional CN.
fn csr(names: &[&str], cn: Option<&str>, ca: bool) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, cn);
    }
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    params.serialize_request(&key).expect("csr").der().to_vec()
}

/// A CSR from openssl with any key (rcgen cannot make RSA keys).
fn openssl_csr(key: &PKey<Private>, dns_names: &[&str]) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().expect("req");
    b.set_pubkey(key).expect("pubkey");
    let mut san = SubjectAlternativeName::new();
    for n in dns_names {
        san.dns(n);
    }
    let mut exts = Stack::new().expect("stack");
    exts.push(san.build(&b.x509v3_context(None)).expect("san"))
        .expect("push");
    b.add_extensions(&exts).expect("exts");
    let md = if key.id() == openssl::pkey::Id::ED25519 {
        MessageDigest::null()
    } else {
        MessageDigest::sha256()
    };
    b.sign(key, md).expect("sign");
    b.build().to_der().expect("der")
}

fn request(csr_der: Vec<u8>, identifiers: Vec<Identifier>) -> IssueRequest {
    IssueRequest {
        csr_der,
        identifiers,
        not_before: None,
        not_after: None,
        account_uri: "https://acme.example.org/acme/acct/1".to_owned(),
        order_id: "order-1".to_owned(),
        statements: Vec::new(),
        profile: None,
        processing_since: None,
        star: None,
    }
}

fn ids(dns: &[&str], ips: &[&str]) -> Vec<Identifier> {
    dns.iter()
        .map(|d| Identifier::dns(d))
        .chain(ips.iter().map(|i| Identifier::ip(i.parse().expect("ip"))))
        .collect()
}

/// Verifies `leaf` against `ca` alone with openssl, at the current time
/// (read from the same clock the tests issue with, plus 2 s: openssl's own
/// clock is the coarse one, which can still read the previous second when a
/// certificate issued "now" starts in the next).
fn verifies(leaf: &X509, ca: &X509) -> Result<(), String> {
    let mut store = X509StoreBuilder::new().expect("store");
    store.add_cert(ca.clone()).expect("add");
    let mut param = openssl::x509::verify::X509VerifyParam::new().expect("param");
    param.set_time(now() + 2);
    store.set_param(&param).expect("param");
    let store = store.build();
    let mut ctx = X509StoreContext::new().expect("ctx");
    let chain = Stack::new().expect("stack");
    ctx.init(&store, leaf, &chain, |c| {
        c.verify_cert()?;
        Ok(c.error())
    })
    .map_err(|e| e.to_string())
    .and_then(|r| {
        if r == X509VerifyResult::OK {
            Ok(())
        } else {
            Err(r.to_string())
        }
    })
}

fn ca_x509(cfg: &config::Ca) -> X509 {
    X509::from_pem(&std::fs::read(&cfg.cert_file).expect("read")).expect("pem")
}

fn sans_of(cert: &X509) -> Vec<String> {
    let mut out: Vec<String> = cert
        .subject_alt_names()
        .expect("SAN")
        .iter()
        .map(|n| {
            if let Some(d) = n.dnsname() {
                format!("dns:{d}")
            } else {
                let b = n.ipaddress().expect("dns or ip");
                let ip = match b.len() {
                    4 => IpAddr::from(<[u8; 4]>::try_from(b).expect("v4")),
                    _ => IpAddr::from(<[u8; 16]>::try_from(b).expect("v6")),
                };
                format!("ip:{ip}")
            }
        })
        .collect();
    out.sort();
    out
}

fn text(cert: &X509) -> String {
    String::from_utf8(cert.to_text().expect("text")).expect("utf8")
}

fn check_leaf(issued: &IssuedCertificate, ca_cfg: &config::Ca, expect_sans: &[&str]) -> X509 {
    let leaf = X509::from_der(&issued.der).expect("leaf DER");
    let ca = ca_x509(ca_cfg);
    verifies(&leaf, &ca).expect("leaf verifies against the CA");

    let serial = leaf.serial_number().to_bn().expect("bn");
    assert!(!serial.is_negative());
    assert_eq!(serial.num_bytes(), 16, "16-byte serial");
    assert_eq!(issued.serial_hex, hex::encode(serial.to_vec()));
    assert_eq!(issued.serial_hex, issued.serial_hex.to_lowercase());

    let mut want: Vec<String> = expect_sans.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(sans_of(&leaf), want, "SANs are exactly the identifiers");

    let t = text(&leaf);
    assert!(
        t.contains("X509v3 Extended Key Usage: \n                TLS Web Server Authentication\n"),
        "{t}"
    );
    assert!(
        t.contains("X509v3 Key Usage: critical\n                Digital Signature\n"),
        "{t}"
    );
    assert!(
        t.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"),
        "{t}"
    );
    assert_eq!(
        leaf.authority_key_id().expect("AKI").as_slice(),
        ca.subject_key_id().expect("CA SKI").as_slice(),
        "AKI == CA SKI"
    );
    assert!(leaf.subject_key_id().is_none(), "no SKI on leaves (BR)");
    assert_eq!(
        leaf.issuer_name().to_der().expect("der"),
        ca.subject_name().to_der().expect("der")
    );

    let d = leaf.not_before().diff(leaf.not_after()).expect("diff");
    assert_eq!(
        i64::from(d.days) * DAY + i64::from(d.secs),
        issued.not_after - issued.not_before
    );
    assert!(issued.chain_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let chain = X509::stack_from_pem(issued.chain_pem.as_bytes()).expect("chain");
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[0].to_der().expect("der"), issued.der);
    assert_eq!(chain[1].to_der().expect("der"), ca.to_der().expect("der"));
    leaf
}

#[test]
fn leaf_profile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let issuer = issuer(dir.path(), &cfg);
    let t0 = now();
    let der = csr(
        &["www.example.org", "example.org", "192.0.2.7"],
        Some("example.org"),
        false,
    );
    let issued = issuer
        .issue(
            &request(
                der,
                ids(&["www.example.org", "example.org"], &["192.0.2.7"]),
            ),
            None,
            t0,
            &mut rand::rng(),
        )
        .expect("issue");
    let leaf = check_leaf(
        &issued,
        &cfg,
        &["dns:example.org", "dns:www.example.org", "ip:192.0.2.7"],
    );
    assert_eq!(issued.not_before, t0);
    assert_eq!(
        issued.not_after - issued.not_before,
        90 * DAY,
        "validity = validity_days"
    );
    let cn = leaf
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .expect("CN");
    assert_eq!(
        cn.data().to_string().expect("utf8"),
        "example.org",
        "the CSR's CN"
    );
    // No CDP/AIA unless configured.
    let t = text(&leaf);
    assert!(
        !t.contains("CRL Distribution Points") && !t.contains("Authority Information Access"),
        "{t}"
    );
}

#[test]
fn cn_defaults_to_first_identifier_and_urls_are_included() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = ca_config(dir.path(), KeyType::EcP256);
    cfg.crl_url = Some("http://crl.example.org/ca.crl".to_owned());
    cfg.ocsp_url = Some("http://ocsp.example.org/".to_owned());
    let issuer = issuer(dir.path(), &cfg);
    let der = csr(&["b.example.org", "a.example.org"], None, false);
    let issued = issuer
        .issue(
            &request(der, ids(&["b.example.org", "a.example.org"], &[])),
            None,
            now(),
            &mut rand::rng(),
        )
        .expect("issue");
    let leaf = check_leaf(&issued, &cfg, &["dns:a.example.org", "dns:b.example.org"]);
    let cn = leaf
        .subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .next()
        .expect("CN");
    let cn = cn.data().to_string().expect("utf8");
    assert!(cn == "a.example.org" || cn == "b.example.org", "{cn}");
    let t = text(&leaf);
    assert!(t.contains("URI:http://crl.example.org/ca.crl"), "{t}");
    assert!(t.contains("OCSP - URI:http://ocsp.example.org/"), "{t}");
}

#[test]
fn rsa_subscriber_gets_key_encipherment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let issuer = issuer(dir.path(), &cfg);
    let key = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("pkey");
    let der = openssl_csr(&key, &["rsa.example.org"]);
    let issued = issuer
        .issue(
            &request(der, ids(&["rsa.example.org"], &[])),
            None,
            now(),
            &mut rand::rng(),
        )
        .expect("issue");
    let leaf = X509::from_der(&issued.der).expect("der");
    let t = text(&leaf);
    assert!(t.contains("Digital Signature, Key Encipherment"), "{t}");
    verifies(&leaf, &ca_x509(&cfg)).expect("verifies");
}

#[test]
fn refusals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let issuer = issuer(dir.path(), &cfg);
    let issue = |req: IssueRequest| {
        issuer
            .issue(&req, None, now(), &mut rand::rng())
            .map_err(|e| e.to_signer_error())
    };
    let is_bad_csr =
        |r: Result<IssuedCertificate, SignerError>| matches!(r, Err(SignerError::BadCsr(_)));

    // A SAN that is not in the order.
    let der = csr(&["a.example.org", "evil.example.org"], None, false);
    assert!(is_bad_csr(issue(request(
        der,
        ids(&["a.example.org"], &[])
    ))));
    // A name missing from the CSR.
    let der = csr(&["a.example.org"], None, false);
    assert!(is_bad_csr(issue(request(
        der,
        ids(&["a.example.org", "b.example.org"], &[])
    ))));
    // cA=TRUE requested.
    let der = csr(&["a.example.org"], None, true);
    assert!(is_bad_csr(issue(request(
        der,
        ids(&["a.example.org"], &[])
    ))));
    // Tampered signature.
    let mut der = csr(&["a.example.org"], None, false);
    let last = der.len() - 1;
    der[last] ^= 0x01;
    assert!(is_bad_csr(issue(request(
        der,
        ids(&["a.example.org"], &[])
    ))));
    // Not a CSR at all.
    assert!(is_bad_csr(issue(request(
        b"garbage".to_vec(),
        ids(&["a.example.org"], &[])
    ))));

    // RSA-1024 subscriber key.
    let weak = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("rsa")).expect("pkey");
    let der = openssl_csr(&weak, &["a.example.org"]);
    assert!(matches!(
        issue(request(der, ids(&["a.example.org"], &[]))),
        Err(SignerError::BadPublicKey(_))
    ));

    // Names that are not valid DNS names for a certificate.
    for bad in ["under_score.example", "localhost"] {
        let der = csr(&[bad], None, false);
        let got = issue(request(der, vec![Identifier::dns(bad)]));
        assert!(
            matches!(got, Err(SignerError::PolicyRefused(_))),
            "{bad}: {got:?}"
        );
    }
    // No identifiers at all.
    let der = csr(&["a.example.org"], None, false);
    assert!(matches!(
        issue(request(der, vec![])),
        Err(SignerError::PolicyRefused(_))
    ));
    // notAfter before notBefore.
    let der = csr(&["a.example.org"], None, false);
    let mut req = request(der, ids(&["a.example.org"], &[]));
    req.not_after = Some(now() - DAY);
    assert!(matches!(issue(req), Err(SignerError::PolicyRefused(_))));
}

#[test]
fn requested_validity_is_honoured_or_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let issuer = issuer(dir.path(), &cfg);
    let t0 = now();

    let mut req = request(
        csr(&["a.example.org"], None, false),
        ids(&["a.example.org"], &[]),
    );
    req.not_after = Some(t0 + 400 * DAY);
    let refused = issuer
        .issue(&req, None, t0, &mut rand::rng())
        .map_err(|e| e.to_signer_error());
    assert!(
        matches!(refused, Err(SignerError::PolicyRefused(_))),
        "{refused:?}"
    );
    req.not_after = Some(t0 + 90 * DAY);
    let issued = issuer
        .issue(&req, None, t0, &mut rand::rng())
        .expect("issue");
    assert_eq!(
        (issued.not_before, issued.not_after),
        (t0, t0 + 90 * DAY),
        "the profile's maximum"
    );
    let leaf = check_leaf(&issued, &cfg, &["dns:a.example.org"]);
    let d = leaf.not_before().diff(leaf.not_after()).expect("diff");
    assert_eq!((d.days, d.secs), (90, 0));

    let mut req = request(
        csr(&["a.example.org"], None, false),
        ids(&["a.example.org"], &[]),
    );
    req.not_before = Some(t0 - 600);
    req.not_after = Some(t0 + 7 * DAY);
    let issued = issuer
        .issue(&req, None, t0, &mut rand::rng())
        .expect("issue");
    assert_eq!(
        (issued.not_before, issued.not_after),
        (t0 - 600, t0 + 7 * DAY),
        "honoured"
    );
}

#[test]
fn every_ca_key_type_issues_verifiable_leaves() {
    for (key_type, hash) in [
        (KeyType::EcP256, HashAlg::Sha256),
        (KeyType::EcP384, HashAlg::Sha384),
        (KeyType::EcP521, HashAlg::Sha512),
        (KeyType::Rsa(2048), HashAlg::Sha256),
        (KeyType::Ed25519, HashAlg::Sha256),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = ca_config(dir.path(), key_type);
        cfg.hash_alg = hash;
        let issuer = issuer(dir.path(), &cfg);
        let ca = ca_x509(&cfg);
        verifies(&ca, &ca).unwrap_or_else(|e| panic!("{key_type}: root does not self-verify: {e}"));
        let expected_alg = match (key_type, hash) {
            (KeyType::Ed25519, _) => "ED25519",
            (KeyType::Rsa(_), _) => "sha256WithRSAEncryption",
            (_, HashAlg::Sha256) => "ecdsa-with-SHA256",
            (_, HashAlg::Sha384) => "ecdsa-with-SHA384",
            (_, HashAlg::Sha512) => "ecdsa-with-SHA512",
        };
        assert_eq!(
            ca.signature_algorithm()
                .object()
                .nid()
                .long_name()
                .expect("ln"),
            expected_alg
        );

        let der = csr(&["a.example.org"], None, false);
        let issued = issuer
            .issue(
                &request(der, ids(&["a.example.org"], &[])),
                None,
                now(),
                &mut rand::rng(),
            )
            .unwrap_or_else(|e| panic!("{key_type}: {e}"));
        let leaf = check_leaf(&issued, &cfg, &["dns:a.example.org"]);
        assert_eq!(
            leaf.signature_algorithm()
                .object()
                .nid()
                .long_name()
                .expect("ln"),
            expected_alg
        );
    }
}

#[test]
fn ed25519_subscriber_key_is_accepted_when_allowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let key = PKey::generate_ed25519().expect("ed25519");
    let der = openssl_csr(&key, &["ed.example.org"]);
    let refused = issuer(dir.path(), &cfg)
        .issue(
            &request(der.clone(), ids(&["ed.example.org"], &[])),
            None,
            now(),
            &mut rand::rng(),
        )
        .map_err(|e| e.to_signer_error());
    assert!(
        matches!(refused, Err(SignerError::BadPublicKey(_))),
        "{refused:?}"
    );
    let mut config = full_config(dir.path(), cfg.clone());
    config.policy.allow_ed25519 = true;
    let issuer = issuer_with(dir.path(), config);
    let issued = issuer
        .issue(
            &request(der, ids(&["ed.example.org"], &[])),
            None,
            now(),
            &mut rand::rng(),
        )
        .expect("issue");
    check_leaf(&issued, &cfg, &["dns:ed.example.org"]);
}

#[test]
fn server_certificate_is_issued_reused_and_reissued() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let issuer = issuer(dir.path(), &cfg);
    let mut sc = ServerCertificate {
        names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        cert_file: dir.path().join("tls/server.crt"),
        key_file: dir.path().join("tls/server.key"),
        key_type: KeyType::EcP256,
    };
    let t0 = now();
    assert_eq!(
        server_cert::ensure(&sc, &issuer, t0, &mut rand::rng()).expect("issue"),
        Outcome::Issued
    );
    let chain = X509::stack_from_pem(&std::fs::read(&sc.cert_file).expect("read")).expect("pem");
    assert_eq!(chain.len(), 2);
    verifies(&chain[0], &chain[1]).expect("verifies");
    assert_eq!(sans_of(&chain[0]), ["dns:localhost", "ip:127.0.0.1"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&sc.key_file)
        .expect("meta")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let key = PKey::private_key_from_pem(&std::fs::read(&sc.key_file).expect("read")).expect("key");
    assert!(chain[0].public_key().expect("pk").public_eq(&key));
    let ec = key.ec_key().expect("EC key");
    assert_eq!(ec.group().curve_name(), Some(Nid::X9_62_PRIME256V1));

    assert_eq!(
        server_cert::ensure(&sc, &issuer, t0 + 60, &mut rand::rng()).expect("reuse"),
        Outcome::Reused
    );
    // Close to expiry → reissued.
    assert_eq!(
        server_cert::ensure(&sc, &issuer, t0 + 84 * DAY, &mut rand::rng()).expect("renew"),
        Outcome::Issued
    );
    // Different names → reissued.
    sc.names.push("::1".to_owned());
    assert_eq!(
        server_cert::ensure(&sc, &issuer, t0, &mut rand::rng()).expect("names"),
        Outcome::Issued
    );
    let chain = X509::stack_from_pem(&std::fs::read(&sc.cert_file).expect("read")).expect("pem");
    assert_eq!(
        sans_of(&chain[0]),
        ["dns:localhost", "ip:127.0.0.1", "ip:::1"]
    );
    assert_eq!(
        server_cert::ensure(&sc, &issuer, t0, &mut rand::rng()).expect("reuse"),
        Outcome::Reused
    );
}

/// Mode 3 of the TLS guide: a certificate the CA did not sign is the
/// operator's and its files are never written; half a pair is refused; a
/// configured key type is what a new certificate gets.
#[test]
fn server_certificate_never_replaces_an_operators_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let issuer = issuer(dir.path(), &cfg);
    let sc = ServerCertificate {
        names: vec!["localhost".to_owned()],
        cert_file: dir.path().join("server.crt"),
        key_file: dir.path().join("server.key"),
        key_type: KeyType::EcP384,
    };
    // An operator's certificate (rcgen, self-signed: not our CA), even an
    // expired one naming other names.
    let mut params =
        rcgen::CertificateParams::new(vec!["acme.example.com".to_owned()]).expect("params");
    params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("cert");
    std::fs::write(&sc.cert_file, cert.pem()).expect("write");
    std::fs::write(&sc.key_file, key.serialize_pem()).expect("write");
    let before = (
        std::fs::read(&sc.cert_file).expect("read"),
        std::fs::read(&sc.key_file).expect("read"),
    );
    assert_eq!(
        server_cert::ensure(&sc, &issuer, now(), &mut rand::rng()).expect("kept"),
        Outcome::Foreign
    );
    let after = (
        std::fs::read(&sc.cert_file).expect("read"),
        std::fs::read(&sc.key_file).expect("read"),
    );
    assert_eq!(before, after, "the operator's files were rewritten");

    // Half a pair: refused, and the lone file is left alone.
    std::fs::remove_file(&sc.key_file).expect("rm");
    let refused = server_cert::ensure(&sc, &issuer, now(), &mut rand::rng());
    assert!(
        matches!(&refused, Err(Error::ConfigValue { problem, .. }) if problem.contains("must both be present or both absent")),
        "{refused:?}"
    );
    assert_eq!(std::fs::read(&sc.cert_file).expect("read"), before.0);

    // Neither: issued with the configured key type; then a change of key
    // type reissues.
    std::fs::remove_file(&sc.cert_file).expect("rm");
    assert_eq!(
        server_cert::ensure(&sc, &issuer, now(), &mut rand::rng()).expect("issue"),
        Outcome::Issued
    );
    let curve = |path: &Path| {
        let key = PKey::private_key_from_pem(&std::fs::read(path).expect("read")).expect("key");
        key.ec_key().ok().and_then(|k| k.group().curve_name())
    };
    assert_eq!(curve(&sc.key_file), Some(Nid::SECP384R1));
    let ed = ServerCertificate {
        key_type: KeyType::Ed25519,
        ..sc.clone()
    };
    assert_eq!(
        server_cert::ensure(&ed, &issuer, now(), &mut rand::rng()).expect("reissue"),
        Outcome::Issued
    );
    let key = PKey::private_key_from_pem(&std::fs::read(&ed.key_file).expect("read")).expect("key");
    assert_eq!(key.id(), openssl::pkey::Id::ED25519);
    assert_eq!(
        server_cert::ensure(&ed, &issuer, now(), &mut rand::rng()).expect("reuse"),
        Outcome::Reused
    );
}

fn server_config(dir: &Path, allowed_uid: u32) -> Config {
    let mut c = full_config(dir, ca_config(&dir.join("ca"), KeyType::EcP256));
    c.allowed_uids = vec![allowed_uid];
    c.audit.path = None;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_over_the_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = nix::unistd::geteuid().as_raw();
    let mut config = server_config(dir.path(), me);
    config.server_certificate = Some(ServerCertificate {
        names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
        cert_file: dir.path().join("server.crt"),
        key_file: dir.path().join("server.key"),
        key_type: KeyType::EcP256,
    });
    std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
    let server = Server::start(&config).expect("start");
    assert!(
        config
            .server_certificate
            .as_ref()
            .is_some_and(|s| s.cert_file.exists())
    );
    let path = server.socket_path().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve_until(async move {
        let _ = stop_rx.await;
    }));

    let stream = transport::connect(&path).await.expect("connect");
    let client =
        SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream)).spawn();
    let der = csr(&["a.example.org", "192.0.2.1"], None, false);
    let req = request(der, ids(&["a.example.org"], &["192.0.2.1"]));
    let ctx = shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL);
    let issued = client
        .issue_certificate(ctx, req)
        .await
        .expect("rpc")
        .expect("issued");
    check_leaf(&issued, &config.ca, &["dns:a.example.org", "ip:192.0.2.1"]);

    // Refusals cross the wire as typed errors.
    let der = csr(&["a.example.org", "evil.example.org"], None, false);
    let ctx = shared_proto::deadline::context_with(Duration::from_secs(10));
    let refused = client
        .issue_certificate(ctx, request(der, ids(&["a.example.org"], &[])))
        .await
        .expect("rpc");
    assert!(
        matches!(refused, Err(SignerError::BadCsr(_))),
        "{refused:?}"
    );

    let ctx = shared_proto::deadline::context_with(Duration::from_secs(10));
    let info = client.ca_info(ctx).await.expect("rpc").expect("CA info");
    assert_eq!(
        info.chain_pem.as_bytes(),
        std::fs::read(&config.ca.cert_file).expect("read")
    );

    stop_tx.send(()).expect("stop");
    handle.await.expect("join").expect("serve");
    assert!(!path.exists(), "socket removed on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_uids_not_on_the_allow_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let me = nix::unistd::geteuid().as_raw();
    let config = server_config(dir.path(), me.wrapping_add(1));
    std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
    let server = Server::start(&config).expect("start");
    let path = server.socket_path().to_owned();
    let issuer: Arc<Issuer> = Arc::clone(server.issuer());
    assert!(
        issuer
            .ca()
            .cert_pem()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let handle = tokio::spawn(server.serve_until(std::future::pending()));
    let got = transport::connect(&path).await;
    assert!(matches!(got, Err(TransportError::Refused)), "{got:?}");
    handle.abort();
}

#[test]
fn startup_with_half_a_ca_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = server_config(dir.path(), 0);
    std::fs::create_dir_all(dir.path().join("ca")).expect("mkdir");
    std::fs::write(config.ca.key_file.as_ref().expect("key file"), b"x").expect("write");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let _guard = rt.enter();
    let err = Server::start(&config).err().expect("must refuse");
    assert!(matches!(err, Error::CaIncomplete { .. }), "{err}");
    assert!(err.to_string().contains("ca.cert.pem is missing"), "{err}");
}

#[test]
fn ready_line_format() {
    let line = ca_signer::ready_line(Path::new("/run/akamu/signer.sock"));
    let json = line.strip_prefix("READY ").expect("prefix");
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    assert_eq!(v["service"], "signer");
    assert_eq!(v["socket"], "/run/akamu/signer.sock");
    assert_eq!(v["pid"], std::process::id());
    assert!(!line.contains('\n'));
}

#[test]
fn crl_numbers_never_go_backwards_and_chain_file_is_served() {
    use shared_proto::signer::{CrlRequest, RevokedEntry};
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let config = full_config(dir.path(), cfg.clone());
    let request = CrlRequest {
        revoked: vec![RevokedEntry {
            serial_hex: "4a0102".to_owned(),
            revoked_at: now() - 10,
            reason: Some(4),
        }],
    };
    let first = issuer_with(dir.path(), config.clone());
    let frontend = shared_proto::peer::Peer::Unix(shared_proto::peer::PeerCred {
        uid: 7,
        gid: 7,
        pid: None,
    });
    assert_eq!(
        first
            .generate_crl(&request, Some(&frontend), now())
            .expect("crl")
            .number,
        1
    );
    let crl = first
        .generate_crl(&request, Some(&frontend), now())
        .expect("crl");
    assert_eq!(crl.number, 2);
    let parsed = openssl::x509::X509Crl::from_der(&crl.der).expect("crl der");
    let ca = ca_x509(&cfg);
    assert!(
        parsed
            .verify(&ca.public_key().expect("pk"))
            .expect("verify")
    );
    drop(first);
    // A restart continues; losing the counter file falls back to the audit log.
    let second = issuer_with(dir.path(), config.clone());
    assert_eq!(
        second
            .generate_crl(&request, None, now())
            .expect("crl")
            .number,
        3
    );
    drop(second);
    std::fs::remove_file(dir.path().join("audit/crl-number")).expect("rm");
    let third = issuer_with(dir.path(), config.clone());
    assert_eq!(
        third
            .generate_crl(&request, None, now())
            .expect("crl")
            .number,
        4
    );
    // A malformed entry is refused and audited.
    let bad = CrlRequest {
        revoked: vec![RevokedEntry {
            serial_hex: "XYZ".to_owned(),
            revoked_at: 0,
            reason: None,
        }],
    };
    assert!(matches!(
        third
            .generate_crl(&bad, None, now())
            .map_err(|e| e.to_signer_error()),
        Err(SignerError::PolicyRefused(_))
    ));
    let head = ca_signer::audit::verify(&dir.path().join("audit/audit.log")).expect("verify");
    assert_eq!(head.len(), 64);

    // chain_file: served after cert_file.
    let extra = dir.path().join("extra-chain.pem");
    std::fs::write(&extra, std::fs::read(&cfg.cert_file).expect("read")).expect("write");
    let mut with_chain = config;
    with_chain.ca.chain_file = Some(extra);
    let issuer = issuer_with(dir.path(), with_chain);
    let chain = X509::stack_from_pem(issuer.ca_info().chain_pem.as_bytes()).expect("chain");
    assert_eq!(chain.len(), 2);
    let der = csr(&["a.example.org"], None, false);
    let issued = issuer
        .issue(&request_for(der), None, now(), &mut rand::rng())
        .expect("issue");
    assert_eq!(
        X509::stack_from_pem(issued.chain_pem.as_bytes())
            .expect("chain")
            .len(),
        3
    );
}

fn request_for(der: Vec<u8>) -> IssueRequest {
    request(der, ids(&["a.example.org"], &[]))
}

/// The issue records of the audit log at `dir`.
fn issue_records(dir: &Path) -> Vec<ca_signer::audit::Record> {
    let (records, _) =
        ca_signer::audit::read_verified(&dir.join("audit/audit.log")).expect("audit verifies");
    records
        .into_iter()
        .filter(|r| r.operation == ca_signer::audit::Operation::Issue)
        .collect()
}

/// A request repeated after its answer was lost (the frontend or the signer
/// died before the certificate was stored) gets the certificate already
/// signed, also after a restart of the signer, and no second signature; a
/// request that differs in anything but its statements is a new issuance.
/// Every issue record carries its certificate, order and request digest.
#[test]
fn a_repeated_request_gets_the_same_certificate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = ca_config(dir.path(), KeyType::EcP256);
    let issuer = issuer(dir.path(), &cfg);
    let req = request(
        csr(&["again.example.org"], None, false),
        ids(&["again.example.org"], &[]),
    );
    let first = issuer
        .issue(&req, None, now(), &mut rand::rng())
        .expect("issue");
    let issues_before = issue_records(dir.path()).len();
    let repeat = issuer
        .issue(&req, None, now() + 5, &mut rand::rng())
        .expect("repeat");
    assert_eq!(repeat.der, first.der, "the same certificate");
    assert_eq!(repeat.serial_hex, first.serial_hex);
    assert_eq!(repeat.chain_pem, first.chain_pem);
    assert_eq!(
        issue_records(dir.path()).len(),
        issues_before,
        "no second signature, no second record"
    );

    // The record holds what a repeat after a restart needs.
    let record = issue_records(dir.path())
        .into_iter()
        .find(|r| r.serial.as_deref() == Some(first.serial_hex.as_str()))
        .expect("the issue record");
    assert_eq!(record.order_id.as_deref(), Some("order-1"));
    assert_eq!(
        record.request_sha256.as_deref(),
        Some(ca_signer::service::request_sha256(&req).as_str())
    );
    let logged = openssl::base64::decode_block(record.certificate.as_deref().expect("certificate"))
        .expect("base64");
    assert_eq!(logged, first.der, "the log holds the certificate itself");

    // A restarted signer answers the repeat from its audit log.
    drop(issuer);
    let restarted = issuer_with(dir.path(), full_config(dir.path(), cfg.clone()));
    let after_restart = restarted
        .issue(&req, None, now() + 10, &mut rand::rng())
        .expect("repeat after restart");
    assert_eq!(after_restart.der, first.der);
    assert_eq!(after_restart.not_before, first.not_before);
    assert_eq!(after_restart.not_after, first.not_after);

    // Anything else different is a new certificate.
    let mut other_csr = req.clone();
    other_csr.csr_der = csr(&["again.example.org"], None, false);
    let mut other_order = req.clone();
    other_order.order_id = "order-2".to_owned();
    let mut other_validity = req.clone();
    other_validity.not_after = Some(now() + 30 * DAY);
    let mut other_account = req.clone();
    other_account.account_uri = "https://acme.example.org/acme/acct/2".to_owned();
    let mut serials = std::collections::BTreeSet::from([first.serial_hex.clone()]);
    for (what, r) in [
        ("another CSR", other_csr),
        ("another order", other_order),
        ("another validity", other_validity),
        ("another account", other_account),
    ] {
        let issued = restarted
            .issue(&r, None, now(), &mut rand::rng())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            serials.insert(issued.serial_hex),
            "{what}: a new certificate"
        );
    }

    // A CA replaced since (same audit log, new key and certificate) does not
    // hand out the old CA's certificate: the repeat is a new issuance.
    drop(restarted);
    std::fs::remove_file(cfg.key_file.as_deref().expect("key file")).expect("remove key");
    std::fs::remove_file(&cfg.cert_file).expect("remove cert");
    let new_ca = issuer_with(dir.path(), full_config(dir.path(), cfg.clone()));
    let reissued = new_ca
        .issue(&req, None, now(), &mut rand::rng())
        .expect("issue under the new CA");
    assert!(
        !serials.contains(&reissued.serial_hex),
        "a new certificate under the new CA"
    );
    let new_root = X509::from_pem(&std::fs::read(&cfg.cert_file).expect("new CA")).expect("pem");
    let leaf = X509::from_der(&reissued.der).expect("der");
    verifies(&leaf, &new_root).expect("verifies with the new CA");
}

/// The audit record names the profile a leaf was issued (or refused) under,
/// not the default one.
#[test]
fn audit_records_name_the_profile_used() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = full_config(dir.path(), ca_config(dir.path(), KeyType::EcP256));
    config.profiles.insert(
        "short".to_owned(),
        config::ProfileConfig {
            validity_hours: Some(24),
            max_sans: 1,
            client_auth: true,
            common_name: false,
            authz_reuse_secs: None,
            key_types: None,
        },
    );
    let issuer = issuer_with(dir.path(), config);
    let mut short = request_for(csr(&["a.example.org"], None, false));
    short.profile = Some("short".to_owned());
    let issued = issuer
        .issue(&short, None, now(), &mut rand::rng())
        .expect("issue under short");
    assert_eq!(issued.not_after - issued.not_before, DAY);
    // `common_name = false`: an empty subject, the name in the SAN only.
    let subject_entries = |der: &[u8]| {
        openssl::x509::X509::from_der(der)
            .expect("leaf")
            .subject_name()
            .entries()
            .count()
    };
    assert_eq!(subject_entries(&issued.der), 0);
    let default = issuer
        .issue(
            &request_for(csr(&["a.example.org"], None, false)),
            None,
            now(),
            &mut rand::rng(),
        )
        .expect("issue under the default");
    assert_eq!(subject_entries(&default.der), 1, "CN under the default");
    let mut too_many = request(
        csr(&["a.example.org", "b.example.org"], None, false),
        ids(&["a.example.org", "b.example.org"], &[]),
    );
    too_many.profile = Some("short".to_owned());
    issuer
        .issue(&too_many, None, now(), &mut rand::rng())
        .expect_err("two names under a profile of one");

    let (records, _) =
        ca_signer::audit::read_verified(&dir.path().join("audit/audit.log")).expect("audit");
    let profile_of = |serial: &str| {
        records
            .iter()
            .find(|r| r.serial.as_deref() == Some(serial))
            .and_then(|r| r.profile.clone())
    };
    assert_eq!(profile_of(&issued.serial_hex).as_deref(), Some("short"));
    assert_eq!(
        profile_of(&default.serial_hex).as_deref(),
        Some("tls-server")
    );
    let refusal = records
        .iter()
        .find(|r| r.operation == ca_signer::audit::Operation::Refusal)
        .expect("the refusal is audited");
    assert_eq!(refusal.profile.as_deref(), Some("short"));
}
