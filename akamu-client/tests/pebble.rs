//! akamu-client against Pebble (Debian package `pebble`), a third-party
//! ACME server, with real http-01 and tls-alpn-01 validation on loopback:
//! proof that the client is not tuned to our own server.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use akamu_client::{
    AccountKey, AccountOptions, AcmeClient, ChallengeSolver as _, Http01Solver, Identifier,
    PollOptions, TlsAlpn01Solver, build_csr, pem_to_der,
};
use openssl::x509::X509;
use support::dns::DnsServer;
use support::{Pebble, free_port};

const POLL: PollOptions<'static> = PollOptions {
    timeout: Duration::from_secs(60),
    on_wait: None,
};

async fn client(pebble: &Pebble) -> AcmeClient {
    AcmeClient::builder(&pebble.directory)
        .add_root_pem(&pebble.root_pem())
        .expect("root")
        .only_added_roots()
        .poll_timeout(Duration::from_secs(60))
        .build()
        .await
        .expect("pebble directory")
}

fn sans(pem: &[u8]) -> Vec<String> {
    let leaf = X509::from_pem(pem).expect("leaf");
    let mut names: Vec<String> = leaf
        .subject_alt_names()
        .map(|s| {
            s.iter()
                .filter_map(|n| n.dnsname().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Account → order with two names → http-01 → finalize → download →
/// revoke, then key change and deactivation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_http01_lifecycle() {
    let dns = DnsServer::start().await;
    let pebble = Pebble::start(free_port(), free_port(), dns.addr());
    let client = client(&pebble).await;

    let key = Arc::new(AccountKey::generate("ec:P-256").expect("key"));
    let opts = AccountOptions {
        contacts: &["mailto:ops@example.org"],
        agree_tos: true,
        eab: None,
    };
    let account = client.new_account(key, &opts).await.expect("account");
    assert_eq!(account.status, "valid");
    let again = client
        .find_account(Arc::clone(&account.key))
        .await
        .expect("find");
    assert_eq!(again.url, account.url);

    let names = ["www.example.org", "api.example.org"];
    let ids: Vec<Identifier> = names.iter().map(|n| Identifier::dns(*n)).collect();
    let order = client.new_order(&account, &ids).await.expect("order");
    assert_eq!(order.authorizations.len(), 2);
    let solver = Http01Solver::with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, pebble.http_port)));
    solver.start().await.expect("solver");
    for url in &order.authorizations {
        let authz = client
            .get_authorization(&account, url)
            .await
            .expect("authz");
        let chall = authz.find_challenge("http-01").expect("http-01");
        let token = chall.token.as_deref().expect("token");
        solver
            .present(token, &account.key_authorization(token))
            .await
            .expect("present");
        client
            .trigger_challenge(&account, chall)
            .await
            .expect("trigger");
        client
            .poll_authorization(&account, url, &POLL)
            .await
            .expect("authz valid");
        solver.cleanup(token).await.expect("cleanup");
    }
    let ready = client
        .poll_order(&account, &order.url)
        .await
        .expect("ready");
    assert_eq!(ready.status, "ready");

    let cert_key = AccountKey::generate("ec:P-256").expect("cert key");
    let csr = build_csr(&names, cert_key.private_key()).expect("csr");
    let done = client
        .finalize(&account, &order, &csr)
        .await
        .expect("finalize");
    let pem = client
        .download_certificate(&account, done.certificate.as_deref().expect("cert URL"))
        .await
        .expect("download");
    assert_eq!(sans(&pem), ["api.example.org", "www.example.org"]);
    assert!(pem_to_der(&pem).len() >= 2, "leaf and chain");
    let leaf = X509::from_pem(&pem).expect("leaf");
    assert!(
        leaf.public_key()
            .expect("pk")
            .public_eq(cert_key.private_key())
    );

    let der = pem_to_der(&pem).remove(0);
    client
        .revoke_certificate(&account, &der, Some(1))
        .await
        .expect("revoke");
    let twice = client
        .revoke_certificate(&account, &der, None)
        .await
        .expect_err("twice");
    assert!(twice.is_acme("alreadyRevoked"), "{twice}");

    let new_key = Arc::new(AccountKey::generate("ec:P-384").expect("key"));
    let rolled = client
        .key_change(&account, Arc::clone(&new_key))
        .await
        .expect("key change");
    assert_eq!(rolled.url, account.url);
    let found = client
        .find_account(new_key)
        .await
        .expect("found by the new key");
    assert_eq!(found.url, account.url);
    let gone = client
        .deactivate_account(&rolled)
        .await
        .expect("deactivate");
    assert_eq!(gone.status, "deactivated");
}

/// tls-alpn-01 against Pebble's validator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pebble_tls_alpn01() {
    let dns = DnsServer::start().await;
    let pebble = Pebble::start(free_port(), free_port(), dns.addr());
    let client = client(&pebble).await;
    let key = Arc::new(AccountKey::generate("ec:P-256").expect("key"));
    let opts = AccountOptions {
        contacts: &[],
        agree_tos: true,
        eab: None,
    };
    let account = client.new_account(key, &opts).await.expect("account");
    let mut solver =
        TlsAlpn01Solver::with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, pebble.tls_port)));
    solver.start().await.expect("solver");
    let order = client
        .new_order(&account, &[Identifier::dns("tls.example.org")])
        .await
        .expect("order");
    for url in &order.authorizations {
        let authz = client
            .get_authorization(&account, url)
            .await
            .expect("authz");
        let chall = authz.find_challenge("tls-alpn-01").expect("tls-alpn-01");
        let token = chall.token.as_deref().expect("token");
        solver
            .present(
                &authz.identifier.value,
                &authz.identifier.r#type,
                &account.key_authorization(token),
            )
            .await
            .expect("present");
        client
            .trigger_challenge(&account, chall)
            .await
            .expect("trigger");
        client
            .poll_authorization(&account, url, &POLL)
            .await
            .expect("valid");
    }
    solver.cleanup();
    let cert_key = AccountKey::generate("rsa:2048").expect("key");
    let csr = build_csr(&["tls.example.org"], cert_key.private_key()).expect("csr");
    let done = client
        .finalize(&account, &order, &csr)
        .await
        .expect("finalize");
    let pem = client
        .download_certificate(&account, done.certificate.as_deref().expect("url"))
        .await
        .expect("download");
    assert_eq!(sans(&pem), ["tls.example.org"]);
}
