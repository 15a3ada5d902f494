//! The signer with its keys in a SoftHSM2 token: ceremonies, issuance over
//! the real socket, key attributes, session loss, refusals, CRLs, pkilint.
//!
//! PKCS#11 allows one `C_Initialize` per process and SoftHSM2 reads
//! `SOFTHSM2_CONF` at that moment, so this binary creates one token for all
//! its tests (in a temporary directory) and runs them one at a time.
#![allow(unsafe_code)]
// std::env::set_var, once, before the module is loaded.
// Each test owns its runtime; the lock only serialises tests on the token.
#![allow(clippy::await_holding_lock)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};

use ca_signer::audit::{self, Operation};
use ca_signer::ceremony::{self, IntermediateParams, KeyStore, RootParams, Token};
use ca_signer::config::{HashAlg, KeyType, Pkcs11Config};
use ca_signer::keys::KeyBackend;
use ca_signer::keys::pkcs11::{self, KeySelector, Pkcs11Key};
use cryptoki::object::{Attribute, AttributeType, ObjectClass};
use openssl::bn::{BigNum, BigNumContext};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::SubjectAlternativeName;
use openssl::x509::{X509, X509ReqBuilder};
use shared_proto::Identifier;
use shared_proto::signer::{CrlRequest, IssueRequest, RevokedEntry, SignerError, SignerRpcClient};
use shared_proto::transport;

use test_kit::softhsm::MODULE;
const DAY: i64 = 86_400;

struct Hsm {
    dir: PathBuf,
    conf: PathBuf,
    pin_file: PathBuf,
}

/// The shared token, created once; and the lock that runs tests one by one.
fn hsm() -> (&'static Hsm, MutexGuard<'static, ()>) {
    static HSM: OnceLock<Hsm> = OnceLock::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let hsm = HSM.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let token = test_kit::softhsm::init_token(&dir, "akamu").expect("SoftHSM2 token");
        let (conf, pin_file) = (token.conf, token.pin_file);
        // SAFETY: set once, under the test lock, before any PKCS#11 call in
        // this process; nothing else in this binary reads the variable.
        unsafe { std::env::set_var("SOFTHSM2_CONF", &conf) };
        Hsm {
            dir,
            conf,
            pin_file,
        }
    });
    (hsm, guard)
}

fn token(h: &Hsm) -> Token {
    Token {
        module: MODULE.into(),
        token_label: "akamu".to_owned(),
        pin_file: h.pin_file.clone(),
    }
}

/// Root + intermediate in the token, files in `dir`. Returns (root, intermediate) paths.
fn hierarchy(h: &Hsm, dir: &Path, tag: &str) -> (PathBuf, PathBuf) {
    let now = ca_signer::unix_now();
    let root = RootParams {
        key: KeyStore::Token {
            token: token(h),
            label: format!("root-{tag}"),
        },
        key_type: KeyType::EcP384,
        hash: HashAlg::Sha384,
        subject: "CN=Example Root,O=Example,C=US".to_owned(),
        validity_years: 20,
        path_len: Some(1),
        out: dir.join("root.pem"),
        audit_log: dir.join("ceremony-audit.log"),
        force: false,
    };
    ceremony::init_root(&root, now, &mut rand::rng(), &mut |s| eprintln!("{s}")).expect("root");
    let inter = IntermediateParams {
        root_key: root.key.clone(),
        root_cert: dir.join("root.pem"),
        key: KeyStore::Token {
            token: token(h),
            label: format!("issuing-{tag}"),
        },
        key_type: KeyType::EcP256,
        hash: HashAlg::Sha384,
        subject: "CN=Example Issuing CA,O=Example,C=US".to_owned(),
        validity_years: 5,
        crl_url: Some("http://crl.example.org/root.crl".to_owned()),
        ca_issuers_url: Some("http://crl.example.org/root.crt".to_owned()),
        client_auth: false,
        out: dir.join("intermediate.pem"),
        audit_log: dir.join("ceremony-audit.log"),
        force: false,
    };
    ceremony::issue_intermediate(&inter, now, &mut rand::rng(), &mut |s| eprintln!("{s}"))
        .expect("intermediate");
    // Re-running a step refuses to overwrite the key.
    let mut again = root.clone();
    again.out = dir.join("root2.pem");
    let err = ceremony::init_root(&again, now, &mut rand::rng(), &mut |_| {}).expect_err("refuses");
    assert!(err.to_string().contains("--force"), "{err}");
    (dir.join("root.pem"), dir.join("intermediate.pem"))
}

