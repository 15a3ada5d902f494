//! The signer trusts no caller: over its real socket, a client that can talk
//! to it but does not hold the validator's key cannot get a certificate for
//! a name no validator statement covers (issue 5, "validator statements").

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ca_signer::config::{Config, KeyType};
use ca_signer::server::Server;
use shared_proto::signer::{IssueRequest, SignerError, SignerRpcClient};
use shared_proto::statement::{CaaCheck, SignedStatement, Statement, StatementKey, public_path};
use shared_proto::validator::ChallengeType;
use shared_proto::{Identifier, transport};

const ACCOUNT: &str = "https://acme.example.org/acme/account/a1";

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn config(dir: &Path, validator_key: &Path) -> Config {
    config_with(dir, validator_key, "")
}

/// [`config`] with `tables` (whole TOML tables such as `[policy]`) appended.
fn config_with(dir: &Path, validator_key: &Path, tables: &str) -> Config {
    let uid = nix::unistd::geteuid().as_raw();
    let text = format!(
        "socket_path = {:?}\nallowed_uids = [{uid}]\nvalidator_public_key_file = {:?}\n\
         [ca]\nkey_file = {:?}\ncert_file = {:?}\nkey_type = \"ec:P-256\"\n\
         [audit]\npath = {:?}\n{tables}",
        dir.join("run/signer.sock"),
        public_path(validator_key),
        dir.join("ca/ca.key.pem"),
        dir.join("ca/ca.cert.pem"),
        dir.join("audit/audit.log"),
    );
    let c = Config::from_toml(&text).expect("config");
    assert_eq!(c.ca.key_type, KeyType::EcP256);
    c
}

fn csr(names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).expect("csr").der().to_vec()
}

fn statement(
    key: &StatementKey,
    id: Identifier,
    ct: ChallengeType,
    account: &str,
    expires: i64,
) -> SignedStatement {
    key.sign(Statement {
        id: "t".into(),
        account_uri: account.into(),
        identifier: id,
        challenge_type: ct,
        validated_at: now(),
        expires,
        covers_subdomains: false,
        caa: Some(CaaCheck::Checked { at: now() }),
        perspective: None,
    })
    .expect("sign")
}

/// A dns-01 (or `ct`) statement for `name` that says it covers the names
/// below it (RFC 9444).
fn ancestor_statement(key: &StatementKey, name: &str, ct: ChallengeType) -> SignedStatement {
    key.sign(Statement {
        id: format!("anc-{name}"),
        account_uri: ACCOUNT.into(),
        identifier: Identifier::dns(name),
        challenge_type: ct,
        validated_at: now(),
        expires: now() + 3600,
        covers_subdomains: true,
        caa: Some(CaaCheck::Checked { at: now() }),
        perspective: None,
    })
    .expect("sign")
}

/// An http-01 statement for `name` and [`ACCOUNT`] named `id`, validated at
/// `validated_at` and expiring a day from now.
fn statement_at(key: &StatementKey, id: &str, name: &str, validated_at: i64) -> SignedStatement {
    key.sign(Statement {
        id: id.into(),
        account_uri: ACCOUNT.into(),
        identifier: Identifier::dns(name),
        challenge_type: ChallengeType::Http01,
        validated_at,
        expires: now() + 86_400,
        covers_subdomains: false,
        caa: Some(CaaCheck::Checked { at: validated_at }),
        perspective: None,
    })
    .expect("sign")
}

