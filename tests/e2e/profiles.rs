//! Certificate profiles (draft-ietf-acme-profiles) end to end: the
//! directory advertises the signer's profiles with the operator's
//! descriptions, instant-acme picks one and gets its validity and subject,
//! an unknown profile is `invalidProfile` at new-order, and a profile the
//! signer stopped offering is `invalidProfile` at finalize. IP-only
//! certificates carry no subject CN.

use std::time::Duration;

use http::StatusCode;
use instant_acme::{Identifier, NewOrder};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openssl::nid::Nid;
use openssl::x509::X509;
use serde_json::{Value, json};

use crate::support::acme::{Session, created, dns};
use crate::support::certs::{leaf_of, lifetime_secs};
use crate::support::client::{
    RawClient, acme_account, answer_http01, finalize_and_download, problem_type, wait_ready,
};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::procs::{Ca, CaOptions};

/// The signer's profiles in these tests: a one-day profile without a CN,
/// and an mTLS profile, beside the default `tls-server`.
const SIGNER_PROFILES: &str = r#"
[signer.profiles.short]
validity_hours = 24
common_name = false

[signer.profiles.mtls]
client_auth = true

[signer.profiles.fresh]
authz_reuse_secs = 2
"#;

async fn start(dns_server: &DnsServer, signer_profiles: &str) -> Ca {
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        extra_toml: format!(
            "[server.profiles]\nshort = \"https://example.org/profiles/short\"\n{signer_profiles}"
        ),
        ..CaOptions::default()
    })
    .await
}

fn cn_count(leaf: &X509) -> usize {
    leaf.subject_name().entries_by_nid(Nid::COMMONNAME).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_advertises_the_signers_profiles_and_orders_use_them() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, SIGNER_PROFILES).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let dir: Value = serde_json::from_slice(&raw.get(ca.directory()).await.body).expect("JSON");
    let profiles = dir["meta"]["profiles"].as_object().expect("meta.profiles");
    let mut names: Vec<&str> = profiles.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, ["fresh", "mtls", "short", "tls-server"], "{dir}");
    assert_eq!(profiles["short"], "https://example.org/profiles/short");
    let mtls = profiles["mtls"].as_str().expect("text");
    assert!(
        mtls.contains("clientAuth") && mtls.contains("90 days"),
        "{mtls}"
    );

    // instant-acme picks "short": one day, no CN, the order echoes it.
    let account = acme_account(&ca).await;
    let name = "short.example.org";
    let ids = [Identifier::Dns(name.to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&ids).profile("short"))
        .await
        .expect("an order under short");
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;
    let issued = finalize_and_download(&mut order, &[name]).await;
    let leaf = leaf_of(&issued.chain_pem);
    assert_eq!(lifetime_secs(&leaf), 86_400, "short is one day");
    assert_eq!(cn_count(&leaf), 0, "short has no CN");
    assert_eq!(
        order.state().profile.as_deref(),
        Some("short"),
        "the order echoes it"
    );

    // The default: 90 days with a CN for a DNS name, none for an IP.
    let ids = [Identifier::Dns("plain.example.org".to_owned())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .expect("order");
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;
    let issued = finalize_and_download(&mut order, &["plain.example.org"]).await;
    let leaf = leaf_of(&issued.chain_pem);
    assert_eq!(lifetime_secs(&leaf), 90 * 86_400);
    assert_eq!(cn_count(&leaf), 1);
    let ips = [Identifier::Ip("127.0.0.1".parse().expect("ip"))];
    let mut order = account
        .new_order(&NewOrder::new(&ips))
        .await
        .expect("IP order");
    answer_http01(&mut order, &http).await;
    wait_ready(&mut order).await;
    let issued = finalize_and_download(&mut order, &["127.0.0.1"]).await;
    assert_eq!(
        cn_count(&leaf_of(&issued.chain_pem)),
        0,
        "no IP address in the CN"
    );

    // Unknown profile.
    let s = Session::new(&raw).await;
    let err = account
        .new_order(&NewOrder::new(&ids).profile("nope"))
        .await
        .err()
        .expect("an unknown profile is refused");
    assert_eq!(problem_type(&err), "invalidProfile", "{err:?}");
    let rsp = s
        .new_order_raw(&[dns("x.example.org")], json!({"profile": "nope"}))
        .await;
    rsp.assert_problem("unknown profile", &["invalidProfile"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
}

/// An order placed under a profile the signer no longer offers after a
/// restart is `invalidProfile` at finalize and stays unfinalized.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withdrawn_profile_is_invalid_at_finalize() {
    let dns_server = DnsServer::start().await;
    let mut ca = start(&dns_server, SIGNER_PROFILES).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;
    let name = "withdrawn.example.org";
    let rsp = s
        .new_order_raw(&[dns(name)], json!({"profile": "mtls"}))
        .await;
    let (url, order) = created(&rsp, "an order under mtls");
    assert_eq!(order["profile"], "mtls");
    s.answer_http01(&order, &http).await;
    let order = s.settle(&url).await;
    assert_eq!(order["status"], "ready", "{order}");

    // The operator drops the mtls profile and restarts the CA.
    let config = std::fs::read_to_string(ca.config_path()).expect("config");
    let without = config.replace("[signer.profiles.mtls]\nclient_auth = true\n", "");
    assert_ne!(config, without, "the profile was in the config");
    std::fs::write(ca.config_path(), without).expect("rewrite config");
    kill(Pid::from_raw(ca.ready().frontend_pid), Signal::SIGTERM).expect("SIGTERM");
    ca.restart_after_crash(Vec::new(), Duration::from_secs(30))
        .await;

    let raw = RawClient::new(&ca).await;
    let s = Session::with_account(&raw, s.account);
    let (csr, _) = crate::support::client::csr(&[name]);
    let rsp = s.finalize_raw(&order, &csr).await;
    rsp.assert_problem("finalize under a withdrawn profile", &["invalidProfile"]);
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
    let again = s.post_ok(&url, None).await;
    let again: Value = serde_json::from_slice(&again.body).expect("order");
    assert_eq!(again["status"], "ready", "not finalized: {again}");
}

/// A profile's `authz_reuse_secs` (Boulder's validation profiles): its
/// orders reuse an authorization only that long after its validation;
/// orders under the default profile reuse it as long as it is valid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_limits_authorization_reuse() {
    let dns_server = DnsServer::start().await;
    let ca = start(&dns_server, SIGNER_PROFILES).await;
    let http = Http01Server::start(ca.http_validation_port()).await;
    let raw = RawClient::new(&ca).await;
    let s = Session::new(&raw).await;
    let name = "reuse.example.org";
    let (url, order) = s.new_order(&[dns(name)]).await;
    s.answer_http01(&order, &http).await;
    assert_eq!(s.settle(&url).await["status"], "ready");

    let status = |profile: Option<&'static str>| {
        let s = &s;
        async move {
            let extra = profile.map_or_else(|| json!({}), |p| json!({ "profile": p }));
            let rsp = s.new_order_raw(&[dns(name)], extra).await;
            let (_, order) = created(&rsp, "an order for the validated name");
            order["status"].as_str().expect("status").to_owned()
        }
    };
    assert_eq!(status(Some("fresh")).await, "ready", "validated just now");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        status(Some("fresh")).await,
        "pending",
        "older than the profile allows"
    );
    assert_eq!(status(None).await, "ready", "the default profile reuses it");
}
