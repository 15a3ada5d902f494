//! akamu-client against our CA (`acme-frontend` with its signer and
//! validator, started from `target/debug`): the whole lifecycle over
//! http-01, tls-alpn-01, key change, deactivation and EAB.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use akamu_client::{
    Account, AccountKey, AccountOptions, AcmeClient, ChallengeSolver as _, ClientError, EabOptions,
    Http01Solver, Identifier, PollOptions, TlsAlpn01Solver, build_csr, pem_to_der,
};
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509, X509StoreContext};
use support::dns::DnsServer;
use support::{Ca, free_port};

const POLL: PollOptions<'static> = PollOptions {
    timeout: Duration::from_secs(60),
    on_wait: None,
};

async fn client(ca: &Ca) -> AcmeClient {
    AcmeClient::builder(&ca.directory)
        .add_root_pem(&ca.root_pem())
        .expect("root")
        .only_added_roots()
        .poll_timeout(Duration::from_secs(60))
        .build()
        .await
        .expect("directory")
}

async fn register(client: &AcmeClient, key_type: &str) -> Account {
    let key = Arc::new(AccountKey::generate(key_type).expect("key"));
    let opts = AccountOptions {
        contacts: &["mailto:ops@example.org"],
        agree_tos: true,
        eab: None,
    };
    client.new_account(key, &opts).await.expect("new account")
}

/// Verifies `chain_pem` against the CA root with openssl and returns the leaf.
fn verify_chain(root_pem: &[u8], chain_pem: &[u8]) -> X509 {
    let certs = X509::stack_from_pem(chain_pem).expect("chain PEM");
    assert!(!certs.is_empty(), "empty chain");
    let mut store = X509StoreBuilder::new().expect("store");
    for root in X509::stack_from_pem(root_pem).expect("root") {
        store.add_cert(root).expect("add root");
    }
    let store = store.build();
    let mut chain = Stack::new().expect("stack");
    for c in &certs[1..] {
        chain.push(c.clone()).expect("push");
    }
    let mut ctx = X509StoreContext::new().expect("ctx");
    let ok = ctx
        .init(&store, &certs[0], &chain, |c| c.verify_cert())
        .expect("verify");
    assert!(ok, "chain does not verify: {}", ctx.error());
    certs[0].clone()
}

