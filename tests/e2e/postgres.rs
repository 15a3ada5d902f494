//! PostgreSQL as the frontend's database (issue 17): the real binaries
//! with `[database] url` pointing at a real PostgreSQL server
//! (`test_kit::postgres`), a certificate issued with instant-acme that
//! verifies against the root, and `akamu-cli admin` against the same URL:
//! `admin check` counts it, `audit reconcile` lists it against the audit
//! log, `admin revoke` revokes it in PostgreSQL, `admin backup` refuses and
//! points to `pg_dump`.

use diesel::prelude::*;
use test_kit::postgres::PgServer;

use crate::support::certs::{dns_sans, verify_chain};
use crate::support::client::{acme_account, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::operator::akamu_cli;
use crate::support::procs::{Ca, CaOptions};

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_issued_on_postgres_and_the_admin_commands() {
    let pg = PgServer::start().expect("start PostgreSQL (install the `postgresql` package)");
    let dns = DnsServer::start().await;
    // The test server trusts loopback: the password is carried, not checked,
    // and must never be shown.
    let url = pg.url().replacen("postgres@", "postgres:e2e-secret-pw@", 1);
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        database_toml: Some(format!("url = \"{url}\"\nmax_connections = 4")),
        ..CaOptions::default()
    })
    .await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let account = acme_account(&ca).await;
    let issued = issue_http01(&account, &http, &["pg.example.org"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(dir.path(), ca.ca_cert(), &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["pg.example.org"]);
    assert!(
        !ca.state_dir().join("akamu.db").exists(),
        "no SQLite file beside a PostgreSQL database"
    );

    // The rows are PostgreSQL's.
    let mut conn = PgConnection::establish(&pg.url()).expect("connect");
    let rows: Vec<Row> = diesel::sql_query("SELECT status FROM certificates")
        .load(&mut conn)
        .expect("certificates");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, "valid");

    // `admin check` on the configuration's URL counts it.
    let config = ca.config_path().to_owned();
    let check = akamu_cli(
        &[
            "admin".as_ref(),
            "check".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
        &[],
    );
    check.assert_success();
    assert!(
        check.stdout.contains("(1 certificates)"),
        "{}",
        check.all_output()
    );

    // `audit reconcile` lists the database's serials against the audit
    // log: the one certificate is in both.
    let audit_log = ca.state_dir().join("audit.log");
    let reconcile = akamu_cli(
        &[
            "audit".as_ref(),
            "reconcile".as_ref(),
            "--audit-log".as_ref(),
            audit_log.as_os_str(),
            "--config".as_ref(),
            config.as_os_str(),
        ],
        &[],
    );
    reconcile.assert_success();
    let shown = format!(
        "database {}: 1 certificates",
        pg.url().replacen("postgres@", "postgres:***@", 1)
    );
    assert!(
        reconcile.stdout.contains(&shown)
            && reconcile.stdout.contains("in the audit log only: none"),
        "{}",
        reconcile.all_output()
    );

    // `admin backup` refuses, pointing to pg_dump, and writes nothing.
    let out = dir.path().join("backup.db");
    let backup = akamu_cli(
        &[
            "admin".as_ref(),
            "backup".as_ref(),
            "--config".as_ref(),
            config.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ],
        &[],
    );
    assert!(!backup.success(), "{}", backup.all_output());
    assert!(
        backup.all_output().contains("pg_dump"),
        "{}",
        backup.all_output()
    );
    assert!(!out.exists(), "a backup file appeared");
    for (what, text) in [
        ("admin check", check.all_output()),
        ("audit reconcile", reconcile.all_output()),
        ("admin backup", backup.all_output()),
        ("the CA's processes", ca.output()),
    ] {
        assert!(
            !text.contains("e2e-secret-pw"),
            "{what} shows the password: {text}"
        );
    }
    assert!(
        backup.all_output().contains("postgres:***@"),
        "{}",
        backup.all_output()
    );

    // `admin revoke` on the URL: the certificate is revoked in PostgreSQL.
    let serial = leaf
        .serial_number()
        .to_bn()
        .expect("serial")
        .to_hex_str()
        .expect("hex")
        .to_string();
    let revoke = akamu_cli(
        &[
            "admin",
            "revoke",
            "--serial",
            &serial,
            "--reason",
            "4",
            "--config",
            &config.display().to_string(),
        ],
        &[],
    );
    revoke.assert_success();
    let rows: Vec<Row> = diesel::sql_query("SELECT status FROM certificates")
        .load(&mut conn)
        .expect("certificates");
    assert_eq!(rows[0].status, "revoked");
}
