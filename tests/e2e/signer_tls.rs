//! The signer over the network (issue 17): `ca-signer` listens on
//! 127.0.0.1 with mutual TLS beside its Unix socket, and a separately
//! started `acme-frontend` reaches it over TCP (`[signer] address`). Then:
//! - instant-acme gets a certificate that verifies against the root, and
//!   the signer's audit record and log name the front end's TLS client
//!   name;
//! - a client without a certificate, one with a certificate from another
//!   CA, and one whose name is not in `client_names` are refused, and the
//!   signer's log names each reason;
//! - the Unix socket keeps serving beside TCP;
//! - a restarted signer binds its port again at once and the frontend
//!   redials it.
//!
//! The links' PKI (a CA, the signer's certificate, client certificates) is
//! made with rcgen; none of it is the ACME CA.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use instant_acme::NewAccount;
use shared_proto::signer::SignerRpcClient;
use shared_proto::tls::{ClientFiles, ClientTls};
use shared_proto::transport::{self, TransportError};

use crate::support::certs::{dns_sans, verify_chain};
use crate::support::client::{account_builder_trusting, issue_http01};
use crate::support::dns::DnsServer;
use crate::support::http01::Http01Server;
use crate::support::link_pki::{LinkCa, write_file};
use crate::support::procs::{binary_path, free_port};

const FRONTEND_NAME: &str = "frontend-1.ca.internal";
const SIGNER_NAME: &str = "signer.ca.internal";

