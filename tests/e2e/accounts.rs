//! Accounts (RFC 8555 §7.3) judged by instant-acme and raw JWS: key
//! rollover, External Account Binding, deactivation, terms of service.

use akamu_jose::{Alg, SigningKey, b64};
use http::StatusCode;
use instant_acme::{AccountCredentials, ExternalAccountKey, NewAccount};
use serde_json::{Value, json};

use crate::issuance::start_ca;
use crate::support::client::{
    JwsAccount, RawClient, RawResponse, account_builder, new_order, problem_type, sign_with_jwk,
};
use crate::support::dns::DnsServer;
use crate::support::procs::{Ca, CaOptions};

const AGREE: NewAccount<'static> = NewAccount {
    contact: &[],
    terms_of_service_agreed: true,
    only_return_existing: false,
};

/// The account key inside instant-acme credentials, for raw requests.
fn raw_key(creds: &AccountCredentials) -> SigningKey {
    let pkey = openssl::pkey::PKey::private_key_from_pkcs8(creds.private_key().secret_pkcs8_der())
        .expect("PKCS#8 account key");
    SigningKey::from_pkey(pkey).expect("signing key")
}

/// Copies credentials (they are neither Clone nor reusable after a move).
fn copy(creds: &AccountCredentials) -> AccountCredentials {
    serde_json::from_value(serde_json::to_value(creds).expect("serialize")).expect("deserialize")
}

/// newAccount with `onlyReturnExisting` signed by `key`.
async fn lookup(raw: &RawClient, key: &SigningKey) -> RawResponse {
    let url = raw.url("newAccount");
    let body = sign_with_jwk(
        key,
        &raw.nonce().await,
        &url,
        &json!({"onlyReturnExisting": true}),
    );
    raw.post_jose(&url, &body).await
}

/// §7.3.5 with instant-acme's `update_key`: afterwards the new key works
/// for the same account URL, the old key is refused, and a lookup by the
/// old key finds no account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rollover_old_key_refused_new_key_works() {
    let dns_server = DnsServer::start().await;
    let ca = start_ca(&dns_server).await;
    let raw = RawClient::new(&ca).await;
    let (mut account, old_creds) = account_builder(&ca)
        .create(&AGREE, ca.directory().to_owned(), None)
        .await
        .expect("create account");
    let id = account.id().to_owned();
    let old_key = raw_key(&old_creds);

    let new_creds = account.update_key().await.expect("key rollover");
    assert_eq!(account.id(), id, "the account URL does not change");
    let new_key = raw_key(&new_creds);

    // The new key works (instant-acme now signs with it).
    new_order(&account, &["rolled.example.org"]).await;
    let restored = account_builder(&ca)
        .from_credentials(copy(&new_creds))
        .await
        .expect("restore with the new key");
    new_order(&restored, &["rolled2.example.org"]).await;
    let rsp = lookup(&raw, &new_key).await;
    assert_eq!(rsp.status, StatusCode::OK, "lookup by the new key: {rsp:?}");
    assert_eq!(rsp.location().as_deref(), Some(id.as_str()));

    // The old key is refused.
    let old = account_builder(&ca)
        .from_credentials(copy(&old_creds))
        .await
        .expect("restore with the old key (no request yet)");
    let err = old
        .new_order(&instant_acme::NewOrder::new(&[
            instant_acme::Identifier::Dns("stale.example.org".into()),
        ]))
        .await
        .err()
        .expect("the old key must be refused after rollover");
    let ty = problem_type(&err);
    assert!(
        ty == "unauthorized" || ty == "malformed",
        "old key after rollover: {err:?}"
    );
    let rsp = lookup(&raw, &old_key).await;
    rsp.assert_problem(
        "onlyReturnExisting with the rolled-over key",
        &["accountDoesNotExist"],
    );
}

