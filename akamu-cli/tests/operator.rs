//! Operator commands through the real binary: a ceremony on a SoftHSM2 token
//! created for this test, `ceremony show`, `audit verify` (and its failure
//! on a tampered log), and `admin block-key`.

use std::path::Path;
use std::process::{Command, Output};

use test_kit::softhsm::MODULE;

fn cli(conf: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_akamu-cli"))
        .args(args)
        .env("SOFTHSM2_CONF", conf)
        .output()
        .expect("run akamu-cli")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn ceremony_show_audit_verify_and_block_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let hsm = test_kit::softhsm::init_token(d, "akamu").expect("SoftHSM2 token");
    let (conf, pin) = (hsm.conf, hsm.pin_file);
    let (pin_s, root_s, inter_s) = (
        pin.to_string_lossy().into_owned(),
        d.join("root.pem").to_string_lossy().into_owned(),
        d.join("intermediate.pem").to_string_lossy().into_owned(),
    );
    let token = [
        "--module",
        MODULE,
        "--token-label",
        "akamu",
        "--pin-file",
        pin_s.as_str(),
    ];

    let root_args: Vec<&str> = ["ceremony", "init-root"]
        .into_iter()
        .chain(token)
        .chain([
            "--key-label",
            "root-2026",
            "--key-type",
            "ec:P-384",
            "--subject",
            "CN=Example Root,O=Example,C=US",
            "--validity-years",
            "20",
            "--out",
            root_s.as_str(),
        ])
        .collect();
    let o = cli(&conf, &root_args);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("generated ec:P-384 key pair \"root-2026\""),
        "{}",
        text(&o)
    );
    // Again: the label exists, so it refuses without --force.
    let o = cli(&conf, &root_args);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));

    let o = cli(
        &conf,
        &["ceremony", "issue-intermediate"]
            .into_iter()
            .chain(token)
            .chain([
                "--root-key-label",
                "root-2026",
                "--root-cert",
                root_s.as_str(),
                "--key-label",
                "issuing-2026",
                "--key-type",
                "ec:P-256",
                "--subject",
                "CN=Example Issuing CA,O=Example,C=US",
                "--validity-years",
                "5",
                "--crl-url",
                "http://crl.example.org/root.crl",
                "--out",
                inter_s.as_str(),
            ])
            .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile", root_s.as_str(), inter_s.as_str()])
        .output()
        .expect("openssl");
    assert!(verify.status.success(), "{}", text(&verify));

    let o = cli(
        &conf,
        &["ceremony", "show"]
            .into_iter()
            .chain(token)
            .collect::<Vec<_>>(),
    );
    let listing = text(&o);
    assert!(o.status.success(), "{listing}");
    for want in [
        "label=\"root-2026\"",
        "label=\"issuing-2026\"",
        "sensitive=true extractable=false",
    ] {
        assert!(listing.contains(want), "{want}: {listing}");
    }

    // The audit log next to --out: 2 keys + 2 certificates.
    let log = d.join("audit.log");
    let log_s = log.to_string_lossy().into_owned();
    let o = cli(&conf, &["audit", "verify", log_s.as_str()]);
    assert!(o.status.success(), "{}", text(&o));
    let head = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    assert!(head.starts_with("OK ") && head.len() == 3 + 64, "{head}");
    let mut bytes = std::fs::read(&log).expect("read");
    let second_line = bytes.iter().position(|b| *b == b'\n').expect("newline") + 1;
    let target = second_line + 20;
    bytes[target] ^= 0x01;
    std::fs::write(&log, &bytes).expect("tamper");
    let o = cli(&conf, &["audit", "verify", log_s.as_str()]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("record 1 (line 2) is broken"),
        "{}",
        text(&o)
    );

    let blocklist = d.join("blocked-keys.txt");
    let o = cli(
        &conf,
        &[
            "admin",
            "block-key",
            "--cert",
            inter_s.as_str(),
            "--blocklist",
            &blocklist.to_string_lossy(),
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let listed = std::fs::read_to_string(&blocklist).expect("blocklist");
    assert_eq!(listed.lines().count(), 1, "{listed}");
}

/// `ceremony log-key` writes an Ed25519 key readable only by its owner,
/// prints the verifier key of that key under the origin, and never
/// overwrites a key.
#[test]
fn ceremony_log_key_makes_the_log_key_and_its_verifier_key() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("mtc-log.key");
    let key_s = key.to_string_lossy().into_owned();
    let args = [
        "--json",
        "ceremony",
        "log-key",
        "--out",
        key_s.as_str(),
        "--origin",
        "acme.example.com/log",
    ];
    let o = cli(dir.path(), &args);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let vkey = v["verifier_key"].as_str().expect("verifier key");
    assert!(vkey.starts_with("acme.example.com/log+"), "{vkey}");
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let pkey = openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&key).expect("read"))
        .expect("PEM");
    assert_eq!(pkey.id(), openssl::pkey::Id::ED25519);
    let signer = akamu_tlog::NoteSigner::new("acme.example.com/log", pkey).expect("signer");
    assert_eq!(signer.verifier_key(), vkey, "the printed key is the file's");

    let again = cli(dir.path(), &args);
    assert_eq!(again.status.code(), Some(3), "{}", text(&again));
    assert!(
        text(&again).contains("refusing to overwrite"),
        "{}",
        text(&again)
    );
}
