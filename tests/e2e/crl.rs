//! CRLs as a relying party sees them: the frontend serves the current CRL
//! at the path of `[ca] crl_url` (DER, `application/pkix-crl`) and has the
//! signer sign a new one after every revocation, by ACME or by the operator
//! (`akamu-cli admin revoke`). Judged with `openssl crl -verify` and
//! `openssl verify -crl_check`.

use std::path::Path;
use std::time::{Duration, Instant};

use http::StatusCode;
use openssl::x509::{CrlNumber, ReasonCode, X509Crl};

use crate::support::acme::{RawIssued, Session};
use crate::support::client::RawClient;
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::operator::{Run, akamu_cli, openssl};
use crate::support::procs::{Ca, CaOptions, free_port};

/// The path the CRL is published at.
const CRL_PATH: &str = "/crl/ca.crl";
/// How long a new CRL may take to be served after a revocation.
const CRL_TIMEOUT: Duration = Duration::from_secs(15);

/// RFC 5280 reason codes used here.
const KEY_COMPROMISE: i32 = 1;
const SUPERSEDED: i32 = 4;

/// One served CRL, parsed.
struct Crl {
    der: Vec<u8>,
    number: u64,
    /// (serial, lower-case hex without leading zeros; reason code if any).
    entries: Vec<(String, Option<i32>)>,
}

impl Crl {
    fn parse(der: &[u8]) -> Crl {
        let crl = X509Crl::from_der(der).unwrap_or_else(|e| panic!("the CRL is not DER: {e}"));
        let number = crl
            .extension::<CrlNumber>()
            .expect("read the CRL Number")
            .unwrap_or_else(|| panic!("the CRL has no CRL Number"))
            .1
            .to_bn()
            .expect("CRL Number")
            .to_dec_str()
            .expect("decimal")
            .parse()
            .expect("a CRL Number that fits u64");
        let entries = crl
            .get_revoked()
            .map(|revoked| {
                revoked
                    .iter()
                    .map(|r| {
                        let reason = r.extension::<ReasonCode>().expect("read reasonCode").map(
                            |(_, code)| {
                                i32::try_from(code.get_i64().expect("reason")).expect("small")
                            },
                        );
                        (serial_hex_of(r.serial_number()), reason)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Crl {
            der: der.to_vec(),
            number,
            entries,
        }
    }

    fn reason_of(&self, serial: &str) -> Option<Option<i32>> {
        self.entries
            .iter()
            .find(|(s, _)| s == serial)
            .map(|(_, reason)| *reason)
    }
}

fn serial_hex_of(serial: &openssl::asn1::Asn1IntegerRef) -> String {
    serial
        .to_bn()
        .expect("serial")
        .to_hex_str()
        .expect("hex")
        .to_ascii_lowercase()
        .trim_start_matches('0')
        .to_owned()
}

fn leaf_serial(issued: &RawIssued) -> String {
    serial_hex_of(issued.leaf().serial_number())
}

/// GETs the CRL until `done` accepts it (the frontend regenerates it
/// asynchronously after each revocation).
async fn wait_for_crl(raw: &RawClient, url: &str, what: &str, done: impl Fn(&Crl) -> bool) -> Crl {
    let deadline = Instant::now() + CRL_TIMEOUT;
    loop {
        let rsp = raw.get(url).await;
        let last = if rsp.status == StatusCode::OK {
            assert_eq!(
                rsp.content_type(),
                "application/pkix-crl",
                "GET {url}: the CRL's media type (RFC 5280 §4.2.1.13)"
            );
            let crl = Crl::parse(&rsp.body);
            if done(&crl) {
                return crl;
            }
            format!("CRL Number {} with entries {:?}", crl.number, crl.entries)
        } else {
            format!("{} {}", rsp.status, String::from_utf8_lossy(&rsp.body))
        };
        assert!(
            Instant::now() < deadline,
            "GET {url}: no CRL with {what} within {CRL_TIMEOUT:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `openssl verify -crl_check -CAfile ca -CRLfile crl leaf`.
fn verify_with_crl(ca: &Path, crl_pem: &Path, leaf: &Path) -> Run {
    openssl(&[
        "verify",
        "-crl_check",
        "-CAfile",
        &ca.to_string_lossy(),
        "-CRLfile",
        &crl_pem.to_string_lossy(),
        &leaf.to_string_lossy(),
    ])
}

/// Writes `crl` as DER and PEM into `dir`, checks its signature with
/// `openssl crl -verify` against the CA certificate; returns the PEM path.
fn save_and_verify_crl(dir: &Path, ca_cert: &Path, crl: &Crl, tag: &str) -> std::path::PathBuf {
    let der = dir.join(format!("crl-{tag}.der"));
    let pem = dir.join(format!("crl-{tag}.pem"));
    std::fs::write(&der, &crl.der).expect("write CRL");
    let run = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &der.to_string_lossy(),
        "-CAfile",
        &ca_cert.to_string_lossy(),
        "-noout",
        "-verify",
    ]);
    assert!(
        run.success() && run.all_output().contains("verify OK"),
        "the served CRL does not verify against the CA certificate:\n{run}"
    );
    openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        &der.to_string_lossy(),
        "-out",
        &pem.to_string_lossy(),
    ])
    .assert_success();
    pem
}

/// Three certificates; two revoked through ACME (keyCompromise, superseded)
/// appear on the served CRL with their reasons, the CRL verifies against the
/// CA, and `openssl verify -crl_check` rejects exactly the revoked leaves.
/// Then the operator revokes the third with `akamu-cli admin revoke`, and
/// within seconds the CRL lists three entries under a higher CRL Number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_by_acme_and_operator_reach_the_served_crl() {
    let dns = DnsServer::start().await;
    let port = free_port();
    let crl_url = format!("https://localhost:{port}{CRL_PATH}");
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        listen_port: Some(port),
        ca_toml: format!("crl_url = \"{crl_url}\""),
        ..CaOptions::default()
    })
    .await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let session = Session::new(&raw).await;