/// §7.3.5: a key-change to a key that already belongs to another account
/// is `409 Conflict` with that account's URL in Location.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_change_to_another_accounts_key_is_409_with_its_location() {
    let dns_server = DnsServer::start().await;
    let ca = start_ca(&dns_server).await;
    let raw = RawClient::new(&ca).await;
    let a = JwsAccount::create(&raw).await;
    let b = JwsAccount::create(&raw).await;

    let url = raw.url("keyChange");
    let inner = a.key_change_inner(&b.key, &url);
    let body = a.sign(&raw.nonce().await, &url, Some(&inner));
    let rsp = raw.post_jose(&url, &body).await;
    assert_eq!(
        rsp.status,
        StatusCode::CONFLICT,
        "key-change to B's key: {}",
        String::from_utf8_lossy(&rsp.body)
    );
    assert_eq!(
        rsp.location().as_deref(),
        Some(b.kid.as_str()),
        "409 carries the other account's URL in Location"
    );

    // Nothing changed: A still signs with its own key.
    let body = a.sign(&raw.nonce().await, &a.kid, None);
    let rsp = raw.post_jose(&a.kid, &body).await;
    assert_eq!(rsp.status, StatusCode::OK, "A after the refused key-change");
}

/// A 32-byte HMAC key, base64url, as the configuration wants it.
fn eab_secret(seed: u8) -> Vec<u8> {
    (0..32u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// A CA requiring EAB, with keys `kid-1` and `kid-2`.
async fn eab_ca(dns_server: &DnsServer) -> Ca {
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        server_toml: "external_account_required = true".into(),
        extra_toml: format!(
            "[server.eab_keys]\nkid-1 = \"{}\"\nkid-2 = \"{}\"\n",
            b64(&eab_secret(1)),
            b64(&eab_secret(2))
        ),
        ..CaOptions::default()
    })
    .await
}

/// §7.3.4: External Account Binding with instant-acme's
/// `ExternalAccountKey`: no binding → `externalAccountRequired`; wrong MAC
/// or unknown kid → `unauthorized`; a request refused for another reason
/// does not consume the key; the right MAC creates the account and
/// consumes the key, so a reuse → `unauthorized`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eab_required_wrong_mac_reuse_and_consumption() {
    let dns_server = DnsServer::start().await;
    let ca = eab_ca(&dns_server).await;
    let raw = RawClient::new(&ca).await;
    let dir = raw.get(ca.directory()).await.json();
    assert_eq!(
        dir["meta"]["externalAccountRequired"],
        json!(true),
        "directory meta: {dir}"
    );
    let directory = ca.directory().to_owned();
    let create = |eab: Option<ExternalAccountKey>, contact: &'static [&'static str]| {
        let builder = account_builder(&ca);
        let directory = directory.clone();
        async move {
            builder
                .create(
                    &NewAccount {
                        contact,
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    directory,
                    eab.as_ref(),
                )
                .await
        }
    };

    let err = create(None, &[])
        .await
        .err()
        .expect("no EAB must be refused");
    assert_eq!(problem_type(&err), "externalAccountRequired", "{err:?}");

    let wrong = ExternalAccountKey::new("kid-1".into(), &eab_secret(9));
    let err = create(Some(wrong), &[]).await.err().expect("wrong MAC");
    assert_eq!(problem_type(&err), "unauthorized", "wrong MAC: {err:?}");

    let unknown = ExternalAccountKey::new("kid-404".into(), &eab_secret(1));
    let err = create(Some(unknown), &[]).await.err().expect("unknown kid");
    assert_eq!(problem_type(&err), "unauthorized", "unknown kid: {err:?}");

    // Right MAC, but a contact the CA refuses: no account, key not consumed.
    let right = ExternalAccountKey::new("kid-1".into(), &eab_secret(1));
    let err = create(Some(right), &["ftp://example.org"])
        .await
        .err()
        .expect("bad contact");
    let ty = problem_type(&err);
    assert!(
        ty == "unsupportedContact" || ty == "invalidContact",
        "bad contact: {err:?}"
    );

    // The key still works once, after the failures above.
    let right = ExternalAccountKey::new("kid-1".into(), &eab_secret(1));
    let (account, _) = create(Some(right), &[])
        .await
        .expect("the right MAC creates the account");
    new_order(&account, &["eab.example.org"]).await;

    // Consumed: a second account with the same EAB key is refused.
    let again = ExternalAccountKey::new("kid-1".into(), &eab_secret(1));
    let err = create(Some(again), &[])
        .await
        .err()
        .expect("reused EAB key");
    assert_eq!(problem_type(&err), "unauthorized", "reused key: {err:?}");

    // The other key is untouched.
    let other = ExternalAccountKey::new("kid-2".into(), &eab_secret(2));
    let (_account, _creds) = create(Some(other), &[])
        .await
        .expect("kid-2 is still unused");
}

