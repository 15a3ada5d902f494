//! CAA (RFC 8659, RFC 8657) through the real binaries: the validator checks
//! the test DNS server's CAA records with every validation, a refusal is a
//! `caa` problem (403) naming the record, finalize re-checks a CAA check
//! older than `caa_recheck_hours`, and one challenge attempt runs per
//! authorization however many POSTs arrive at once.

use std::time::Duration;

use akamu_jose::b64;
use http::StatusCode;
use serde_json::{Value, json};

use crate::support::acme::{Session, challenge, dns, identifier};
use crate::support::client::{RawClient, csr};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions};

/// The CA's CAA identity in these tests.
const CA_ID: &str = "akamu.test";

async fn start(dns: &DnsServer, extra_server: &str) -> Ca {
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        server_toml: format!("caa_identities = [\"{CA_ID}\"]\n{extra_server}"),
        ..CaOptions::default()
    })
    .await
}

/// Orders `name`, answers `kind` (http-01 on `http`, dns-01 on `dns`) and
/// waits for the authorization to settle; returns it.
async fn validate(
    s: &Session,
    dns_server: &DnsServer,
    http: &Http01Server,
    name: &str,
    kind: &str,
) -> (String, Value, Value) {
    let (order_url, order) = s.new_order(&[identifier(name)]).await;
    let authz_url = Session::authz_urls(&order)[0].clone();
    let authz = s.authz(&authz_url).await;
    let ch = challenge(&authz, kind);
    let token = ch["token"].as_str().expect("token");
    let key_auth = s.key_authorization(token);
    if kind == "http-01" {
        http.set(token, &key_auth);
    } else {
        let digest = openssl::sha::sha256(key_auth.as_bytes());
        let base = name.trim_start_matches("*.");
        dns_server.add_txt(&format!("_acme-challenge.{base}"), &b64(&digest));
    }
    s.post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    let authz = s.settle(&authz_url).await;
    let order = s.settle(&order_url).await;
    (order_url, order, authz)
}

/// The problem of an authorization's challenge of type `kind`.
fn challenge_error(authz: &Value, kind: &str) -> Value {
    challenge(authz, kind)["error"].clone()
}

/// A refusal case: what, the name, its CAA records as `(flags, "tag
/// value")` (none: already published), and a text the detail must hold.
type Case<'a> = (&'a str, &'a str, Vec<(u8, String)>, &'a str);

#[track_caller]
fn assert_caa_problem(what: &str, problem: &Value, needle: &str) {
    assert_eq!(
        problem["type"], "urn:ietf:params:acme:error:caa",
        "{what}: {problem}"
    );
    assert_eq!(problem["status"], 403, "{what}: {problem}");
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(needle),
        "{what}: detail names {needle:?}: {problem}"
    );
}

