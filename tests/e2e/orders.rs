//! Orders and authorizations (RFC 8555 §7.1.2.1, §7.1.3, §7.4, §7.4.1,
//! §7.5.2): the account's orders list and its pagination, pre-authorization,
//! reuse of valid authorizations, authorization deactivation, the requested
//! validity window, and order/authorization lifetimes.

use std::collections::HashSet;

use http::StatusCode;
use openssl::asn1::Asn1Time;
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::support::acme::{Session, created, dns, links};
use crate::support::certs::verify_with_sans;
use crate::support::client::{RawClient, csr};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions};

struct Fixture {
    _dns: DnsServer,
    ca: Ca,
    http: Http01Server,
    raw: RawClient,
}

impl Fixture {
    async fn with(opts: CaOptions) -> Fixture {
        let dns = DnsServer::start().await;
        let ca = Ca::start_async(CaOptions {
            dns_resolver_addr: Some(dns.addr()),
            ..opts
        })
        .await;
        let http = Http01Server::start(ca.http_validation_port()).await;
        let raw = RawClient::new(&ca).await;
        Fixture {
            _dns: dns,
            ca,
            http,
            raw,
        }
    }

    async fn new() -> Fixture {
        Fixture::with(CaOptions::default()).await
    }
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .expect("valid time")
        .format(&Rfc3339)
        .expect("format")
}

fn parse_time(v: &Value) -> i64 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("not a time string: {v}"));
    OffsetDateTime::parse(s, &Rfc3339)
        .unwrap_or_else(|e| panic!("{s:?} is not RFC 3339: {e}"))
        .unix_timestamp()
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Pre-authorizes `name` over http-01 and waits for `valid`; returns the
/// authorization URL.
async fn pre_authorize(s: &Session, http: &Http01Server, name: &str) -> String {
    let rsp = s
        .post(
            &s.raw.url("newAuthz"),
            Some(&json!({"identifier": dns(name)})),
        )
        .await;
    let (url, authz) = created(&rsp, "newAuthz");
    assert_eq!(authz["status"], "pending", "new pre-authorization: {authz}");
    assert_eq!(authz["identifier"], dns(name));
    s.respond_http01(http, &authz).await;
    let authz = s.settle(&url).await;
    assert_eq!(authz["status"], "valid", "pre-authorization {url}: {authz}");
    url
}

/// §7.1.2.1: the account's `orders` URL lists its order URLs, 100 per
/// page, and `Link: <…?cursor=1>;rel="next"` leads to the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_list_paginates_with_link_next() {
    let f = Fixture::new().await;
    let s = Session::new(&f.raw).await;
    let account = s.post_ok(&s.account.kid, None).await.json();
    let orders_url = account["orders"]
        .as_str()
        .unwrap_or_else(|| panic!("account has no orders URL: {account}"))
        .to_owned();

    let first = s.post_ok(&orders_url, None).await;
    assert_eq!(
        first.json()["orders"],
        json!([]),
        "a new account has no orders"
    );
    assert!(links(&first, "next").is_empty());

    let total = 105;
    let mut created_urls = HashSet::new();
    for i in 0..total {
        let (url, _) = s.new_order(&[dns(&format!("o{i}.example.org"))]).await;
        created_urls.insert(url);
    }

    let page1 = s.post_ok(&orders_url, None).await;
    let urls1: Vec<String> = serde_json::from_value(page1.json()["orders"].clone()).expect("list");
    assert_eq!(urls1.len(), 100, "first page holds 100 orders");
    let next = links(&page1, "next");
    assert_eq!(next.len(), 1, "one Link rel=next: {:?}", page1.headers);
    assert!(
        next[0].ends_with("?cursor=1"),
        "next page is ?cursor=1: {}",
        next[0]
    );
    let page2 = s.post_ok(&next[0], None).await;
    let urls2: Vec<String> = serde_json::from_value(page2.json()["orders"].clone()).expect("list");
    assert_eq!(urls2.len(), total - 100, "the rest on the second page");
    assert!(
        links(&page2, "next").is_empty(),
        "the last page has no next"
    );

    let listed: HashSet<String> = urls1.iter().chain(urls2.iter()).cloned().collect();
    assert_eq!(listed.len(), total, "no order listed twice");
    assert_eq!(listed, created_urls, "the list holds exactly our orders");

    // Another account cannot read this list.
    let stranger = Session::new(&f.raw).await;
    let rsp = stranger.post(&orders_url, None).await;
    rsp.assert_problem("another account's orders list", &["unauthorized"]);
}

