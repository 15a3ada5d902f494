//! RFC 9444 (ACME for subdomains) by raw JWS: the directory advertises
//! `subdomainAuthAllowed` only when configured; an authorization covering
//! subdomains offers dns-01 alone and says so; every bad `ancestorDomain`
//! or `subdomainAuthAllowed` gets the problem type the operations page
//! lists, never a 500; and the whole flow issues a certificate for a name
//! below the ancestor with the one dns-01 validation of the ancestor.

use serde_json::{Value, json};

use crate::support::acme::{Session, challenge, challenge_types, created, dns, ip};
use crate::support::client::{RawClient, csr};
use crate::support::dns::DnsServer;
use crate::support::procs::{Ca, CaOptions};

async fn start(dns_server: &DnsServer, on: bool) -> Ca {
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        server_toml: if on {
            "allow_subdomain_auth = true\n".into()
        } else {
            String::new()
        },
        ..CaOptions::default()
    })
    .await
}

/// RFC 8555 §8.4: base64url(SHA-256(key authorization)).
fn dns01_digest(key_authorization: &str) -> String {
    akamu_jose::b64(&openssl::sha::sha256(key_authorization.as_bytes()))
}

fn below(value: &str, ancestor: Value) -> Value {
    json!({"type": "dns", "value": value, "ancestorDomain": ancestor})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ancestor_validated_once_covers_names_below_it() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, true).await;
    let raw = RawClient::new(&ca).await;
    assert_eq!(raw.directory()["meta"]["subdomainAuthAllowed"], true);
    let s = Session::new(&raw).await;

    let (url, order) = s
        .new_order(&[
            below("a.example.org", json!("example.org")),
            below("b.example.org", json!("example.org")),
        ])
        .await;
    let authzs = Session::authz_urls(&order);
    assert_eq!(authzs.len(), 1, "one authorization for the shared ancestor");
    assert_eq!(
        order["identifiers"],
        json!([dns("a.example.org"), dns("b.example.org")])
    );
    let authz = s.authz(&authzs[0]).await;
    assert_eq!(authz["identifier"], dns("example.org"));
    assert_eq!(authz["subdomainAuthAllowed"], true);
    assert_eq!(challenge_types(&authz), ["dns-01"]);
    let chall = challenge(&authz, "dns-01");
    let token = chall["token"].as_str().expect("token");
    dns_server.set_txt(
        "_acme-challenge.example.org.",
        &[&dns01_digest(&s.key_authorization(token))],
    );
    s.post_ok(chall["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let (der, _) = csr(&["a.example.org", "b.example.org"]);
    let rsp = s.finalize_raw(&order, &der).await;
    assert!(rsp.status.is_success(), "finalize: {rsp:?}");
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "valid", "{order}");

    // Pre-authorization with the flag is reused by a later order, which
    // is ready at once.
    let rsp = s
        .post(
            &raw.url("newAuthz"),
            Some(&json!({"identifier": dns("example.org"), "subdomainAuthAllowed": true})),
        )
        .await;
    let (pre_url, pre) = created(&rsp, "new-authz with subdomainAuthAllowed");
    assert_eq!(pre["subdomainAuthAllowed"], true);
    assert_eq!(challenge_types(&pre), ["dns-01"]);
    let chall = challenge(&pre, "dns-01");
    let token = chall["token"].as_str().expect("token");
    dns_server.set_txt(
        "_acme-challenge.example.org.",
        &[&dns01_digest(&s.key_authorization(token))],
    );
    s.post_ok(chall["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    let (_, order) = s
        .new_order(&[below("*.c.example.org", json!("example.org"))])
        .await;
    assert_eq!(order["status"], "ready", "{order}");
    let urls = Session::authz_urls(&order);
    assert!(
        urls == [pre_url.clone()] || urls == authzs,
        "a valid ancestor authorization is reused: {urls:?}"
    );
    // An ordinary pre-authorization does not carry the flag.
    let rsp = s
        .post(
            &raw.url("newAuthz"),
            Some(&json!({"identifier": dns("plain.example.org")})),
        )
        .await;
    let (_, plain) = created(&rsp, "new-authz");
    assert!(plain.get("subdomainAuthAllowed").is_none(), "{plain}");
    assert_eq!(challenge_types(&plain).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subdomain_members_get_precise_problems() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, true).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;
    let order_cases = [
        (vec![below("a.example.org", json!(5))], "malformed"),
        (
            vec![below("a.example.org", json!(["example.org"]))],
            "malformed",
        ),
        (
            vec![below("example.org", json!("example.org"))],
            "malformed",
        ),
        (
            vec![below("a.badexample.org", json!("example.org"))],
            "malformed",
        ),
        (
            vec![below("a.example.org", json!("*.example.org"))],
            "malformed",
        ),
        (
            vec![below("a.example.org", json!("exa mple.org"))],
            "malformed",
        ),
        (
            vec![json!({"type": "ip", "value": "192.0.2.1", "ancestorDomain": "example.org"})],
            "malformed",
        ),
        (
            vec![
                below("a.b.example.org", json!("example.org")),
                below("a.b.example.org", json!("b.example.org")),
            ],
            "malformed",
        ),
        (
            vec![below("example.co.uk", json!("co.uk"))],
            "rejectedIdentifier",
        ),
        (
            vec![below("a.github.io", json!("github.io"))],
            "rejectedIdentifier",
        ),
    ];
    for (ids, kind) in order_cases {
        let rsp = s.new_order_raw(&ids, json!({})).await;
        rsp.assert_problem(&format!("new-order {ids:?}"), &[kind]);
    }
    let new_authz = raw.url("newAuthz");
    let authz_cases = [
        (
            json!({"identifier": dns("example.org"), "subdomainAuthAllowed": "yes"}),
            "malformed",
        ),
        (
            json!({"identifier": dns("co.uk"), "subdomainAuthAllowed": true}),
            "rejectedIdentifier",
        ),
        (
            json!({"identifier": ip("192.0.2.1"), "subdomainAuthAllowed": true}),
            "malformed",
        ),
        (
            json!({"identifier": below("a.example.org", json!("example.org"))}),
            "malformed",
        ),
    ];
    for (payload, kind) in authz_cases {
        let rsp = s.post(&new_authz, Some(&payload)).await;
        rsp.assert_problem(&format!("new-authz {payload}"), &[kind]);
    }

    // Off by default: not advertised, both members refused.
    let off = start(&dns_server, false).await;
    let raw = RawClient::new(&off).await;
    assert!(
        raw.directory()["meta"]
            .get("subdomainAuthAllowed")
            .is_none()
    );
    let s = Session::new(&raw).await;
    let rsp = s
        .new_order_raw(&[below("a.example.org", json!("example.org"))], json!({}))
        .await;
    rsp.assert_problem("ancestorDomain while off", &["malformed"]);
    let rsp = s
        .post(
            &raw.url("newAuthz"),
            Some(&json!({"identifier": dns("example.org"), "subdomainAuthAllowed": true})),
        )
        .await;
    rsp.assert_problem("subdomainAuthAllowed while off", &["malformed"]);
}

/// RFC 9444 meets CAA (RFC 8659): the ancestor's CAA permits this CA, so
/// its subdomain validation succeeds; a name below it whose own CAA
/// record forbids this CA is refused at finalize with `caa` (the CAA
/// check of the ancestor does not stand for it), while a name below it
/// without records of its own is issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_below_an_ancestor_get_their_own_caa_check() {
    let dns_server = DnsServer::start().await;
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        server_toml: "allow_subdomain_auth = true\ncaa_identities = [\"akamu.test\"]\n".into(),
        ..CaOptions::default()
    })
    .await;
    dns_server.set_caa("example.org", &[(0, "issue", "akamu.test")]);
    dns_server.set_caa("locked.example.org", &[(0, "issue", "other-ca.test")]);
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;

    let rsp = s
        .post(
            &raw.url("newAuthz"),
            Some(&json!({"identifier": dns("example.org"), "subdomainAuthAllowed": true})),
        )
        .await;
    let (pre_url, pre) = created(&rsp, "new-authz with subdomainAuthAllowed");
    let chall = challenge(&pre, "dns-01");
    let token = chall["token"].as_str().expect("token");
    dns_server.set_txt(
        "_acme-challenge.example.org.",
        &[&dns01_digest(&s.key_authorization(token))],
    );
    s.post_ok(chall["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    let pre = s.settle(&pre_url).await;
    assert_eq!(pre["status"], "valid", "{pre}");

    for (name, refused) in [("open.example.org", false), ("locked.example.org", true)] {
        let (url, order) = s.new_order(&[below(name, json!("example.org"))]).await;
        assert_eq!(order["status"], "ready", "{order}");
        let (der, _) = csr(&[name]);
        let rsp = s.finalize_raw(&order, &der).await;
        let order = s.settle(&url).await;
        if refused {
            let problem = if rsp.status.is_success() {
                order["error"].clone()
            } else {
                rsp.json()
            };
            assert_eq!(
                problem["type"], "urn:ietf:params:acme:error:caa",
                "{name}: {problem} / {order}"
            );
            assert!(
                problem["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("locked.example.org"),
                "{problem}"
            );
        } else {
            assert!(rsp.status.is_success(), "finalize: {rsp:?}");
            assert_eq!(order["status"], "valid", "{name}: {order}");
        }
    }
}
