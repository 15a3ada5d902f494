//! akamu-client against our CA (`acme-frontend` with its signer and
//! validator, started from `target/debug`): the whole lifecycle over
//! http-01, tls-alpn-01, key change, deactivation and EAB.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use akamu_client::{
    Account, AccountKey, AccountOptions, AcmeClient, ChallengeSolver as _, ClientError,
    Dns01Helper, DnsAccount01Helper, DnsPersist01Helper, EabOptions, Http01Solver, Identifier,
    PollOptions, TlsAlpn01Solver, build_csr, pem_to_der,
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

/// RFC 9444 with `allow_subdomain_auth`: `example.org` is pre-authorized
/// once for its subdomains (dns-01 only, `subdomainAuthAllowed` echoed);
/// orders naming it as `ancestorDomain` then need no challenge and get
/// certificates for names below it, a wildcard included. A public suffix
/// cannot be pre-authorized for its subdomains, and a server without the
/// setting is not asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subdomain_authorization() {
    let dns = DnsServer::start().await;
    let ca = Ca::start_with(
        free_port(),
        free_port(),
        Some(dns.addr()),
        "allow_subdomain_auth = true\n",
    );
    let client = client(&ca).await;
    assert!(client.directory().meta.subdomain_auth_allowed);
    let account = register(&client, "ec:P-256").await;

    let ancestor = Identifier::dns("example.org");
    let authz = client
        .new_authorization(&account, &ancestor, true)
        .await
        .expect("pre-authorization for subdomains");
    assert!(authz.subdomain_auth_allowed);
    assert_eq!(authz.identifier.value, "example.org");
    let offered: Vec<&str> = authz.challenges.iter().map(|c| c.r#type.as_str()).collect();
    assert_eq!(offered, ["dns-01"], "only dns-01 covers subdomains");
    let chall = authz.find_challenge("dns-01").expect("dns-01");
    let token = chall.token.as_deref().expect("token");
    dns.set_txt(
        &Dns01Helper::record_name("example.org"),
        &[&Dns01Helper::txt_value(&account.key_authorization(token)).expect("value")],
    );
    client
        .trigger_challenge(&account, chall)
        .await
        .expect("trigger");
    let valid = client
        .poll_authorization(&account, &authz.url, &POLL)
        .await
        .expect("valid");
    assert!(valid.subdomain_auth_allowed);
    dns.clear_txt(&Dns01Helper::record_name("example.org"));

    // Two orders under the ancestor: no new authorization, no challenge.
    for names in [
        &["api.example.org"][..],
        &["*.shop.example.org", "deep.www.example.org"][..],
    ] {
        let ids: Vec<Identifier> = names
            .iter()
            .map(|n| Identifier::dns(*n).below("example.org"))
            .collect();
        let order = client.new_order(&account, &ids).await.expect("order");
        assert_eq!(order.status, "ready", "{names:?}: {order:?}");
        assert_eq!(order.authorizations, std::slice::from_ref(&authz.url));
        let key = AccountKey::generate("ec:P-256").expect("key");
        let csr = build_csr(names, key.private_key()).expect("csr");
        let done = client
            .finalize_with(&account, &order, &csr, &POLL)
            .await
            .expect("finalize");
        let pem = client
            .download_certificate(&account, done.certificate.as_deref().expect("cert url"))
            .await
            .expect("download");
        let leaf = verify_chain(&ca.root_pem(), &pem);
        let mut expected: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        expected.sort();
        assert_eq!(dns_sans(&leaf), expected);
    }

    // Without ancestorDomain a subdomain still needs its own authorization.
    let plain = client
        .new_order(&account, &[Identifier::dns("plain.example.org")])
        .await
        .expect("order");
    assert_eq!(plain.status, "pending");
    assert_ne!(plain.authorizations, std::slice::from_ref(&authz.url));

    // A public suffix is refused, as is an ancestor above nothing ordered.
    let err = client
        .new_authorization(&account, &Identifier::dns("co.uk"), true)
        .await
        .expect_err("a public suffix");
    assert_eq!(
        err.acme_type(),
        Some("urn:ietf:params:acme:error:rejectedIdentifier"),
        "{err}"
    );
    let err = client
        .new_order(&account, &[Identifier::dns("example.co.uk").below("co.uk")])
        .await
        .expect_err("a public-suffix ancestor");
    assert_eq!(
        err.acme_type(),
        Some("urn:ietf:params:acme:error:rejectedIdentifier"),
        "{err}"
    );
    let err = client
        .new_order(
            &account,
            &[Identifier::dns("a.example.net").below("example.org")],
        )
        .await
        .expect_err("not an ancestor");
    assert_eq!(
        err.acme_type(),
        Some("urn:ietf:params:acme:error:malformed"),
        "{err}"
    );

    // A server without the setting: the client refuses before asking.
    let plain_ca = Ca::start(free_port(), free_port(), Some(dns.addr()));
    let plain_client = crate::client(&plain_ca).await;
    assert!(!plain_client.directory().meta.subdomain_auth_allowed);
    let other = register(&plain_client, "ec:P-256").await;
    let err = plain_client
        .new_authorization(&other, &ancestor, true)
        .await
        .expect_err("not advertised");
    assert!(matches!(err, ClientError::Unsupported(_)), "{err}");
}

