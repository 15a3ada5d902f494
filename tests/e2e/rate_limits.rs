//! Rate limits and abuse controls (issue 12), against the real binaries:
//! each limit, once hit, is a 429 `rateLimited` problem naming it, with a
//! `Retry-After` that, once waited, lets the request through; overrides
//! raise a limit for one account or one address range; `X-Forwarded-For`
//! counts only from a trusted proxy; repeated failed validations pause an
//! account for a name until `akamu-cli admin unpause`; certificates are
//! counted per registered domain (Public Suffix List). Also the caps:
//! identifiers per order, name and label lengths, CSR and certificate sizes.

use std::time::Duration;

use akamu_jose::{Alg, SigningKey, b64};
use http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::acme::{Session, challenge, created, dns};
use crate::support::client::JwsAccount;
use crate::support::client::{JOSE_JSON, RawClient, RawResponse, sign_with_jwk};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::operator::akamu_cli;
use crate::support::procs::{Ca, CaOptions, binary_path, free_port};

const RATE_LIMITED: &str = "rateLimited";

/// A CA with `extra` appended to its configuration (the `[rate_limits]`
/// tables) and `server` keys, a DNS server for `zones`, an http-01
/// responder and a raw client.
struct Fixture {
    _dns: DnsServer,
    ca: Ca,
    http: Http01Server,
    raw: RawClient,
}