/// A daemon started for the test, its stderr in a file, stopped on drop.
struct Daemon {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn start(name: &'static str, config: &Path, dir: &Path) -> Daemon {
        let binary = match name {
            "signer" => "ca-signer",
            "validator" => "validator-worker",
            _ => "acme-frontend",
        };
        let log = dir.join(format!("{name}.log"));
        let mut child = Command::new(binary_path(binary))
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            while let Some(Ok(line)) = lines.next() {
                if line.starts_with("READY ") {
                    let _ = tx.send(());
                }
            }
        });
        let daemon = Daemon { name, child, log };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            panic!("{name} did not print READY:\n{}", daemon.output());
        }
        daemon
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits up to 10 s for a line of the daemon's log holding every one of
    /// `needles`, and returns it.
    async fn wait_for_line(&self, needles: &[&str]) -> String {
        for _ in 0..100 {
            if let Some(line) = self
                .output()
                .lines()
                .find(|l| needles.iter().all(|n| l.contains(n)))
            {
                return line.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} logged no line with {needles:?}:\n{}",
            self.name,
            self.output()
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Client files for a certificate `(chain, key)` saved under `prefix`.
fn client_files(dir: &Path, prefix: &str, leaf: &(String, String), ca: &Path) -> ClientFiles {
    ClientFiles {
        ca_file: ca.to_owned(),
        cert_file: write_file(dir, &format!("{prefix}.crt"), &leaf.0, 0o644),
        key_file: write_file(dir, &format!("{prefix}.key"), &leaf.1, 0o600),
        server_name: SIGNER_NAME.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frontend_reaches_the_signer_over_mutual_tls_and_strangers_are_refused() {
    let top = tempfile::tempdir().expect("tempdir");
    let dir = top.path();
    let uid = nix::unistd::geteuid().as_raw();
    // Started as root, the frontend would become `akamu-frontend` unless
    // told to stay.
    let stay = if uid == 0 {
        "user = \"root\"\ngroup = \"root\"\n"
    } else {
        ""
    };

    // The links' PKI.
    let links = LinkCa::new("Akāmu links CA (test)");
    let links_ca = write_file(dir, "links-ca.pem", &links.cert_pem, 0o644);
    let signer_leaf = links.leaf(&[SIGNER_NAME], false);
    let signer_cert = write_file(dir, "signer-link.crt", &signer_leaf.0, 0o644);
    let signer_key = write_file(dir, "signer-link.key", &signer_leaf.1, 0o600);
    let frontend = client_files(
        dir,
        "frontend-link",
        &links.leaf(&[FRONTEND_NAME], true),
        &links_ca,
    );
    let intruder = client_files(
        dir,
        "intruder",
        &links.leaf(&["intruder.ca.internal"], true),
        &links_ca,
    );
    let other_ca = LinkCa::new("Another CA");
    let forged = client_files(
        dir,
        "forged",
        &other_ca.leaf(&[FRONTEND_NAME], true),
        &links_ca,
    );

    // The validator, on its socket.
    let dns = DnsServer::start().await;
    let http_port = free_port();
    let http = Http01Server::start(http_port).await;
    let statement_key = dir.join("statement.key");
    let validator_socket = dir.join("validator.sock");
    let validator_toml = dir.join("validator.toml");
    std::fs::write(
        &validator_toml,
        format!(
            "socket_path = {validator_socket:?}\nallowed_uids = [{uid}]\n\
             statement_key_file = {statement_key:?}\nhttp_validation_port = {http_port}\n\
             dns_resolver_addr = \"{}\"\nallow_private_targets = true\n",
            dns.addr(),
        ),
    )
    .expect("validator config");
    let _validator = Daemon::start("validator", &validator_toml, dir);

    // The signer: its socket, and TCP with mutual TLS.
    let signer_port = free_port();
    let signer_socket = dir.join("signer.sock");
    let audit = dir.join("audit.log");
    let ca_cert = dir.join("ca.cert.pem");
    let signer_toml = dir.join("signer.toml");
    std::fs::write(
        &signer_toml,
        format!(
            "socket_path = {signer_socket:?}\nallowed_uids = [{uid}]\n\
             validator_public_key_file = {:?}\n\
             [tcp]\nlisten_addr = \"127.0.0.1:{signer_port}\"\ncert_file = {signer_cert:?}\n\
             key_file = {signer_key:?}\nclient_ca_file = {links_ca:?}\n\
             client_names = [\"{FRONTEND_NAME}\", \"frontend-2.ca.internal\"]\n\
             [ca]\nkey_file = {:?}\ncert_file = {ca_cert:?}\n\
             [audit]\npath = {audit:?}\n\
             [server_certificate]\nnames = [\"localhost\", \"127.0.0.1\"]\ncert_file = {:?}\nkey_file = {:?}\n",
            shared_proto::statement::public_path(&statement_key),
            dir.join("ca.key.pem"),
            dir.join("server.crt"),
            dir.join("server.key"),
        ),
    )
    .expect("signer config");
    let signer = Daemon::start("signer", &signer_toml, dir);

    // The frontend, started on its own, reaches the signer over TCP only.
    let listen_port = free_port();
    let frontend_toml = dir.join("frontend.toml");
    std::fs::write(
        &frontend_toml,
        format!(
            "listen_addr = \"127.0.0.1:{listen_port}\"\nbase_url = \"https://localhost:{listen_port}\"\n\
             state_dir = {:?}\n{stay}\
             [database]\npath = {:?}\n\
             [tls]\nenabled = true\ncert_file = {:?}\nkey_file = {:?}\n\
             [server]\nhttp_validation_port = {http_port}\nallow_private_targets = true\n\
             [signer]\naddress = \"127.0.0.1:{signer_port}\"\nca_file = {:?}\n\
             cert_file = {:?}\nkey_file = {:?}\nserver_name = \"{SIGNER_NAME}\"\n\
             [validator]\nsocket_path = {validator_socket:?}\n\
             [launcher]\nenabled = false\n",
            dir.join("frontend-state"),
            dir.join("akamu.db"),
            dir.join("server.crt"),
            dir.join("server.key"),
            frontend.ca_file,
            frontend.cert_file,
            frontend.key_file,
        ),
    )
    .expect("frontend config");
    let frontend_proc = Daemon::start("frontend", &frontend_toml, dir);

    // An ACME issuance through the frontend, signed over the TCP link.
    let (account, _) = account_builder_trusting(&ca_cert)
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            format!("https://localhost:{listen_port}/acme/directory"),
            None,
        )
        .await
        .expect("account");
    let names = ["remote-signer.example.org"];
    let issued = issue_http01(&account, &http, &names).await;
    let work = tempfile::tempdir().expect("tempdir");
    let leaf = verify_chain(work.path(), &ca_cert, &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["remote-signer.example.org"]);

    // The signer knows the front end by its client name: in its log and
    // in its audit record.
    signer
        .wait_for_line(&["TLS connection accepted", FRONTEND_NAME])
        .await;
    signer
        .wait_for_line(&[
            "issued certificate",
            "remote-signer.example.org",
            FRONTEND_NAME,
        ])
        .await;
    let records = std::fs::read_to_string(&audit).expect("audit log");
    let issue: serde_json::Value = records
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("audit JSON"))
        .find(|r| {
            r["operation"] == "issue"
                && r["names"].to_string().contains("remote-signer.example.org")
        })
        .unwrap_or_else(|| panic!("no audit record of the issuance:\n{records}"));
    assert_eq!(issue["requester_client"], FRONTEND_NAME, "{issue}");
    assert!(issue["requester_uid"].is_null(), "{issue}");

    let addr = format!("127.0.0.1:{signer_port}");

    // 1. No client certificate: the handshake's verdict arrives as an
    // alert, and the signer logs why.
    let mut roots = rustls::RootCertStore::empty();
    for cert in shared_proto::tls::load_certs(&links_ca).expect("links CA") {
        roots.add(cert).expect("anchor");
    }
    let anonymous = rustls::ClientConfig::builder_with_provider(shared_proto::tls::provider())
        .with_protocol_versions(shared_proto::tls::VERSIONS)
        .expect("TLS 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let anonymous = ClientTls::from_config(
        Arc::new(anonymous),
        rustls::pki_types::ServerName::try_from(SIGNER_NAME).expect("name"),
    );
    let refused = transport::connect_tls(&addr, &anonymous).await;
    assert!(
        matches!(&refused, Err(TransportError::Tls(_))),
        "a client without a certificate: {:?}",
        refused.map(|_| ())
    );
    signer
        .wait_for_line(&["refused TLS connection", "no client certificate"])
        .await;

    // 2. A certificate with the right name from another CA.
    let forged_tls = ClientTls::load(&forged).expect("forged client");
    let refused = transport::connect_tls(&addr, &forged_tls).await;
    assert!(
        matches!(&refused, Err(TransportError::Tls(_))),
        "a certificate from another CA: {:?}",
        refused.map(|_| ())
    );
    signer
        .wait_for_line(&["refused TLS connection", "unknown CA"])
        .await;

    // 3. A certificate from the right CA whose name is not allowed: the
    // preamble answers "refused".
    let intruder_tls = ClientTls::load(&intruder).expect("intruder client");
    let refused = transport::connect_tls(&addr, &intruder_tls).await;
    assert!(
        matches!(&refused, Err(TransportError::Refused)),
        "a name not in client_names: {:?}",
        refused.map(|_| ())
    );
    signer
        .wait_for_line(&[
            "refused TLS connection",
            "client name not allowed",
            "intruder.ca.internal",
        ])
        .await;

    // 4. The signer verifies its own name: a client expecting another name
    // gives up before sending anything.
    let wrong_name = ClientTls::load(&ClientFiles {
        server_name: "other.ca.internal".into(),
        ..frontend.clone()
    })
    .expect("client");
    assert!(matches!(
        transport::connect_tls(&addr, &wrong_name).await,
        Err(TransportError::Tls(_))
    ));

    // The allowed client reaches the service over TCP, and the Unix socket
    // keeps serving beside it.
    let allowed = ClientTls::load(&frontend).expect("frontend client");
    let tcp = transport::connect_tls(&addr, &allowed)
        .await
        .expect("the allowed client");
    let client = SignerRpcClient::new(Default::default(), transport::framed(tcp)).spawn();
    let info = client
        .ca_info(shared_proto::deadline::context_with(Duration::from_secs(5)))
        .await
        .expect("rpc over TCP")
        .expect("ca_info");
    let unix = transport::connect(&signer_socket)
        .await
        .expect("the Unix socket still admits our uid");
    let client = SignerRpcClient::new(Default::default(), transport::framed(unix)).spawn();
    let over_unix = client
        .ca_info(shared_proto::deadline::context_with(Duration::from_secs(5)))
        .await
        .expect("rpc over the socket")
        .expect("ca_info");
    assert_eq!(info.chain_pem, over_unix.chain_pem);

    // The signer restarts on the same port at once (its closed connections
    // in TIME_WAIT do not hold the port), and the frontend redials it.
    drop(signer);
    let signer = Daemon::start("signer", &signer_toml, dir);
    let names = ["after-restart.example.org"];
    let issued = issue_http01(&account, &http, &names).await;
    let leaf = verify_chain(work.path(), &ca_cert, &issued.chain_pem);
    assert_eq!(dns_sans(&leaf), vec!["after-restart.example.org"]);
    signer
        .wait_for_line(&[
            "issued certificate",
            "after-restart.example.org",
            FRONTEND_NAME,
        ])
        .await;

    drop(frontend_proc);
}
