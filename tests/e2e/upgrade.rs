//! Upgrades keep every record (issue 18): the current binaries start on the
//! database, audit log, CRL number and CA certificate that the binaries of
//! an earlier commit made (`tests/fixtures/upgrade-<commit>`, written by
//! `scripts/make-upgrade-fixture.sh`) for two earlier commits: this round's
//! start (the same schema) and one before the last schema changes.
//! Migrations apply; the account, the
//! orders and the certificates are served; the revocation is on the new
//! CRL; the audit chain verifies and reconciles with the database, and
//! goes on with a new issuance. A database carrying a migration the binary
//! does not know (a downgrade) is refused with a message that says so.
//!
//! The fixture holds no private key: the CA and account keys are Ed25519
//! keys rebuilt here from the fixed seeds the script used.

use std::path::{Path, PathBuf};
use std::time::Duration;

use akamu_jose::SigningKey;
use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use openssl::pkey::{Id, PKey};
use openssl::x509::{X509, X509Crl};
use serde_json::Value;

use crate::support::acme::Session;
use crate::support::certs::leaf_of;
use crate::support::client::{JwsAccount, RawClient};
use crate::support::http01::Http01Server;
use crate::support::operator::akamu_cli;
use crate::support::procs::{Ca, CaOptions, free_port};

/// The earlier versions: this round's starting commit, and the last
/// commit before the round's previous schema changes (CAA, account keys,
/// one attempt per authorization), whose database gets migrations applied.
const FIXTURES: [&str; 2] = ["upgrade-61d64c9", "upgrade-956fa5c"];
/// Seeds of `scripts/make-upgrade-fixture.sh`.
const CA_SEED: &str = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
const ACCOUNT_SEED: &str = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";

fn fixture(fixture: &str, name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture)
        .join(name)
}

fn ed25519_pem(seed_hex: &str) -> Vec<u8> {
    let seed = hex::decode(seed_hex).expect("hex seed");
    PKey::private_key_from_raw_bytes(&seed, Id::ED25519)
        .expect("Ed25519 key")
        .private_key_to_pem_pkcs8()
        .expect("PEM")
}

/// The fixture's SQL dump loaded into a new SQLite file, and the number
/// of migrations the earlier version had applied.
fn database_from_dump(fixture_name: &str, dir: &Path) -> (Vec<u8>, i64) {
    let path = dir.join("restored.db");
    let sql = std::fs::read_to_string(fixture(fixture_name, "akamu.sql")).expect("read the dump");
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).expect("create");
    conn.batch_execute(&sql).expect("load the dump");
    let applied = count(&mut conn, "SELECT COUNT(*) FROM __diesel_schema_migrations");
    drop(conn);
    (
        std::fs::read(&path).expect("read the restored database"),
        applied,
    )
}

fn count(conn: &mut SqliteConnection, query: &str) -> i64 {
    diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!(
        "({query})"
    )))
    .get_result(conn)
    .unwrap_or_else(|e| panic!("{query}: {e}"))
}

fn migrations_in_source() -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../acme-frontend/migrations");
    std::fs::read_dir(&dir)
        .expect("read the migrations")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().join("up.sql").exists()))
        .count() as i64
}

fn serial_of(cert: &X509) -> String {
    cert.serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
        .expect("serial")
        .to_ascii_lowercase()
        .trim_start_matches('0')
        .to_owned()
}