fn signer_toml(h: &Hsm, dir: &Path, tag: &str, me: u32) -> String {
    format!(
        r#"
socket_path = "{dir}/signer.sock"
allowed_uids = [{me}]
insecure_issue_without_statements = true
[ca]
cert_file = "{dir}/intermediate.pem"
hash_alg = "sha256"
crl_url = "http://crl.example.org/issuing.crl"
ca_issuers_url = "http://crl.example.org/issuing.crt"
[signer.key]
backend = "pkcs11"
module = "{MODULE}"
token_label = "akamu"
key_label = "issuing-{tag}"
pin_file = "{pin}"
"#,
        dir = dir.display(),
        pin = h.pin_file.display(),
    )
}

/// An EC P-256 CSR for `names`.
fn ec_csr(names: &[&str], ca: bool) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    if ca {
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    }
    params.serialize_request(&key).expect("csr").der().to_vec()
}

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

/// An RSA key whose primes are adjacent: Fermat factors it at once.
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
    let rsa = openssl::rsa::Rsa::from_private_components(n, e, d, p, q, dp, dq, qi).expect("rsa");
    PKey::from_rsa(rsa).expect("pkey")
}

fn request(csr_der: Vec<u8>, names: &[&str]) -> IssueRequest {
    IssueRequest {
        csr_der,
        identifiers: names.iter().map(|n| Identifier::dns(n)).collect(),
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

/// The ca-signer binary, killed on drop.
struct SignerProc(Child);

impl Drop for SignerProc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_signer(h: &Hsm, config: &Path) -> SignerProc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ca-signer"))
        .arg("--config")
        .arg(config)
        .env("SOFTHSM2_CONF", &h.conf)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    assert!(line.starts_with("READY "), "signer did not start: {line:?}");
    SignerProc(child)
}

async fn client(socket: &Path) -> SignerRpcClient {
    let stream = transport::connect(socket).await.expect("connect");
    SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream)).spawn()
}

fn ctx() -> tarpc::context::Context {
    shared_proto::deadline::context_with(std::time::Duration::from_secs(30))
}

