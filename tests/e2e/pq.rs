//! Post-quantum hierarchies judged by an independent implementation: a
//! ceremony (file backend) makes an ML-DSA-65 root and intermediate, the CA
//! issues to ML-DSA subscriber keys over ACME, revokes, and publishes a
//! CRL; pyca/cryptography ≥ 50 (`pq_judge.py`, in the test venv that
//! `scripts/test.sh` makes) verifies every signature and produces the
//! ML-DSA CSRs and account JWS our server must accept, and a flipped bit in
//! each is refused. Debian's `openssl` (3.0) cannot verify ML-DSA at all.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use akamu_client::{
    Account, AccountKey, AccountOptions, AcmeClient, ChallengeSolver as _, Http01Solver,
    Identifier, Order, build_csr, pem_to_der,
};
use serde_json::Value;
use test_kit::ports::free_port;

use crate::support::dns::DnsServer;
use crate::support::procs::{Ca, CaOptions, binary_path};

/// The test venv's Python, with pyca/cryptography ≥ 50.
fn python() -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: scripts/test.sh creates it (python3 -m venv .venv && \
         .venv/bin/pip install pkilint 'cryptography>=50'); CI runs scripts/test.sh",
        python.display()
    );
    python
}

/// Runs a `pq_judge.py` subcommand: `Ok(its JSON)` when the check holds,
/// `Err(its reason)` when it does not.
fn judge(args: &[&str]) -> Result<Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/pq_judge.py");
    let out = Command::new(python())
        .arg(script)
        .args(args)
        .output()
        .expect("run pq_judge.py");
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "pq_judge.py {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        }))
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn ceremony(args: &[&str]) {
    let out = Command::new(binary_path("akamu-cli"))
        .arg("ceremony")
        .args(args)
        .output()
        .expect("run akamu-cli ceremony");
    assert!(
        out.status.success(),
        "akamu-cli ceremony {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An operator's HTTPS certificate for `localhost` (rcgen, ECDSA): clients
/// without ML-DSA must be able to reach a post-quantum CA. Returns the
/// operator root (PEM) and writes the leaf and key into `dir`.
fn operator_tls(dir: &Path) -> (String, PathBuf, PathBuf) {
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Operator CA");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let root = ca_params.self_signed(&ca_key).expect("root");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    let key = rcgen::KeyPair::generate().expect("key");
    let leaf = params.signed_by(&key, &issuer).expect("sign");
    let (cert_file, key_file) = (dir.join("server.crt"), dir.join("server.key"));
    std::fs::write(&cert_file, leaf.pem()).expect("write");
    std::fs::write(&key_file, key.serialize_pem()).expect("write");
    std::fs::set_permissions(
        &key_file,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .expect("chmod");
    (root.pem(), cert_file, key_file)
}

/// Solves the order's one authorization over http-01 and waits until the
/// order is ready.
async fn solve(client: &AcmeClient, account: &Account, order: &Order, solver: &Http01Solver) {
    for url in &order.authorizations {
        let authz = client.get_authorization(account, url).await.expect("authz");
        let chall = authz.find_challenge("http-01").expect("http-01 offered");
        let token = chall.token.as_deref().expect("token");
        solver
            .present(token, &account.key_authorization(token))
            .await
            .expect("present");
        client
            .trigger_challenge(account, chall)
            .await
            .expect("trigger");
        let opts = akamu_client::PollOptions {
            timeout: Duration::from_secs(60),
            on_wait: None,
        };
        client
            .poll_authorization(account, url, &opts)
            .await
            .expect("authorization valid");
    }
    let ready = client.poll_order(account, &order.url).await.expect("ready");
    assert_eq!(ready.status, "ready");
}

/// The issue's end-to-end case: ML-DSA-65 root and intermediate by
/// ceremony; an ML-DSA-87 account; an ML-DSA-44 subscriber key from pyca
/// and an ML-DSA-87 CSR from akamu-client; chains, CSRs and the CRL after a
/// revocation verified by pyca; pyca's own ML-DSA account JWS accepted and
/// its tampered ones refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_dsa_hierarchy_by_ceremony_issues_revokes_and_pyca_agrees() {
    let files = tempfile::tempdir().expect("tempdir");
    let f = |name: &str| files.path().join(name).to_string_lossy().into_owned();
    ceremony(&[
        "init-root",
        "--key-file",
        &f("root.key"),
        "--key-type",
        "ml-dsa-65",
        "--subject",
        "CN=PQ Root,O=Example",
        "--out",
        &f("root.pem"),
    ]);
    ceremony(&[
        "issue-intermediate",
        "--root-key-file",
        &f("root.key"),
        "--root-cert",
        &f("root.pem"),
        "--key-file",
        &f("int.key"),
        "--key-type",
        "ml-dsa-65",
        "--subject",
        "CN=PQ Issuing,O=Example",
        "--out",
        &f("int.pem"),
    ]);
    let hierarchy = judge(&["verify-chain", &f("int.pem"), &f("root.pem")])
        .unwrap_or_else(|e| panic!("pyca refuses the ceremony's hierarchy: {e}"));
    assert_eq!(hierarchy["leaf_key"], "MLDSA65", "{hierarchy}");
    assert_eq!(
        hierarchy["algorithms"],
        serde_json::json!(["2.16.840.1.101.3.4.3.18", "2.16.840.1.101.3.4.3.18"])
    );

    let (operator_root, cert_file, key_file) = operator_tls(files.path());
    let operator_root_file = files.path().join("operator-root.pem");
    std::fs::write(&operator_root_file, &operator_root).expect("write");
    let dns = DnsServer::start().await;
    let port = free_port();
    let ca = Ca::start_async(CaOptions {
        listen_port: Some(port),
        dns_resolver_addr: Some(dns.addr()),
        ca_cert_file: Some(files.path().join("int.pem")),
        ca_key_file: Some(files.path().join("int.key")),
        ca_toml: format!("crl_url = \"https://localhost:{port}/issuing.crl\""),
        tls_toml: Some(format!(
            "enabled = true\ncert_file = {:?}\nkey_file = {:?}\nserver_name = \"localhost\"\n",
            cert_file.display().to_string(),
            key_file.display().to_string()
        )),
        extra_toml: "[signer.profiles.tls-server]\n\
                     key_types = [\"ml-dsa-44\", \"ml-dsa-65\", \"ml-dsa-87\", \"ed448\"]\n"
            .into(),
        ..CaOptions::default()
    })
    .await;

    // pyca's own ML-DSA account JWS: accepted; a flipped bit or a
    // signature made with a non-empty context is refused.
    let ca_file = operator_root_file.to_string_lossy().into_owned();
    for set in ["44", "65", "87"] {
        let ok = judge(&["new-account", ca.directory(), &ca_file, set, "ok"]).expect("judge");
        assert_eq!(ok["status"], 201, "pyca ML-DSA-{set} account: {ok}");
        // The thumbprint pyca computed (RFC 9964 members) is ours.
        let jwk = akamu_jose::Jwk::from_json(&ok["jwk"]).expect("AKP JWK");
        assert_eq!(jwk.thumbprint(), ok["thumbprint"].as_str().expect("tp"));
        for mode in ["flip", "context"] {
            let bad = judge(&["new-account", ca.directory(), &ca_file, set, mode]).expect("judge");
            assert_eq!(bad["status"], 400, "ML-DSA-{set} {mode}: {bad}");
            assert_eq!(
                bad["type"], "urn:ietf:params:acme:error:malformed",
                "ML-DSA-{set} {mode}: {bad}"
            );
        }
    }

    // Our client with an ML-DSA-87 account key.
    let client = AcmeClient::builder(ca.directory())
        .add_root_pem(operator_root.as_bytes())
        .expect("root")
        .only_added_roots()
        .poll_timeout(Duration::from_secs(60))
        .build()
        .await
        .expect("directory");
    let account = client
        .new_account(
            Arc::new(AccountKey::generate("ml-dsa-87").expect("key")),
            &AccountOptions {
                contacts: &[],
                agree_tos: true,
                eab: None,
            },
        )
        .await
        .expect("ML-DSA-87 account");
    let solver = Http01Solver::with_addr(SocketAddr::from((
        Ipv4Addr::LOCALHOST,
        ca.http_validation_port(),
    )));
    solver.start().await.expect("solver");

    // pyca's ML-DSA-44 CSR: a flipped bit is badCSR, the real one issues.
    let name = "pq.example.org";
    let order = client
        .new_order(&account, &[Identifier::dns(name)])
        .await
        .expect("order");
    solve(&client, &account, &order, &solver).await;
    judge(&["csr", "44", name, &f("flipped.csr"), "flip"]).expect("pyca CSR");
    let flipped = std::fs::read(f("flipped.csr")).expect("read");
    let err = client
        .finalize(&account, &order, &flipped)
        .await
        .expect_err("a CSR with a flipped signature bit");
    assert!(err.is_acme("badCSR"), "{err}");
    let made = judge(&["csr", "44", name, &f("leaf.csr")]).expect("pyca CSR");
    let csr = std::fs::read(f("leaf.csr")).expect("read");
    let done = client
        .finalize(&account, &order, &csr)
        .await
        .expect("finalize with pyca's ML-DSA-44 CSR");
    let chain = client
        .download_certificate(&account, &done.certificate.expect("certificate URL"))
        .await
        .expect("download");
    let ders = pem_to_der(&chain);
    assert_eq!(
        ders.len(),
        2,
        "leaf and intermediate:\n{}",
        String::from_utf8_lossy(&chain)
    );
    std::fs::write(f("leaf.pem"), &chain).expect("write");
    let verdict = judge(&[
        "verify-chain",
        &f("leaf.pem"),
        &f("int.pem"),
        &f("root.pem"),
    ])
    .unwrap_or_else(|e| panic!("pyca refuses leaf ← intermediate ← root: {e}"));
    assert_eq!(verdict["leaf_key"], "MLDSA44", "{verdict}");
    let leaf = openssl::x509::X509::from_der(&ders[0]).expect("leaf");
    assert_eq!(
        akamu_jose::b64(
            &leaf
                .public_key()
                .expect("pk")
                .raw_public_key()
                .expect("raw")
        ),
        made["public_key"].as_str().expect("pyca key"),
        "the leaf certifies pyca's key"
    );
    // The same leaf with one bit of its signature flipped is refused.
    let mut bad = ders[0].clone();
    let at = bad.len() - 40;
    bad[at] ^= 0x01;
    let bad_pem = openssl::x509::X509::from_der(&bad)
        .expect("still DER")
        .to_pem()
        .expect("pem");
    std::fs::write(f("bad-leaf.pem"), bad_pem).expect("write");
    judge(&["verify-chain", &f("bad-leaf.pem"), &f("int.pem")])
        .expect_err("a leaf with a flipped signature bit");

    // akamu-client's ML-DSA-87 CSR: pyca verifies it; a flipped bit not.
    let cert_key = AccountKey::generate("ml-dsa-87").expect("key");
    let ours = build_csr(&["pq2.example.org"], cert_key.private_key()).expect("csr");
    std::fs::write(f("ours.csr"), &ours).expect("write");
    let csr_verdict = judge(&["verify-csr", &f("ours.csr")])
        .unwrap_or_else(|e| panic!("pyca refuses akamu-client's CSR: {e}"));
    assert_eq!(csr_verdict["key"], "MLDSA87", "{csr_verdict}");
    let mut ours_bad = ours.clone();
    let at = ours_bad.len() - 20;
    ours_bad[at] ^= 0x01;
    std::fs::write(f("ours-bad.csr"), &ours_bad).expect("write");
    judge(&["verify-csr", &f("ours-bad.csr")]).expect_err("a flipped CSR");

    // An Ed448 subscriber key through ACME (the profile allows it): the
    // leaf certifies it and pyca verifies the chain.
    let name = "ed448.example.org";
    let order = client
        .new_order(&account, &[Identifier::dns(name)])
        .await
        .expect("order");
    solve(&client, &account, &order, &solver).await;
    let ed448 = AccountKey::generate("ed448").expect("Ed448 key");
    let csr = build_csr(&[name], ed448.private_key()).expect("Ed448 CSR");
    let done = client
        .finalize(&account, &order, &csr)
        .await
        .expect("finalize with an Ed448 CSR");
    let chain = client
        .download_certificate(&account, &done.certificate.expect("certificate URL"))
        .await
        .expect("download");
    std::fs::write(f("ed448.pem"), &chain).expect("write");
    let verdict = judge(&[
        "verify-chain",
        &f("ed448.pem"),
        &f("int.pem"),
        &f("root.pem"),
    ])
    .unwrap_or_else(|e| panic!("pyca refuses the Ed448 leaf's chain: {e}"));
    assert!(
        verdict["leaf_key"]
            .as_str()
            .is_some_and(|k| k.contains("Ed448")),
        "{verdict}"
    );
    let ed448_leaf = openssl::x509::X509::from_der(&pem_to_der(&chain)[0]).expect("leaf");
    assert_eq!(
        ed448_leaf
            .public_key()
            .expect("pk")
            .raw_public_key()
            .expect("raw"),
        ed448.private_key().raw_public_key().expect("raw"),
        "the leaf certifies the Ed448 key"
    );

    // Revoke; the CRL the frontend serves lists the serial, is signed with
    // ML-DSA-65 by the intermediate, and a flipped bit breaks it.
    client
        .revoke_certificate(&account, &ders[0], Some(4))
        .await
        .expect("revoke");
    let serial = leaf
        .serial_number()
        .to_bn()
        .expect("bn")
        .to_hex_str()
        .expect("hex")
        .to_string();
    let crl = judge(&[
        "crl",
        &format!("https://localhost:{port}/issuing.crl"),
        &ca_file,
        &f("int.pem"),
        &serial,
        &f("issuing.crl"),
    ])
    .unwrap_or_else(|e| panic!("pyca refuses the CRL: {e}"));
    assert_eq!(crl["algorithm"], "2.16.840.1.101.3.4.3.18", "{crl}");
}

/// Mixed hierarchies by ceremony (file backend): each intermediate verifies
/// under its root for pyca, whatever the two key types, and its signature
/// algorithm is the root's.
#[test]
fn mixed_hierarchies_verify() {
    let files = tempfile::tempdir().expect("tempdir");
    let f = |name: &str| files.path().join(name).to_string_lossy().into_owned();
    for (i, (root_type, int_type, root_alg, int_key)) in [
        ("ml-dsa-87", "ec:P-256", "2.16.840.1.101.3.4.3.19", "EC"),
        ("ec:P-384", "ml-dsa-44", "1.2.840.10045.4.3.3", "MLDSA44"),
        ("ed448", "ml-dsa-65", "1.3.101.113", "MLDSA65"),
        ("ml-dsa-44", "ed448", "2.16.840.1.101.3.4.3.17", "Ed448"),
    ]
    .into_iter()
    .enumerate()
    {
        let (root_key, root, int_key_file, int) = (
            f(&format!("root{i}.key")),
            f(&format!("root{i}.pem")),
            f(&format!("int{i}.key")),
            f(&format!("int{i}.pem")),
        );
        ceremony(&[
            "init-root",
            "--key-file",
            &root_key,
            "--key-type",
            root_type,
            "--subject",
            "CN=Mixed Root",
            "--out",
            &root,
        ]);
        ceremony(&[
            "issue-intermediate",
            "--root-key-file",
            &root_key,
            "--root-cert",
            &root,
            "--key-file",
            &int_key_file,
            "--key-type",
            int_type,
            "--subject",
            "CN=Mixed Issuing",
            "--out",
            &int,
        ]);
        let verdict = judge(&["verify-chain", &int, &root])
            .unwrap_or_else(|e| panic!("{root_type} over {int_type}: {e}"));
        assert_eq!(verdict["leaf_key"], int_key, "{verdict}");
        assert_eq!(verdict["algorithms"][0], root_alg, "{verdict}");
    }
}