/// `url` from the fixture's CA moved to this CA's base URL.
fn rebased(url: &str, base: &str) -> String {
    let path = url
        .splitn(4, '/')
        .nth(3)
        .unwrap_or_else(|| panic!("not a URL: {url}"));
    format!("{base}/{path}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_current_binaries_keep_every_record_of_this_rounds_start() {
    upgrade_from(FIXTURES[0]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_to_the_records_of_an_older_schema() {
    upgrade_from(FIXTURES[1]).await;
}

async fn upgrade_from(fixture_name: &str) {
    let fixture = |name: &str| fixture(fixture_name, name);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixture("manifest.json")).expect("manifest"))
            .expect("manifest JSON");
    let work = tempfile::tempdir().expect("tempdir");
    let (database, applied_before) = database_from_dump(fixture_name, work.path());
    let mut files = vec![
        ("akamu.db".to_owned(), database, 0o600),
        ("ca.key.pem".to_owned(), ed25519_pem(CA_SEED), 0o600),
    ];
    for name in ["audit.log", "ca.cert.pem", "crl-number"] {
        if let Ok(bytes) = std::fs::read(fixture(name)) {
            files.push((name.to_owned(), bytes, 0o600));
        }
    }
    let old_crl_number: u64 = std::fs::read_to_string(fixture("crl-number"))
        .map_or(0, |n| n.trim().parse().expect("a number"));
    let port = free_port();
    let base = format!("https://localhost:{port}");
    let crl_url = format!("{base}/crl/ca.crl");
    let mut ca = Ca::start_async(CaOptions {
        listen_port: Some(port),
        ca_toml: format!("key_type = \"ed25519\"\ncrl_url = \"{crl_url}\""),
        state_files: files,
        ..CaOptions::default()
    })
    .await;
    let db = ca.db_path();
    let audit_log = ca.state_dir().join("audit.log");

    // Every migration of this version is recorded: the missing ones ran.
    let mut conn = SqliteConnection::establish(&format!("file:{}?mode=ro", db.display()))
        .expect("open read-only");
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM __diesel_schema_migrations"),
        migrations_in_source()
    );
    assert!(applied_before <= migrations_in_source());
    eprintln!(
        "{fixture_name}: {applied_before} migrations before, {} after",
        migrations_in_source()
    );
    drop(conn);

    // The account, each order and each certificate, as the account sees them.
    let raw = RawClient::new(&ca).await;
    let key = SigningKey::from_pem(&ed25519_pem(ACCOUNT_SEED)).expect("account key");
    let kid = rebased(
        manifest["account"]["url"].as_str().expect("account URL"),
        &base,
    );
    let s = Session::with_account(
        &raw,
        JwsAccount {
            key,
            kid: kid.clone(),
        },
    );
    let account = s.post_ok(&kid, None).await.json();
    assert_eq!(account["status"], "valid", "{account}");

    let certs = manifest["certificates"].as_array().expect("certificates");
    let mut revoked = Vec::new();
    let mut kept = Vec::new();
    for cert in certs {
        let order_url = rebased(cert["issue"]["order_url"].as_str().expect("order"), &base);
        let order = s.post_ok(&order_url, None).await.json();
        assert_eq!(order["status"], "valid", "{order_url}: {order}");
        let names: Vec<&str> = order["identifiers"]
            .as_array()
            .expect("identifiers")
            .iter()
            .map(|i| i["value"].as_str().expect("value"))
            .collect();
        for name in cert["names"].as_array().expect("names") {
            assert!(names.contains(&name.as_str().expect("name")), "{order}");
        }
        let cert_url = order["certificate"].as_str().expect("certificate URL");
        let pem = s.post_ok(cert_url, None).await.body;
        let leaf = leaf_of(std::str::from_utf8(&pem).expect("PEM"));
        let serial = cert["serial"].as_str().expect("serial").to_owned();
        assert_eq!(serial_of(&leaf), serial, "{cert_url}");
        if cert["revoked"].as_bool() == Some(true) {
            revoked.push(serial);
        } else {
            kept.push(serial);
        }
    }
    assert_eq!((revoked.len(), kept.len()), (1, 2));

    // The revocation is on the CRL the new signer made, under the old CA
    // certificate, with a CRL Number after the old ones.
    let ca_cert =
        X509::from_pem(&std::fs::read(fixture("ca.cert.pem")).expect("CA")).expect("CA PEM");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let crl = loop {
        let rsp = raw.get(&crl_url).await;
        if rsp.status.is_success() {
            break X509Crl::from_der(&rsp.body).expect("a DER CRL");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no CRL at {crl_url}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        crl.verify(&ca_cert.public_key().expect("key"))
            .expect("verify")
    );
    let listed: Vec<String> = crl
        .get_revoked()
        .map(|r| {
            r.iter()
                .map(|e| {
                    e.serial_number()
                        .to_bn()
                        .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
                        .expect("serial")
                        .to_ascii_lowercase()
                        .trim_start_matches('0')
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        listed, revoked,
        "the CRL lists exactly the revoked certificate"
    );
    let number = crl
        .extension::<openssl::x509::extension::CrlNumber>()
        .expect("CRL Number")
        .expect("a CRL Number")
        .1
        .to_bn()
        .expect("bn")
        .to_dec_str()
        .expect("dec")
        .parse::<u64>()
        .expect("u64");
    assert!(
        number > old_crl_number,
        "CRL Number {number} after {old_crl_number}"
    );

    // The audit chain of the earlier version verifies, and goes on.
    let verify = || akamu_cli(&["audit", "verify", &audit_log.to_string_lossy()], &[]);
    verify().assert_success();
    let http = Http01Server::start(ca.http_validation_port()).await;
    s.issue_http01(&http, &["after-upgrade.localhost"]).await;
    verify().assert_success();
    let reconcile = akamu_cli(
        &[
            "--json",
            "audit",
            "reconcile",
            "--audit-log",
            &audit_log.to_string_lossy(),
            "--database",
            &db.to_string_lossy(),
        ],
        &[],
    );
    reconcile.assert_success();

    // A downgrade: the database now holds a migration no binary of ours
    // knows. The frontend refuses to start and says why; nothing changes.
    ca.stop();
    let mut conn = SqliteConnection::establish(&db.to_string_lossy()).expect("open");
    conn.batch_execute(
        "INSERT INTO __diesel_schema_migrations (version) VALUES ('20991231000060');",
    )
    .expect("a migration from the future");
    let certificates = count(&mut conn, "SELECT COUNT(*) FROM certificates");
    drop(conn);
    let (code, output) = ca.run_to_exit(Duration::from_secs(30));
    assert_ne!(code, Some(0), "started on a newer database:\n{output}");
    assert_ne!(code, None, "still running on a newer database:\n{output}");
    assert!(
        output.contains("newer than this binary") && output.contains("20991231000060"),
        "the refusal names the cause:\n{output}"
    );
    let mut conn = SqliteConnection::establish(&db.to_string_lossy()).expect("open");
    assert_eq!(
        count(&mut conn, "SELECT COUNT(*) FROM certificates"),
        certificates
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL"
        ),
        1
    );
}
