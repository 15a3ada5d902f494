//! The TLS modes of the operations guide against the real binaries: a
//! certificate from our CA with the configured key type (mode 2), an
//! operator's certificate served as it is and reloaded on SIGHUP (mode 3),
//! mutual TLS with every refusal named in the log (mode 4), the TLS
//! versions and the hybrid X25519MLKEM768 key exchange. Mode 1 (behind
//! nginx) is in `proxy.rs`.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use openssl::x509::X509;
use rustls::NamedGroup;
use rustls::crypto::aws_lc_rs::kx_group;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::version::{TLS12, TLS13};
use test_kit::ports::free_port;

use crate::support::procs::{Ca, CaOptions, binary_path};
use crate::support::tls::{
    Kind, Pair, client_config, connect, ec_key, get, issue, openssl_get, request, root, rsa_key,
};

/// The frontend's address and directory path (`listen_port` chosen here).
struct Target {
    addr: SocketAddr,
    directory: String,
}

impl Target {
    fn new(port: u16) -> Target {
        Target {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            directory: "/acme/directory".to_owned(),
        }
    }
}

async fn start(port: u16, tls_toml: String) -> Ca {
    Ca::start_async(CaOptions {
        listen_port: Some(port),
        tls_toml: Some(tls_toml),
        ..CaOptions::default()
    })
    .await
}

/// The certificates of the CA's own certificate file (trust anchors).
fn our_ca(ca: &Ca) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(ca.ca_cert())
        .expect("CA cert")
        .map(|c| c.expect("PEM"))
        .collect()
}

/// Waits until the CA's output contains `needle` (up to 10 s).
async fn wait_for_log(ca: &Ca, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ca.output().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "the frontend never logged {needle:?}; its output:\n{}",
            ca.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
}

/// Mode 2 with `bootstrap_key_type = "ec:P-384"` and
/// `protocols = ["TLSv1.3"]`: the certificate comes from our CA with a
/// P-384 key; a client offering only X25519MLKEM768 completes a TLS 1.3
/// handshake on that group, one offering only X25519 on X25519, and a TLS
/// 1.2-only client is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_2_key_type_tls13_only_and_hybrid_key_exchange() {
    let port = free_port();
    let ca = start(
        port,
        "enabled = true\nserver_name = \"localhost\"\nbootstrap_key_type = \"ec:P-384\"\n\
         protocols = [\"TLSv1.3\"]\n"
            .into(),
    )
    .await;
    let t = Target::new(port);
    let roots = our_ca(&ca);

    let hybrid = client_config(
        &roots,
        None,
        &[&TLS13],
        Some(vec![kx_group::X25519MLKEM768]),
    );
    let mut session = connect(t.addr, hybrid).await.expect("hybrid handshake");
    assert_eq!(session.group, Some(NamedGroup::X25519MLKEM768));
    assert_eq!(session.version, Some(rustls::ProtocolVersion::TLSv1_3));
    let leaf = X509::from_der(&session.server_leaf).expect("leaf");
    let curve = leaf
        .public_key()
        .ok()
        .and_then(|k| k.ec_key().ok())
        .and_then(|k| k.group().curve_name());
    assert_eq!(
        curve,
        Some(openssl::nid::Nid::SECP384R1),
        "bootstrap_key_type"
    );
    let answer = request(&mut session, &t.directory)
        .await
        .expect("directory");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("newAccount"), "{}", answer.body);

    let classical = client_config(&roots, None, &[&TLS13], Some(vec![kx_group::X25519]));
    let session = connect(t.addr, classical).await.expect("X25519 handshake");
    assert_eq!(session.group, Some(NamedGroup::X25519));

    let tls12 = client_config(&roots, None, &[&TLS12], None);
    let refused = get(t.addr, tls12, &t.directory).await;
    assert!(refused.is_err(), "a TLS 1.2-only client got {refused:?}");
}