/// §7.4.1: the directory has `newAuthz`; a pre-authorized name makes a
/// later order `ready` at once, reusing the authorization.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pre_authorization_makes_the_order_ready() {
    let f = Fixture::new().await;
    let s = Session::new(&f.raw).await;
    let name = "preauth.example.org";
    let authz_url = pre_authorize(&s, &f.http, name).await;

    let (order_url, order) = s.new_order(&[dns(name)]).await;
    assert_eq!(
        order["status"], "ready",
        "order after pre-authorization: {order}"
    );
    assert_eq!(order["authorizations"], json!([authz_url]));
    let issued = s.finalize_and_download(&order_url, &order, &[name]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    verify_with_sans(dir.path(), f.ca.ca_cert(), &issued.chain_pem, &[name], &[]);

    // A wildcard cannot be pre-authorized (§7.4.1).
    let rsp = s
        .post(
            &s.raw.url("newAuthz"),
            Some(&json!({"identifier": dns("*.example.org")})),
        )
        .await;
    rsp.assert_problem(
        "newAuthz for a wildcard",
        &["malformed", "rejectedIdentifier"],
    );
}

/// A valid authorization is reused by the same account's next order for
/// the same identifier (ready at once), never by another account's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_authorization_is_reused_by_the_same_account_only() {
    let f = Fixture::new().await;
    let s = Session::new(&f.raw).await;
    let name = "reuse.example.org";
    let first = s.issue_http01(&f.http, &[name]).await;

    let (url, order) = s.new_order(&[dns(name)]).await;
    assert_ne!(url, first.order_url);
    assert_eq!(order["status"], "ready", "second order: {order}");
    assert_eq!(
        order["authorizations"], first.order["authorizations"],
        "the second order reuses the valid authorization"
    );
    s.finalize_and_download(&url, &order, &[name]).await;

    // Mixed: one reused, one new → pending.
    let (_, mixed) = s.new_order(&[dns(name), dns("new.example.org")]).await;
    assert_eq!(mixed["status"], "pending", "mixed order: {mixed}");

    // Another account gets its own, pending authorization.
    let other = Session::new(&f.raw).await;
    let (_, theirs) = other.new_order(&[dns(name)]).await;
    assert_eq!(
        theirs["status"], "pending",
        "another account's order: {theirs}"
    );
    assert_ne!(theirs["authorizations"], first.order["authorizations"]);
}

/// §7.5.2: deactivating an authorization makes its pending order invalid
/// (with an error), and a deactivated valid authorization is not reused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_deactivation_invalidates_the_order() {
    let f = Fixture::new().await;
    let s = Session::new(&f.raw).await;
    let (order_url, order) = s
        .new_order(&[dns("d1.example.org"), dns("d2.example.org")])
        .await;
    let authz_urls = Session::authz_urls(&order);

    // Another account may not deactivate it.
    let stranger = Session::new(&f.raw).await;
    let rsp = stranger
        .post(&authz_urls[0], Some(&json!({"status": "deactivated"})))
        .await;
    rsp.assert_problem(
        "deactivating another account's authorization",
        &["unauthorized"],
    );
    // Only "deactivated" is a status a client may set.
    let rsp = s
        .post(&authz_urls[0], Some(&json!({"status": "valid"})))
        .await;
    rsp.assert_problem("setting an authorization valid", &["malformed"]);

    let rsp = s
        .post_ok(&authz_urls[0], Some(&json!({"status": "deactivated"})))
        .await;
    assert_eq!(rsp.status, StatusCode::OK);
    assert_eq!(rsp.json()["status"], "deactivated", "deactivation answer");
    let authz = s.authz(&authz_urls[0]).await;
    assert_eq!(authz["status"], "deactivated");
    let order = s.post_ok(&order_url, None).await.json();
    assert_eq!(
        order["status"], "invalid",
        "order with a deactivated authz: {order}"
    );
    assert!(
        order["error"].is_object(),
        "an invalid order says why: {order}"
    );
    let (der, _) = csr(&["d1.example.org", "d2.example.org"]);
    let rsp = s.finalize_raw(&order, &der).await;
    rsp.assert_problem("finalizing an invalid order", &["orderNotReady"]);

    // A valid authorization, deactivated, is no longer reused.
    let name = "d3.example.org";
    let issued = s.issue_http01(&f.http, &[name]).await;
    let valid_authz = Session::authz_urls(&issued.order)[0].clone();
    s.post_ok(&valid_authz, Some(&json!({"status": "deactivated"})))
        .await;
    let (_, next) = s.new_order(&[dns(name)]).await;
    assert_eq!(next["status"], "pending", "after deactivation: {next}");
    assert_ne!(Session::authz_urls(&next)[0], valid_authz);
}

