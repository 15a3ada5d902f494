//! The signer's key policy through ACME: a finalize whose CSR carries an
//! RSA-1024 key, a Fermat-weak RSA-2048 key (two close primes), or a key the
//! operator blocked with `akamu-cli admin block-key` is refused with
//! `badPublicKey`; every refusal is in the signer's hash-chained audit log,
//! `akamu-cli audit verify` says OK, and after one flipped byte it fails
//! naming the broken record.

use openssl::bn::{BigNum, BigNumContext};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::stack::Stack;
use openssl::x509::X509ReqBuilder;
use openssl::x509::extension::SubjectAlternativeName;
use serde_json::Value;

use crate::support::acme::{Session, identifier};
use crate::support::client::RawClient;
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::operator::akamu_cli;
use crate::support::procs::{Ca, CaOptions};

/// A CSR for `names` signed by `key` (SHA-256), DER.
fn openssl_csr(key: &PKey<Private>, names: &[&str]) -> Vec<u8> {
    let mut b = X509ReqBuilder::new().expect("req");
    b.set_pubkey(key).expect("pubkey");
    let mut san = SubjectAlternativeName::new();
    for n in names {
        san.dns(n);
    }
    let mut exts = Stack::new().expect("stack");
    exts.push(san.build(&b.x509v3_context(None)).expect("san"))
        .expect("push");
    b.add_extensions(&exts).expect("exts");
    b.sign(key, MessageDigest::sha256()).expect("sign");
    b.build().to_der().expect("der")
}

/// An RSA-2048 key whose primes are adjacent: Fermat's method factors it in
/// one round (as in ca-signer/tests/hsm.rs).
fn fermat_weak_key() -> PKey<Private> {
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
    let one = BigNum::from_u32(1).expect("1");
    let e = BigNum::from_u32(65537).expect("e");
    let mut n = BigNum::new().expect("n");
    n.checked_mul(&p, &q, &mut ctx).expect("n");
    let (mut p1, mut q1, mut phi) = (
        BigNum::new().expect("bn"),
        BigNum::new().expect("bn"),
        BigNum::new().expect("bn"),
    );
    p1.checked_sub(&p, &one).expect("p-1");
    q1.checked_sub(&q, &one).expect("q-1");
    phi.checked_mul(&p1, &q1, &mut ctx).expect("phi");
    let mut d = BigNum::new().expect("d");
    d.mod_inverse(&e, &phi, &mut ctx).expect("d");
    let (mut dp, mut dq, mut qi) = (
        BigNum::new().expect("bn"),
        BigNum::new().expect("bn"),
        BigNum::new().expect("bn"),
    );
    dp.nnmod(&d, &p1, &mut ctx).expect("dp");
    dq.nnmod(&d, &q1, &mut ctx).expect("dq");
    qi.mod_inverse(&q, &p, &mut ctx).expect("qi");
    let rsa = Rsa::from_private_components(n, e, d, p, q, dp, dq, qi).expect("rsa");
    assert_eq!(rsa.size() * 8, 2048, "the weak key is RSA-2048");
    PKey::from_rsa(rsa).expect("pkey")
}

/// Orders `name`, answers http-01, waits for `ready`, finalizes with
/// `csr_der`; returns the finalize answer and the order URL.
async fn finalize_with(
    session: &Session,
    http: &Http01Server,
    name: &str,
    csr_der: &[u8],
) -> (crate::support::client::RawResponse, String) {
    let (url, order) = session.new_order(&[identifier(name)]).await;
    session.answer_http01(&order, http).await;
    let order = session.settle(&url).await;
    assert_eq!(order["status"], "ready", "order {url}: {order}");
    (session.finalize_raw(&order, csr_der).await, url)
}