    let names = ["one.example.org", "two.example.org", "three.example.org"];
    let mut issued = Vec::new();
    for name in names {
        issued.push(session.issue_http01(&http, &[name]).await);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut leaf_paths = Vec::new();
    for (name, cert) in names.iter().zip(&issued) {
        let leaf = cert.leaf();
        let dps: Vec<String> = leaf
            .crl_distribution_points()
            .map(|dps| {
                dps.iter()
                    .filter_map(|dp| dp.distpoint())
                    .filter_map(|n| n.fullname())
                    .flat_map(|names| names.iter().filter_map(|g| g.uri().map(str::to_owned)))
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(dps, vec![crl_url.clone()], "{name}: CRL distribution point");
        let path = dir.path().join(format!("{name}.pem"));
        std::fs::write(&path, leaf.to_pem().expect("PEM")).expect("write leaf");
        leaf_paths.push(path);
    }
    let serials: Vec<String> = issued.iter().map(leaf_serial).collect();

    for (cert, reason) in issued.iter().zip([KEY_COMPROMISE, SUPERSEDED]) {
        let rsp = session
            .revoke(&cert.leaf_der(), Some(i64::from(reason)))
            .await;
        assert_eq!(
            rsp.status,
            StatusCode::OK,
            "revokeCert (reason {reason}): {}",
            String::from_utf8_lossy(&rsp.body)
        );
    }

    let crl = wait_for_crl(&raw, &crl_url, "2 entries", |c| c.entries.len() == 2).await;
    assert_eq!(
        crl.reason_of(&serials[0]),
        Some(Some(KEY_COMPROMISE)),
        "first leaf on the CRL as keyCompromise: {:?}",
        crl.entries
    );
    assert_eq!(
        crl.reason_of(&serials[1]),
        Some(Some(SUPERSEDED)),
        "second leaf on the CRL as superseded: {:?}",
        crl.entries
    );
    assert_eq!(crl.reason_of(&serials[2]), None, "third leaf not revoked");
    let crl_pem = save_and_verify_crl(dir.path(), ca.ca_cert(), &crl, "acme");
    let text = openssl(&["crl", "-in", &crl_pem.to_string_lossy(), "-noout", "-text"]);
    let text = text.assert_success().stdout.clone();
    assert!(
        text.contains("X509v3 CRL Number")
            && text.contains("Key Compromise")
            && text.contains("Superseded"),
        "openssl crl -text shows the CRL Number and both reasons:\n{text}"
    );

    for (i, leaf) in leaf_paths.iter().enumerate() {
        let run = verify_with_crl(ca.ca_cert(), &crl_pem, leaf);
        if i < 2 {
            assert!(
                !run.success() && run.all_output().contains("certificate revoked"),
                "openssl verify -crl_check accepted revoked {}:\n{run}",
                names[i]
            );
        } else {
            assert!(
                run.success() && run.stdout.trim_end().ends_with(": OK"),
                "openssl verify -crl_check refused the unrevoked {}:\n{run}",
                names[i]
            );
        }
    }

    // The operator revokes the third certificate by serial, as openssl
    // prints it (upper case), with the frontend's own configuration.
    let serial_upper = serials[2].to_ascii_uppercase();
    let run = akamu_cli(
        &[
            "admin",
            "revoke",
            "--serial",
            &serial_upper,
            "--reason",
            "1",
            "--config",
            &ca.config_path().to_string_lossy(),
        ],
        &[],
    );
    run.assert_success();
    eprintln!("[e2e] akamu-cli admin revoke: {}", run.all_output().trim());

    let before = crl.number;
    let crl = wait_for_crl(&raw, &crl_url, "3 entries", |c| c.entries.len() == 3).await;
    assert!(
        crl.number > before,
        "the CRL Number went from {before} to {}: it must grow",
        crl.number
    );
    assert_eq!(
        crl.reason_of(&serials[2]),
        Some(Some(KEY_COMPROMISE)),
        "the operator's revocation is on the CRL as keyCompromise: {:?}",
        crl.entries
    );
    let crl_pem = save_and_verify_crl(dir.path(), ca.ca_cert(), &crl, "operator");
    let run = verify_with_crl(ca.ca_cert(), &crl_pem, &leaf_paths[2]);
    assert!(
        !run.success() && run.all_output().contains("certificate revoked"),
        "openssl verify -crl_check accepted the leaf the operator revoked:\n{run}"
    );
}