fn dns_sans(cert: &X509) -> Vec<String> {
    let mut names: Vec<String> = cert
        .subject_alt_names()
        .map(|sans| {
            sans.iter()
                .filter_map(|n| n.dnsname().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Solves every pending authorization of `order` over http-01 with
/// `solver`, then waits for the order to become ready.
async fn solve_http01(
    client: &AcmeClient,
    account: &Account,
    order: &akamu_client::Order,
    solver: &Http01Solver,
) {
    let mut triggered = Vec::new();
    for url in &order.authorizations {
        let authz = client.get_authorization(account, url).await.expect("authz");
        if authz.status == "valid" {
            continue;
        }
        let chall = authz.find_challenge("http-01").expect("http-01 offered");
        let token = chall.token.as_deref().expect("token");
        solver
            .present(token, &account.key_authorization(token))
            .await
            .expect("present");
        client
            .trigger_challenge(account, chall)
            .await
            .expect("trigger");
        triggered.push((url.clone(), token.to_owned()));
    }
    for (url, token) in triggered {
        let authz = client
            .poll_authorization(account, &url, &POLL)
            .await
            .expect("authz valid");
        assert_eq!(authz.status, "valid");
        solver.cleanup(&token).await.expect("cleanup");
    }
    let ready = client
        .poll_order(account, &order.url)
        .await
        .expect("order ready");
    assert_eq!(ready.status, "ready");
}

/// RFC 8555 end to end: account → order with two names → http-01 through
/// `Http01Solver` → finalize → download → ARI → revoke.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_http01_two_names() {
    let dns = DnsServer::start().await;
    let ca = Ca::start(free_port(), free_port(), Some(dns.addr()));
    let client = client(&ca).await;

    // Account: create, read back, update contacts, find by key.
    let account = register(&client, "ec:P-256").await;
    assert_eq!(account.status, "valid");
    assert_eq!(account.contacts, ["mailto:ops@example.org"]);
    let fetched = client.get_account(&account).await.expect("get account");
    assert_eq!(fetched.url, account.url);
    let updated = client
        .update_account(&account, &["mailto:a@example.org", "mailto:b@example.org"])
        .await
        .expect("update");
    assert_eq!(
        updated.contacts,
        ["mailto:a@example.org", "mailto:b@example.org"]
    );
    let found = client
        .find_account(Arc::clone(&account.key))
        .await
        .expect("find");
    assert_eq!(found.url, account.url);
    let stranger = Arc::new(AccountKey::generate("ec:P-256").expect("key"));
    let err = client
        .find_account(stranger)
        .await
        .expect_err("no account for this key");
    assert!(err.is_acme("accountDoesNotExist"), "{err}");

    // Order with two names, solved over http-01.
    let names = ["www.example.org", "api.example.org"];
    let ids: Vec<Identifier> = names.iter().map(|n| Identifier::dns(*n)).collect();
    let order = client.new_order(&account, &ids).await.expect("order");
    assert_eq!(order.status, "pending");
    assert_eq!(order.authorizations.len(), 2);
    let solver = Http01Solver::with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, ca.http_port)));
    solver.start().await.expect("solver");
    solve_http01(&client, &account, &order, &solver).await;

    // Finalize and download.
    let cert_key = AccountKey::generate("ec:P-384").expect("cert key");
    let csr = build_csr(&names, cert_key.private_key()).expect("csr");
    let finalized = client
        .finalize(&account, &order, &csr)
        .await
        .expect("finalize");
    assert_eq!(finalized.status, "valid");
    let cert_url = finalized.certificate.expect("certificate URL");
    let pem = client
        .download_certificate(&account, &cert_url)
        .await
        .expect("download");
    let leaf = verify_chain(&ca.root_pem(), &pem);
    assert_eq!(dns_sans(&leaf), ["api.example.org", "www.example.org"]);
    assert!(
        leaf.public_key()
            .expect("pk")
            .public_eq(cert_key.private_key())
    );

    // ARI (RFC 9773): a fresh certificate's window lies ahead of us.
    let info = client
        .get_renewal_info(&pem)
        .await
        .unwrap_or_else(|e| panic!("ARI query failed: {e}"));
    let start = time::OffsetDateTime::parse(
        &info.window_start,
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339 window start");
    assert!(start > time::OffsetDateTime::now_utc(), "{info:?}");

    // Revoke: reason 7 is refused before sending; reason 4 works once.
    let der = pem_to_der(&pem).into_iter().next().expect("leaf DER");
    let err = client
        .revoke_certificate(&account, &der, Some(7))
        .await
        .expect_err("7 refused");
    assert!(matches!(err, ClientError::InvalidArgument(_)), "{err}");
    client
        .revoke_certificate(&account, &der, Some(4))
        .await
        .expect("revoke");
    let again = client
        .revoke_certificate(&account, &der, None)
        .await
        .expect_err("twice");
    assert!(again.is_acme("alreadyRevoked"), "{again}");
}

/// RFC 8737: tls-alpn-01 through `TlsAlpn01Solver`, then self-revocation
/// with the certificate key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_alpn01_and_revocation_by_certificate_key() {
    let dns = DnsServer::start().await;
    let ca = Ca::start(free_port(), free_port(), Some(dns.addr()));
    let client = client(&ca).await;
    let account = register(&client, "ed25519").await;

    let mut solver =
        TlsAlpn01Solver::with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, ca.tls_port)));
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
        let chall = authz
            .find_challenge("tls-alpn-01")
            .expect("tls-alpn-01 offered");
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
    client
        .poll_order(&account, &order.url)
        .await
        .expect("ready");
    solver.cleanup();

    let cert_key = Arc::new(AccountKey::generate("rsa:2048").expect("key"));
    let csr = build_csr(&["tls.example.org"], cert_key.private_key()).expect("csr");
    let done = client
        .finalize(&account, &order, &csr)
        .await
        .expect("finalize");
    let pem = client
        .download_certificate(&account, done.certificate.as_deref().expect("url"))
        .await
        .expect("download");
    let leaf = verify_chain(&ca.root_pem(), &pem);
    assert_eq!(dns_sans(&leaf), ["tls.example.org"]);

    let der = pem_to_der(&pem).remove(0);
    client
        .revoke_certificate_with_cert_key(&cert_key, &der, Some(1))
        .await
        .expect("revoke with the certificate key");
    let again = client
        .revoke_certificate(&account, &der, None)
        .await
        .expect_err("twice");
    assert!(again.is_acme("alreadyRevoked"), "{again}");
}

