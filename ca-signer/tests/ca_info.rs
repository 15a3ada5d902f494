//! `SignerRpc::ca_info` over the real socket: the signer, which owns what the
//! CA is, tells the frontend its chain, the URLs and profiles it puts in
//! leaves and its limits.

use std::path::Path;

use ca_signer::config::Config;
use ca_signer::server::Server;
use shared_proto::signer::{ProfileInfo, SignerRpcClient};
use shared_proto::transport;

fn config(dir: &Path) -> Config {
    let uid = nix::unistd::geteuid().as_raw();
    Config::from_toml(&format!(
        r#"socket_path = {socket:?}
allowed_uids = [{uid}]
insecure_issue_without_statements = true
[ca]
key_file = {key:?}
cert_file = {cert:?}
validity_days = 30
crl_url = "http://crl.example.org/ca.crl"
ocsp_url = "http://ocsp.example.org"
ca_issuers_url = "http://crt.example.org/ca.der"
[policy]
max_validity_days = 60
default_profile = "web"
[profiles.web]
validity_hours = 240
max_sans = 10
[profiles.mtls]
max_sans = 3
client_auth = true
authz_reuse_secs = 3600
"#,
        socket = dir.join("run/signer.sock"),
        key = dir.join("ca/ca.key.pem"),
        cert = dir.join("ca/ca.cert.pem"),
    ))
    .expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_info_reports_the_configured_ca() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config(dir.path());
    std::fs::create_dir_all(dir.path().join("run")).expect("mkdir");
    let server = Server::start(&config).expect("start");
    let ca_not_after = server.issuer().ca().not_after();
    let path = server.socket_path().to_owned();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve_until(async move {
        let _ = stop_rx.await;
    }));
    let stream = transport::connect(&path).await.expect("connect");
    let client =
        SignerRpcClient::new(tarpc::client::Config::default(), transport::framed(stream)).spawn();
    let info = client
        .ca_info(shared_proto::deadline::context_with(
            shared_proto::deadline::SIGNER_CALL,
        ))
        .await
        .expect("rpc")
        .expect("CA info");

    assert_eq!(
        info.chain_pem.as_bytes(),
        std::fs::read(&config.ca.cert_file).expect("CA certificate")
    );
    assert_eq!(
        info.crl_url.as_deref(),
        Some("http://crl.example.org/ca.crl")
    );
    assert_eq!(info.ocsp_url.as_deref(), Some("http://ocsp.example.org"));
    assert_eq!(
        info.ca_issuers_url.as_deref(),
        Some("http://crt.example.org/ca.der")
    );
    assert_eq!(info.default_profile, "web");
    assert_eq!(info.max_validity_secs, 60 * 86_400);
    assert_eq!(info.ca_not_after, ca_not_after);
    assert!(ca_not_after > 0);
    let server_auth = || vec!["serverAuth".to_owned()];
    assert_eq!(
        info.profiles,
        [
            ProfileInfo {
                name: "mtls".to_owned(),
                validity_secs: 30 * 86_400,
                max_sans: 3,
                extended_key_usages: vec!["serverAuth".to_owned(), "clientAuth".to_owned()],
                authz_reuse_secs: Some(3600),
            },
            ProfileInfo {
                name: "web".to_owned(),
                validity_secs: 240 * 3600,
                max_sans: 10,
                extended_key_usages: server_auth(),
                authz_reuse_secs: None,
            },
        ],
        "every configured profile, sorted by name"
    );

    stop_tx.send(()).expect("stop");
    handle.await.expect("join").expect("serve");
}

/// With no `[profiles]`, the one profile is `tls-server` with the `[ca]`
/// validity, and the URLs are absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ca_info_of_a_minimal_signer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uid = nix::unistd::geteuid().as_raw();
    let config = Config::from_toml(&format!(
        "socket_path = {:?}\nallowed_uids = [{uid}]\ninsecure_issue_without_statements = true\n\
         [ca]\nkey_file = {:?}\ncert_file = {:?}\n",
        dir.path().join("run/signer.sock"),
        dir.path().join("ca/ca.key.pem"),
        dir.path().join("ca/ca.cert.pem"),
    ))
    .expect("config");
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
    let info = client
        .ca_info(shared_proto::deadline::context_with(
            shared_proto::deadline::SIGNER_CALL,
        ))
        .await
        .expect("rpc")
        .expect("CA info");
    assert_eq!(
        (info.crl_url, info.ocsp_url, info.ca_issuers_url),
        (None, None, None)
    );
    assert_eq!(info.default_profile, "tls-server");
    assert_eq!(
        info.profiles,
        [ProfileInfo {
            name: "tls-server".to_owned(),
            validity_secs: 90 * 86_400,
            max_sans: 100,
            extended_key_usages: vec!["serverAuth".to_owned()],
            authz_reuse_secs: None,
        }]
    );
    assert_eq!(info.max_validity_secs, 100 * 86_400);
    stop_tx.send(()).expect("stop");
    handle.await.expect("join").expect("serve");
}