fn request(names: &[&str], statements: Vec<SignedStatement>) -> IssueRequest {
    IssueRequest {
        csr_der: csr(names),
        identifiers: names.iter().map(|n| Identifier::dns(n)).collect(),
        not_before: None,
        not_after: None,
        account_uri: ACCOUNT.into(),
        order_id: "o1".into(),
        statements,
        profile: None,
        processing_since: None,
        star: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_needs_a_valid_statement_for_every_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let validator_key_path = dir.path().join("validator/statement.key");
    let validator = StatementKey::load_or_create(&validator_key_path).expect("validator key");
    let forger = StatementKey::load_or_create(&dir.path().join("forger.key")).expect("forger key");
    let config = config(dir.path(), &validator_key_path);
    std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
    let server = Server::start(&config).expect("start");
    let path = server.socket_path().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve_until(async move {
        let _ = stop_rx.await;
    }));
    let stream = transport::connect(&path).await.expect("connect");
    let client =
        SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream)).spawn();
    let call = |req: IssueRequest| {
        let client = client.clone();
        async move {
            client
                .issue_certificate(
                    shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL),
                    req,
                )
                .await
                .expect("rpc")
        }
    };

    let a = Identifier::dns("a.example.org");
    let b = Identifier::dns("b.example.org");
    let later = now() + 3600;
    let good_a = statement(&validator, a.clone(), ChallengeType::Http01, ACCOUNT, later);
    let good_b = statement(&validator, b.clone(), ChallengeType::Dns01, ACCOUNT, later);

    let refusals = [
        ("no statement", request(&["a.example.org"], vec![])),
        (
            "forged statement",
            request(
                &["a.example.org"],
                vec![statement(
                    &forger,
                    a.clone(),
                    ChallengeType::Http01,
                    ACCOUNT,
                    later,
                )],
            ),
        ),
        (
            "another account",
            request(
                &["a.example.org"],
                vec![statement(
                    &validator,
                    a.clone(),
                    ChallengeType::Http01,
                    "https://acme.example.org/acme/account/other",
                    later,
                )],
            ),
        ),
        (
            "expired",
            request(
                &["a.example.org"],
                vec![statement(
                    &validator,
                    a.clone(),
                    ChallengeType::Http01,
                    ACCOUNT,
                    now() - 1,
                )],
            ),
        ),
        (
            "one name uncovered",
            request(&["a.example.org", "b.example.org"], vec![good_a.clone()]),
        ),
        (
            "wildcard by http-01",
            request(
                &["*.example.org"],
                vec![statement(
                    &validator,
                    Identifier::dns("*.example.org"),
                    ChallengeType::Http01,
                    ACCOUNT,
                    later,
                )],
            ),
        ),
        (
            "subdomain of a statement that does not cover subdomains",
            request(
                &["a.example.org"],
                vec![statement(
                    &validator,
                    Identifier::dns("example.org"),
                    ChallengeType::Dns01,
                    ACCOUNT,
                    later,
                )],
            ),
        ),
        (
            "subdomains by http-01",
            request(
                &["a.example.org"],
                vec![ancestor_statement(
                    &validator,
                    "example.org",
                    ChallengeType::Http01,
                )],
            ),
        ),
        (
            "subdomains of a public suffix",
            request(
                &["example.co.uk"],
                vec![ancestor_statement(
                    &validator,
                    "co.uk",
                    ChallengeType::Dns01,
                )],
            ),
        ),
        (
            "subdomain flag set after signing",
            request(&["c.example.org"], {
                let mut s = statement(
                    &validator,
                    Identifier::dns("example.org"),
                    ChallengeType::Dns01,
                    ACCOUNT,
                    later,
                );
                s.statement.covers_subdomains = true;
                vec![s]
            }),
        ),
        (
            "tampered statement",
            request(&["b.example.org"], {
                let mut s = good_a.clone();
                s.statement.identifier = b.clone();
                vec![s]
            }),
        ),
    ];
    for (what, req) in refusals {
        let result = call(req).await;
        assert!(
            matches!(result, Err(SignerError::Unvalidated(_))),
            "{what}: {result:?}"
        );
    }

    let issued = call(request(
        &["a.example.org", "b.example.org"],
        vec![good_a, good_b],
    ))
    .await
    .expect("covered names are issued");
    assert!(!issued.der.is_empty());
    let wildcard = call(request(
        &["*.example.org"],
        vec![statement(
            &validator,
            Identifier::dns("*.example.org"),
            ChallengeType::Dns01,
            ACCOUNT,
            later,
        )],
    ))
    .await;
    assert!(wildcard.is_ok(), "wildcard by dns-01: {wildcard:?}");
    // Names below a dns-01 ancestor statement covering subdomains: its CAA
    // check was of the ancestor, so each name below needs a statement of
    // its own CAA check (what the validator's caa_for_subdomain signs) ...
    let names = ["deep.a.example.org", "*.b.example.org", "example.org"];
    let ancestor = ancestor_statement(&validator, "example.org", ChallengeType::Dns01);
    let alone = call(request(&names, vec![ancestor.clone()])).await;
    assert!(
        matches!(&alone, Err(SignerError::Caa(d)) if d.contains("deep.a.example.org")),
        "the ancestor's CAA check does not stand for names below it: {alone:?}"
    );
    let mut own = vec![ancestor];
    for name in ["deep.a.example.org", "*.b.example.org"] {
        own.push(statement(
            &validator,
            Identifier::dns(name),
            ChallengeType::Dns01,
            ACCOUNT,
            later,
        ));
    }
    let below = call(request(&names, own)).await;
    assert!(
        below.is_ok(),
        "names below a dns-01 ancestor statement, each with its CAA check: {below:?}"
    );
    // ... unless the validator checks no CAA at all.
    let mut unchecked = ancestor_statement(&validator, "example.org", ChallengeType::Dns01);
    unchecked.statement.caa = Some(CaaCheck::NotConfigured);
    let unchecked = validator.sign(unchecked.statement).expect("sign");
    let below = call(request(&names, vec![unchecked])).await;
    assert!(below.is_ok(), "no CAA configured: {below:?}");

    // Every refusal is in the audit log.
    let log = std::fs::read_to_string(dir.path().join("audit/audit.log")).expect("audit log");
    let refusals = log
        .lines()
        .filter(|l| l.contains("not validated") || l.contains("no valid validation statement"))
        .count();
    assert_eq!(refusals, 11, "audit log:\n{log}");

    stop_tx.send(()).expect("stop");
    handle.await.expect("join").expect("serve");
}

