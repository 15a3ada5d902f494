//! The CA key in a SoftHSM2 token, end to end: an operator runs the key
//! ceremony with `akamu-cli` (a P-384 root and a P-256 issuing intermediate,
//! both generated in the token), starts the CA through the launcher with
//! `[signer.key] backend = "pkcs11"`, and an ACME client gets a certificate
//! signed inside the token. The served chain is leaf + intermediate, it
//! verifies against the root with `openssl verify`, and the leaf, the
//! intermediate and the CRL the token signed pass pkilint (CA/Browser Forum
//! profiles), with only the finding documented in docs/src/signer.md.
//!
//! Each test gets its own token directory; `SOFTHSM2_CONF` is passed to the
//! CLI and the launcher (and so to the signer) through their environment,
//! never set in this process.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::StatusCode;

use instant_acme::NewAccount;
use openssl::x509::X509;

use crate::support::certs::{dns_sans, openssl_verify, split_chain};
use crate::support::client::{RawClient, account_builder_trusting, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::operator::{akamu_cli, openssl, program};
use crate::support::procs::{Ca, CaOptions};
use test_kit::softhsm::MODULE;

/// The token's label.
const TOKEN_LABEL: &str = "akamu";
/// AIA caIssuers put in leaves (the CA/Browser Forum profile wants AIA).
const CA_ISSUERS_URL: &str = "http://ca.example.org/issuing.crt";
/// CRL distribution point put in leaves (the profile wants revocation
/// information); the frontend serves the CRL at its path, `/issuing.crl`.
const CRL_URL: &str = "http://ca.example.org/issuing.crl";

/// pkilint findings accepted on a leaf, each explained in docs/src/signer.md
/// ("pkilint findings").
const ACCEPTED_LEAF_FINDINGS: &[&str] = &[
    // The leaf keeps a subject CN (a copy of a SAN) for older clients.
    "cabf.serverauth.dv.common_name_attribute_present",
];

/// A fresh SoftHSM2 token in a temporary directory, with a PIN file.
struct Token {
    dir: tempfile::TempDir,
    conf: PathBuf,
    pin_file: PathBuf,
}

impl Token {
    /// `softhsm2-util --init-token` in a new token directory.
    fn create() -> Token {
        let dir = tempfile::Builder::new()
            .prefix("akamu-e2e-hsm-")
            .tempdir()
            .expect("tempdir");
        let token = test_kit::softhsm::init_token(dir.path(), TOKEN_LABEL).expect("SoftHSM2 token");
        Token {
            dir,
            conf: token.conf,
            pin_file: token.pin_file,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `SOFTHSM2_CONF`, for every process that opens the module.
    fn env(&self) -> [(&'static str, &Path); 1] {
        [("SOFTHSM2_CONF", self.conf.as_path())]
    }

    /// Runs `akamu-cli ceremony <step> --module … --token-label … --pin-file …
    /// <args>` and asserts it succeeded; returns what it printed.
    fn ceremony(&self, step: &str, args: &[&str]) -> String {
        let mut all: Vec<String> = vec![
            "ceremony".into(),
            step.into(),
            "--module".into(),
            MODULE.into(),
            "--token-label".into(),
            TOKEN_LABEL.into(),
            "--pin-file".into(),
            self.pin_file.display().to_string(),
        ];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        akamu_cli(&all, &self.env()).assert_success().all_output()
    }

    /// The `[signer.key]` table selecting `key_label` in this token.
    fn signer_key_toml(&self, key_label: &str) -> String {
        format!(
            "[signer.key]\nbackend = \"pkcs11\"\nmodule = \"{MODULE}\"\n\
             token_label = \"{TOKEN_LABEL}\"\nkey_label = \"{key_label}\"\npin_file = \"{}\"\n",
            self.pin_file.display()
        )
    }
}

/// The ceremony of docs/src/signer.md: a P-384 root and a P-256 issuing
/// intermediate, both keys generated in the token. Returns (root, intermediate).
fn two_tier_ceremony(token: &Token) -> (PathBuf, PathBuf) {
    let root = token.path("root.pem");
    let inter = token.path("intermediate.pem");
    let out = token.ceremony(
        "init-root",
        &[
            "--key-label",
            "root-2026",
            "--key-type",
            "ec:P-384",
            "--subject",
            "CN=Example Root,O=Example,C=US",
            "--validity-years",
            "20",
            "--out",
            &root.to_string_lossy(),
        ],
    );
    eprintln!("[e2e] ceremony init-root:\n{out}");
    let out = token.ceremony(
        "issue-intermediate",
        &[
            "--root-key-label",
            "root-2026",
            "--root-cert",
            &root.to_string_lossy(),
            "--key-label",
            "issuing-2026",
            "--key-type",
            "ec:P-256",
            "--subject",
            "CN=Example Issuing CA,O=Example,C=US",
            "--validity-years",
            "5",
            "--crl-url",
            "http://ca.example.org/root.crl",
            "--ca-issuers-url",
            "http://ca.example.org/root.crt",
            "--out",
            &inter.to_string_lossy(),
        ],
    );
    eprintln!("[e2e] ceremony issue-intermediate:\n{out}");
    // The hierarchy itself is sound before any ACME traffic.
    openssl_verify(&root, None, &inter);
    (root, inter)
}

fn read_cert(path: &Path) -> X509 {
    let pem = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    X509::from_pem(&pem)
        .unwrap_or_else(|e| panic!("{} is not a PEM certificate: {e}", path.display()))
}

/// The caIssuers URLs of `cert`'s AIA extension.
fn ca_issuers(cert: &X509) -> Vec<String> {
    let ca_issuers = openssl::asn1::Asn1Object::from_str("1.3.6.1.5.5.7.48.2").expect("OID");
    cert.authority_info()
        .map(|aia| {
            aia.iter()
                .filter(|ad| ad.method().to_string() == ca_issuers.to_string())
                .filter_map(|ad| ad.location().uri().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs pkilint's `tool lint <args> <file>` from the venv scripts/test.sh
/// creates. The tool's exit code is its number of findings at the chosen
/// severity and above; each finding must be one of `accepted`.
fn pkilint(tool: &str, args: &[&str], file: &Path, accepted: &[&str]) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.venv/bin")
        .join(tool);
    assert!(
        bin.is_file(),
        "{} is missing: scripts/test.sh creates it (python3 -m venv .venv && \
         .venv/bin/pip install pkilint); CI runs scripts/test.sh",
        bin.display()
    );
    let file_arg = file.to_string_lossy();
    let mut all = vec!["lint"];
    all.extend_from_slice(args);
    all.push(&file_arg);
    let run = program(&bin, &all, &[]);
    // Findings are indented lines `    code (SEVERITY)[: message]` under a
    // `Validator @ path` line.
    let findings: Vec<String> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("    ") && l.contains(" ("))
        .map(|l| l.trim().split(" (").next().unwrap_or_default().to_owned())
        .collect();
    eprintln!("[e2e] pkilint {tool} {}: {findings:?}", file.display());
    let unexpected: Vec<&String> = findings
        .iter()
        .filter(|f| !accepted.contains(&f.as_str()))
        .collect();
    assert!(
        unexpected.is_empty(),
        "pkilint found {unexpected:?} in {} (only {accepted:?} is accepted, \
         see docs/src/signer.md):\n{run}",
        file.display()
    );
    assert_eq!(
        run.code,
        i32::try_from(findings.len()).ok(),
        "pkilint's exit code is its number of findings; the report has {}:\n{run}",
        findings.len()
    );
}

/// Ceremony in a SoftHSM2 token, then a full ACME issuance over http-01
/// with instant-acme through the launcher: the leaf is signed by the token's
/// intermediate key, the chain served is leaf + intermediate (no root
/// without `chain_file`), `openssl verify -CAfile root -untrusted
/// intermediate` accepts it, and pkilint finds only the documented CN warning
/// on the leaf and nothing on the intermediate or on the CRL the frontend
/// serves (also signed in the token).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_intermediate_issues_over_acme_and_the_chain_verifies_to_the_root() {
    let token = Token::create();
    let (root, inter) = two_tier_ceremony(&token);
    let inter_cert = read_cert(&inter);

    let dns = DnsServer::start().await;
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        ca_cert_file: Some(inter.clone()),
        ca_toml: format!("ca_issuers_url = \"{CA_ISSUERS_URL}\"\ncrl_url = \"{CRL_URL}\""),
        extra_toml: token.signer_key_toml("issuing-2026"),
        env: vec![("SOFTHSM2_CONF".to_owned(), token.conf.clone())],
        ..CaOptions::default()
    })
    .await;
    assert_eq!(
        ca.ca_cert(),
        inter.as_path(),
        "READY names the issuing CA certificate, `[ca] cert_file`"
    );
    let http = Http01Server::start(ca.http_validation_port()).await;

    // The client trusts the root alone: the frontend's HTTPS certificate
    // must chain to it too.
    let (account, _credentials) = account_builder_trusting(&root)
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            ca.directory().to_owned(),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("instant-acme trusting only the root: {e}"));
    let names = ["www.example.org"];
    let issued = issue_http01(&account, &http, &names).await;

    let chain = split_chain(&issued.chain_pem);
    assert_eq!(
        chain.len(),
        2,
        "the chain served is leaf + intermediate (the root only with chain_file):\n{}",
        issued.chain_pem
    );
    assert_eq!(
        chain[1].to_der().expect("DER"),
        inter_cert.to_der().expect("DER"),
        "the second certificate is the ceremony's intermediate"
    );
    let leaf = chain[0].clone();
    assert_eq!(dns_sans(&leaf), vec!["www.example.org"]);
    let key = openssl::pkey::PKey::private_key_from_pem(issued.key_pem.as_bytes()).expect("key");
    assert!(
        leaf.public_key().expect("leaf key").public_eq(&key),
        "the leaf certifies the CSR's key"
    );
    assert_eq!(
        ca_issuers(&leaf),
        vec![CA_ISSUERS_URL],
        "AIA caIssuers from [ca] ca_issuers_url"
    );

    let out = tempfile::tempdir().expect("tempdir");
    let leaf_path = out.path().join("leaf.pem");
    std::fs::write(&leaf_path, leaf.to_pem().expect("PEM")).expect("write leaf");
    openssl_verify(&root, Some(&inter), &leaf_path);

    // The key never left the token: the signer has no key file, and its
    // audit log records the issuance of exactly this serial.
    assert!(
        !ca.state_dir().join("ca.key.pem").exists(),
        "a PKCS#11 signer must not create a CA key file"
    );
    let serial = leaf
        .serial_number()
        .to_bn()
        .expect("serial")
        .to_hex_str()
        .expect("hex")
        .to_ascii_lowercase();
    let audit_log = ca.state_dir().join("audit.log");
    let audit = std::fs::read_to_string(&audit_log)
        .unwrap_or_else(|e| panic!("read {}: {e}", audit_log.display()));
    let issue_records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
        .filter(|r: &serde_json::Value| {
            r["operation"] == "issue" && r["names"] == serde_json::json!(["dns:www.example.org"])
        })
        .collect();
    assert_eq!(
        issue_records.len(),
        1,
        "one issue record for {names:?} in {}:\n{audit}",
        audit_log.display()
    );
    assert_eq!(
        issue_records[0]["serial"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('0'),
        serial.trim_start_matches('0'),
        "the audit record names the leaf's serial"
    );

    pkilint(
        "lint_cabf_serverauth_cert",
        &["-t", "DV-FINAL-CERTIFICATE", "-s", "WARNING"],
        &leaf_path,
        ACCEPTED_LEAF_FINDINGS,
    );
    // The ceremony's intermediate (profile detected) is clean.
    pkilint(
        "lint_cabf_serverauth_cert",
        &["-d", "-s", "WARNING"],
        &inter,
        &[],
    );

    // The CRL is signed in the token too: served at the path of crl_url,
    // it verifies against the intermediate.
    let raw = RawClient::new(&ca).await;
    let crl_url = format!("{}/issuing.crl", ca.base_url());
    let deadline = Instant::now() + Duration::from_secs(30);
    let crl = loop {
        let rsp = raw.get(&crl_url).await;
        if rsp.status == StatusCode::OK {
            break rsp;
        }
        assert!(
            Instant::now() < deadline,
            "GET {crl_url}: {} {}",
            rsp.status,
            String::from_utf8_lossy(&rsp.body)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(crl.content_type(), "application/pkix-crl");
    let crl_path = out.path().join("issuing.crl");
    std::fs::write(&crl_path, &crl.body).expect("write CRL");
    let run = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &crl_path.to_string_lossy(),
        "-CAfile",
        &inter.to_string_lossy(),
        "-noout",
        "-verify",
    ]);
    assert!(
        run.success() && run.all_output().contains("verify OK"),
        "the served CRL does not verify against the intermediate:\n{run}"
    );
    pkilint(
        "lint_crl",
        &["-t", "CRL", "-p", "BR", "-s", "WARNING"],
        &crl_path,
        &[],
    );
}