/// dns-account-01 with `dns_account_01_enabled`: offered beside dns-01
/// (also for wildcards and subdomain authorizations); a record at the
/// account's label validates (the label computed by our client and by the
/// validator agree), a record at another account's label, or at dns-01's
/// name, does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_account_01() {
    let dns = DnsServer::start().await;
    let ca = Ca::start_with(
        free_port(),
        free_port(),
        Some(dns.addr()),
        "dns_account_01_enabled = true\nallow_subdomain_auth = true\n",
    );
    let client = client(&ca).await;
    let account = register(&client, "ec:P-256").await;
    let other = register(&client, "ec:P-256").await;

    // A wildcard and a name below an ancestor authorized for subdomains,
    // all through dns-account-01.
    let ids = [
        Identifier::dns("*.acct.example.org"),
        Identifier::dns("x.sub.example.org").below("sub.example.org"),
    ];
    let order = client.new_order(&account, &ids).await.expect("order");
    assert_eq!(order.authorizations.len(), 2);
    for url in &order.authorizations {
        let authz = client
            .get_authorization(&account, url)
            .await
            .expect("authz");
        let offered: Vec<&str> = authz.challenges.iter().map(|c| c.r#type.as_str()).collect();
        assert_eq!(offered, ["dns-01", "dns-account-01"], "{authz:?}");
        let chall = authz.find_challenge("dns-account-01").expect("offered");
        let token = chall.token.as_deref().expect("token");
        dns.set_txt(
            &DnsAccount01Helper::record_name(&authz.identifier.value, &account.url),
            &[&DnsAccount01Helper::txt_value(&account.key_authorization(token)).expect("value")],
        );
        client
            .trigger_challenge(&account, chall)
            .await
            .expect("trigger");
        let valid = client
            .poll_authorization(&account, url, &POLL)
            .await
            .expect("dns-account-01 validates");
        assert_eq!(valid.status, "valid");
    }
    let order = client
        .poll_order(&account, &order.url)
        .await
        .expect("ready");
    let key = AccountKey::generate("ec:P-256").expect("key");
    let names = ["*.acct.example.org", "x.sub.example.org"];
    let csr = build_csr(&names, key.private_key()).expect("csr");
    let done = client
        .finalize_with(&account, &order, &csr, &POLL)
        .await
        .expect("finalize");
    let pem = client
        .download_certificate(&account, done.certificate.as_deref().expect("url"))
        .await
        .expect("download");
    assert_eq!(dns_sans(&verify_chain(&ca.root_pem(), &pem)), names);

    // Records that do not count: another account's label, dns-01's name.
    for (name, record_at) in [
        ("wrong-label.example.org", "other account"),
        ("dns01-name.example.org", "dns-01 name"),
    ] {
        let order = client
            .new_order(&account, &[Identifier::dns(name)])
            .await
            .expect("order");
        let authz = client
            .get_authorization(&account, &order.authorizations[0])
            .await
            .expect("authz");
        let chall = authz.find_challenge("dns-account-01").expect("offered");
        let value = DnsAccount01Helper::txt_value(
            &account.key_authorization(chall.token.as_deref().expect("token")),
        )
        .expect("value");
        let record = if record_at == "other account" {
            DnsAccount01Helper::record_name(name, &other.url)
        } else {
            Dns01Helper::record_name(name)
        };
        dns.set_txt(&record, &[&value]);
        client
            .trigger_challenge(&account, chall)
            .await
            .expect("trigger");
        let err = client
            .poll_authorization(&account, &authz.url, &POLL)
            .await
            .expect_err(record_at);
        assert!(
            err.is_acme("dns") || err.is_acme("incorrectResponse") || err.is_acme("unauthorized"),
            "{record_at}: {err}"
        );
    }
}