fn openssl_cli(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn pem(der: &[u8]) -> Vec<u8> {
    X509::from_der(der).expect("der").to_pem().expect("pem")
}

/// Runs a pkilint command if the venv from scripts/test.sh exists; fails
/// on any finding at WARNING or above.
fn pkilint(tool: &str, args: &[&str], file: &Path) {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin");
    let bin = venv.join(tool);
    if !bin.exists() {
        eprintln!(
            "SKIP pkilint: {} missing (scripts/test.sh creates the venv)",
            bin.display()
        );
        return;
    }
    let out = Command::new(&bin)
        .arg("lint")
        .args(args)
        .arg(file)
        .output()
        .expect("pkilint");
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    // Findings are lines `    code (SEVERITY)`. Accepted ones are
    // documented in docs/src/signer.md ("pkilint findings").
    let findings: Vec<&str> = report
        .lines()
        .filter(|l| l.starts_with("    ") && l.trim_end().ends_with(')'))
        .map(str::trim)
        .collect();
    let unexpected: Vec<&&str> = findings
        .iter()
        .filter(|f| !ACCEPTED_FINDINGS.iter().any(|a| f.starts_with(a)))
        .collect();
    assert!(
        unexpected.is_empty() && (out.status.success() || !findings.is_empty()),
        "{tool} {args:?} {}: findings:\n{report}{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "pkilint {}: {} accepted finding(s) {findings:?}",
        file.display(),
        findings.len()
    );
}

/// pkilint findings we accept, each explained in docs/src/signer.md.
const ACCEPTED_FINDINGS: &[&str] = &[
    // The leaf keeps a subject CN (a SAN copy) for older clients.
    "cabf.serverauth.dv.common_name_attribute_present (WARNING)",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_hierarchy_issues_revokes_and_refuses_over_the_socket() {
    let (h, _guard) = hsm();
    let dir = tempfile::tempdir_in(&h.dir).expect("tempdir");
    let d = dir.path();
    let (root, inter) = hierarchy(h, d, "e2e");
    let me = nix::unistd::geteuid().as_raw();
    let config = d.join("signer.toml");
    std::fs::write(&config, signer_toml(h, d, "e2e", me)).expect("config");
    let _signer = start_signer(h, &config);
    let c = client(&d.join("signer.sock")).await;

    // Two leaves signed inside the token; the chain verifies with openssl.
    let mut leaves = Vec::new();
    for name in ["www.example.org", "mail.example.org"] {
        let issued = c
            .issue_certificate(ctx(), request(ec_csr(&[name], false), &[name]))
            .await
            .expect("rpc")
            .expect("issued");
        let path = d.join(format!("{name}.pem"));
        std::fs::write(&path, pem(&issued.der)).expect("write");
        let (ok, out) = openssl_cli(&[
            "verify",
            "-CAfile",
            &root.to_string_lossy(),
            "-untrusted",
            &inter.to_string_lossy(),
            &path.to_string_lossy(),
        ]);
        assert!(ok, "{out}");
        let chain = X509::stack_from_pem(issued.chain_pem.as_bytes()).expect("chain");
        assert_eq!(
            chain.len(),
            2,
            "leaf + intermediate (no root unless chain_file)"
        );
        leaves.push((path, issued.serial_hex));
    }

    // CRL with two entries: the first leaf (keyCompromise) and another serial.
    let crl = c
        .generate_crl(
            ctx(),
            CrlRequest {
                revoked: vec![
                    RevokedEntry {
                        serial_hex: leaves[0].1.clone(),
                        revoked_at: ca_signer::unix_now() - 60,
                        reason: Some(1),
                    },
                    RevokedEntry {
                        serial_hex: "7a0b0c0d0e0f10111213141516171819".to_owned(),
                        revoked_at: ca_signer::unix_now() - 120,
                        reason: Some(0),
                    },
                ],
            },
        )
        .await
        .expect("rpc")
        .expect("crl");
    assert_eq!(crl.number, 1);
    assert_eq!(crl.next_update - crl.this_update, DAY);
    let crl_der = d.join("issuing.crl");
    std::fs::write(&crl_der, &crl.der).expect("write");
    let crl_pem = d.join("issuing.crl.pem");
    let (ok, out) = openssl_cli(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &crl_der.to_string_lossy(),
        "-out",
        &crl_pem.to_string_lossy(),
    ]);
    assert!(ok, "{out}");
    let (ok, out) = openssl_cli(&[
        "crl",
        "-in",
        &crl_pem.to_string_lossy(),
        "-noout",
        "-verify",
        "-CAfile",
        &inter.to_string_lossy(),
    ]);
    assert!(ok && out.contains("verify OK"), "{out}");
    let (ok, out) = openssl_cli(&["crl", "-in", &crl_pem.to_string_lossy(), "-noout", "-text"]);
    assert!(
        ok && out.contains("Key Compromise")
            && out.contains("X509v3 CRL Number: \n                1"),
        "{out}"
    );
    let chain_file = d.join("chain.pem");
    let mut both = std::fs::read(&root).expect("root");
    both.extend(std::fs::read(&inter).expect("inter"));
    std::fs::write(&chain_file, both).expect("chain");
    for (i, (leaf, _)) in leaves.iter().enumerate() {
        let (ok, out) = openssl_cli(&[
            "verify",
            "-crl_check",
            "-CAfile",
            &chain_file.to_string_lossy(),
            "-CRLfile",
            &crl_pem.to_string_lossy(),
            &leaf.to_string_lossy(),
        ]);
        if i == 0 {
            assert!(
                !ok && out.contains("certificate revoked"),
                "revoked leaf accepted: {out}"
            );
        } else {
            assert!(ok, "unrevoked leaf refused: {out}");
        }
    }
    // The number never repeats.
    let again = c
        .generate_crl(ctx(), CrlRequest { revoked: vec![] })
        .await
        .expect("rpc")
        .expect("crl");
    assert_eq!(again.number, 2);

    // Refusals: each typed, each audited.
    let blocked_key = rcgen::KeyPair::generate().expect("key");
    ca_signer::blocklist::add(
        &d.join("blocked-keys.txt"),
        &openssl::sha::sha256(
            &PKey::public_key_from_pem(blocked_key.public_key_pem().as_bytes())
                .expect("pem")
                .public_key_to_der()
                .expect("der"),
        ),
        "test",
    )
    .expect("block");
    let blocked_csr = {
        let mut p =
            rcgen::CertificateParams::new(vec!["blocked.example.org".to_owned()]).expect("p");
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.serialize_request(&blocked_key)
            .expect("csr")
            .der()
            .to_vec()
    };
    let rsa1024 = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).expect("rsa")).expect("pkey");
    let mut ten_years = request(ec_csr(&["long.example.org"], false), &["long.example.org"]);
    ten_years.not_after = Some(ca_signer::unix_now() + 3650 * DAY);
    type Case = (&'static str, IssueRequest, fn(&SignerError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "cA=TRUE",
            request(ec_csr(&["ca.example.org"], true), &["ca.example.org"]),
            |e| matches!(e, SignerError::BadCsr(_)),
        ),
        ("10-year validity", ten_years, |e| {
            matches!(e, SignerError::PolicyRefused(_))
        }),
        (
            "RSA-1024",
            request(
                openssl_csr(&rsa1024, &["rsa.example.org"]),
                &["rsa.example.org"],
            ),
            |e| matches!(e, SignerError::BadPublicKey(_)),
        ),
        (
            "Fermat-weak RSA",
            request(
                openssl_csr(&fermat_weak_key(), &["fermat.example.org"]),
                &["fermat.example.org"],
            ),
            |e| matches!(e, SignerError::BadPublicKey(m) if m.contains("Fermat")),
        ),
        (
            "blocked key",
            request(blocked_csr, &["blocked.example.org"]),
            |e| matches!(e, SignerError::BadPublicKey(m) if m.contains("blocked")),
        ),
        (
            "malformed name",
            request(
                ec_csr(&["bad_name.example.org"], false),
                &["bad_name.example.org"],
            ),
            |e| matches!(e, SignerError::PolicyRefused(_)),
        ),
    ];
    let n_cases = cases.len();
    for (what, req, expected) in cases {
        let got = c.issue_certificate(ctx(), req).await.expect("rpc");
        match got {
            Err(e) if expected(&e) => eprintln!("refused {what}: {e}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    let (records, _) = audit::read_verified(&d.join("audit.log")).expect("audit verifies");
    let count = |op| records.iter().filter(|r| r.operation == op).count();
    assert_eq!(count(Operation::Issue), 2);
    assert_eq!(count(Operation::Crl), 2);
    assert_eq!(count(Operation::Refusal), n_cases);
    assert!(records.iter().all(|r| r.requester_uid == Some(me)));

    // pkilint: the leaf, the intermediate and the CRL.
    pkilint(
        "lint_cabf_serverauth_cert",
        &["-t", "DV-FINAL-CERTIFICATE", "-s", "WARNING"],
        &leaves[0].0,
    );
    pkilint(
        "lint_cabf_serverauth_cert",
        &["-d", "-s", "WARNING"],
        &inter,
    );
    pkilint(
        "lint_crl",
        &["-t", "CRL", "-p", "BR", "-s", "WARNING"],
        &crl_pem,
    );
}

#[test]
fn token_keys_are_sensitive_and_not_extractable() {
    let (h, _guard) = hsm();
    let dir = tempfile::tempdir_in(&h.dir).expect("tempdir");
    hierarchy(h, dir.path(), "attrs");
    let ctx = pkcs11::module(Path::new(MODULE)).expect("module");
    let slot = pkcs11::find_slot(&ctx, Some("akamu"), None).expect("slot");
    let pin = pkcs11::read_pin(&h.pin_file).expect("pin");
    let session = pkcs11::open_session(&ctx, slot, &pin, false).expect("session");
    for label in ["root-attrs", "issuing-attrs"] {
        let key = pkcs11::find_one(
            &session,
            &KeySelector {
                label: Some(label.to_owned()),
                id: None,
            },
            ObjectClass::PRIVATE_KEY,
        )
        .expect("key");
        let attrs = session
            .get_attributes(
                key,
                &[
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Sign,
                    AttributeType::Decrypt,
                    AttributeType::Unwrap,
                    AttributeType::Token,
                    AttributeType::Private,
                    AttributeType::Value,
                ],
            )
            .expect("attributes");
        let has = |a: &Attribute| attrs.contains(a);
        assert!(has(&Attribute::Sensitive(true)), "{label}: {attrs:?}");
        assert!(has(&Attribute::Extractable(false)), "{label}: {attrs:?}");
        assert!(
            has(&Attribute::Sign(true))
                && has(&Attribute::Decrypt(false))
                && has(&Attribute::Unwrap(false))
        );
        assert!(has(&Attribute::Token(true)) && has(&Attribute::Private(true)));
        // The private value is never returned (get_attributes omits it).
        assert!(
            !attrs
                .iter()
                .any(|a| matches!(a, Attribute::Value(_) | Attribute::PrivateExponent(_))),
            "{label}"
        );
    }
    // pkcs11-tool agrees, and cannot export it either (it writes nothing).
    let exported = dir.path().join("exported.der");
    let out = Command::new("pkcs11-tool")
        .args([
            "--module",
            MODULE,
            "--token-label",
            "akamu",
            "--pin",
            "1234",
            "--read-object",
            "--type",
            "privkey",
            "--label",
            "issuing-attrs",
            "-o",
        ])
        .arg(&exported)
        .env("SOFTHSM2_CONF", &h.conf)
        .output()
        .expect("pkcs11-tool (package opensc)");
    assert!(
        std::fs::metadata(&exported).map_or(true, |m| m.len() == 0),
        "pkcs11-tool exported a private key: {out:?}"
    );
    let out = Command::new("pkcs11-tool")
        .args([
            "--module",
            MODULE,
            "--token-label",
            "akamu",
            "--pin",
            "1234",
            "--list-objects",
            "--type",
            "privkey",
        ])
        .env("SOFTHSM2_CONF", &h.conf)
        .output()
        .expect("pkcs11-tool");
    let listing = String::from_utf8_lossy(&out.stdout);
    let entry = listing
        .split("Private Key Object")
        .find(|e| e.contains("label:      issuing-attrs"))
        .expect("listed");
    assert!(
        entry.contains("sensitive, always sensitive, never extractable"),
        "{entry}"
    );
    let objects = ceremony::show(&token(h)).expect("show");
    let private = objects
        .iter()
        .find(|o| o.class == "private key" && o.label == "issuing-attrs")
        .expect("listed");
    assert_eq!(
        (private.sensitive, private.extractable),
        (Some(true), Some(false))
    );
    let cert = X509::from_pem(&std::fs::read(dir.path().join("intermediate.pem")).expect("r"))
        .expect("pem");
    let want = hex::encode(openssl::sha::sha256(
        &cert
            .public_key()
            .expect("pk")
            .public_key_to_der()
            .expect("der"),
    ));
    assert_eq!(private.spki_sha256.as_deref(), Some(want.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_token_session_recovers_on_the_next_call() {
    let (h, _guard) = hsm();
    let dir = tempfile::tempdir_in(&h.dir).expect("tempdir");
    let d = dir.path();
    hierarchy(h, d, "reconnect");
    // The key object alone: finalize the module under it, then sign again.
    let key = Pkcs11Key::open(
        &Pkcs11Config {
            module: MODULE.into(),
            token_label: Some("akamu".to_owned()),
            slot: None,
            key_label: Some("issuing-reconnect".to_owned()),
            key_id: None,
            pin_file: h.pin_file.clone(),
            rsa_pss: false,
        },
        HashAlg::Sha256,
    )
    .expect("open");
    key.sign(b"one").expect("sign");
    key.context()
        .clone()
        .finalize()
        .expect("finalize: every session is gone");
    key.sign(b"two").expect("the next call reopens the session");
    // A logged-out session: log out from another session of this process.
    let slot = pkcs11::find_slot(key.context(), Some("akamu"), None).expect("slot");
    let other = key.context().open_ro_session(slot).expect("session");
    other.logout().expect("logout");
    drop(other);
    key.sign(b"three").expect("the next call logs in again");

    // Through the real socket of an in-process server.
    let me = nix::unistd::geteuid().as_raw();
    let config = ca_signer::Config::from_toml(&signer_toml(h, d, "reconnect", me)).expect("config");
    let server = ca_signer::server::Server::start(&config).expect("start");
    let socket = server.socket_path().to_owned();
    let task = tokio::spawn(server.serve_until(std::future::pending()));
    let c = client(&socket).await;
    let name = "www.example.org";
    c.issue_certificate(ctx(), request(ec_csr(&[name], false), &[name]))
        .await
        .expect("rpc")
        .expect("issued");
    pkcs11::module(Path::new(MODULE))
        .expect("module")
        .finalize()
        .expect("finalize");
    let issued = c
        .issue_certificate(ctx(), request(ec_csr(&[name], false), &[name]))
        .await
        .expect("rpc")
        .expect("issued after reconnect");
    let inter =
        X509::from_pem(&std::fs::read(d.join("intermediate.pem")).expect("r")).expect("pem");
    assert!(
        X509::from_der(&issued.der)
            .expect("der")
            .verify(&inter.public_key().expect("pk"))
            .expect("verify")
    );
    task.abort();
}
