//! Debian's lego, unmodified, is a second third-party judge: `lego run` with
//! its built-in http-01 server, trusting the CA through
//! `LEGO_CA_CERTIFICATES`.

use std::process::Stdio;
use std::time::Duration;

use crate::issuance::start_ca;
use crate::support::certs::{dns_sans, split_chain, verify_chain};
use crate::support::dns::DnsServer;
use crate::support::procs::{tail, which};

/// How long lego may take for one certificate.
const LEGO_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_http01_issues_a_verifiable_certificate() {
    let lego = which("lego").unwrap_or_else(|| {
        panic!("lego is not installed: `apt-get install lego` (CI installs it itself)")
    });
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let name = "lego.example.org";
    let work = tempfile::tempdir().expect("tempdir");
    let d = work.path();

    let mut cmd = tokio::process::Command::new(&lego);
    cmd.arg("--server")
        .arg(ca.directory())
        .args(["--accept-tos", "--email", "e2e@example.org"])
        .args(["--domains", name])
        .arg("--http")
        .arg("--http.port")
        .arg(format!("127.0.0.1:{}", ca.http_validation_port()))
        .arg("--path")
        .arg(d)
        .arg("run")
        .env("LEGO_CA_CERTIFICATES", ca.ca_cert())
        // Loopback only: never let a proxy setting send lego elsewhere.
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env("NO_PROXY", "localhost,127.0.0.1")
        .stdin(Stdio::null())
        .kill_on_drop(true);

    let out = tokio::time::timeout(LEGO_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("lego did not finish within {LEGO_TIMEOUT:?}"))
        .expect("run lego");
    assert!(
        out.status.success(),
        "lego failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        tail(&String::from_utf8_lossy(&out.stderr), 150)
    );

    // lego stores the bundle (leaf then issuer) as certificates/NAME.crt.
    let bundle_path = d.join("certificates").join(format!("{name}.crt"));
    let bundle = std::fs::read_to_string(&bundle_path)
        .unwrap_or_else(|e| panic!("lego wrote no {}: {e}", bundle_path.display()));
    assert!(
        split_chain(&bundle).len() >= 2,
        "lego's bundle holds leaf and CA"
    );
    let leaf = verify_chain(d, ca.ca_cert(), &bundle);
    assert_eq!(dns_sans(&leaf), vec![name.to_owned()]);
}