/// The signer decides how old a statement it relies on, whatever `expires`
/// the statement carries: one older than `[policy] statement_max_age_secs`
/// (or dated too far in the future) covers nothing, and the refusal is
/// audited with the stale statement named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_older_than_the_signers_maximum_cover_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let validator_key_path = dir.path().join("validator/statement.key");
    let validator = StatementKey::load_or_create(&validator_key_path).expect("validator key");
    let config = config_with(
        dir.path(),
        &validator_key_path,
        "[policy]\nstatement_max_age_secs = 3600\n",
    );
    std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
    let server = Server::start(&config).expect("start");
    let path = server.socket_path().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve_until(async move {
        let _ = stop_rx.await;
    }));
    let stream = transport::connect(&path).await.expect("connect");
    let client =
        SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream)).spawn();
    let call = |req: IssueRequest| {
        let client = client.clone();
        async move {
            client
                .issue_certificate(
                    shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL),
                    req,
                )
                .await
                .expect("rpc")
        }
    };

    let name = "a.example.org";
    let stale = statement_at(&validator, "stale-statement-1", name, now() - 7200);
    let result = call(request(&[name], vec![stale.clone()])).await;
    match &result {
        Err(SignerError::Unvalidated(detail)) => {
            assert!(detail.starts_with(&format!("dns:{name} ")), "{detail}");
            assert!(detail.contains("3600 s"), "{detail}");
        }
        other => panic!("a stale statement is refused: {other:?}"),
    }
    let future = statement_at(&validator, "future-statement-1", name, now() + 3600);
    let result = call(request(&[name], vec![future])).await;
    assert!(
        matches!(&result, Err(SignerError::Unvalidated(d)) if d.contains("future")),
        "{result:?}"
    );
    // A fresh statement beside the stale one is enough.
    let fresh = statement_at(&validator, "fresh-statement-1", name, now() - 1800);
    let issued = call(request(&[name], vec![stale, fresh])).await;
    assert!(issued.is_ok(), "{issued:?}");

    let log = std::fs::read_to_string(dir.path().join("audit/audit.log")).expect("audit log");
    let records: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    let refusals: Vec<&str> = records
        .iter()
        .filter(|r| r["operation"] == "refusal")
        .map(|r| r["detail"].as_str().expect("detail"))
        .collect();
    assert_eq!(refusals.len(), 2, "{log}");
    assert!(
        refusals[0].contains("stale-statement-1") && refusals[0].contains("3600"),
        "{}",
        refusals[0]
    );
    assert!(
        refusals[1].contains("future-statement-1"),
        "{}",
        refusals[1]
    );
    assert_eq!(
        records.iter().filter(|r| r["operation"] == "issue").count(),
        1
    );

    stop_tx.send(()).expect("stop");
    handle.await.expect("join").expect("serve");
}