/// §7.3.6 with instant-acme's `deactivate`: afterwards every request by
/// the account is `unauthorized`, including a lookup by its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivated_account_is_refused() {
    let dns_server = DnsServer::start().await;
    let ca = start_ca(&dns_server).await;
    let raw = RawClient::new(&ca).await;
    let (account, creds) = account_builder(&ca)
        .create(&AGREE, ca.directory().to_owned(), None)
        .await
        .expect("create account");
    let kid = account.id().to_owned();
    new_order(&account, &["before.example.org"]).await;
    account.deactivate().await.expect("deactivate");

    let again = account_builder(&ca)
        .from_credentials(copy(&creds))
        .await
        .expect("restore");
    let err = again
        .new_order(&instant_acme::NewOrder::new(&[
            instant_acme::Identifier::Dns("after.example.org".into()),
        ]))
        .await
        .err()
        .expect("a deactivated account cannot order");
    assert_eq!(problem_type(&err), "unauthorized", "{err:?}");

    let key = raw_key(&creds);
    let account = JwsAccount {
        key,
        kid: kid.clone(),
    };
    let body = account.sign(&raw.nonce().await, &kid, None);
    let rsp = raw.post_jose(&kid, &body).await;
    rsp.assert_problem("POST-as-GET of a deactivated account", &["unauthorized"]);
    assert_eq!(rsp.status, StatusCode::UNAUTHORIZED);
    let rsp = lookup(&raw, &account.key).await;
    rsp.assert_problem(
        "onlyReturnExisting for a deactivated account",
        &["unauthorized"],
    );
}

/// §7.3.3: with `terms_of_service_url` set, the directory announces it and
/// a newAccount without `termsOfServiceAgreed` is `userActionRequired`
/// with the terms as `instance`; agreeing creates the account.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terms_of_service_must_be_agreed() {
    let dns_server = DnsServer::start().await;
    let tos = "https://example.org/akamu-terms-v1";
    let ca = Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns_server.addr()),
        server_toml: format!("terms_of_service_url = \"{tos}\""),
        ..CaOptions::default()
    })
    .await;
    let raw = RawClient::new(&ca).await;
    let dir = raw.get(ca.directory()).await.json();
    assert_eq!(
        dir["meta"]["termsOfService"],
        json!(tos),
        "directory: {dir}"
    );

    let key = SigningKey::generate(Alg::Es256).expect("key");
    let url = raw.url("newAccount");
    for payload in [json!({}), json!({"termsOfServiceAgreed": false})] {
        let body = sign_with_jwk(&key, &raw.nonce().await, &url, &payload);
        let rsp = raw.post_jose(&url, &body).await;
        let problem = rsp.assert_problem("newAccount without agreeing", &["userActionRequired"]);
        assert_eq!(rsp.status, StatusCode::FORBIDDEN);
        assert_eq!(
            problem["instance"],
            Value::String(tos.into()),
            "userActionRequired carries the terms URL as instance: {problem}"
        );
    }
    let body = sign_with_jwk(
        &key,
        &raw.nonce().await,
        &url,
        &json!({"termsOfServiceAgreed": true}),
    );
    let rsp = raw.post_jose(&url, &body).await;
    assert_eq!(rsp.status, StatusCode::CREATED, "agreeing: {rsp:?}");
}
