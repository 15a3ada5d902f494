//! An order is signed at most once, and no certificate is signed without
//! being recorded: a repeated request (the frontend died between the
//! signer's answer and its own commit, and asks again) is answered with the
//! certificate already signed, whether the signer still holds it in memory,
//! holds it only in its audit log (evicted from the table of recent
//! issuances, or restarted since), or is signing it right now for an
//! identical request.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use ca_signer::audit::{self, Operation};
use ca_signer::ca;
use ca_signer::config::Config;
use ca_signer::server::Server;
use ca_signer::service::Issuer;
use shared_proto::signer::{IssueRequest, IssuedCertificate, SignerRpcClient};
use shared_proto::{Identifier, transport};

/// The table bound in these tests: small, so a few issuances evict.
const TABLE: usize = 4;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

fn config(dir: &Path) -> Config {
    let uid = nix::unistd::geteuid().as_raw();
    Config::from_toml(&format!(
        "socket_path = {:?}\nallowed_uids = [{uid}]\ninsecure_issue_without_statements = true\n\
         [ca]\nkey_file = {:?}\ncert_file = {:?}\n\
         [audit]\npath = {:?}\nrecent_issuances = {TABLE}\n",
        dir.join("run/signer.sock"),
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

fn csr(name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.serialize_request(&key).expect("csr").der().to_vec()
}

/// The request of order `order` for `name`, processing since `since`.
fn request(order: &str, name: &str, since: Option<i64>) -> IssueRequest {
    IssueRequest {
        csr_der: csr(name),
        identifiers: vec![Identifier::dns(name)],
        not_before: None,
        not_after: None,
        account_uri: "https://acme.example.org/acme/acct/1".to_owned(),
        order_id: order.to_owned(),
        statements: Vec::new(),
        profile: None,
        processing_since: since,
        star: None,
    }
}

fn issue(issuer: &Issuer, request: &IssueRequest) -> IssuedCertificate {
    issuer
        .issue(request, None, now(), &mut rand::rng())
        .expect("issue")
}

/// The serials of the audit log's issue records, in order.
fn issued_serials(dir: &Path) -> Vec<String> {
    let (records, _) = audit::read_verified(&dir.join("audit/audit.log")).expect("audit verifies");
    records
        .into_iter()
        .filter(|r| r.operation == Operation::Issue)
        .filter_map(|r| r.serial)
        .collect()
}

#[test]
fn a_repeat_the_table_no_longer_holds_is_answered_from_the_audit_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let issuer = issuer(&config);
    let since = now() - 2;
    let first = request("order-a", "a.example.org", Some(since));
    let without_since = request("order-b", "b.example.org", None);
    let a = issue(&issuer, &first);
    let b = issue(&issuer, &without_since);
    for i in 0..3 * TABLE {
        issue(
            &issuer,
            &request(&format!("other-{i}"), "c.example.org", Some(now())),
        );
    }
    let records = issued_serials(dir.path()).len();

    let repeat = issue(&issuer, &first);
    assert!(repeat.der == a.der, "the certificate already signed");
    assert_eq!(repeat.serial_hex, a.serial_hex);
    assert_eq!(repeat.chain_pem, a.chain_pem);
    assert_eq!(
        issued_serials(dir.path()).len(),
        records,
        "no new signature"
    );

    // A request without processing_since that the table no longer holds
    // is a new issuance (the frontend always sends it).
    let again = issue(&issuer, &without_since);
    assert_ne!(again.serial_hex, b.serial_hex, "a second certificate");
    assert_eq!(issued_serials(dir.path()).len(), records + 1);

    // After a restart the table holds only the log's last issuances: the
    // repeat is found in the log again, several times over.
    drop(issuer);
    let restarted = self::issuer(&config);
    for _ in 0..2 {
        let repeat = issue(&restarted, &first);
        assert!(repeat.der == a.der, "after a restart");
        assert_eq!(repeat.not_before, a.not_before);
        assert_eq!(repeat.not_after, a.not_after);
    }
    assert_eq!(issued_serials(dir.path()).len(), records + 1);
    let serials = issued_serials(dir.path());
    assert_eq!(
        serials.iter().filter(|s| **s == a.serial_hex).count(),
        1,
        "order-a was signed once"
    );
}

/// A torn last line (a record being appended, or a crash mid-write cut
/// off by hand for the test) does not stop the search.
#[test]
fn the_search_ignores_a_line_being_appended() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    let issuer = issuer(&config);
    let first = request("order-a", "a.example.org", Some(now()));
    let a = issue(&issuer, &first);
    for i in 0..2 * TABLE {
        issue(
            &issuer,
            &request(&format!("other-{i}"), "c.example.org", Some(now())),
        );
    }
    use std::io::Write;
    let mut log = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("audit/audit.log"))
        .expect("open");
    log.write_all(b"{\"seq\":99,\"time\":1,\"operation\":\"iss")
        .expect("torn line");
    assert!(issue(&issuer, &first).der == a.der);
}

/// Identical requests that arrive together, over the real socket, get one
/// certificate: the others wait for the first and get its answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn identical_concurrent_requests_are_signed_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
    let server = Server::start(&config).expect("start");
    let path = server.socket_path().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve_until(async move {
        let _ = stop_rx.await;
    }));

    for round in 0..3 {
        let req = request(&format!("order-{round}"), "a.example.org", Some(now()));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            // A connection each, as separate frontend workers would have.
            let stream = transport::connect(&path).await.expect("connect");
            let client =
                SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream))
                    .spawn();
            let req = req.clone();
            tasks.push(tokio::spawn(async move {
                client
                    .issue_certificate(
                        shared_proto::deadline::context_with(shared_proto::deadline::SIGNER_CALL),
                        req,
                    )
                    .await
                    .expect("rpc")
                    .expect("issued")
            }));
        }
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.expect("join"));
        }
        assert!(
            answers.iter().all(|a| a.der == answers[0].der),
            "round {round}: one certificate"
        );
        let serials = issued_serials(dir.path());
        assert_eq!(serials.len(), round + 1, "round {round}: one audit record");
        assert_eq!(serials[round], answers[0].serial_hex);
    }

    stop_tx.send(()).expect("stop");
    handle.await.expect("join").expect("serve");
}
