//! STAR (RFC 8739) end to end, with lifetimes of a few seconds: the
//! directory advertises `auto-renewal`; a STAR order's certificate rolls
//! over without a new validation, is served at its `star-certificate` URL
//! (GET when allowed, POST-as-GET by its account) with `Cert-Not-Before`
//! and `Cert-Not-After`, catches up after the frontend was down, and stops
//! with a cancel (`403 autoRenewalCanceled`). A frontend whose database
//! was stretched past the order's `end-date` gets no certificate from the
//! signer, which audits the refusal. Every bad `auto-renewal` member is
//! `malformed` with a detail.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};
use http::StatusCode;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::X509;
use serde_json::{Value, json};

use crate::support::acme::{Session, created, dns};
use crate::support::certs::{leaf_of, serial};
use crate::support::client::{RawClient, RawResponse, csr};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions};

/// Each certificate's `lifetime` and `lifetime-adjust` in these tests.
const LIFETIME: i64 = 6;
const ADJUST: i64 = 2;

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .expect("time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

fn unix(t: &Asn1TimeRef) -> i64 {
    let d = Asn1Time::from_unix(0)
        .expect("epoch")
        .diff(t)
        .expect("diff");
    i64::from(d.days) * 86_400 + i64::from(d.secs)
}

async fn start(dns_server: &DnsServer) -> Ca {
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        server_toml: "star_min_lifetime_secs = 3\nstar_max_duration_secs = 3600\n".into(),
        ..CaOptions::default()
    })
    .await
}

/// Places a STAR order for `name` with `auto`, validates and finalizes
/// it; returns its URL and the valid order.
async fn star_order(s: &Session, http: &Http01Server, name: &str, auto: Value) -> (String, Value) {
    let rsp = s
        .new_order_raw(&[dns(name)], json!({ "auto-renewal": auto }))
        .await;
    let (url, order) = created(&rsp, "a STAR order");
    s.answer_http01(&order, http).await;
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let (der, _) = csr(&[name]);
    let rsp = s.finalize_raw(&order, &der).await;
    assert!(rsp.status.is_success(), "finalize: {rsp:?}");
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "valid", "{order}");
    (url, order)
}

fn header(rsp: &RawResponse, name: &str) -> String {
    rsp.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} header: {rsp:?}"))
        .to_owned()
}

/// The current leaf at `url` by GET, checking the headers against it.
async fn current(raw: &RawClient, url: &str) -> X509 {
    let rsp = raw.get(url).await;
    assert_eq!(rsp.status, StatusCode::OK, "{rsp:?}");
    let leaf = leaf_of(std::str::from_utf8(&rsp.body).expect("PEM"));
    let http_date = |t: i64| {
        let d = time::OffsetDateTime::from_unix_timestamp(t).expect("time");
        let day = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            [usize::from(d.weekday().number_days_from_monday())];
        let month = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ][usize::from(u8::from(d.month()) - 1)];
        format!(
            "{day}, {:02} {month} {} {:02}:{:02}:{:02} GMT",
            d.day(),
            d.year(),
            d.hour(),
            d.minute(),
            d.second()
        )
    };
    assert_eq!(
        header(&rsp, "cert-not-before"),
        http_date(unix(leaf.not_before()))
    );
    assert_eq!(
        header(&rsp, "cert-not-after"),
        http_date(unix(leaf.not_after()))
    );
    leaf
}