/// The records of a JSON-lines audit log.
fn audit_records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Three weak or blocked keys are `badPublicKey` at finalize (and the order
/// is `invalid` with that error), while a sound RSA-2048 key is issued; the
/// audit log holds one refusal per weak key, verifies with `akamu-cli audit
/// verify`, and a flipped byte makes it fail naming the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_and_blocked_keys_are_bad_public_key_and_audited() {
    let dns = DnsServer::start().await;
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        ..CaOptions::default()
    })
    .await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let session = Session::new(&raw).await;
    let work = tempfile::tempdir().expect("tempdir");

    // The operator blocks a (say, leaked) key by its public key file, with
    // the signer's configuration the launcher wrote.
    let blocked = PKey::ec_gen("prime256v1").expect("P-256 key");
    let blocked_pub = work.path().join("leaked.pub.pem");
    std::fs::write(&blocked_pub, blocked.public_key_to_pem().expect("PEM")).expect("write key");
    let signer_config = ca.state_dir().join("signer.toml");
    assert!(
        signer_config.is_file(),
        "the launcher writes the signer's config to {}",
        signer_config.display()
    );
    let run = akamu_cli(
        &[
            "admin",
            "block-key",
            "--public-key",
            &blocked_pub.to_string_lossy(),
            "--signer-config",
            &signer_config.to_string_lossy(),
        ],
        &[],
    );
    run.assert_success();
    eprintln!(
        "[e2e] akamu-cli admin block-key: {}",
        run.all_output().trim()
    );

    let rsa1024 = PKey::from_rsa(Rsa::generate(1024).expect("RSA-1024")).expect("pkey");
    // (what, name, key, a word the problem's detail must contain)
    let cases: [(&str, &str, PKey<Private>, &str); 3] = [
        ("RSA-1024", "rsa1024.example.org", rsa1024, "1024"),
        (
            "Fermat-weak RSA-2048",
            "fermat.example.org",
            fermat_weak_key(),
            "Fermat",
        ),
        ("blocked P-256", "blocked.example.org", blocked, "blocked"),
    ];
    for (what, name, key, why) in &cases {
        let (rsp, url) = finalize_with(&session, &http, name, &openssl_csr(key, &[name])).await;
        let problem = rsp.assert_problem(&format!("finalize with a {what} key"), &["badPublicKey"]);
        assert!(
            problem["detail"].as_str().is_some_and(|d| d.contains(why)),
            "the badPublicKey detail for the {what} key says why ({why:?}): {problem}"
        );
        let order = session.post_ok(&url, None).await.json();
        assert_eq!(
            order["status"], "invalid",
            "the order refused for its {what} key is invalid: {order}"
        );
        assert_eq!(
            order["error"]["type"], "urn:ietf:params:acme:error:badPublicKey",
            "the order's error is the finalize problem ({problem}): {order}"
        );
    }

    // A sound RSA-2048 key goes through: the refusals are about the keys.
    let good = PKey::from_rsa(Rsa::generate(2048).expect("RSA-2048")).expect("pkey");
    let name = "rsa2048.example.org";
    let (rsp, url) = finalize_with(&session, &http, name, &openssl_csr(&good, &[name])).await;
    assert!(
        rsp.status.is_success(),
        "finalize with a sound RSA-2048 key: {} {}",
        rsp.status,
        String::from_utf8_lossy(&rsp.body)
    );
    let order = session.settle(&url).await;
    assert_eq!(order["status"], "valid", "RSA-2048 order: {order}");

    // The audit log: one refusal per weak key, naming the order's name.
    let log = ca.state_dir().join("audit.log");
    let text =
        std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("read {}: {e}", log.display()));
    let records = audit_records(&text);
    for (what, name, _, _) in &cases {
        let refusals: Vec<&Value> = records
            .iter()
            .filter(|r| {
                r["operation"] == "refusal"
                    && r["names"].as_array().is_some_and(|n| {
                        n.iter()
                            .any(|v| v.as_str().is_some_and(|s| s.ends_with(name)))
                    })
            })
            .collect();
        assert_eq!(
            refusals.len(),
            1,
            "one audited refusal for the {what} key ({name}) in {}:\n{text}",
            log.display()
        );
    }
    assert!(
        records.iter().any(|r| r["operation"] == "issue"
            && r["names"].as_array().is_some_and(|n| n
                .iter()
                .any(|v| v.as_str().is_some_and(|s| s.ends_with(name))))),
        "the RSA-2048 issuance is audited:\n{text}"
    );

    let log_arg = log.to_string_lossy().into_owned();
    let run = akamu_cli(&["audit", "verify", &log_arg], &[]);
    eprintln!("[e2e] akamu-cli audit verify: {}", run.all_output().trim());
    let head = records
        .last()
        .and_then(|r| r["hash"].as_str())
        .expect("head hash")
        .to_owned();
    assert!(
        run.success() && run.stdout.trim() == format!("OK {head}"),
        "audit verify prints OK and the head hash {head}:\n{run}"
    );

    // Flip one byte inside the first refusal's detail text (a letter's
    // case, so the line stays valid JSON): verify names that record.
    let (victim, _) = records
        .iter()
        .enumerate()
        .find(|(_, r)| r["operation"] == "refusal")
        .expect("a refusal record");
    let seq = records[victim]["seq"].as_u64().expect("seq");
    let mut bytes = text.into_bytes();
    let line_start: usize = bytes
        .split(|b| *b == b'\n')
        .take(victim)
        .map(|l| l.len() + 1)
        .sum();
    let detail_at = line_start
        + std::str::from_utf8(&bytes[line_start..])
            .expect("utf-8")
            .find("\"detail\":\"")
            .expect("the refusal has a detail")
        + "\"detail\":\"".len();
    let flip = (detail_at..bytes.len())
        .find(|&i| bytes[i].is_ascii_alphabetic())
        .expect("a letter in the detail");
    bytes[flip] ^= 0x20;
    std::fs::write(&log, &bytes).expect("write tampered log");
    let run = akamu_cli(&["audit", "verify", &log_arg], &[]);
    eprintln!(
        "[e2e] akamu-cli audit verify after the flip: {}",
        run.all_output().trim()
    );
    assert!(
        !run.success(),
        "audit verify accepted a log with a flipped byte:\n{run}"
    );
    assert!(
        run.all_output()
            .contains(&format!("record {seq} (line {}) is broken", victim + 1)),
        "audit verify must name record {seq} (line {}):\n{run}",
        victim + 1
    );
}