/// The v3 `.onion` address of Ed25519 public key `key` (Tor rend-spec:
/// base32 of key ‖ SHA3-256(".onion checksum" ‖ key ‖ 3)[..2] ‖ 3).
fn onion_address(key: &[u8]) -> String {
    let mut h = openssl::hash::Hasher::new(openssl::hash::MessageDigest::sha3_256()).expect("sha3");
    h.update(b".onion checksum").expect("h");
    h.update(key).expect("h");
    h.update(&[3]).expect("h");
    let digest = h.finish().expect("digest");
    let mut bytes = key.to_vec();
    bytes.extend_from_slice(&digest[..2]);
    bytes.push(3);
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut out = String::new();
    for chunk in bytes.chunks(5) {
        let mut n = 0u64;
        for b in chunk {
            n = (n << 8) | u64::from(*b);
        }
        for i in (0..8).rev() {
            out.push(char::from(
                ALPHABET[usize::try_from((n >> (i * 5)) & 31).expect("5 bits")],
            ));
        }
    }
    format!("{out}.onion")
}

/// A new hidden-service key: its PEM and its v3 address.
fn hidden_service() -> (Vec<u8>, String) {
    let key = openssl::pkey::PKey::generate_ed25519().expect("ed25519");
    let address = onion_address(&key.raw_public_key().expect("raw"));
    (key.private_key_to_pem_pkcs8().expect("pem"), address)
}

