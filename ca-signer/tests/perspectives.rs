//! Multi-perspective corroboration (BR §3.2.2.9) checked by the signer
//! itself, over its real socket: with `[[perspectives]]` configured, a
//! caller holding a valid validator statement still gets no certificate
//! unless the statement carries corroborations from a quorum of the
//! trusted perspectives, each verifying with that perspective's key. Every
//! refusal names the perspectives that did not corroborate and is in the
//! audit log.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ca_signer::audit::{self, Operation};
use ca_signer::config::Config;
use ca_signer::server::Server;
use shared_proto::signer::{IssueRequest, SignerError, SignerRpcClient};
use shared_proto::statement::{
    CaaCheck, Corroboration, Perspective, SignedStatement, Statement, StatementKey, public_path,
};
use shared_proto::validator::ChallengeType;
use shared_proto::{Identifier, transport};

const ACCOUNT: &str = "https://acme.example.org/acme/account/a1";
const NAME: &str = "mpic.example.org";
/// The five trusted perspectives and their RIR labels.
const PERSPECTIVES: [(&str, &str); 5] = [
    ("p1", "ARIN"),
    ("p2", "RIPE"),
    ("p3", "APNIC"),
    ("p4", "LACNIC"),
    ("p5", "AFRINIC"),
];

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn config(dir: &Path, validator_key: &Path) -> Config {
    let uid = nix::unistd::geteuid().as_raw();
    let mut text = format!(
        "socket_path = {:?}\nallowed_uids = [{uid}]\nvalidator_public_key_file = {:?}\n\
         [ca]\nkey_file = {:?}\ncert_file = {:?}\nkey_type = \"ec:P-256\"\n\
         [audit]\npath = {:?}\n",
        dir.join("run/signer.sock"),
        public_path(validator_key),
        dir.join("ca/ca.key.pem"),
        dir.join("ca/ca.cert.pem"),
        dir.join("audit/audit.log"),
    );
    for (name, rir) in PERSPECTIVES {
        text.push_str(&format!(
            "[[perspectives]]\nname = {name:?}\nrir = {rir:?}\npublic_key_file = {:?}\n",
            public_path(&dir.join(format!("{name}.key")))
        ));
    }
    Config::from_toml(&text).expect("config")
}

fn csr(names: &[&str]) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).expect("csr").der().to_vec()
}

/// The statement of `name` validated by http-01 now, by `perspective`
/// (`None`: the primary).
fn statement(name: &str, perspective: Option<(&str, &str)>) -> Statement {
    Statement {
        id: format!("{}-{name}", perspective.map_or("primary", |p| p.0)),
        account_uri: ACCOUNT.into(),
        identifier: Identifier::dns(name),
        challenge_type: ChallengeType::Http01,
        validated_at: now(),
        expires: now() + 3600,
        covers_subdomains: false,
        caa: Some(CaaCheck::Checked { at: now() }),
        perspective: perspective.map(|(name, rir)| Perspective {
            name: name.into(),
            rir: rir.into(),
        }),
    }
}

fn corroboration(key: &StatementKey, st: Statement) -> Corroboration {
    key.sign(st).expect("sign").into()
}

