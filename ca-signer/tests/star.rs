//! STAR (RFC 8739) in the signer: a STAR order's first certificate needs
//! fresh validator statements and records the order's terms in the audit
//! log; later certificates need no statement but must stay inside those
//! terms (names, account, profile, end-date, lifetime + lifetime-adjust),
//! also after a restart, and every refusal is audited (issue 13).

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ca_signer::audit::{self, Operation};
use ca_signer::ca;
use ca_signer::config::Config;
use ca_signer::service::Issuer;
use shared_proto::signer::{IssueRequest, IssuedCertificate, SignerError, StarTerms};
use shared_proto::statement::{SignedStatement, Statement, StatementKey, public_path};
use shared_proto::validator::ChallengeType;
use shared_proto::{Identifier, transport};

const ACCOUNT: &str = "https://acme.example.org/acme/account/a1";
const LIFETIME: i64 = 3600;
const ADJUST: i64 = 120;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn config(dir: &Path, validator_key: &Path) -> Config {
    let uid = nix::unistd::geteuid().as_raw();
    Config::from_toml(&format!(
        "socket_path = {:?}\nallowed_uids = [{uid}]\nvalidator_public_key_file = {:?}\n\
         [ca]\nkey_file = {:?}\ncert_file = {:?}\nkey_type = \"ec:P-256\"\n\
         [audit]\npath = {:?}\n",
        dir.join("run/signer.sock"),
        public_path(validator_key),
        dir.join("ca/ca.key.pem"),
        dir.join("ca/ca.cert.pem"),
        dir.join("audit/audit.log"),
    ))
    .expect("config")
}

fn issuer(config: &Config) -> Issuer {
    let (ca, _) = ca::load_or_create(&config.ca, now()).expect("CA");
    Issuer::new(ca, config).expect("issuer")
}

fn csr(names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).expect("csr").der().to_vec()
}

fn statement(key: &StatementKey, name: &str) -> SignedStatement {
    key.sign(Statement {
        id: format!("st-{name}"),
        account_uri: ACCOUNT.into(),
        identifier: Identifier::dns(name),
        challenge_type: ChallengeType::Http01,
        validated_at: now(),
        expires: now() + 86_400,
        covers_subdomains: false,
        caa: Some(shared_proto::statement::CaaCheck::Checked { at: now() }),
        perspective: None,
    })
    .expect("sign")
}

/// The STAR order `o1`'s request for `names` with a certificate starting
/// at `start` (pre-dated by [`ADJUST`], [`LIFETIME`] long), ending at the
/// latest at `end_date`.
struct Star {
    csr: Vec<u8>,
    names: Vec<String>,
    end_date: i64,
}

impl Star {
    fn new(names: &[&str], end_date: i64) -> Self {
        Self {
            csr: csr(names),
            names: names.iter().map(|s| s.to_string()).collect(),
            end_date,
        }
    }

    fn request(&self, start: i64, reissue: bool, statements: Vec<SignedStatement>) -> IssueRequest {
        IssueRequest {
            csr_der: self.csr.clone(),
            identifiers: self.names.iter().map(|n| Identifier::dns(n)).collect(),
            not_before: Some(start - ADJUST),
            not_after: Some(start + LIFETIME),
            account_uri: ACCOUNT.into(),
            order_id: "o1".into(),
            statements,
            profile: None,
            processing_since: None,
            star: Some(StarTerms {
                end_date: self.end_date,
                lifetime_secs: LIFETIME,
                lifetime_adjust_secs: ADJUST,
                reissue,
            }),
        }
    }
}

fn issue(issuer: &Issuer, request: &IssueRequest) -> Result<IssuedCertificate, SignerError> {
    issuer
        .issue(request, None, now(), &mut rand::rng())
        .map_err(|e| e.to_signer_error())
}

fn refused(issuer: &Issuer, request: &IssueRequest, why: &str) {
    match issue(issuer, request) {
        Err(SignerError::PolicyRefused(detail)) => {
            assert!(detail.contains(why), "{why:?} not in {detail:?}")
        }
        other => panic!("expected a refusal ({why}), got {other:?}"),
    }
}

fn records(dir: &Path) -> Vec<audit::Record> {
    audit::read_verified(&dir.join("audit/audit.log"))
        .expect("audit verifies")
        .0
}