/// An operator's certificate made by rcgen (not our CA).
fn operator_leaf(issuer: &rcgen::Issuer<'_, rcgen::KeyPair>) -> (String, String) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "acme.operator.test");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

/// Mode 3: an operator's certificate (rcgen, its own CA) is served as it
/// is and its files are never written; SIGHUP with new files gives new
/// connections the new certificate while a connection opened before the
/// reload finishes its request on the old one; a reload that fails keeps
/// serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_3_operator_certificate_is_kept_and_reloaded_on_sighup() {
    let files = tempfile::tempdir().expect("tempdir");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Operator CA");
    let ca_key = rcgen::KeyPair::generate().expect("key");
    let operator_root = ca_params.self_signed(&ca_key).expect("root");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let roots = vec![operator_root.der().clone()];

    let cert_file = files.path().join("server.crt");
    let key_file = files.path().join("server.key");
    let (cert1, key1) = operator_leaf(&issuer);
    std::fs::write(&cert_file, &cert1).expect("write");
    write_private(&key_file, &key1);

    let port = free_port();
    let ca = start(
        port,
        format!(
            "enabled = true\ncert_file = {:?}\nkey_file = {:?}\nserver_name = \"localhost\"\n",
            cert_file.display().to_string(),
            key_file.display().to_string()
        ),
    )
    .await;
    let t = Target::new(port);
    let signer_toml = std::fs::read_to_string(ca.state_dir().join("signer.toml")).expect("read");
    assert!(
        !signer_toml.contains("[server_certificate]"),
        "the signer was asked to issue over the operator's certificate:\n{signer_toml}"
    );
    let der1 = CertificateDer::from_pem_slice(cert1.as_bytes()).expect("pem");
    let config = client_config(&roots, None, &[&TLS13, &TLS12], None);
    let mut early = connect(t.addr, config.clone()).await.expect("handshake");
    assert_eq!(
        early.server_leaf, der1,
        "the operator's certificate is served"
    );
    assert_eq!(std::fs::read_to_string(&cert_file).expect("read"), cert1);
    assert_eq!(std::fs::read_to_string(&key_file).expect("read"), key1);

    // A request in flight across the reload: headers half sent before it.
    use tokio::io::AsyncWriteExt;
    early
        .stream
        .write_all(format!("GET {} HTTP/1.1\r\n", t.directory).as_bytes())
        .await
        .expect("first line");
    early.stream.flush().await.expect("flush");

    let (cert2, key2) = operator_leaf(&issuer);
    std::fs::write(&cert_file, &cert2).expect("write");
    write_private(&key_file, &key2);
    kill(Pid::from_raw(ca.ready().frontend_pid), Signal::SIGHUP).expect("SIGHUP");
    wait_for_log(&ca, "TLS certificate and settings reloaded").await;

    let der2 = CertificateDer::from_pem_slice(cert2.as_bytes()).expect("pem");
    let mut late = connect(t.addr, config.clone()).await.expect("handshake");
    assert_eq!(
        late.server_leaf, der2,
        "a new connection gets the new certificate"
    );
    let answer = request(&mut late, &t.directory)
        .await
        .expect("new connection");
    assert_eq!(answer.status, 200);

    early
        .stream
        .write_all(b"Host: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("rest of the request");
    let answer = request_rest(&mut early).await;
    assert_eq!(
        answer.status, 200,
        "the connection from before the reload finishes"
    );
    assert_eq!(early.server_leaf, der1);

    // A broken pair is refused and the last good certificate stays.
    std::fs::remove_file(&key_file).expect("rm");
    kill(Pid::from_raw(ca.ready().frontend_pid), Signal::SIGHUP).expect("SIGHUP");
    wait_for_log(
        &ca,
        "TLS reload failed, still serving the previous certificate",
    )
    .await;
    assert!(
        ca.output()
            .contains("TLS cert and key must both be present or both absent"),
        "{}",
        ca.output()
    );
    let still = connect(t.addr, config).await.expect("handshake");
    assert_eq!(still.server_leaf, der2);
    assert_eq!(std::fs::read_to_string(&cert_file).expect("read"), cert2);
}

/// Reads the rest of an answer whose request was written by hand.
async fn request_rest(session: &mut crate::support::tls::Session) -> crate::support::tls::Answer {
    use tokio::io::AsyncReadExt;
    let mut raw = Vec::new();
    tokio::time::timeout(
        Duration::from_secs(10),
        session.stream.read_to_end(&mut raw),
    )
    .await
    .expect("answer in time")
    .expect("read");
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text}"));
    crate::support::tls::Answer {
        status,
        body: String::new(),
    }
}