/// Polls `url` until its leaf's serial is not `old`; the new leaf.
async fn next_leaf(raw: &RawClient, url: &str, old: &str, within: Duration) -> X509 {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let leaf = current(raw, url).await;
        if serial(&leaf) != old {
            return leaf;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no new certificate at {url} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_star_order_rolls_over_catches_up_and_stops_when_canceled() {
    let dns_server = DnsServer::start().await;
    let mut ca = start(&dns_server).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let dir: Value = serde_json::from_slice(&raw.get(ca.directory()).await.body).expect("JSON");
    assert_eq!(
        dir["meta"]["auto-renewal"],
        json!({"min-lifetime": 3, "max-duration": 3600, "allow-certificate-get": true}),
        "{dir}"
    );

    let s = Session::new(&raw).await;
    let name = "star.example.org";
    let end = unix_now() + 120;
    let (url, order) = star_order(
        &s,
        &http,
        name,
        json!({
            "end-date": rfc3339(end),
            "lifetime": LIFETIME,
            "lifetime-adjust": ADJUST,
            "allow-certificate-get": true,
        }),
    )
    .await;
    assert!(order.get("certificate").is_none(), "{order}");
    assert_eq!(order["auto-renewal"]["lifetime"], LIFETIME, "{order}");
    let star_url = order["star-certificate"]
        .as_str()
        .expect("star-certificate")
        .to_owned();
    assert!(star_url.contains("/acme/cert/star/"), "{star_url}");

    let first = current(&raw, &star_url).await;
    let validity = unix(first.not_after()) - unix(first.not_before());
    assert_eq!(validity, LIFETIME + ADJUST, "lifetime plus the pre-dating");
    // The owner's POST-as-GET gets the same chain.
    let rsp = s.post_ok(&star_url, None).await;
    assert_eq!(
        serial(&leaf_of(std::str::from_utf8(&rsp.body).expect("PEM"))),
        serial(&first)
    );

    // It rolls over, without a validation, before the current one expires.
    let second = next_leaf(&raw, &star_url, &serial(&first), Duration::from_secs(20)).await;
    assert!(unix(second.not_before()) > unix(first.not_before()));
    assert!(
        unix(second.not_before()) < unix(first.not_after()),
        "the next certificate overlaps the current one"
    );
    assert!(unix(second.not_after()) <= end);

    // The frontend goes down for longer than a lifetime; back up, it
    // catches up at once with a certificate valid now.
    kill(Pid::from_raw(ca.ready().frontend_pid), Signal::SIGTERM).expect("SIGTERM");
    tokio::time::sleep(Duration::from_secs(LIFETIME as u64 + 2)).await;
    ca.restart_after_crash(Vec::new(), Duration::from_secs(30))
        .await;
    let raw = RawClient::new(&ca).await;
    let s = Session::with_account(&raw, s.account);
    let caught_up = next_leaf(&raw, &star_url, &serial(&second), Duration::from_secs(20)).await;
    let t = unix_now();
    assert!(
        unix(caught_up.not_before()) <= t && t < unix(caught_up.not_after()),
        "the catch-up certificate is valid now"
    );

    // Cancel: the order says so, the URL is gone, a second cancel is
    // refused.
    let canceled = s.post_ok(&url, Some(&json!({"status": "canceled"}))).await;
    assert_eq!(canceled.json()["status"], "canceled");
    let rsp = raw.get(&star_url).await;
    rsp.assert_problem("GET after cancel", &["autoRenewalCanceled"]);
    assert_eq!(rsp.status, StatusCode::FORBIDDEN);
    let rsp = s.post(&star_url, None).await;
    rsp.assert_problem("POST-as-GET after cancel", &["autoRenewalCanceled"]);
    let rsp = s.post(&url, Some(&json!({"status": "canceled"}))).await;
    rsp.assert_problem("a second cancel", &["autoRenewalCancellationInvalid"]);
    assert_eq!(s.post_ok(&url, None).await.json()["status"], "canceled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_signer_refuses_a_reissue_past_the_recorded_end_date() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;
    let name = "stretch.example.org";
    let end = unix_now() + 20;
    let (url, order) = star_order(
        &s,
        &http,
        name,
        json!({"end-date": rfc3339(end), "lifetime": LIFETIME}),
    )
    .await;
    let star_url = order["star-certificate"].as_str().expect("star URL");
    let order_id = url.rsplit('/').next().expect("order id").to_owned();

    // Without allow-certificate-get, a plain GET is refused.
    raw.get(star_url).await.assert_problem(
        "GET of an order without allow-certificate-get",
        &["unauthorized"],
    );

    // Wait for the schedule to reach the end-date.
    let db = ca.db_path();
    let mut conn =
        SqliteConnection::establish(&db.display().to_string()).expect("open the database");
    conn.batch_execute("PRAGMA busy_timeout = 5000")
        .expect("busy timeout");
    #[derive(diesel::QueryableByName)]
    struct Due {
        #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
        next_issue: Option<i64>,
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    loop {
        let due: Vec<Due> =
            diesel::sql_query("SELECT next_issue FROM star_orders WHERE order_id = ?")
                .bind::<diesel::sql_types::Text, _>(order_id.clone())
                .load(&mut conn)
                .expect("select");
        if due.first().is_some_and(|d| d.next_issue.is_none()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the schedule never ended"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let last = s.post_ok(star_url, None).await;
    let last = leaf_of(std::str::from_utf8(&last.body).expect("PEM"));
    assert!(
        unix(last.not_after()) <= end,
        "no certificate past the end-date"
    );

    // A compromised frontend stretches the order by an hour and asks for
    // the next certificate now.
    let n = diesel::sql_query(
        "UPDATE star_orders SET end_date = end_date + 3600, next_issue = 0 WHERE order_id = ?",
    )
    .bind::<diesel::sql_types::Text, _>(order_id.clone())
    .execute(&mut conn)
    .expect("tamper");
    assert_eq!(n, 1);
    let audit = ca.state_dir().join("audit.log");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(&audit).expect("audit log");
        let refused = log.lines().any(|l| {
            l.contains("\"operation\":\"refusal\"")
                && l.contains(&order_id)
                && l.contains("end-date")
        });
        if refused {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audited refusal:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Nothing new was signed for it: the current certificate is the last.
    let now = s.post_ok(star_url, None).await;
    let now = leaf_of(std::str::from_utf8(&now.body).expect("PEM"));
    assert_eq!(serial(&now), serial(&last));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_auto_renewal_members_are_malformed() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;
    let t = unix_now();
    let end = rfc3339(t + 600);
    let cases = [
        (json!("soon"), "not an object"),
        (json!({"lifetime": 60}), "no end-date"),
        (json!({"end-date": end}), "no lifetime"),
        (json!({"end-date": 12, "lifetime": 60}), "end-date is not"),
        (
            json!({"end-date": "tomorrow", "lifetime": 60}),
            "end-date is not",
        ),
        (
            json!({"end-date": end, "lifetime": "60"}),
            "lifetime is not",
        ),
        (
            json!({"end-date": end, "lifetime": 60.5}),
            "lifetime is not",
        ),
        (
            json!({"end-date": end, "lifetime": 60, "start-date": 1}),
            "start-date is not",
        ),
        (
            json!({"end-date": end, "lifetime": 60, "lifetime-adjust": "5"}),
            "lifetime-adjust is not",
        ),
        (
            json!({"end-date": end, "lifetime": 60, "lifetime-adjust": -5}),
            "negative",
        ),
        (
            json!({"end-date": end, "lifetime": 60, "allow-certificate-get": "yes"}),
            "allow-certificate-get is not",
        ),
        (
            json!({"end-date": rfc3339(t - 60), "lifetime": 60}),
            "in the past",
        ),
        (json!({"end-date": end, "lifetime": 2}), "minimum"),
        (
            json!({"end-date": rfc3339(t + 7200), "lifetime": 60}),
            "maximum duration",
        ),
        (
            json!({"end-date": end, "start-date": end, "lifetime": 60}),
            "start-date is not before",
        ),
        (
            json!({"end-date": end, "lifetime": 100 * 86_400}),
            "profile's validity",
        ),
    ];
    for (auto, detail) in cases {
        let rsp = s
            .new_order_raw(&[dns("bad.example.org")], json!({ "auto-renewal": auto }))
            .await;
        let problem = rsp.assert_problem(&format!("auto-renewal {auto}"), &["malformed"]);
        assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
        let text = problem["detail"].as_str().unwrap_or_default();
        assert!(text.contains(detail), "{auto}: {text:?} lacks {detail:?}");
    }
    let rsp = s
        .new_order_raw(
            &[dns("bad.example.org")],
            json!({"auto-renewal": {"end-date": end, "lifetime": 60}, "notAfter": end}),
        )
        .await;
    rsp.assert_problem("notAfter in a STAR order", &["malformed"]);
    // Canceling an ordinary order is refused.
    let (url, _) = s.new_order(&[dns("plain.example.org")]).await;
    let rsp = s.post(&url, Some(&json!({"status": "canceled"}))).await;
    rsp.assert_problem("canceling an ordinary order", &["malformed"]);
    let rsp = s.post(&url, Some(&json!({"status": 5}))).await;
    rsp.assert_problem("a status that is not a string", &["malformed"]);
    // A star URL of no STAR order.
    let rsp = raw
        .get(&url.replace("/acme/order/", "/acme/cert/star/"))
        .await;
    assert_eq!(rsp.status, StatusCode::NOT_FOUND);
}