/// RFC 8659 and the Baseline Requirements: the signer refuses a name whose
/// fresh statement has no CAA check or one older than `[policy]
/// caa_max_age_secs`, with a `caa` refusal naming the name; a statement
/// saying the validator checks no CAA, or a fresh check, is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_with_a_stale_or_missing_caa_check_cover_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let validator_key_path = dir.path().join("validator/statement.key");
    let validator = StatementKey::load_or_create(&validator_key_path).expect("validator key");
    let config = config_with(
        dir.path(),
        &validator_key_path,
        "[policy]\ncaa_max_age_secs = 600\n",
    );
    std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
    let server = Server::start(&config).expect("start");
    let path = server.socket_path().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve_until(async move {
        let _ = stop_rx.await;
    }));
    let stream = transport::connect(&path).await.expect("connect");
    let client =
        SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream)).spawn();
    let call = |req: IssueRequest| {
        let client = client.clone();
        async move {
            client
                .issue_certificate(
                    shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL),
                    req,
                )
                .await
                .expect("rpc")
        }
    };
    let with_caa = |id: &str, name: &str, caa: Option<CaaCheck>| {
        let mut st = statement_at(&validator, id, name, now() - 60).statement;
        st.caa = caa;
        validator.sign(st).expect("sign")
    };

    let name = "caa.example.org";
    let old = with_caa(
        "old-caa",
        name,
        Some(CaaCheck::Checked { at: now() - 1200 }),
    );
    let result = call(request(&[name], vec![old])).await;
    assert!(
        matches!(&result, Err(SignerError::Caa(d)) if d.contains(name) && d.contains("600 s")),
        "{result:?}"
    );
    let none = with_caa("no-caa", name, None);
    let result = call(request(&[name], vec![none])).await;
    assert!(
        matches!(&result, Err(SignerError::Caa(d)) if d.contains("no CAA check")),
        "{result:?}"
    );
    // "Not applicable" is for IP addresses only.
    let na = with_caa("na-caa", name, Some(CaaCheck::NotApplicable));
    let result = call(request(&[name], vec![na])).await;
    assert!(matches!(&result, Err(SignerError::Caa(_))), "{result:?}");

    let fresh = with_caa(
        "fresh-caa",
        name,
        Some(CaaCheck::Checked { at: now() - 300 }),
    );
    assert!(call(request(&[name], vec![fresh])).await.is_ok());
    let other = "off.example.org";
    let off = with_caa("off-caa", other, Some(CaaCheck::NotConfigured));
    assert!(call(request(&[other], vec![off])).await.is_ok());

    stop_tx.send(()).expect("stop");
    handle.await.expect("join").expect("serve");
}