impl Fixture {
    async fn new(server: &str, extra: &str, zones: &[&str]) -> Fixture {
        let dns = DnsServer::start_with_zones(zones).await;
        let ca = Ca::start_async(CaOptions {
            dns_resolver_addr: Some(dns.addr()),
            server_toml: server.into(),
            extra_toml: extra.into(),
            ..CaOptions::default()
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
}

fn retry_after(rsp: &RawResponse) -> Option<u64> {
    rsp.headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Asserts a 429 `rateLimited` naming `limit`; returns its `Retry-After`.
fn assert_limited(rsp: &RawResponse, what: &str, limit: &str) -> Option<u64> {
    let problem = rsp.assert_problem(what, &[RATE_LIMITED]);
    assert_eq!(
        rsp.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{what}: {problem}"
    );
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(limit),
        "{what}: the detail does not name {limit}: {problem}"
    );
    retry_after(rsp)
}

/// Waits `secs` (a `Retry-After`) and a little more.
async fn wait(secs: u64) {
    tokio::time::sleep(Duration::from_secs(secs) + Duration::from_millis(100)).await;
}

/// A newAccount for a fresh key, with extra headers.
async fn new_account(raw: &RawClient, headers: &[(&str, &str)]) -> RawResponse {
    let key = SigningKey::generate(Alg::Es256).expect("key");
    let url = raw.url("newAccount");
    let body = sign_with_jwk(
        &key,
        &raw.nonce().await,
        &url,
        &json!({"termsOfServiceAgreed": true}),
    );
    raw.send_with_headers(
        Method::POST,
        &url,
        Some(JOSE_JSON),
        body.to_string().into_bytes(),
        headers,
    )
    .await
}

/// RFC 8555 §6.6, the conformance row: a limit that is hit is 429
/// `rateLimited` with `Retry-After` and a detail naming it, and once that
/// time has passed the request goes through. A refused order spends
/// nothing: the account that waited gets exactly its burst again.
#[tokio::test]
async fn new_orders_per_account_is_429_with_retry_after_and_passes_after_the_period() {
    let f = Fixture::new(
        "",
        "[rate_limits.new_orders_per_account]\ncount = 1\nperiod_secs = 2\nburst = 2\n",
        &["example.org."],
    )
    .await;
    let s = Session::new(&f.raw).await;
    for i in 0..2 {
        s.new_order(&[dns(&format!("o{i}.example.org"))]).await;
    }
    let refused = s.new_order_raw(&[dns("o2.example.org")], json!({})).await;
    let secs = assert_limited(
        &refused,
        "third order in a burst of 2",
        "new_orders_per_account",
    )
    .expect("a rateLimited answer carries Retry-After");
    assert!((1..=2).contains(&secs), "Retry-After {secs}");
    // Refused again at once: the refusal did not move the bucket further.
    let again = s.new_order_raw(&[dns("o2.example.org")], json!({})).await;
    assert_limited(&again, "retry before Retry-After", "new_orders_per_account");
    wait(secs).await;
    s.new_order(&[dns("o2.example.org")]).await;
    // Another account has its own bucket.
    let other = Session::new(&f.raw).await;
    other.new_order(&[dns("o0.example.org")]).await;
}

/// A second `acme-frontend` on the same database, the signer's and the
/// validator's sockets and the same public base URL (two front ends behind
/// one load balancer), killed on drop.
struct SecondFrontend {
    child: std::process::Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl SecondFrontend {
    fn start(ca: &Ca, limits: &str) -> SecondFrontend {
        use std::io::BufRead;
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let s = ca.state_dir().display();
        let config = format!(
            "listen_addr = \"127.0.0.1:{port}\"\nbase_url = \"{base}\"\n\
             state_dir = \"{state}\"\nuser = \"root\"\ngroup = \"root\"\n\
             [database]\npath = \"{db}\"\n\
             [tls]\nenabled = true\ncert_file = \"{s}/server.crt\"\nkey_file = \"{s}/server.key\"\n\
             [signer]\nsocket_path = \"{s}/signer.sock\"\n\
             [validator]\nsocket_path = \"{s}/validator.sock\"\n\
             [launcher]\nenabled = false\n{limits}",
            base = ca.base_url(),
            state = dir.path().join("state").display(),
            db = ca.db_path().display(),
        );
        let path = dir.path().join("frontend.toml");
        std::fs::write(&path, config).expect("write config");
        let mut child = std::process::Command::new(binary_path("acme-frontend"))
            .arg("--config")
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("stderr")).expect("stderr file"))
            .spawn()
            .expect("spawn the second acme-frontend");
        let stdout = child.stdout.take().expect("piped stdout");
        let ready = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|l| l.starts_with("READY "));
        let this = SecondFrontend {
            child,
            port,
            _dir: dir,
        };
        assert!(
            ready,
            "the second frontend printed no READY line: {}",
            std::fs::read_to_string(this._dir.path().join("stderr")).unwrap_or_default()
        );
        this
    }

    /// `account`'s POST of `payload` to `url` (a URL of the shared base),
    /// sent to this front end with one of its own nonces.
    async fn post(
        &self,
        raw: &RawClient,
        ca: &Ca,
        account: &JwsAccount,
        url: &str,
        payload: &Value,
    ) -> RawResponse {
        let here = |u: &str| {
            let moved = u.replacen(
                &ca.base_url(),
                &format!("https://localhost:{}", self.port),
                1,
            );
            assert_ne!(moved, u, "{u} is not under {}", ca.base_url());
            moved
        };
        let nonce = raw
            .send(Method::HEAD, &here(&raw.url("newNonce")), None, Vec::new())
            .await
            .nonce()
            .expect("the second frontend's nonce");
        let body = account.sign(&nonce, url, Some(payload));
        raw.post_jose(&here(url), &body).await
    }
}

impl Drop for SecondFrontend {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two front ends on one database share the buckets: a burst of 2 is
/// two orders in all, whichever front end takes them.
#[tokio::test]
async fn a_second_frontend_on_the_same_database_sees_the_same_bucket() {
    let limits = "[rate_limits.new_orders_per_account]\ncount = 1\nperiod_secs = 3600\nburst = 2\n";
    let f = Fixture::new("", limits, &["example.org."]).await;
    let second = SecondFrontend::start(&f.ca, limits);
    let s = Session::new(&f.raw).await;
    let new_order = f.raw.url("newOrder");
    let order = |name: &str| json!({"identifiers": [dns(name)]});
    let rsp = second
        .post(
            &f.raw,
            &f.ca,
            &s.account,
            &new_order,
            &order("b1.example.org"),
        )
        .await;
    assert_eq!(
        rsp.status,
        StatusCode::CREATED,
        "through the second: {rsp:?}"
    );
    s.new_order(&[dns("a1.example.org")]).await;
    let rsp = s.new_order_raw(&[dns("a2.example.org")], json!({})).await;
    assert_limited(
        &rsp,
        "third order, first front end",
        "new_orders_per_account",
    );
    let rsp = second
        .post(
            &f.raw,
            &f.ca,
            &s.account,
            &new_order,
            &order("b2.example.org"),
        )
        .await;
    assert_limited(
        &rsp,
        "third order, second front end",
        "new_orders_per_account",
    );
}

/// New accounts per client address, the address taken from
/// `X-Forwarded-For` only when the peer is a trusted proxy; an `ip`
/// override raises the limit for a range.
#[tokio::test]
async fn new_accounts_per_ip_follows_trusted_forwarded_for_and_ip_overrides() {
    let limits = "[rate_limits.new_accounts_per_ip]\ncount = 1\nperiod_secs = 2\nburst = 1\n\
                  [[rate_limits.overrides]]\nlimit = \"new_accounts_per_ip\"\n\
                  ip = \"198.51.100.0/24\"\ncount = 10\nperiod_secs = 60\nburst = 10\n";
    // Behind a trusted proxy (the test client on 127.0.0.1).
    let f = Fixture::new(
        "trusted_proxies = [\"127.0.0.1\"]",
        limits,
        &["example.org."],
    )
    .await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let rsp = new_account(&f.raw, &from("203.0.113.5")).await;
    assert_eq!(rsp.status, StatusCode::CREATED, "{rsp:?}");
    let rsp = new_account(&f.raw, &from("203.0.113.5")).await;
    let secs = assert_limited(
        &rsp,
        "second account from 203.0.113.5",
        "new_accounts_per_ip",
    )
    .expect("Retry-After");
    assert!(
        String::from_utf8_lossy(&rsp.body).contains("203.0.113.5"),
        "the detail names the forwarded address: {rsp:?}"
    );
    // Another forwarded client has its own bucket; a forged entry left of
    // the one the proxy added is ignored.
    let rsp = new_account(&f.raw, &from("203.0.113.5, 203.0.113.6")).await;
    assert_eq!(rsp.status, StatusCode::CREATED, "{rsp:?}");
    // The override: ten at once from 198.51.100.0/24.
    for _ in 0..5 {
        let rsp = new_account(&f.raw, &from("198.51.100.7")).await;
        assert_eq!(rsp.status, StatusCode::CREATED, "override range: {rsp:?}");
    }
    wait(secs).await;
    let rsp = new_account(&f.raw, &from("203.0.113.5")).await;
    assert_eq!(
        rsp.status,
        StatusCode::CREATED,
        "after Retry-After: {rsp:?}"
    );
    drop(f);

    // Without trusted proxies the header is ignored: every account counts
    // against the TCP peer, whatever it claims.
    let f = Fixture::new("", limits, &["example.org."]).await;
    let rsp = new_account(&f.raw, &from("198.51.100.7")).await;
    assert_eq!(rsp.status, StatusCode::CREATED, "{rsp:?}");
    let rsp = new_account(&f.raw, &from("198.51.100.8")).await;
    assert_limited(&rsp, "untrusted X-Forwarded-For", "new_accounts_per_ip");
    assert!(
        String::from_utf8_lossy(&rsp.body).contains("127.0.0.1"),
        "counted against the peer: {rsp:?}"
    );
}

/// An `account` override raises a limit for that account only (the
/// configuration is changed and the frontend restarted, as an operator
/// would); the bucket state survives the restart, in the database.
#[tokio::test]
async fn an_account_override_raises_the_limit_for_that_account_only() {
    let limit = "[rate_limits.new_orders_per_account]\ncount = 1\nperiod_secs = 3600\nburst = 1\n";
    let mut f = Fixture::new("", limit, &["example.org."]).await;
    let favoured = Session::new(&f.raw).await;
    let plain = Session::new(&f.raw).await;
    plain.new_order(&[dns("a.example.org")]).await;
    let rsp = plain
        .new_order_raw(&[dns("b.example.org")], json!({}))
        .await;
    let secs = assert_limited(&rsp, "second order", "new_orders_per_account").expect("Retry-After");
    assert!(secs > 3000, "an hour's bucket: Retry-After {secs}");

    let config = std::fs::read_to_string(f.ca.config_path()).expect("config");
    let account_url = favoured.account.kid.clone();
    std::fs::write(
        f.ca.config_path(),
        format!(
            "{config}\n[[rate_limits.overrides]]\nlimit = \"new_orders_per_account\"\n\
             account = \"{account_url}\"\ncount = 5\nperiod_secs = 3600\nburst = 5\n"
        ),
    )
    .expect("write config");
    f.ca.restart(Duration::from_secs(30)).await;
    let raw = RawClient::new(&f.ca).await;
    let favoured = Session::with_account(&raw, favoured.account);
    let plain = Session::with_account(&raw, plain.account);
    for i in 0..5 {
        favoured
            .new_order(&[dns(&format!("f{i}.example.org"))])
            .await;
    }
    let rsp = favoured
        .new_order_raw(&[dns("f5.example.org")], json!({}))
        .await;
    let secs = assert_limited(&rsp, "past the override's burst", "new_orders_per_account")
        .expect("Retry-After");
    assert!((600..=720).contains(&secs), "a token every 720 s: {secs}");
    assert!(
        String::from_utf8_lossy(&rsp.body).contains("5 per 3600 s"),
        "{rsp:?}"
    );
    let rsp = plain
        .new_order_raw(&[dns("b.example.org")], json!({}))
        .await;
    let secs = assert_limited(
        &rsp,
        "the other account after the restart",
        "new_orders_per_account",
    )
    .expect("Retry-After");
    assert!(secs > 3000, "its bucket survived the restart: {secs}");
}

/// Fails the http-01 challenge of `order`'s only authorization and waits
/// for the authorization to be invalid.
async fn fail_validation(s: &Session, http: &Http01Server, order: &Value) {
    let authz_url = Session::authz_urls(order)[0].clone();
    let authz = s.authz(&authz_url).await;
    let ch = challenge(&authz, "http-01");
    http.set(
        ch["token"].as_str().expect("token"),
        "wrong-key-authorization",
    );
    s.post_ok(ch["url"].as_str().expect("url"), Some(&json!({})))
        .await;
    let authz = s.settle(&authz_url).await;
    assert_eq!(authz["status"], "invalid", "{authz}");
}

/// Failed validations past the limit pause the account for that name:
/// new orders for it are refused (429, no Retry-After: only the operator
/// lifts it) while other names and other accounts go on;
/// `akamu-cli admin unpause` lifts it.
#[tokio::test]
async fn failed_validations_pause_the_account_for_the_name_until_unpaused() {
    let f = Fixture::new(
        "",
        "[rate_limits.failed_validations_per_account_identifier]\n\
         count = 1\nperiod_secs = 3600\nburst = 1\n",
        &["example.org."],
    )
    .await;
    let s = Session::new(&f.raw).await;
    let name = "zombie.example.org";
    // Two orders up front, then two failures: the first fits the bucket,
    // the second pauses.
    let (_, first) = s.new_order(&[dns(name)]).await;
    let (_, second) = s.new_order(&[dns(name)]).await;
    fail_validation(&s, &f.http, &first).await;
    let (_, third) = s.new_order(&[dns(name)]).await;
    fail_validation(&s, &f.http, &second).await;
    let rsp = s.new_order_raw(&[dns(name)], json!({})).await;
    let after = assert_limited(
        &rsp,
        "an order for a paused name",
        "failed_validations_per_account_identifier",
    );
    assert_eq!(after, None, "a pause has no Retry-After: {rsp:?}");
    let detail = rsp.json()["detail"].as_str().unwrap_or_default().to_owned();
    assert!(
        detail.contains(name) && detail.contains("unpause"),
        "{detail}"
    );
    // A wildcard order for the same name is the same validated name.
    let rsp = s
        .new_order_raw(&[dns(&format!("*.{name}"))], json!({}))
        .await;
    assert_limited(
        &rsp,
        "wildcard of a paused name",
        "failed_validations_per_account_identifier",
    );
    // An order made before the pause still validates and is not refused.
    assert_eq!(
        s.authz(&Session::authz_urls(&third)[0]).await["status"],
        "pending"
    );
    s.new_order(&[dns("other.example.org")]).await;
    Session::new(&f.raw).await.new_order(&[dns(name)]).await;

    let config = f.ca.config_path().to_str().expect("utf-8 path").to_owned();
    let run = akamu_cli(
        &[
            "admin",
            "unpause",
            "--config",
            &config,
            "--account",
            &s.account.kid,
            "--identifier",
            name,
        ],
        &[],
    );
    run.assert_success();
    assert!(run.all_output().contains(name), "{run}");
    s.new_order(&[dns(name)]).await;
    // Nothing left to unpause.
    let run = akamu_cli(
        &[
            "admin",
            "unpause",
            "--config",
            &config,
            "--account",
            &s.account.kid,
        ],
        &[],
    );
    run.assert_success();
    assert!(run.all_output().contains("nothing paused"), "{run}");
}

/// Certificates per registered domain: `a.example.co.uk` and
/// `b.example.co.uk` share `example.co.uk`'s bucket; `other.co.uk` has its
/// own. Checked at new-order, counted when the certificate is issued.
#[tokio::test]
async fn certificates_are_counted_per_registered_domain() {
    let f = Fixture::new(
        "",
        "[rate_limits.certificates_per_registered_domain]\n\
         count = 1\nperiod_secs = 3600\nburst = 1\n",
        &["co.uk."],
    )
    .await;
    let s = Session::new(&f.raw).await;
    // Orders are not counted: two may be open for the same domain.
    s.new_order(&[dns("c.example.co.uk")]).await;
    s.issue_http01(&f.http, &["a.example.co.uk"]).await;
    let rsp = s.new_order_raw(&[dns("b.example.co.uk")], json!({})).await;
    let secs = assert_limited(
        &rsp,
        "a second certificate under example.co.uk",
        "certificates_per_registered_domain",
    )
    .expect("Retry-After");
    assert!(secs > 3000, "Retry-After {secs}");
    assert!(
        String::from_utf8_lossy(&rsp.body).contains("example.co.uk"),
        "{rsp:?}"
    );
    let rsp = s.new_order_raw(&[dns("example.co.uk")], json!({})).await;
    assert_limited(
        &rsp,
        "the registered domain itself",
        "certificates_per_registered_domain",
    );
    // Another registered domain under the same public suffix.
    s.issue_http01(&f.http, &["other.co.uk"]).await;
}

/// An ARI renewal (`replaces`, RFC 9773) is exempt from the per-domain
/// certificate limit once its predecessor's window has opened (here by
/// `admin renew-early`); before that, naming a predecessor changes nothing.
#[tokio::test]
async fn ari_renewals_inside_their_window_are_exempt() {
    let f = Fixture::new(
        "",
        "[rate_limits.certificates_per_registered_domain]\n\
         count = 1\nperiod_secs = 3600\nburst = 1\n",
        &["example.org."],
    )
    .await;
    let s = Session::new(&f.raw).await;
    let name = "renewal.example.org";
    let first = s.issue_http01(&f.http, &[name]).await;
    let leaf = first.leaf();
    let aki = leaf.authority_key_id().expect("AKI").as_slice().to_vec();
    let serial = leaf.serial_number().to_bn().expect("bn").to_vec();
    let cert_id = acme_frontend::protocol::ari::CertId::of(&aki, &serial).text();

    let rsp = s
        .new_order_raw(&[dns(name)], json!({ "replaces": cert_id }))
        .await;
    assert_limited(
        &rsp,
        "a renewal before its window",
        "certificates_per_registered_domain",
    );

    let marked = acme_frontend::admin::renew_early(
        Some(f.ca.config_path()),
        acme_frontend::admin::RenewEarly::Serials(vec![akamu_pki::serial::to_hex(&serial)]),
        None,
    )
    .expect("renew-early");
    assert_eq!(marked, 1);
    let rsp = s
        .new_order_raw(&[dns(name)], json!({ "replaces": cert_id }))
        .await;
    let (url, order) = created(&rsp, "a renewal inside its window");
    s.answer_http01(&order, &f.http).await;
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "ready", "{order}");
    s.finalize_and_download(&url, &order, &[name]).await;
    // Without replaces the domain is still at its limit.
    let rsp = s.new_order_raw(&[dns(name)], json!({})).await;
    assert_limited(
        &rsp,
        "a new order that renews nothing",
        "certificates_per_registered_domain",
    );
}

/// The count limits: orders not yet finalized and pending authorizations
/// of one account.
#[tokio::test]
async fn pending_orders_and_authorizations_are_counted() {
    let f = Fixture::new(
        "",
        "[rate_limits.pending_orders_per_account]\ncount = 2\n\
         [rate_limits.pending_authorizations_per_account]\ncount = 3\n",
        &["example.org."],
    )
    .await;
    let s = Session::new(&f.raw).await;
    s.new_order(&[dns("a.example.org"), dns("b.example.org")])
        .await;
    let rsp = s
        .new_order_raw(&[dns("c.example.org"), dns("d.example.org")], json!({}))
        .await;
    let secs = assert_limited(
        &rsp,
        "four pending authorizations",
        "pending_authorizations_per_account",
    )
    .expect("Retry-After");
    assert!(secs > 0);
    // One more fits; the same names reuse nothing pending, so a third
    // order needs new authorizations too.
    s.new_order(&[dns("c.example.org")]).await;
    let rsp = s.new_order_raw(&[dns("a.example.org")], json!({})).await;
    assert_limited(
        &rsp,
        "a third unfinished order",
        "pending_orders_per_account",
    )
    .expect("Retry-After");
    let other = Session::new(&f.raw).await;
    other.new_order(&[dns("a.example.org")]).await;
}

/// Boulder's caps, each a precise problem document: too many identifiers
/// is `malformed`, a name over 253 octets or a label over 63 is
/// `rejectedIdentifier`, an oversized CSR is `badCSR`, an oversized
/// certificate in a revocation is `malformed`.
#[tokio::test]
async fn caps_are_problem_documents() {
    let f = Fixture::new(
        "max_identifiers_per_order = 3\nmax_body_bytes = 262144",
        "",
        &["example.org."],
    )
    .await;
    let s = Session::new(&f.raw).await;
    let four: Vec<Value> = (0..4).map(|i| dns(&format!("n{i}.example.org"))).collect();
    let rsp = s.new_order_raw(&four, json!({})).await;
    let p = rsp.assert_problem("four identifiers, at most 3", &["malformed"]);
    assert!(
        p["detail"].as_str().unwrap_or_default().contains('3'),
        "{p}"
    );
    // Duplicates count once.
    let mut dup = four[..3].to_vec();
    dup.push(four[0].clone());
    s.new_order(&dup).await;

    let label = "a".repeat(63);
    let longest = format!("{label}.{label}.{label}.{}.org", "b".repeat(57));
    assert_eq!(longest.len(), 253);
    for (name, what) in [
        (format!("c{longest}"), "254 octets"),
        (
            format!("{}.example.org", "a".repeat(64)),
            "a 64-octet label",
        ),
    ] {
        let rsp = s.new_order_raw(&[dns(&name)], json!({})).await;
        rsp.assert_problem(what, &["rejectedIdentifier"]);
        assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
    }
    let rsp = s.new_order_raw(&[dns(&longest)], json!({})).await;
    assert_eq!(rsp.status, StatusCode::CREATED, "253 octets: {rsp:?}");

    let (order_url, order) = s.new_order(&[dns("big.example.org")]).await;
    s.answer_http01(&order, &f.http).await;
    let order = s.settle(&order_url).await;
    assert_eq!(order["status"], "ready", "{order}");
    let oversized = vec![0x30u8; 49 * 1024 + 1];
    let rsp = s.finalize_raw(&order, &oversized).await;
    let p = rsp.assert_problem("a 49 KiB CSR", &["badCSR"]);
    assert!(
        p["detail"].as_str().unwrap_or_default().contains("larger"),
        "{p}"
    );
    let order = s.post_ok(&order_url, None).await.json();
    assert_eq!(order["status"], "ready", "the order stays ready: {order}");

    let url = f.raw.url("revokeCert");
    let payload = json!({"certificate": b64(&oversized)});
    let rsp = s.post(&url, Some(&payload)).await;
    rsp.assert_problem("revoking a 49 KiB certificate", &["malformed"]);
}
