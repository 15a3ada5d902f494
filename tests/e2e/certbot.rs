//! Debian's certbot, unmodified, is the judge: `certbot certonly --standalone`
//! against our directory, trusting the CA through `REQUESTS_CA_BUNDLE`, with
//! the name resolved to 127.0.0.1 by the test DNS server the validator uses.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::issuance::start_ca;
use crate::support::certs::{dns_sans, openssl_verify};
use crate::support::dns::DnsServer;
use crate::support::procs::{tail, which};

/// How long certbot may take for one certificate.
const CERTBOT_TIMEOUT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot_standalone_http01_issues_a_verifiable_certificate() {
    let certbot = which("certbot").unwrap_or_else(|| {
        panic!("certbot is not installed: `apt-get install certbot` (CI installs it itself)")
    });
    let dns = DnsServer::start().await;
    let ca = start_ca(&dns).await;
    let name = "certbot.example.org";
    let work = tempfile::tempdir().expect("tempdir");
    let d = work.path();

    let mut cmd = tokio::process::Command::new(&certbot);
    cmd.args(["certonly", "--standalone"])
        .arg("--http-01-port")
        .arg(ca.http_validation_port().to_string())
        .args(["--http-01-address", "127.0.0.1"])
        .arg("--server")
        .arg(ca.directory())
        .args(["-d", name])
        .args([
            "--agree-tos",
            "--register-unsafely-without-email",
            "--non-interactive",
            "--no-eff-email",
        ])
        .arg("--config-dir")
        .arg(d.join("config"))
        .arg("--work-dir")
        .arg(d.join("work"))
        .arg("--logs-dir")
        .arg(d.join("logs"))
        .env("REQUESTS_CA_BUNDLE", ca.ca_cert())
        // Loopback only: never let a proxy setting send certbot elsewhere.
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .env("NO_PROXY", "localhost,127.0.0.1")
        .stdin(Stdio::null())
        .kill_on_drop(true);

    let out = tokio::time::timeout(CERTBOT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("certbot did not finish within {CERTBOT_TIMEOUT:?}"))
        .expect("run certbot");
    let log = std::fs::read_to_string(d.join("logs/letsencrypt.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "certbot failed ({}):\nstdout:\n{}\nstderr:\n{}\nlog:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        tail(&log, 150)
    );

    let live = d.join("config/live").join(name);
    let cert_path = live.join("cert.pem");
    assert!(
        cert_path.is_file(),
        "certbot wrote no {}",
        cert_path.display()
    );
    openssl_verify(ca.ca_cert(), Some(&live.join("chain.pem")), &cert_path);
    openssl_verify(ca.ca_cert(), None, &cert_path);
    let leaf = openssl::x509::X509::from_pem(&read(&cert_path)).expect("certbot's cert.pem is PEM");
    assert_eq!(dns_sans(&leaf), vec![name.to_owned()]);
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