/// §7.1.3 / §7.4: a requested notBefore/notAfter is echoed in the order and
/// becomes the certificate's validity exactly; a notAfter beyond
/// `validity_days` (90) is `malformed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requested_validity_is_honoured_and_bounded() {
    let f = Fixture::new().await;
    let s = Session::new(&f.raw).await;
    let name = "window.example.org";
    let nb = now() + 3600;
    let na = nb + 10 * 86400;
    let rsp = s
        .new_order_raw(
            &[dns(name)],
            json!({"notBefore": rfc3339(nb), "notAfter": rfc3339(na)}),
        )
        .await;
    let (url, order) = created(&rsp, "newOrder with a validity window");
    assert_eq!(parse_time(&order["notBefore"]), nb, "order: {order}");
    assert_eq!(parse_time(&order["notAfter"]), na, "order: {order}");
    s.answer_http01(&order, &f.http).await;
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let issued = s.finalize_and_download(&url, &order, &[name]).await;
    let leaf = issued.leaf();
    let diff = |t: &openssl::asn1::Asn1TimeRef, want: i64| {
        let d = t
            .diff(&Asn1Time::from_unix(want).expect("time"))
            .expect("diff");
        i64::from(d.days) * 86400 + i64::from(d.secs)
    };
    assert_eq!(
        diff(leaf.not_before(), nb),
        0,
        "notBefore {} differs from the request {}",
        leaf.not_before(),
        rfc3339(nb)
    );
    assert_eq!(
        diff(leaf.not_after(), na),
        0,
        "notAfter {} differs from the request {}",
        leaf.not_after(),
        rfc3339(na)
    );

    // Beyond the CA's maximum of 90 days.
    let rsp = s
        .new_order_raw(
            &[dns(name)],
            json!({"notAfter": rfc3339(now() + 91 * 86400)}),
        )
        .await;
    rsp.assert_problem("notAfter beyond validity_days", &["malformed"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
    // notAfter before notBefore, and a date that is not RFC 3339.
    let rsp = s
        .new_order_raw(
            &[dns(name)],
            json!({"notBefore": rfc3339(nb), "notAfter": rfc3339(nb - 60)}),
        )
        .await;
    rsp.assert_problem("notAfter before notBefore", &["malformed"]);
    let rsp = s
        .new_order_raw(&[dns(name)], json!({"notAfter": "next tuesday"}))
        .await;
    rsp.assert_problem("notAfter that is not a date", &["malformed"]);
}

/// `order_expiry_secs` / `authz_expiry_secs` (minimum 60) set the
/// `expires` of new orders and authorizations. Waiting the 60 s for them
/// to expire would slow the suite, so the expiry transition itself is
/// checked on the pure functions the handlers use (`protocol::order`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_and_authorization_lifetimes_follow_the_config() {
    let f = Fixture::with(CaOptions {
        server_toml: "order_expiry_secs = 60\nauthz_expiry_secs = 120".into(),
        ..CaOptions::default()
    })
    .await;
    let s = Session::new(&f.raw).await;
    let before = now();
    let (_, order) = s.new_order(&[dns("short.example.org")]).await;
    let after = now();
    let expires = parse_time(&order["expires"]);
    assert!(
        (before + 60..=after + 60).contains(&expires),
        "order expires {expires}, expected now+60 ({before}..{after}): {order}"
    );
    let authz = s.authz(&Session::authz_urls(&order)[0]).await;
    let expires = parse_time(&authz["expires"]);
    assert!(
        (before + 120..=after + 120).contains(&expires),
        "authorization expires {expires}, expected now+120: {authz}"
    );
}

#[test]
fn expiry_makes_orders_invalid_and_authorizations_expired() {
    use acme_frontend::protocol::order::{authz_status, order_status};
    use acme_frontend::protocol::{AuthzStatus as A, OrderStatus as O};
    let exp = 1_000_000;
    assert_eq!(authz_status(A::Pending, exp, exp - 1), A::Pending);
    assert_eq!(authz_status(A::Pending, exp, exp), A::Expired);
    assert_eq!(authz_status(A::Valid, exp, exp + 1), A::Expired);
    assert_eq!(authz_status(A::Deactivated, exp, exp + 1), A::Deactivated);
    assert_eq!(
        order_status(O::Pending, exp, &[A::Pending], exp - 1),
        O::Pending
    );
    assert_eq!(order_status(O::Ready, exp, &[A::Valid], exp - 1), O::Ready);
    assert_eq!(
        order_status(O::Pending, exp, &[A::Pending], exp),
        O::Invalid
    );
    assert_eq!(
        order_status(O::Ready, exp, &[A::Valid], exp + 5),
        O::Invalid
    );
    assert_eq!(
        order_status(O::Pending, exp + 100, &[A::Valid, A::Expired], exp),
        O::Invalid,
        "an expired authorization invalidates its order"
    );
    assert_eq!(
        order_status(O::Pending, exp + 100, &[A::Valid, A::Deactivated], exp),
        O::Invalid
    );
    // A finished order keeps its status after expiry.
    assert_eq!(order_status(O::Valid, exp, &[A::Valid], exp + 5), O::Valid);
}