/// onion-csr-01 (RFC 9799) with our client's `build_onion_csr`: a `.onion`
/// order offers only onion-csr-01; a CSR signed by the address's key with
/// this challenge's key authorization validates and the certificate names
/// the address; the key authorization of another challenge, a CSR signed
/// by another key, a response without a CSR fail; a v2 address is refused
/// at new-order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onion_csr_01() {
    let ca = Ca::start(free_port(), free_port(), None);
    let client = client(&ca).await;
    let account = register(&client, "ec:P-256").await;

    let onion_authz = |address: String| {
        let client = &client;
        let account = &account;
        async move {
            let order = client
                .new_order(account, &[Identifier::onion(address)])
                .await
                .expect("an onion order");
            let authz = client
                .get_authorization(account, &order.authorizations[0])
                .await
                .expect("authz");
            let offered: Vec<&str> = authz.challenges.iter().map(|c| c.r#type.as_str()).collect();
            assert_eq!(offered, ["onion-csr-01"], "no other method for .onion");
            (order, authz)
        }
    };

    // Valid: the address's key, this challenge's key authorization.
    let (hs_pem, address) = hidden_service();
    let (order, authz) = onion_authz(address.clone()).await;
    let chall = authz.find_challenge("onion-csr-01").expect("offered");
    let key_auth = account.key_authorization(chall.token.as_deref().expect("token"));
    let csr = akamu_client::build_onion_csr(&address, &key_auth, &hs_pem).expect("onion csr");
    client
        .trigger_challenge_onion(&account, &chall.url, &csr)
        .await
        .expect("respond");
    let valid = client
        .poll_authorization(&account, &authz.url, &POLL)
        .await
        .expect("onion-csr-01 validates");
    assert_eq!(valid.status, "valid");
    let order = client
        .poll_order(&account, &order.url)
        .await
        .expect("ready");
    let key = AccountKey::generate("ec:P-256").expect("key");
    let csr = build_csr(&[address.as_str()], key.private_key()).expect("csr");
    let done = client
        .finalize_with(&account, &order, &csr, &POLL)
        .await
        .expect("finalize");
    let pem = client
        .download_certificate(&account, done.certificate.as_deref().expect("url"))
        .await
        .expect("download");
    assert_eq!(dns_sans(&verify_chain(&ca.root_pem(), &pem)), [address]);

    // Invalid responses, each on its own authorization.
    let (hs_pem, address) = hidden_service();
    let (other_pem, _) = hidden_service();
    for case in ["another challenge's key authorization", "another key"] {
        let (_, authz) = onion_authz(address.clone()).await;
        let chall = authz.find_challenge("onion-csr-01").expect("offered");
        let token = chall.token.as_deref().expect("token");
        let csr = if case == "another key" {
            akamu_client::build_onion_csr(&address, &account.key_authorization(token), &other_pem)
        } else {
            akamu_client::build_onion_csr(
                &address,
                &account.key_authorization("AAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                &hs_pem,
            )
        }
        .expect("csr");
        client
            .trigger_challenge_onion(&account, &chall.url, &csr)
            .await
            .expect("respond");
        let err = client
            .poll_authorization(&account, &authz.url, &POLL)
            .await
            .expect_err(case);
        assert!(err.is_acme("incorrectResponse"), "{case}: {err}");
    }
    // RFC 9799's form: the challenge's `nonce` (our token) in the CSR.
    let (hs_pem, address) = hidden_service();
    let (_, authz) = onion_authz(address.clone()).await;
    let chall = authz.find_challenge("onion-csr-01").expect("offered");
    let nonce = chall.extra["nonce"].as_str().expect("nonce");
    assert_eq!(Some(nonce), chall.token.as_deref());
    let csr = akamu_client::build_onion_csr(&address, nonce, &hs_pem).expect("csr");
    client
        .trigger_challenge_onion(&account, &chall.url, &csr)
        .await
        .expect("respond");
    client
        .poll_authorization(&account, &authz.url, &POLL)
        .await
        .expect("the nonce form validates");

    // `{}` instead of a CSR is malformed, and leaves the challenge pending.
    let (_, authz) = onion_authz(address.clone()).await;
    let chall = authz.find_challenge("onion-csr-01").expect("offered");
    let err = client
        .trigger_challenge(&account, chall)
        .await
        .expect_err("no csr");
    assert!(err.is_acme("malformed"), "{err}");

    // A version 2 address (16 characters) is refused at new-order.
    let err = client
        .new_order(&account, &[Identifier::onion("duskgytldkxiuqc6.onion")])
        .await
        .expect_err("v2");
    assert!(err.is_acme("rejectedIdentifier"), "{err}");
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

/// Orders `name` (`*.name` when `wildcard`) as `account`, checks the
/// dns-persist-01 challenge has no token and lists `ca.akamu.test` under
/// `field` (the record form's name for it), publishes `value` at the
/// name's `_validation-persist` record, answers and waits: the order, the
/// authorization's URL and how the authorization ended.
async fn persist_attempt(
    client: &AcmeClient,
    account: &Account,
    dns: &DnsServer,
    field: &str,
    name: &str,
    wildcard: bool,
    value: &str,
) -> (
    akamu_client::Order,
    String,
    Result<akamu_client::Authorization, ClientError>,
) {
    let asked = if wildcard {
        format!("*.{name}")
    } else {
        name.to_owned()
    };
    let order = client
        .new_order(account, &[Identifier::dns(&asked)])
        .await
        .expect("order");
    let authz = client
        .get_authorization(account, &order.authorizations[0])
        .await
        .expect("authz");
    let chall = authz.find_challenge("dns-persist-01").expect("offered");
    assert_eq!(chall.token, None, "no token for dns-persist-01");
    assert_eq!(chall.extra[field], serde_json::json!(["ca.akamu.test"]));
    dns.set_txt(&DnsPersist01Helper::record_name(name), &[value]);
    client
        .trigger_challenge(account, chall)
        .await
        .expect("trigger");
    let result = client.poll_authorization(account, &authz.url, &POLL).await;
    (order, authz.url, result)
}

/// dns-persist-01 (the reference's record format) with
/// `dns_persist_issuer_domain`: offered with the issuer domain and no
/// token; a record naming the issuer and the account validates (a
/// wildcard only with `policy=wildcard`), and the authorization ends no
/// later than `persistUntil`; another issuer, another account, an expired
/// `persistUntil` or a wildcard without the policy do not validate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_persist_01() {
    let dns = DnsServer::start().await;
    let ca = Ca::start_with(
        free_port(),
        free_port(),
        Some(dns.addr()),
        "dns_persist_issuer_domain = \"ca.akamu.test\"\n",
    );
    let client = client(&ca).await;
    let account = register(&client, "ec:P-256").await;
    let other = register(&client, "ec:P-256").await;
    let later = time::OffsetDateTime::now_utc().unix_timestamp() + 3 * 3600;

    let attempt = |name: &'static str, value: String| {
        let (client, account, dns) = (&client, &account, &dns);
        async move {
            let (order, _, result) = persist_attempt(
                client,
                account,
                dns,
                "issuer-domain-names",
                name,
                false,
                &value,
            )
            .await;
            (order, result)
        }
    };
    let record = |acct: &str, wildcard, until| {
        DnsPersist01Helper::txt_value("ca.akamu.test", acct, wildcard, until).expect("value")
    };

    // Valid, with persistUntil bounding the authorization.
    let (order, result) = attempt(
        "persist.example.org",
        record(&account.url, false, Some(later)),
    )
    .await;
    let authz = result.expect("a matching record validates");
    let expires = time::OffsetDateTime::parse(
        authz.expires.as_deref().expect("expires"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339")
    .unix_timestamp();
    assert!(expires <= later, "the authorization ends by persistUntil");
    let order = client
        .poll_order(&account, &order.url)
        .await
        .expect("ready");
    let key = AccountKey::generate("ec:P-256").expect("key");
    let csr = build_csr(&["persist.example.org"], key.private_key()).expect("csr");
    let done = client
        .finalize_with(&account, &order, &csr, &POLL)
        .await
        .expect("finalize");
    assert!(done.certificate.is_some());

    // A wildcard with policy=wildcard.
    let (_, _, result) = persist_attempt(
        &client,
        &account,
        &dns,
        "issuer-domain-names",
        "wild.example.org",
        true,
        &record(&account.url, true, None),
    )
    .await;
    result.expect("a wildcard with policy=wildcard validates");

    // Refusals, each on its own name.
    let cases: [(&'static str, String); 4] = [
        (
            "issuer.example.org",
            format!("other-ca.test; accounturi={}", account.url),
        ),
        ("account.example.org", record(&other.url, false, None)),
        (
            "expired.example.org",
            format!(
                "ca.akamu.test; accounturi={}; persistUntil=2020-01-01T00:00:00Z",
                account.url
            ),
        ),
        ("nopolicy.example.org", record(&account.url, false, None)),
    ];
    for (name, value) in cases {
        let (_, _, result) = persist_attempt(
            &client,
            &account,
            &dns,
            "issuer-domain-names",
            name,
            name == "nopolicy.example.org",
            &value,
        )
        .await;
        let err = result.expect_err(name);
        assert!(err.is_acme("incorrectResponse"), "{name}: {err}");
    }
}

/// dns-persist-01 in draft-ietf-acme-dns-persist-02's form
/// (`dns_persist_form = "draft-02"`): the directory shows
/// `accountHashPrefix`, `issuerDomainNames` and `keyRotationPeriod`, the
/// challenge `issuerDomainNames`; a record with the hashed account URI for
/// the name (or the domain-less form) validates, and after a key rollover
/// a record made with the old key keeps validating for the name it passed
/// for (not for another) until a revocation with a certificate key prunes
/// it. Another issuer, another account, an expired `persistUntil` and a
/// wildcard without the policy are `unauthorized`; a draft-01 record (the
/// account URL) is `malformed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_persist_01_draft_02() {
    let dns = DnsServer::start().await;
    let ca = Ca::start_with(
        free_port(),
        free_port(),
        Some(dns.addr()),
        "dns_persist_issuer_domain = \"CA.akamu.test.\"\ndns_persist_form = \"draft-02\"\n\
         dns_persist_key_rotation_secs = 86400\n",
    );
    let client = client(&ca).await;
    let meta = &client.directory().meta;
    let prefix = meta.account_hash_prefix.clone().expect("accountHashPrefix");
    let base = ca.directory.trim_end_matches("/acme/directory");
    assert_eq!(prefix, format!("{base}/acme/account-hash/"));
    assert_eq!(meta.issuer_domain_names, ["ca.akamu.test"]);
    assert_eq!(meta.key_rotation_period, Some(86400));
    let account = register(&client, "ec:P-256").await;
    let other = register(&client, "ec:P-256").await;
    let later = time::OffsetDateTime::now_utc().unix_timestamp() + 3 * 3600;
    let hashed = |acct: &Account, domain: Option<&str>| {
        DnsPersist01Helper::hashed_account_uri(&prefix, domain, acct.key.thumbprint(), &acct.url)
            .expect("hashed uri")
    };

    let attempt = |acct: Account, name: &'static str, wildcard: bool, value: String| {
        let (client, dns) = (&client, &dns);
        async move {
            persist_attempt(
                client,
                &acct,
                dns,
                "issuerDomainNames",
                name,
                wildcard,
                &value,
            )
            .await
        }
    };
    let record = |uri: &str, wildcard, until| {
        DnsPersist01Helper::txt_value_draft02("ca.akamu.test", uri, wildcard, until)
    };

    // Valid, bounded by persistUntil, and a certificate for it.
    let (order, _, result) = attempt(
        account.clone(),
        "persist2.example.org",
        false,
        record(
            &hashed(&account, Some("persist2.example.org")),
            false,
            Some(later),
        ),
    )
    .await;
    let authz = result.expect("the hashed URI for the name validates");
    let expires = time::OffsetDateTime::parse(
        authz.expires.as_deref().expect("expires"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339")
    .unix_timestamp();
    assert!(expires <= later, "the authorization ends by persistUntil");
    let order = client
        .poll_order(&account, &order.url)
        .await
        .expect("ready");
    let cert_key = AccountKey::generate("ec:P-256").expect("key");
    let csr = build_csr(&["persist2.example.org"], cert_key.private_key()).expect("csr");
    let done = client
        .finalize_with(&account, &order, &csr, &POLL)
        .await
        .expect("finalize");
    let pem = client
        .download_certificate(&account, done.certificate.as_deref().expect("url"))
        .await
        .expect("download");
    verify_chain(&ca.root_pem(), &pem);

    // The domain-less form, with policy=wildcard, for a wildcard.
    let (_, _, result) = attempt(
        account.clone(),
        "wild2.example.org",
        true,
        record(&hashed(&account, None), true, None),
    )
    .await;
    result.expect("the domain-less hashed URI with policy=wildcard validates a wildcard");

    // Refusals, each on its own name, with draft-02 §6.2's types.
    let mine = |name: &str| hashed(&account, Some(name));
    let cases: [(&'static str, bool, String, &str); 6] = [
        (
            "issuer2.example.org",
            false,
            format!("other-ca.test; accounturi={}", mine("issuer2.example.org")),
            "unauthorized",
        ),
        (
            "account2.example.org",
            false,
            record(&hashed(&other, Some("account2.example.org")), false, None),
            "unauthorized",
        ),
        (
            "moved2.example.org",
            false,
            // This account's hash, made for another name.
            record(&mine("elsewhere.example.org"), false, None),
            "unauthorized",
        ),
        (
            "expired2.example.org",
            false,
            record(&mine("expired2.example.org"), false, Some(1_767_225_600)),
            "unauthorized",
        ),
        (
            "nopolicy2.example.org",
            true,
            record(&mine("nopolicy2.example.org"), false, None),
            "unauthorized",
        ),
        (
            "draft01.example.org",
            false,
            format!("ca.akamu.test; accounturi={}", account.url),
            "malformed",
        ),
    ];
    for (name, wildcard, value, kind) in cases {
        let (_, _, result) = attempt(account.clone(), name, wildcard, value).await;
        let err = result.expect_err(name);
        assert!(err.is_acme(kind), "{name}: {kind} expected, got {err}");
    }

    // Key rollover: the record made with the old key keeps validating for
    // the name it passed for, not for a name it never passed for.
    let old_hash = mine("persist2.example.org");
    let never = mine("never2.example.org");
    client
        .deactivate_authorization(&account, &done.authorizations[0])
        .await
        .expect("deactivate, so the next order validates again");
    let rolled = client
        .key_change(
            &account,
            Arc::new(AccountKey::generate("ec:P-256").expect("new key")),
        )
        .await
        .expect("key change");
    assert_ne!(hashed(&rolled, Some("persist2.example.org")), old_hash);
    let (_, retained_authz, result) = attempt(
        rolled.clone(),
        "persist2.example.org",
        false,
        record(&old_hash, false, None),
    )
    .await;
    result.expect("a hash that passed under the old key is retained");
    let (_, _, result) = attempt(
        rolled.clone(),
        "never2.example.org",
        false,
        record(&never, false, None),
    )
    .await;
    let err = result.expect_err("an old-key hash that never passed");
    assert!(err.is_acme("unauthorized"), "{err}");

    // A revocation with the certificate's key prunes the retained hashes.
    let der = pem_to_der(&pem).remove(0);
    client
        .revoke_certificate_with_cert_key(&cert_key, &der, Some(1))
        .await
        .expect("revoke with the certificate key");
    client
        .deactivate_authorization(&rolled, &retained_authz)
        .await
        .expect("deactivate");
    let (_, _, result) = attempt(
        rolled.clone(),
        "persist2.example.org",
        false,
        record(&old_hash, false, None),
    )
    .await;
    let err = result.expect_err("pruned by the revocation");
    assert!(err.is_acme("unauthorized"), "{err}");
    // The current key's record still validates.
    let (_, _, result) = attempt(
        rolled.clone(),
        "persist2.example.org",
        false,
        record(&hashed(&rolled, Some("persist2.example.org")), false, None),
    )
    .await;
    result.expect("the current key's hash");
}

/// RFC 9799 §4 with `tor_connectivity_enabled` and a SOCKS5 proxy standing
/// in for Tor: `.onion` authorizations also offer http-01 and tls-alpn-01
/// (not dns-01; a wildcard still only onion-csr-01), the validator reaches
/// the service through the proxy by name (never through the DNS, which
/// here has no answer for it), and the certificate names the address; a
/// service the proxy cannot reach is a `connection` problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onion_through_tor() {
    let proxy = test_kit::socks::SocksProxy::start().await.expect("proxy");
    let dns = DnsServer::start().await;
    let ca = Ca::start_with(
        free_port(),
        free_port(),
        Some(dns.addr()),
        &format!(
            "tor_connectivity_enabled = true\ntor_socks_proxy = \"{}\"\n",
            proxy.addr()
        ),
    );
    let client = client(&ca).await;
    let account = register(&client, "ec:P-256").await;
    let (_, http_onion) = hidden_service();
    let (_, tls_onion) = hidden_service();
    let (_, gone_onion) = hidden_service();
    for name in [&http_onion, &tls_onion] {
        proxy.route(name, Ipv4Addr::LOCALHOST.into());
    }

    // The wildcard of a hidden service: onion-csr-01 only.
    let order = client
        .new_order(&account, &[Identifier::onion(format!("*.{http_onion}"))])
        .await
        .expect("a wildcard onion order");
    let authz = client
        .get_authorization(&account, &order.authorizations[0])
        .await
        .expect("authz");
    let offered: Vec<&str> = authz.challenges.iter().map(|c| c.r#type.as_str()).collect();
    assert_eq!(offered, ["onion-csr-01"]);

    // http-01 through the proxy.
    let order = client
        .new_order(&account, &[Identifier::onion(http_onion.clone())])
        .await
        .expect("order");
    let authz = client
        .get_authorization(&account, &order.authorizations[0])
        .await
        .expect("authz");
    let mut offered: Vec<&str> = authz.challenges.iter().map(|c| c.r#type.as_str()).collect();
    offered.sort_unstable();
    assert_eq!(offered, ["http-01", "onion-csr-01", "tls-alpn-01"]);
    let solver = Http01Solver::with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, ca.http_port)));
    solver.start().await.expect("solver");
    solve_http01(&client, &account, &order, &solver).await;
    assert!(
        proxy.asked().contains(&(http_onion.clone(), ca.http_port)),
        "the validator went through the proxy by name: {:?}",
        proxy.asked()
    );
    let order = client
        .poll_order(&account, &order.url)
        .await
        .expect("ready");
    let key = AccountKey::generate("ec:P-256").expect("key");
    let csr = build_csr(&[http_onion.as_str()], key.private_key()).expect("csr");
    let done = client
        .finalize_with(&account, &order, &csr, &POLL)
        .await
        .expect("the signer takes an http-01 statement reached through Tor");
    let pem = client
        .download_certificate(&account, done.certificate.as_deref().expect("url"))
        .await
        .expect("download");
    let leaf = verify_chain(&ca.root_pem(), &pem);
    assert_eq!(dns_sans(&leaf), [http_onion.as_str()]);

    // tls-alpn-01 through the proxy.
    let mut tls = TlsAlpn01Solver::with_addr(SocketAddr::from((Ipv4Addr::LOCALHOST, ca.tls_port)));
    tls.start().await.expect("tls solver");
    let order = client
        .new_order(&account, &[Identifier::onion(tls_onion.clone())])
        .await
        .expect("order");
    let authz = client
        .get_authorization(&account, &order.authorizations[0])
        .await
        .expect("authz");
    let chall = authz.find_challenge("tls-alpn-01").expect("offered");
    let token = chall.token.as_deref().expect("token");
    tls.present(
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
        .poll_authorization(&account, &authz.url, &POLL)
        .await
        .expect("tls-alpn-01 through Tor validates");
    assert!(proxy.asked().contains(&(tls_onion.clone(), ca.tls_port)));

    // A service the proxy cannot reach.
    let order = client
        .new_order(&account, &[Identifier::onion(gone_onion.clone())])
        .await
        .expect("order");
    let authz = client
        .get_authorization(&account, &order.authorizations[0])
        .await
        .expect("authz");
    let chall = authz.find_challenge("http-01").expect("offered");
    client
        .trigger_challenge(&account, chall)
        .await
        .expect("trigger");
    let err = client
        .poll_authorization(&account, &authz.url, &POLL)
        .await
        .expect_err("unreachable hidden service");
    assert!(err.is_acme("connection"), "{err}");
}