/// RFC 8555 §7.3.5 and §7.3.6: roll the key, then deactivate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_change_then_deactivation() {
    let ca = Ca::start(free_port(), free_port(), None);
    let client = client(&ca).await;
    let account = register(&client, "rsa:2048").await;
    let old_key = Arc::clone(&account.key);

    let new_key = Arc::new(AccountKey::generate("ec:P-384").expect("key"));
    let rolled = client
        .key_change(&account, Arc::clone(&new_key))
        .await
        .expect("key change");
    assert_eq!(rolled.url, account.url);
    assert_eq!(rolled.key.thumbprint(), new_key.thumbprint());
    let by_new = client
        .find_account(Arc::clone(&new_key))
        .await
        .expect("new key finds it");
    assert_eq!(by_new.url, account.url);
    let by_old = client
        .find_account(old_key)
        .await
        .expect_err("old key is gone");
    assert!(by_old.is_acme("accountDoesNotExist"), "{by_old}");
    let stale = client
        .get_account(&account)
        .await
        .expect_err("old key refused");
    assert!(matches!(stale, ClientError::Acme { .. }), "{stale}");

    // The rolled account still orders (a *.localhost name needs no DNS).
    let order = client
        .new_order(&rolled, &[Identifier::dns("key-change.localhost")])
        .await
        .expect("order with the new key");
    assert_eq!(order.status, "pending");

    let gone = client
        .deactivate_account(&rolled)
        .await
        .expect("deactivate");
    assert_eq!(gone.status, "deactivated");
    let refused = client
        .new_order(&rolled, &[Identifier::dns("after.localhost")])
        .await
        .expect_err("a deactivated account cannot order");
    assert!(refused.is_acme("unauthorized"), "{refused}");
}

/// RFC 8555 §7.3.4: a CA that requires EAB refuses a bare registration and
/// accepts one bound with HS256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_account_binding() {
    let hmac = b"0123456789abcdef0123456789abcdef";
    let extra = format!(
        "external_account_required = true\n[server.eab_keys]\nkid-1 = \"{}\"\n",
        akamu_jose::b64(hmac)
    );
    let ca = Ca::start_with(free_port(), free_port(), None, &extra);
    let client = client(&ca).await;
    assert!(client.directory().meta.external_account_required);
    let key = Arc::new(AccountKey::generate("ec:P-256").expect("key"));
    let bare = AccountOptions {
        contacts: &[],
        agree_tos: true,
        eab: None,
    };
    let err = client
        .new_account(Arc::clone(&key), &bare)
        .await
        .expect_err("EAB required");
    assert!(err.is_acme("externalAccountRequired"), "{err}");
    let bound = AccountOptions {
        eab: Some(EabOptions {
            kid: "kid-1",
            hmac_key: hmac,
            alg: "HS256",
        }),
        ..bare
    };
    let account = client
        .new_account(key, &bound)
        .await
        .expect("EAB registration");
    assert_eq!(account.status, "valid");
}

