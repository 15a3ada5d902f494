//! dns-persist-01 by raw JWS, in both record forms: the directory and the
//! challenge carry the fields of the form the validator checks (draft-01:
//! `issuer-domain-names` on the challenge, nothing in the directory;
//! draft-02: `issuerDomainNames` on both, `accountHashPrefix`), a record
//! built here from the draft's formula (not by our client's helper)
//! validates, and the failures carry the types each form gives them.

use serde_json::{Value, json};

use crate::support::acme::{Session, challenge, dns};
use crate::support::client::RawClient;
use crate::support::dns::DnsServer;
use crate::support::procs::{Ca, CaOptions};

async fn start(dns_server: &DnsServer, draft_02: bool) -> Ca {
    let form = if draft_02 {
        "dns_persist_form = \"draft-02\"\n"
    } else {
        ""
    };
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        server_toml: format!("dns_persist_issuer_domain = \"ca.akamu.test\"\n{form}"),
        ..CaOptions::default()
    })
    .await
}

/// draft-ietf-acme-dns-persist-02 §4.1, written out here:
/// `prefix ‖ "sha-256/" ‖ base64url(SHA-256(len(domain) ‖ domain ‖
/// thumbprint ‖ account URL))`.
fn hashed_uri(prefix: &str, domain: &str, thumbprint: &str, account: &str) -> String {
    let mut input = vec![u8::try_from(domain.len()).expect("short name")];
    input.extend_from_slice(domain.as_bytes());
    input.extend_from_slice(thumbprint.as_bytes());
    input.extend_from_slice(account.as_bytes());
    format!(
        "{prefix}sha-256/{}",
        akamu_jose::b64(&openssl::sha::sha256(&input))
    )
}

/// Orders `name`, publishes `record` at its `_validation-persist` name,
/// answers dns-persist-01 and returns the settled authorization and the
/// challenge object before the answer.
async fn attempt(s: &Session, dns_server: &DnsServer, name: &str, record: &str) -> (Value, Value) {
    let (_, order) = s.new_order(&[dns(name)]).await;
    let url = Session::authz_urls(&order)[0].clone();
    let authz = s.authz(&url).await;
    let chall = challenge(&authz, "dns-persist-01");
    assert!(chall.get("token").is_none(), "no token: {chall}");
    dns_server.set_txt(&format!("_validation-persist.{name}."), &[record]);
    s.post_ok(chall["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    (settled(s, &url).await, chall)
}

/// The authorization at `url` once it left `pending`.
async fn settled(s: &Session, url: &str) -> Value {
    for _ in 0..200 {
        let authz = s.authz(url).await;
        if authz["status"] != "pending" {
            return authz;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("{url}: the authorization stayed pending");
}

fn error_type(authz: &Value) -> String {
    let chall = challenge(authz, "dns-persist-01");
    chall["error"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_01_form_by_raw_jws() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, false).await;
    let raw = RawClient::new(&ca).await;
    let meta = &raw.directory()["meta"];
    assert!(meta.get("accountHashPrefix").is_none(), "{meta}");
    assert!(meta.get("issuerDomainNames").is_none(), "{meta}");
    let s = Session::new(&raw).await;
    let kid = s.account.kid.clone();

    let (authz, chall) = attempt(
        &s,
        &dns_server,
        "p1.example.org",
        &format!("CA.akamu.test.; accounturi={kid}; x=y"),
    )
    .await;
    assert_eq!(chall["issuer-domain-names"], json!(["ca.akamu.test"]));
    assert_eq!(authz["status"], "valid", "{authz}");
    // The draft-02 hashed form is another account here.
    let thumbprint = s
        .key_authorization("t")
        .split_once('.')
        .expect("ka")
        .1
        .to_owned();
    let hashed = hashed_uri("https://x/", "p2.example.org", &thumbprint, &kid);
    let (authz, _) = attempt(
        &s,
        &dns_server,
        "p2.example.org",
        &format!("ca.akamu.test; accounturi={hashed}"),
    )
    .await;
    assert_eq!(authz["status"], "invalid");
    assert_eq!(
        error_type(&authz),
        "urn:ietf:params:acme:error:incorrectResponse"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draft_02_form_by_raw_jws() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, true).await;
    let raw = RawClient::new(&ca).await;
    let meta = raw.directory()["meta"].clone();
    assert_eq!(meta["issuerDomainNames"], json!(["ca.akamu.test"]));
    let prefix = meta["accountHashPrefix"]
        .as_str()
        .expect("accountHashPrefix")
        .to_owned();
    assert!(
        prefix.starts_with("https://") && prefix.ends_with('/'),
        "{prefix}"
    );
    assert!(meta.get("keyRotationPeriod").is_none(), "not configured");
    let s = Session::new(&raw).await;
    let kid = s.account.kid.clone();
    let thumbprint = s
        .key_authorization("t")
        .split_once('.')
        .expect("ka")
        .1
        .to_owned();
    assert_eq!(thumbprint.len(), 43);

    let name = "q1.example.org";
    let (authz, chall) = attempt(
        &s,
        &dns_server,
        name,
        &format!(
            "ca.akamu.test; accounturi={}; persistUntil=4102444800",
            hashed_uri(&prefix, name, &thumbprint, &kid)
        ),
    )
    .await;
    assert_eq!(chall["issuerDomainNames"], json!(["ca.akamu.test"]));
    assert!(chall.get("issuer-domain-names").is_none(), "{chall}");
    assert_eq!(authz["status"], "valid", "{authz}");

    // Each failure with draft-02 §6.2's type.
    let cases = [
        (
            "q2.example.org",
            format!("ca.akamu.test; accounturi={kid}"),
            "malformed",
        ),
        (
            "q3.example.org",
            format!(
                "ca.akamu.test; accounturi={}; persistUntil=2027-01-01T00:00:00Z",
                hashed_uri(&prefix, "q3.example.org", &thumbprint, &kid)
            ),
            "malformed",
        ),
        (
            "q4.example.org",
            format!(
                "ca.akamu.test; accounturi={}",
                hashed_uri(&prefix, "q4.example.org", &thumbprint, &format!("{kid}x"))
            ),
            "unauthorized",
        ),
        (
            "q5.example.org",
            format!(
                "ca.akamu.test; accounturi={}; persistUntil=1000",
                hashed_uri(&prefix, "q5.example.org", &thumbprint, &kid)
            ),
            "unauthorized",
        ),
    ];
    for (name, record, kind) in cases {
        let (authz, _) = attempt(&s, &dns_server, name, &record).await;
        assert_eq!(authz["status"], "invalid", "{name}: {authz}");
        assert_eq!(
            error_type(&authz),
            format!("urn:ietf:params:acme:error:{kind}"),
            "{name}: {authz}"
        );
    }
    // Another CA's record beside ours is ignored.
    let name = "q6.example.org";
    let ours = format!(
        "ca.akamu.test; accounturi={}",
        hashed_uri(&prefix, "*", &thumbprint, &kid)
    );
    let (_, order) = s.new_order(&[dns(name)]).await;
    let url = Session::authz_urls(&order)[0].clone();
    let authz = s.authz(&url).await;
    let chall = challenge(&authz, "dns-persist-01");
    dns_server.set_txt(
        &format!("_validation-persist.{name}."),
        &["other-ca.example; accounturi=https://other/1", &ours],
    );
    s.post_ok(chall["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    let authz = settled(&s, &url).await;
    assert_eq!(authz["status"], "valid", "{authz}");
}
