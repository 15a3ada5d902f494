//! Debian's certbot, unmodified, is the judge: `certonly` in standalone
//! mode (http-01) and in manual mode with hook scripts (dns-01), then the
//! account's life: `update_account`, `revoke`, `unregister`. certbot trusts
//! the CA through `REQUESTS_CA_BUNDLE`; the validator resolves names through
//! the test DNS server, where the hooks publish the TXT records.

use std::path::Path;

use http::StatusCode;
use serde_json::{Value, json};

use crate::issuance::start_ca;
use crate::support::acme::{Session, signing_key_from_rsa_jwk};
use crate::support::certs::{dns_sans, openssl_verify, san_count};
use crate::support::client::{JwsAccount, RawClient};
use crate::support::dns::DnsServer;
use crate::support::dns_control::{DnsControl, hook_scripts};
use crate::support::procs::Ca;
use crate::support::tools::{Certbot, describe};

/// Asserts certbot's `live/NAME` certificate verifies against the CA (with
/// and without certbot's chain.pem) and names exactly `name`.
fn check_live(certbot: &Certbot, ca: &Ca, name: &str) {
    let live = certbot.live(name);
    let cert_path = live.join("cert.pem");
    assert!(
        cert_path.is_file(),
        "certbot wrote no {}",
        cert_path.display()
    );
    openssl_verify(ca.ca_cert(), Some(&live.join("chain.pem")), &cert_path);
    openssl_verify(ca.ca_cert(), None, &cert_path);
    let leaf = openssl::x509::X509::from_pem(&read(&cert_path)).expect("certbot's cert.pem is PEM");
    assert_eq!(dns_sans(&leaf), vec![name.to_owned()]);
    assert_eq!(san_count(&leaf), 1, "no SAN beyond the requested name");
}

/// `certbot certonly --standalone` for `name`, with `email` or without.
async fn standalone(certbot: &Certbot, ca: &Ca, name: &str, email: Option<&str>) {
    let port = ca.http_validation_port().to_string();
    let mut args = vec![
        "certonly",
        "--standalone",
        "--http-01-port",
        port.as_str(),
        "--http-01-address",
        "127.0.0.1",
        "-d",
        name,
        "--agree-tos",
        "--no-eff-email",
    ];
    match email {
        Some(e) => args.extend(["-m", e]),
        None => args.push("--register-unsafely-without-email"),
    }
    certbot.ok(&args).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_standalone_http01_issues_a_verifiable_certificate() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let work = tempfile::tempdir().expect("tempdir");
    let certbot = Certbot::new(&ca, work.path());
    let name = "certbot.example.org";
    standalone(&certbot, &ca, name, None).await;
    check_live(&certbot, &ca, name);
}

/// dns-01 with `--manual` and hook scripts that publish and remove the TXT
/// record (`CERTBOT_DOMAIN`, `CERTBOT_VALIDATION`) in the test DNS server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_manual_dns01_with_hooks() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let control = DnsControl::start(&dns).await;
    let work = tempfile::tempdir().expect("tempdir");
    let hooks = hook_scripts(work.path(), &control);
    let certbot = Certbot::new(&ca, &work.path().join("certbot"));
    let name = "manual.example.org";
    certbot
        .ok(&[
            "certonly",
            "--manual",
            "--preferred-challenges",
            "dns",
            "--manual-auth-hook",
            hooks.certbot_auth.to_str().expect("UTF-8"),
            "--manual-cleanup-hook",
            hooks.certbot_cleanup.to_str().expect("UTF-8"),
            "-d",
            name,
            "--agree-tos",
            "--register-unsafely-without-email",
        ])
        .await;
    check_live(&certbot, &ca, name);
    assert_eq!(
        control.ops("add").len(),
        1,
        "the auth hook published one TXT: {:?}",
        control.log()
    );
    assert_eq!(
        control.ops("remove").len(),
        1,
        "the cleanup hook removed it: {:?}",
        control.log()
    );
    assert!(dns.txt(&format!("_acme-challenge.{name}")).is_empty());
}

/// certbot's account as a raw JWS session: its RSA key from
/// `private_key.json` and its URL from `regr.json`.
fn certbot_session(raw: &RawClient, account_dir: &Path) -> Session {
    let jwk: Value =
        serde_json::from_slice(&read(&account_dir.join("private_key.json"))).expect("JWK");
    let regr: Value = serde_json::from_slice(&read(&account_dir.join("regr.json"))).expect("regr");
    let kid = regr["uri"]
        .as_str()
        .unwrap_or_else(|| panic!("regr.json has no uri: {regr}"))
        .to_owned();
    Session::with_account(
        raw,
        JwsAccount {
            key: signing_key_from_rsa_jwk(&jwk),
            kid,
        },
    )
}

/// The account's life with certbot: issue, `update_account -m` (the CA
/// stores the new contact), `revoke --reason keycompromise` (a second
/// revoke fails with `alreadyRevoked`), `unregister` (the account key is
/// refused afterwards with `unauthorized`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_update_account_revoke_unregister() {
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let work = tempfile::tempdir().expect("tempdir");
    let certbot = Certbot::new(&ca, work.path());
    let name = "life.example.org";
    standalone(&certbot, &ca, name, Some("old@example.org")).await;
    check_live(&certbot, &ca, name);

    let raw = RawClient::new(&ca).await;
    let session = certbot_session(&raw, &certbot.account_dir());
    let account = session.post_ok(&session.account.kid, None).await.json();
    assert_eq!(account["contact"], json!(["mailto:old@example.org"]));

    // update_account: the CA now holds the new address.
    certbot
        .ok(&["update_account", "-m", "new@example.org", "--no-eff-email"])
        .await;
    let account = session.post_ok(&session.account.kid, None).await.json();
    assert_eq!(
        account["contact"],
        json!(["mailto:new@example.org"]),
        "update_account: {account}"
    );
    assert_eq!(account["status"], "valid");

    // revoke, then revoke again.
    let cert_path = certbot.live(name).join("cert.pem");
    let cert_arg = cert_path.to_str().expect("UTF-8");
    let revoke = [
        "revoke",
        "--cert-path",
        cert_arg,
        "--reason",
        "keycompromise",
        "--no-delete-after-revoke",
    ];
    certbot.ok(&revoke).await;
    let again = certbot.output(&revoke).await;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&again.stderr),
        certbot.log()
    );
    assert!(
        !again.status.success(),
        "a second revoke must fail: {}",
        describe(&again, "")
    );
    assert!(
        text.contains("urn:ietf:params:acme:error:alreadyRevoked"),
        "the second revoke should fail with alreadyRevoked: {}",
        describe(&again, &certbot.log())
    );

    // unregister: certbot deletes its copy; the CA refuses the key.
    certbot.ok(&["unregister"]).await;
    let rsp = session.post(&session.account.kid, None).await;
    rsp.assert_problem("POST-as-GET of a deactivated account", &["unauthorized"]);
    assert_eq!(rsp.status, StatusCode::UNAUTHORIZED);
    let rsp = session
        .new_order_raw(&[crate::support::acme::dns("after.example.org")], json!({}))
        .await;
    rsp.assert_problem("newOrder by a deactivated account", &["unauthorized"]);
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