/// Only one of the two files: the frontend refuses to start with the
/// reference's message, and the lone file is left as it was.
#[test]
fn half_a_pair_is_a_startup_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_file = dir.path().join("server.crt");
    let (cert, _) = operator_leaf(&rcgen::Issuer::new(
        rcgen::CertificateParams::new(Vec::<String>::new()).expect("params"),
        rcgen::KeyPair::generate().expect("key"),
    ));
    std::fs::write(&cert_file, &cert).expect("write");
    let config = dir.path().join("akamu.toml");
    std::fs::write(
        &config,
        format!(
            "listen_addr = \"127.0.0.1:{}\"\nstate_dir = {:?}\n[tls]\nenabled = true\n\
             cert_file = {:?}\nkey_file = {:?}\n",
            free_port(),
            dir.path().join("state").display().to_string(),
            cert_file.display().to_string(),
            dir.path().join("server.key").display().to_string(),
        ),
    )
    .expect("write");
    let mut child = Command::new(binary_path("acme-frontend"))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("acme-frontend kept running with half a TLS pair");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("TLS cert and key must both be present or both absent"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&cert_file).expect("read"), cert);
    assert!(!dir.path().join("server.key").exists());
}

/// The client PKI of the mTLS tests.
struct ClientPki {
    root: Pair,
    inter1: Pair,
    inter2: Pair,
    other_root: Pair,
}

impl ClientPki {
    fn new() -> ClientPki {
        let root = root("Client Root");
        let inter1 = issue("Client Sub 1", ec_key(), Kind::Ca, Some(&root), -1, 30);
        let inter2 = issue("Client Sub 2", ec_key(), Kind::Ca, Some(&inter1), -1, 30);
        let other_root = root_named("Stranger Root");
        ClientPki {
            root,
            inter1,
            inter2,
            other_root,
        }
    }

    fn ca_file(&self, dir: &Path) -> String {
        let path = dir.join("client-ca.crt");
        std::fs::write(&path, self.root.cert_pem()).expect("write");
        path.display().to_string()
    }
}

fn root_named(cn: &str) -> Pair {
    root(cn)
}

fn leaf(cn: &str, issuer: &Pair) -> Pair {
    issue(cn, ec_key(), Kind::Client, Some(issuer), -1, 30)
}

