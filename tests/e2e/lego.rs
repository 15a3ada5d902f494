//! Debian's lego, unmodified, is a second third-party judge: `lego run` with
//! each of its challenge solvers (built-in http-01 and tls-alpn-01 servers,
//! dns-01 through the `exec` provider and a hook script that publishes TXT
//! records in the test DNS server), `renew` and `revoke`, trusting the CA
//! through `LEGO_CA_CERTIFICATES`. Every certificate lego stores must
//! verify against the CA with `openssl verify` and carry exactly the
//! requested SANs.

use http::StatusCode;
use openssl::x509::X509;

use crate::issuance::start_ca;
use crate::support::acme::revoke_with_key;
use crate::support::certs::{serial, split_chain, verify_with_sans};
use crate::support::client::RawClient;
use crate::support::dns::DnsServer;
use crate::support::dns_control::{DnsControl, hook_scripts};
use crate::support::procs::Ca;
use crate::support::tools::Lego;

/// A CA with its DNS server, a lego and a scratch directory.
struct Fixture {
    dns: DnsServer,
    ca: Ca,
    work: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let dns = DnsServer::start().await;
        let ca = start_ca(&dns).await;
        let work = tempfile::tempdir().expect("tempdir");
        Fixture { dns, ca, work }
    }

    fn lego(&self) -> Lego {
        Lego::new(&self.ca, &self.work.path().join("lego"))
    }

    fn http_port(&self) -> String {
        format!("127.0.0.1:{}", self.ca.http_validation_port())
    }

    /// Verifies lego's bundle for `name` and its SANs.
    fn check(&self, lego: &Lego, name: &str, dns: &[&str], ips: &[&str]) -> X509 {
        let bundle = lego.bundle(name);
        assert!(
            split_chain(&bundle).len() >= 2,
            "lego's bundle holds leaf and CA"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        verify_with_sans(dir.path(), self.ca.ca_cert(), &bundle, dns, ips)
    }
}

/// `lego run --http`, then `lego renew --days 100` (the 90-day certificate
/// is due, so lego renews it), then `lego revoke`; revoking the renewed
/// certificate a second time with its own key is `alreadyRevoked`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_http01_run_renew_revoke() {
    let f = Fixture::new().await;
    let lego = f.lego();
    let name = "lego.example.org";
    let port = f.http_port();
    let global = ["--domains", name, "--http", "--http.port", port.as_str()];

    lego.ok(&global, &["run"], &[]).await;
    let first = f.check(&lego, name, &[name], &[]);

    lego.ok(
        &global,
        &["renew", "--days", "100", "--no-random-sleep"],
        &[],
    )
    .await;
    let renewed = f.check(&lego, name, &[name], &[]);
    assert_ne!(
        serial(&first),
        serial(&renewed),
        "renew --days 100 must fetch a new certificate"
    );

    lego.ok(&global, &["revoke", "--keep", "--reason", "1"], &[])
        .await;

    // The judge: the CA now knows the renewed certificate is revoked.
    let key_pem = std::fs::read(lego.key_path(name)).expect("lego's certificate key");
    let key = akamu_jose::SigningKey::from_pem(&key_pem).expect("lego key PEM");
    let raw = RawClient::new(&f.ca).await;
    let rsp = revoke_with_key(&raw, &key, &renewed.to_der().expect("DER"), None).await;
    rsp.assert_problem(
        "second revocation of lego's certificate",
        &["alreadyRevoked"],
    );
    assert_eq!(rsp.status, StatusCode::BAD_REQUEST);
}

/// `lego run --tls`: tls-alpn-01 (RFC 8737) through lego's own TLS server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_tls_alpn01_issues_a_verifiable_certificate() {
    let f = Fixture::new().await;
    let lego = f.lego();
    let name = "alpn.example.org";
    let port = format!("127.0.0.1:{}", f.ca.tls_alpn_validation_port());
    lego.ok(
        &["--domains", name, "--tls", "--tls.port", port.as_str()],
        &["run"],
        &[],
    )
    .await;
    f.check(&lego, name, &[name], &[]);
}

/// Runs lego with the `exec` DNS provider whose script publishes TXT
/// records in the test DNS server, lego's own checks pointed at it too.
async fn lego_dns01(f: &Fixture, names: &[&str]) -> Lego {
    let control = DnsControl::start(&f.dns).await;
    let hooks = hook_scripts(f.work.path(), &control);
    let lego = f.lego();
    let resolver = f.dns.addr().to_string();
    let mut global: Vec<&str> = Vec::new();
    for n in names {
        global.extend(["--domains", n]);
    }
    global.extend([
        "--dns",
        "exec",
        "--dns.resolvers",
        resolver.as_str(),
        "--dns.disable-cp",
    ]);
    let exec = hooks.lego_exec.to_str().expect("UTF-8 path").to_owned();
    lego.ok(
        &global,
        &["run"],
        &[
            ("EXEC_PATH", exec.as_str()),
            ("EXEC_PROPAGATION_TIMEOUT", "30"),
            ("EXEC_POLLING_INTERVAL", "1"),
            // lego solves exec challenges one after the other and waits
            // this long in between (default 60 s).
            ("EXEC_SEQUENCE_INTERVAL", "1"),
        ],
    )
    .await;
    // lego published one TXT value per name and cleaned every one up.
    assert_eq!(
        control.ops("add").len(),
        names.len(),
        "one TXT per name: {:?}",
        control.log()
    );
    assert_eq!(
        control.ops("remove").len(),
        names.len(),
        "lego removed what it published: {:?}",
        control.log()
    );
    for n in names {
        let base = n.trim_start_matches("*.");
        assert!(
            f.dns.txt(&format!("_acme-challenge.{base}")).is_empty(),
            "TXT records left behind for {n}"
        );
    }
    lego
}

/// `lego run --dns exec`: dns-01 through a hook script.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_dns01_exec_issues_a_verifiable_certificate() {
    let f = Fixture::new().await;
    let name = "dns.example.org";
    let lego = lego_dns01(&f, &[name]).await;
    f.check(&lego, name, &[name], &[]);
}

/// A wildcard and its base name over dns-01: two TXT values at the same
/// `_acme-challenge.example.org`, one certificate with both SANs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_dns01_wildcard_certificate() {
    let f = Fixture::new().await;
    let lego = lego_dns01(&f, &["*.example.org", "example.org"]).await;
    f.check(
        &lego,
        "*.example.org",
        &["*.example.org", "example.org"],
        &[],
    );
}

/// lego 4.9.1 has no IP identifiers (RFC 8738): `-d 127.0.0.1` becomes a
/// `dns` identifier whose value is an address, which the CA must refuse
/// with `rejectedIdentifier` rather than issue a certificate with a DNS SAN
/// "127.0.0.1". The IP flow itself is judged with instant-acme
/// (`rfc8555::ip_identifier_certificate_via_http01`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lego_ip_as_dns_identifier_is_rejected() {
    let f = Fixture::new().await;
    let lego = f.lego();
    let port = f.http_port();
    let out = lego
        .output(
            &[
                "--domains",
                "127.0.0.1",
                "--http",
                "--http.port",
                port.as_str(),
            ],
            &["run"],
            &[],
        )
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "lego obtained a certificate for a dns identifier \"127.0.0.1\": {stderr}"
    );
    assert!(
        stderr.contains("urn:ietf:params:acme:error:rejectedIdentifier"),
        "the CA should answer rejectedIdentifier: {stderr}"
    );
    assert!(!lego.cert_path("127.0.0.1").exists());
}