/// Every refusal the validator makes at validation time is a `caa` 403
/// naming the record; names the records permit (or that have none) are
/// issued; the directory advertises the validator's identities.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_permits_and_refuses_at_validation() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, "").await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;

    // One owner: the validator's identities reach the directory.
    let mut meta = Value::Null;
    for _ in 0..50 {
        meta = raw.get(ca.directory()).await.json()["meta"].clone();
        if !meta["caaIdentities"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(meta["caaIdentities"], json!([CA_ID]), "{meta}");

    // Permitted: no CAA anywhere, and a record naming this CA at a parent
    // (tree climbing), which also lists another CA.
    dns_server.set_caa(
        "ok.akamu.test",
        &[(0, "issue", "other-ca.test"), (0, "issue", CA_ID)],
    );
    for name in ["none.example.org", "www.ok.akamu.test"] {
        let (url, order, authz) = validate(&s, &dns_server, &http, name, "http-01").await;
        assert_eq!(authz["status"], "valid", "{name}: {authz}");
        assert_eq!(order["status"], "ready", "{name}: {order}");
        s.finalize_and_download(&url, &order, &[name]).await;
    }
    // issuewild only: a wildcard is permitted, the plain name is not.
    dns_server.set_caa(
        "wild.example.org",
        &[(0, "issue", ";"), (0, "issuewild", CA_ID)],
    );
    let (url, order, authz) =
        validate(&s, &dns_server, &http, "*.wild.example.org", "dns-01").await;
    assert_eq!(authz["status"], "valid", "{authz}");
    s.finalize_and_download(&url, &order, &["*.wild.example.org"])
        .await;

    let account = s.account.kid.clone();
    let cases: Vec<Case> = vec![
        (
            "forbids",
            "forbid.example.org",
            vec![(0, "issue other-ca.test".into())],
            "0 issue \"other-ca.test\"",
        ),
        (
            "issuewild only, plain name",
            "wild.example.org",
            vec![],
            "0 issue \";\"",
        ),
        (
            "critical unknown tag",
            "crit.example.org",
            vec![(0, format!("issue {CA_ID}")), (128, "tbs x".into())],
            "\"tbs\"",
        ),
        (
            "accounturi of another account",
            "acct.example.org",
            vec![(0, format!("issue {CA_ID}; accounturi={account}-other"))],
            "accounturi",
        ),
        (
            "validationmethods excluding http-01",
            "methods.example.org",
            vec![(0, format!("issue {CA_ID}; validationmethods=dns-01"))],
            "http-01",
        ),
    ];
    for (what, name, records, needle) in cases {
        let parsed: Vec<(u8, String, String)> = records
            .iter()
            .map(|(flags, text)| {
                let (tag, value) = text.split_once(' ').expect("tag value");
                (*flags, tag.to_owned(), value.to_owned())
            })
            .collect();
        let refs: Vec<(u8, &str, &str)> = parsed
            .iter()
            .map(|(f, t, v)| (*f, t.as_str(), v.as_str()))
            .collect();
        if !refs.is_empty() {
            dns_server.set_caa(name, &refs);
        }
        let (_, order, authz) = validate(&s, &dns_server, &http, name, "http-01").await;
        assert_eq!(authz["status"], "invalid", "{what}: {authz}");
        assert_eq!(order["status"], "invalid", "{what}: {order}");
        assert_caa_problem(what, &challenge_error(&authz, "http-01"), needle);
    }
    // SERVFAIL on the CAA climb (the parent's CAA query fails while the
    // name itself answers, so the http-01 probe succeeds): refused with
    // caa, never read as an empty set.
    dns_server.servfail("sf.example.org", true);
    let (_, _, authz) = validate(&s, &dns_server, &http, "x.sf.example.org", "http-01").await;
    assert_eq!(authz["status"], "invalid", "{authz}");
    assert_caa_problem(
        "SERVFAIL on the climb",
        &challenge_error(&authz, "http-01"),
        "CAA record lookup for sf.example.org failed",
    );
}

/// CAA changed after validation: with `caa_recheck_hours = 0` every
/// finalize re-checks, so an order whose names were validated under a
/// permitting record set is refused at finalize with `caa` (403) once the
/// set forbids, and the order becomes invalid with that problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caa_changed_before_finalize_is_refused() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, "caa_recheck_hours = 0\n").await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;

    let name = "later.example.org";
    dns_server.set_caa(name, &[(0, "issue", CA_ID)]);
    let (url, order, authz) = validate(&s, &dns_server, &http, name, "http-01").await;
    assert_eq!(authz["status"], "valid", "{authz}");
    assert_eq!(order["status"], "ready", "{order}");
    // The re-check permits: issued.
    s.finalize_and_download(&url, &order, &[name]).await;

    // A second order reuses the valid authorization; CAA now forbids.
    dns_server.set_caa(name, &[(0, "issue", "other-ca.test")]);
    let (url, order) = s.new_order(&[dns(name)]).await;
    assert_eq!(order["status"], "ready", "authorization reused: {order}");
    let (der, _) = csr(&[name]);
    let rsp = s.finalize_raw(&order, &der).await;
    assert_eq!(rsp.status, StatusCode::FORBIDDEN, "{rsp:?}");
    let problem = rsp.assert_problem("finalize after CAA changed", &["caa"]);
    assert_caa_problem("finalize", &problem, "0 issue \"other-ca.test\"");
    let order = s.post_ok(&url, None).await.json();
    assert_eq!(order["status"], "invalid", "{order}");
    assert_eq!(
        order["error"]["type"], "urn:ietf:params:acme:error:caa",
        "{order}"
    );
}