/// Mode 4, `required = true`, `max_chain_depth = 2`,
/// `minimum_rsa_modulus = 3072`, profile `webpki`: no certificate, an
/// expired one, one from another CA, a chain three deep, a leaf without
/// the clientAuth EKU and RSA-1024/2048 leaves are refused at the handshake
/// and the log names each reason; good chains (one and two deep) get the
/// directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_4_required_client_certificates() {
    let pki = ClientPki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let ca = start(
        port,
        format!(
            "enabled = true\nserver_name = \"localhost\"\n\n[tls.client_auth]\nrequired = true\n\
             ca_files = [{:?}]\nmax_chain_depth = 2\nminimum_rsa_modulus = 3072\n",
            pki.ca_file(dir.path())
        ),
    )
    .await;
    let t = Target::new(port);
    let roots = our_ca(&ca);
    let versions = [&TLS13, &TLS12];
    let with =
        |chain: &[&Pair]| client_config(&roots, Some((chain, &chain[0].key)), &versions, None);

    // Good: directly under the root, and through one intermediate.
    let good = leaf("good.client.test", &pki.root);
    let answer = get(t.addr, with(&[&good]), &t.directory)
        .await
        .expect("good client");
    assert_eq!(answer.status, 200);
    assert!(answer.body.contains("newAccount"));
    let via = leaf("via.client.test", &pki.inter1);
    let answer = get(t.addr, with(&[&via, &pki.inter1]), &t.directory)
        .await
        .expect("two-deep chain");
    assert_eq!(answer.status, 200);
    // The openssl client used for the RSA cases below is accepted with a
    // good chain, so its refusals are the server's verdicts.
    let answer = tokio::task::spawn_blocking({
        let good = good.clone();
        let addr = t.addr;
        let path = t.directory.clone();
        move || openssl_get(addr, &[&good], &path)
    })
    .await
    .expect("join")
    .expect("openssl client with a good chain");
    assert_eq!(answer.status, 200);

    // No certificate.
    let anonymous = client_config(&roots, None, &versions, None);
    let refused = get(t.addr, anonymous.clone(), &t.directory).await;
    assert!(refused.is_err(), "no certificate: {refused:?}");
    wait_for_log(
        &ca,
        "client cert verification failed: no client certificate presented",
    )
    .await;
    // TLS 1.2 refuses it in the handshake itself.
    let tls12 = client_config(&roots, None, &[&TLS12], None);
    assert!(get(t.addr, tls12, &t.directory).await.is_err());

    let expired = issue(
        "old.client.test",
        ec_key(),
        Kind::Client,
        Some(&pki.root),
        -30,
        -1,
    );
    let stranger = leaf("stranger.client.test", &pki.other_root);
    let deep = leaf("deep.client.test", &pki.inter2);
    let bare = issue(
        "bare.client.test",
        ec_key(),
        Kind::Bare,
        Some(&pki.root),
        -1,
        30,
    );
    let cases: Vec<(&str, Vec<&Pair>, &str)> = vec![
        (
            "expired",
            vec![&expired],
            "client cert verification failed: the certificate has expired",
        ),
        (
            "wrong CA",
            vec![&stranger],
            "client cert verification failed: unknown issuer",
        ),
        (
            "too deep",
            vec![&deep, &pki.inter2, &pki.inter1],
            "client cert verification failed: the chain has 3 certificates above the leaf, more than max_chain_depth = 2",
        ),
        (
            "no clientAuth EKU",
            vec![&bare],
            "client cert verification failed: the certificate is not for client authentication",
        ),
    ];
    for (what, chain, reason) in cases {
        let refused = get(t.addr, with(&chain), &t.directory).await;
        assert!(refused.is_err(), "{what}: {refused:?}");
        wait_for_log(&ca, reason).await;
    }
    for bits in [1024, 2048] {
        let weak = issue(
            &format!("rsa{bits}.client.test"),
            rsa_key(bits),
            Kind::Client,
            Some(&pki.root),
            -1,
            30,
        );
        let (addr, path) = (t.addr, t.directory.clone());
        let refused = tokio::task::spawn_blocking(move || openssl_get(addr, &[&weak], &path))
            .await
            .expect("join");
        assert!(refused.is_err(), "RSA-{bits}: {refused:?}");
        wait_for_log(
            &ca,
            &format!(
                "client cert verification failed: the leaf has a {bits}-bit RSA key, below minimum_rsa_modulus = 3072"
            ),
        )
        .await;
    }
}

/// Mode 4 with `required = false` and profile `rfc5280`: a client without
/// a certificate is served (TLS 1.2 and 1.3), a leaf without SAN or EKU is
/// accepted, and a certificate that is sent must still verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mode_4_optional_client_certificates() {
    let pki = ClientPki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let ca = start(
        port,
        format!(
            "enabled = true\nserver_name = \"localhost\"\n\n[tls.client_auth]\nrequired = false\n\
             ca_files = [{:?}]\nprofile = \"rfc5280\"\n",
            pki.ca_file(dir.path())
        ),
    )
    .await;
    let t = Target::new(port);
    let roots = our_ca(&ca);
    for version in [&TLS13, &TLS12] {
        let anonymous = client_config(&roots, None, &[version], None);
        let answer = get(t.addr, anonymous, &t.directory)
            .await
            .expect("anonymous");
        assert_eq!(answer.status, 200);
    }
    let bare = issue(
        "bare.client.test",
        ec_key(),
        Kind::Bare,
        Some(&pki.root),
        -1,
        30,
    );
    let config = client_config(&roots, Some((&[&bare], &bare.key)), &[&TLS13], None);
    let answer = get(t.addr, config, &t.directory)
        .await
        .expect("rfc5280 leaf");
    assert_eq!(answer.status, 200);

    let stranger = leaf("stranger.client.test", &pki.other_root);
    let config = client_config(&roots, Some((&[&stranger], &stranger.key)), &[&TLS13], None);
    assert!(get(t.addr, config, &t.directory).await.is_err());
    wait_for_log(&ca, "client cert verification failed: unknown issuer").await;
}