fn request(primary: SignedStatement, corroborations: Vec<Corroboration>) -> IssueRequest {
    let mut primary = primary;
    primary.corroborations = corroborations;
    IssueRequest {
        csr_der: csr(&[NAME]),
        identifiers: vec![Identifier::dns(NAME)],
        not_before: None,
        not_after: None,
        account_uri: ACCOUNT.into(),
        order_id: "o1".into(),
        statements: vec![primary],
        profile: None,
        processing_since: None,
        star: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_needs_a_quorum_of_trusted_perspectives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let validator_key_path = d.join("validator.key");
    let validator = StatementKey::load_or_create(&validator_key_path).expect("validator key");
    let keys: Vec<StatementKey> = PERSPECTIVES
        .iter()
        .map(|(name, _)| StatementKey::load_or_create(&d.join(format!("{name}.key"))).expect("key"))
        .collect();
    let forger = StatementKey::load_or_create(&d.join("forger.key")).expect("forger key");
    std::fs::create_dir_all(d.join("run")).expect("mkdir");
    let server = Server::start(&config(d, &validator_key_path)).expect("start");
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

    let primary = || validator.sign(statement(NAME, None)).expect("sign");
    // Perspective `i`'s honest corroboration.
    let honest = |i: usize| corroboration(&keys[i], statement(NAME, Some(PERSPECTIVES[i])));
    let honest_of = |which: &[usize]| which.iter().map(|&i| honest(i)).collect::<Vec<_>>();

    // All five, and four of five (BR: at most one may fail for 2–5).
    for which in [&[0, 1, 2, 3, 4][..], &[0, 1, 2, 3]] {
        let issued = call(request(primary(), honest_of(which))).await;
        assert!(issued.is_ok(), "{which:?}: {issued:?}");
    }

    let mut other_name = statement("other.example.org", Some(PERSPECTIVES[3]));
    other_name.id = "other".into();
    let mut stale = statement(NAME, Some(PERSPECTIVES[3]));
    stale.validated_at = now() - 2 * 86_400;
    let mut old_caa = statement(NAME, Some(PERSPECTIVES[3]));
    old_caa.caa = Some(CaaCheck::Checked { at: now() - 86_000 });
    let refusals: Vec<(&str, Vec<Corroboration>, Vec<&str>)> = vec![
        (
            "three of five",
            honest_of(&[0, 1, 2]),
            vec!["p4 (LACNIC): no statement", "p5 (AFRINIC): no statement"],
        ),
        (
            "none",
            Vec::new(),
            vec!["0 of 5", "p1 (ARIN): no statement"],
        ),
        (
            "p4's statement forged with another key",
            [
                honest_of(&[0, 1, 2]),
                vec![corroboration(
                    &forger,
                    statement(NAME, Some(PERSPECTIVES[3])),
                )],
            ]
            .concat(),
            vec![
                "p4 (LACNIC): a statement that does not verify with its key",
                "p5 (AFRINIC): no statement",
            ],
        ),
        (
            "an unknown perspective's statement",
            [
                honest_of(&[0, 1, 2]),
                vec![corroboration(
                    &forger,
                    statement(NAME, Some(("p9", "RIPE"))),
                )],
            ]
            .concat(),
            vec!["unknown perspectives p9", "p4 (LACNIC): no statement"],
        ),
        (
            "p4 vouching for another name",
            [
                honest_of(&[0, 1, 2]),
                vec![corroboration(&keys[3], other_name)],
            ]
            .concat(),
            vec!["p4 (LACNIC): a statement of another validation"],
        ),
        (
            "p4's statement too old",
            [honest_of(&[0, 1, 2]), vec![corroboration(&keys[3], stale)]].concat(),
            vec!["p4 (LACNIC): a stale statement"],
        ),
        (
            "p4's CAA check too old",
            [
                honest_of(&[0, 1, 2]),
                vec![corroboration(&keys[3], old_caa)],
            ]
            .concat(),
            vec!["p4 (LACNIC): a statement without a recent CAA check of this name"],
        ),
        (
            // One perspective's key signing for all the others.
            "p1 signing as everyone",
            PERSPECTIVES
                .iter()
                .map(|&p| corroboration(&keys[0], statement(NAME, Some(p))))
                .collect(),
            vec![
                "1 of 5",
                "p2 (RIPE): a statement that does not verify with its key",
            ],
        ),
    ];
    let n_refusals = refusals.len();
    for (what, corroborations, needles) in refusals {
        match call(request(primary(), corroborations)).await {
            Err(SignerError::Unvalidated(detail)) => {
                assert!(detail.contains(NAME), "{what}: {detail}");
                assert!(
                    detail.contains("multi-perspective corroboration not met"),
                    "{what}: {detail}"
                );
                for needle in needles {
                    assert!(detail.contains(needle), "{what}: {needle:?} in {detail}");
                }
            }
            other => panic!("{what}: {other:?}"),
        }
    }

    stop_tx.send(()).expect("stop");
    handle.await.expect("join").expect("serve");
    let (records, _) = audit::read_verified(&d.join("audit/audit.log")).expect("audit verifies");
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.operation == Operation::Refusal)
        .collect();
    assert_eq!(refused.len(), n_refusals, "every refusal is audited");
    assert!(
        refused.iter().all(|r| {
            r.detail.as_deref().is_some_and(|d| {
                d.contains("multi-perspective corroboration of dns:mpic.example.org")
            })
        }),
        "{refused:?}"
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r.operation == Operation::Issue)
            .count(),
        2
    );
}

/// A signer configured with perspectives refuses to start without the
/// validator's key, and with two entries of the same name.
#[test]
fn perspective_settings_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let base = format!(
        "socket_path = {:?}\nallowed_uids = [1]\n[ca]\nkey_file = {:?}\ncert_file = {:?}\n",
        d.join("s.sock"),
        d.join("k.pem"),
        d.join("c.pem")
    );
    let entry = "[[perspectives]]\nname = \"p1\"\nrir = \"ARIN\"\npublic_key_file = \"/p1.pub\"\n";
    let no_validator = format!("insecure_issue_without_statements = true\n{base}{entry}");
    let e = Config::from_toml(&no_validator).expect_err("needs the validator key");
    assert!(e.to_string().contains("perspectives"), "{e}");
    let twice = format!("validator_public_key_file = \"/v.pub\"\n{base}{entry}{entry}");
    let e = Config::from_toml(&twice).expect_err("duplicate");
    assert!(e.to_string().contains("unique"), "{e}");
}