#[test]
fn reissues_need_no_statement_but_stay_inside_the_recorded_terms() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("validator/statement.key");
    let validator = StatementKey::load_or_create(&key_path).expect("validator key");
    let config = config(dir.path(), &key_path);
    let issuer = issuer(&config);
    let t0 = now();
    let end_date = t0 + 3 * LIFETIME;
    let star = Star::new(&["a.example.org", "b.example.org"], end_date);

    // A reissue before any first issuance: the signer has no record.
    refused(&issuer, &star.request(t0, true, vec![]), "no record");
    // The first issuance needs statements like any other.
    match issue(&issuer, &star.request(t0, false, vec![])) {
        Err(SignerError::Unvalidated(_)) => {}
        other => panic!("a first issuance without statements: {other:?}"),
    }
    let statements = vec![
        statement(&validator, "a.example.org"),
        statement(&validator, "b.example.org"),
    ];
    let first = issue(&issuer, &star.request(t0, false, statements.clone())).expect("first");
    assert_eq!(
        (first.not_before, first.not_after),
        (t0 - ADJUST, t0 + LIFETIME)
    );
    let recorded = records(dir.path())
        .into_iter()
        .find(|r| r.operation == Operation::Issue)
        .and_then(|r| r.star)
        .expect("the terms are in the issue record");
    assert_eq!(recorded.end_date, end_date);
    assert_eq!(
        recorded.identifiers,
        ["dns:a.example.org", "dns:b.example.org"]
    );
    assert_eq!(recorded.account, ACCOUNT);

    // A reissue, no statements, starting later: a new certificate.
    let next = issue(&issuer, &star.request(t0 + LIFETIME / 2, true, vec![])).expect("reissue");
    assert_ne!(next.serial_hex, first.serial_hex);
    assert_eq!(next.not_after, t0 + LIFETIME / 2 + LIFETIME);

    // The terms survive a restart: the audit log is the record.
    drop(issuer);
    let issuer = self::issuer(&config);
    let later = issue(&issuer, &star.request(t0 + LIFETIME, true, vec![])).expect("after restart");
    assert_ne!(later.serial_hex, next.serial_hex);

    // Past the end-date.
    refused(
        &issuer,
        &star.request(end_date - LIFETIME + 1, true, vec![]),
        "after the order's end-date",
    );
    // Longer than lifetime + lifetime-adjust.
    let mut long = star.request(t0 + 60, true, vec![]);
    long.not_before = long.not_before.map(|t| t - 1);
    refused(&issuer, &long, "exceeds the order's lifetime");
    // Other names (with the CSR to match), another account, another order.
    let other = Star::new(&["a.example.org", "c.example.org"], end_date);
    refused(
        &issuer,
        &other.request(t0 + 60, true, vec![]),
        "other identifiers",
    );
    let mut stranger = star.request(t0 + 60, true, vec![]);
    stranger.account_uri = "https://acme.example.org/acme/account/a2".into();
    refused(&issuer, &stranger, "another account");
    let mut unknown = star.request(t0 + 60, true, vec![]);
    unknown.order_id = "o2".into();
    refused(&issuer, &unknown, "no record");
    // The frontend cannot restate the order's terms with a later end-date
    // and a reissue: the record decides.
    let mut stretched = star.request(end_date, true, vec![]);
    if let Some(t) = stretched.star.as_mut() {
        t.end_date = end_date + 10 * LIFETIME;
    }
    refused(&issuer, &stretched, "after the order's end-date");
    // Nor record them again on a fresh first issuance.
    let mut again = Star::new(&["a.example.org", "b.example.org"], end_date + LIFETIME).request(
        t0 + 60,
        false,
        statements,
    );
    again.csr_der = star.csr.clone();
    refused(&issuer, &again, "other terms");

    let log = records(dir.path());
    let issued = log
        .iter()
        .filter(|r| r.operation == Operation::Issue)
        .count();
    let star_refusals = log
        .iter()
        .filter(|r| r.operation == Operation::Refusal)
        .filter(|r| r.detail.as_deref().is_some_and(|d| d.contains("STAR")))
        .count();
    assert_eq!(issued, 3, "first, reissue, reissue after the restart");
    assert_eq!(star_refusals, 8, "every STAR refusal is audited: {log:#?}");
}

/// Over the real socket: a caller that is not the validator cannot get a
/// reissue of an order the signer never issued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unrecorded_reissue_is_refused_over_the_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_path = dir.path().join("validator/statement.key");
    StatementKey::load_or_create(&key_path).expect("validator key");
    let config = config(dir.path(), &key_path);
    std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
    let server = ca_signer::server::Server::start(&config).expect("start");
    let path = server.socket_path().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve_until(async move {
        let _ = stop_rx.await;
    }));
    let stream = transport::connect(&path).await.expect("connect");
    let client = shared_proto::signer::SignerRpcClient::new(
        tarpc::client::Config::default(),
        transport::framed(stream),
    )
    .spawn();
    let star = Star::new(&["a.example.org"], now() + 3 * LIFETIME);
    let answer = client
        .issue_certificate(
            shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL),
            star.request(now(), true, vec![]),
        )
        .await
        .expect("rpc");
    assert!(
        matches!(&answer, Err(SignerError::PolicyRefused(d)) if d.contains("no record")),
        "{answer:?}"
    );
    let _ = stop_tx.send(());
    let _ = handle.await;
}