/// Every account algorithm beyond ES256 (RFC 7518 RS384/RS512/PS384/PS512,
/// RFC 8037 EdDSA with Ed448, RFC 9964 ML-DSA-44/65/87) registers, orders,
/// validates and gets a certificate that verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_account_algorithm_issues() {
    let ca = Ca::start(free_port(), free_port(), None);
    let client = client(&ca).await;
    let solver = Http01Solver::with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, ca.http_port)));
    solver.start().await.expect("solver");
    for (key_type, alg) in [
        ("ml-dsa-44", "ML-DSA-44"),
        ("ml-dsa-65", "ML-DSA-65"),
        ("ml-dsa-87", "ML-DSA-87"),
        ("ed448", "EdDSA"),
        ("rsa:2048", "RS384"),
        ("rsa:2048", "RS512"),
        ("rsa:2048", "PS384"),
        ("rsa:2048", "PS512"),
    ] {
        let key = AccountKey::generate(key_type)
            .and_then(|k| k.with_alg(alg))
            .expect("key");
        assert_eq!(key.alg(), alg);
        let opts = AccountOptions {
            contacts: &[],
            agree_tos: true,
            eab: None,
        };
        let account = client
            .new_account(Arc::new(key), &opts)
            .await
            .unwrap_or_else(|e| panic!("{alg}: new account: {e}"));
        let name = format!("{}.localhost", alg.to_ascii_lowercase());
        let order = client
            .new_order(&account, &[Identifier::dns(&name)])
            .await
            .unwrap_or_else(|e| panic!("{alg}: order: {e}"));
        solve_http01(&client, &account, &order, &solver).await;
        let cert_key = AccountKey::generate("ec:P-256").expect("cert key");
        let csr = build_csr(&[name.as_str()], cert_key.private_key()).expect("csr");
        let finalized = client
            .finalize(&account, &order, &csr)
            .await
            .unwrap_or_else(|e| panic!("{alg}: finalize: {e}"));
        let pem = client
            .download_certificate(&account, &finalized.certificate.expect("cert URL"))
            .await
            .unwrap_or_else(|e| panic!("{alg}: download: {e}"));
        let leaf = verify_chain(&ca.root_pem(), &pem);
        assert_eq!(dns_sans(&leaf), [name], "{alg}");
    }
}

/// RFC 8555 §7.3.5 with RFC 9964 keys: RSA → ML-DSA-65 → ML-DSA-44 → P-256,
/// each new key finding the account and the old one refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_change_to_and_from_ml_dsa() {
    let ca = Ca::start(free_port(), free_port(), None);
    let client = client(&ca).await;
    let mut account = register(&client, "rsa:2048").await;
    for next in ["ml-dsa-65", "ml-dsa-44", "ec:P-256"] {
        let old_key = Arc::clone(&account.key);
        let new_key = Arc::new(AccountKey::generate(next).expect("key"));
        account = client
            .key_change(&account, Arc::clone(&new_key))
            .await
            .unwrap_or_else(|e| panic!("key change to {next}: {e}"));
        assert_eq!(account.key.thumbprint(), new_key.thumbprint());
        let found = client
            .find_account(Arc::clone(&new_key))
            .await
            .expect("the new key finds the account");
        assert_eq!(found.url, account.url);
        let gone = client
            .find_account(old_key)
            .await
            .expect_err("the old key is gone");
        assert!(gone.is_acme("accountDoesNotExist"), "{gone}");
        let order = client
            .new_order(&account, &[Identifier::dns("pq-roll.localhost")])
            .await
            .unwrap_or_else(|e| panic!("order after rolling to {next}: {e}"));
        assert_eq!(order.status, "pending");
    }
}