/// One attempt per authorization: many concurrent POSTs to the http-01
/// and dns-01 challenges of one authorization start one probe; the other
/// challenge stays pending and every answer is a 200 with the challenge as
/// stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_attempt_per_authorization() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, "challenge_wait_ms = 0\n").await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    // A slow applicant keeps the first attempt running while the others
    // arrive.
    http.set_delay(Duration::from_millis(1500));
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;

    let name = "once.example.org";
    let (_, order) = s.new_order(&[identifier(name)]).await;
    let authz_url = Session::authz_urls(&order)[0].clone();
    let authz = s.authz(&authz_url).await;
    let http_ch = challenge(&authz, "http-01");
    let dns_ch = challenge(&authz, "dns-01");
    let token = http_ch["token"].as_str().expect("token");
    let key_auth = s.key_authorization(token);
    http.set(token, &key_auth);
    let digest = openssl::sha::sha256(key_auth.as_bytes());
    dns_server.set_txt(&format!("_acme-challenge.{name}"), &[&b64(&digest)]);

    // Signed first, sent together.
    let mut bodies = Vec::new();
    for i in 0..8 {
        let ch = if i % 2 == 0 { &http_ch } else { &dns_ch };
        let url = ch["url"].as_str().expect("url").to_owned();
        let body = s.account.sign(&raw.nonce().await, &url, Some(&json!({})));
        bodies.push((url, body));
    }
    let posts: Vec<_> = bodies
        .into_iter()
        .map(|(url, body)| {
            let raw = raw.clone();
            tokio::spawn(async move { raw.post_jose(&url, &body).await })
        })
        .collect();
    for post in posts {
        let rsp = post.await.expect("join");
        if rsp.status == StatusCode::OK {
            let ch = rsp.json();
            assert!(
                ["pending", "processing", "valid"]
                    .contains(&ch["status"].as_str().unwrap_or_default()),
                "{ch}"
            );
        } else {
            // A POST to the sibling that arrives after a (quick dns-01)
            // attempt made the authorization valid.
            let p = rsp.assert_problem("late POST to a sibling challenge", &["malformed"]);
            assert!(
                p["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("no longer be answered"),
                "{p}"
            );
        }
    }
    let authz = s.settle(&authz_url).await;
    assert_eq!(authz["status"], "valid", "{authz}");
    let statuses: Vec<(&str, &str)> = authz["challenges"]
        .as_array()
        .expect("challenges")
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap_or_default(),
                c["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let attempted: Vec<_> = statuses.iter().filter(|(_, st)| *st != "pending").collect();
    assert_eq!(attempted.len(), 1, "one attempt: {statuses:?}");
    if attempted[0].0 == "http-01" {
        assert_eq!(http.hits(), 1, "one http-01 probe");
    } else {
        assert_eq!(http.hits(), 0, "no http-01 probe beside the dns-01 one");
    }
}

/// The signer owns the oldest CAA check it relies on (`[policy]
/// caa_max_age_secs`, told to the frontend in `ca_info`): with the
/// frontend's default 8 h re-check age and the signer's limit at 2 s, a
/// finalize 3 s after validation still issues, because the frontend
/// re-checks before the signer's limit instead of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signers_caa_limit_bounds_the_recheck_age() {
    let dns_server = DnsServer::start().await;
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        server_toml: format!("caa_identities = [\"{CA_ID}\"]\n"),
        extra_toml: "[signer.policy]\ncaa_max_age_secs = 2\n".into(),
        ..CaOptions::default()
    })
    .await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;

    let name = "bounded.example.org";
    dns_server.set_caa(name, &[(0, "issue", CA_ID)]);
    let (url, order, authz) = validate(&s, &dns_server, &http, name, "http-01").await;
    assert_eq!(authz["status"], "valid", "{authz}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.finalize_and_download(&url, &order, &[name]).await;
}
