//! The built `akamu-cli` binary against our CA and against Pebble:
//! register, issue (http-01, tls-alpn-01, dns-01 through --dns-hook),
//! renew (ARI window, admin renew-early, --force), revoke, key-change, deregister, and the exit codes.

#[path = "../../akamu-client/tests/support/mod.rs"]
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::dns::DnsServer;
use support::{Ca, Pebble, free_port};

/// One finished CLI run.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// Runs `akamu-cli` with `args`, `--server` and `--ca-bundle` set through
/// the environment (AKAMU_SERVER, AKAMU_CA_BUNDLE).
async fn cli(server: &str, bundle: &Path, args: &[&str]) -> Run {
    let out = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_akamu-cli"))
            .args(args)
            .env("AKAMU_SERVER", server)
            .env("AKAMU_CA_BUNDLE", bundle)
            .env_remove("RUST_LOG")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("akamu-cli finished within 180 s")
    .expect("run akamu-cli");
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "$ akamu-cli {}\n[exit {}]\n{}{}",
        args.join(" "),
        run.code,
        run.stdout,
        run.stderr
    );
    run
}

/// `args` followed by `--out out`.
fn args_with_out<'a>(args: &[&'a str], out: &'a str) -> Vec<&'a str> {
    let mut all = args.to_vec();
    all.extend(["--out", out]);
    all
}

fn ok(run: &Run) {
    assert_eq!(run.code, 0, "command failed:\n{}{}", run.stdout, run.stderr);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
}

fn sans(path: &Path) -> Vec<String> {
    let leaf =
        openssl::x509::X509::from_pem(&std::fs::read(path).expect("read cert")).expect("leaf");
    let mut names: Vec<String> = leaf
        .subject_alt_names()
        .map(|s| {
            s.iter()
                .filter_map(|n| n.dnsname().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// Writes the `--dns-hook` script: on `present` it writes the record to
/// `<dir>/txt-request` and waits for `<dir>/txt-done` (the test publishes
/// the record in its DNS server meanwhile).
fn dns_hook(dir: &Path) -> PathBuf {
    let hook = dir.join("hook.sh");
    let d = dir.display();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nset -e\necho \"$1 $3 $4\" >> {d}/hook.log\n[ \"$1\" = present ] || exit 0\n\
             echo \"$AKAMU_DNS_NAME $AKAMU_DNS_VALUE\" > {d}/txt-request.tmp\nmv {d}/txt-request.tmp {d}/txt-request\n\
             i=0; while [ ! -f {d}/txt-done ]; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done\nrm -f {d}/txt-done\n"
        ),
    )
    .expect("write hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    hook
}

/// Publishes what the hook asks for in `dns`, once.
async fn serve_hook(dir: PathBuf, dns: &DnsServer) {
    let req = dir.join("txt-request");
    for _ in 0..1200 {
        if let Ok(text) = std::fs::read_to_string(&req) {
            let mut parts = text.split_whitespace();
            let (name, value) = (parts.next().expect("name"), parts.next().expect("value"));
            dns.set_txt(name, &[value]);
            std::fs::remove_file(&req).expect("rm request");
            std::fs::write(dir.join("txt-done"), b"").expect("done");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the dns hook never asked for a record");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_against_our_ca() {
    let dns = DnsServer::start().await;
    let ca = Ca::start(free_port(), free_port(), Some(dns.addr()));
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = ca.ca_cert.clone();
    let server = ca.directory.clone();
    let acct = dir.path().join("account.pem");
    let sidecar = dir.path().join("account.pem.account-url");
    let http_port = ca.http_port.to_string();
    let tls_port = ca.tls_port.to_string();

    // Usage errors exit 2 before any network traffic.
    let run = cli(&server, &bundle, &["issue", "--account-key", s(&acct)]).await;
    assert_eq!(run.code, 2, "missing -d/--out is a usage error");
    let run = cli(&server, &bundle, &["bogus-command"]).await;
    assert_eq!(run.code, 2);

    // account register
    let run = cli(
        &server,
        &bundle,
        &[
            "--json",
            "account",
            "register",
            "--account-key",
            s(&acct),
            "--contact",
            "mailto:ops@example.org",
            "--agree-tos",
        ],
    )
    .await;
    ok(&run);
    let account = run.json();
    assert_eq!(account["status"], "valid");
    assert_eq!(mode(&acct), 0o600, "account key is private");
    assert_eq!(
        std::fs::read_to_string(&sidecar).expect("sidecar").trim(),
        account["url"].as_str().expect("url")
    );

    // account show / update (human output)
    let run = cli(
        &server,
        &bundle,
        &["account", "show", "--account-key", s(&acct)],
    )
    .await;
    ok(&run);
    assert!(
        run.stdout.contains("Status:  valid")
            && run.stdout.contains("Contact: mailto:ops@example.org")
    );
    let run = cli(
        &server,
        &bundle,
        &[
            "account",
            "update",
            "--account-key",
            s(&acct),
            "--contact",
            "mailto:new@example.org",
        ],
    )
    .await;
    ok(&run);
    assert!(run.stdout.contains("mailto:new@example.org"));

    // issue: two names over http-01
    let cert = dir.path().join("cert.pem");
    let run = cli(
        &server,
        &bundle,
        &[
            "issue",
            "--account-key",
            s(&acct),
            "-d",
            "www.example.org",
            "-d",
            "api.example.org",
            "--out",
            s(&cert),
            "--http-port",
            &http_port,
            "--bind-addr",
            "127.0.0.1",
            "--poll-timeout",
            "60",
        ],
    )
    .await;
    ok(&run);
    for phase in [
        "order placed",
        "challenge 1/2 valid",
        "challenge 2/2 valid",
        "finalized",
        "downloaded",
    ] {
        assert!(
            run.stderr.contains(phase),
            "missing progress line {phase:?}:\n{}",
            run.stderr
        );
    }
    assert_eq!(sans(&cert), ["api.example.org", "www.example.org"]);
    let cert_key = dir.path().join("cert.pem.key.pem");
    assert_eq!(mode(&cert_key), 0o600, "certificate key is private");

    // renew --force; without --force the ARI window decides (RFC 9773):
    // not yet for a fresh certificate, at once after admin renew-early.
    let renewed = dir.path().join("renewed.pem");
    let run = cli(
        &server,
        &bundle,
        &[
            "--json",
            "renew",
            "--account-key",
            s(&acct),
            "-d",
            "www.example.org",
            "--cert",
            s(&cert),
            "--out",
            s(&renewed),
            "--force",
            "--http-port",
            &http_port,
            "--bind-addr",
            "127.0.0.1",
        ],
    )
    .await;
    ok(&run);
    assert_eq!(run.json()["renewed"], true);
    assert_eq!(sans(&renewed), ["www.example.org"]);
    let renew = [
        "--json",
        "renew",
        "--account-key",
        s(&acct),
        "-d",
        "www.example.org",
        "--cert",
        s(&renewed),
        "--http-port",
        &http_port,
        "--bind-addr",
        "127.0.0.1",
    ];
    let run = cli(&server, &bundle, &args_with_out(&renew, s(&renewed))).await;
    ok(&run);
    assert_eq!(run.json()["renewed"], false, "inside its first two thirds");
    assert!(run.stderr.contains("ARI window"), "{}", run.stderr);
    let serial = openssl::x509::X509::from_pem(&std::fs::read(&renewed).expect("read"))
        .expect("leaf")
        .serial_number()
        .to_bn()
        .and_then(|b| b.to_hex_str().map(|h| h.to_string()))
        .expect("serial");
    let run = cli(
        &server,
        &bundle,
        &[
            "--json",
            "admin",
            "renew-early",
            "--serial",
            &serial,
            "--explanation-url",
            "https://example.org/incident-1",
            "--config",
            s(&ca.config),
        ],
    )
    .await;
    ok(&run);
    assert_eq!(run.json()["marked"], 1);
    let again = dir.path().join("again.pem");
    let run = cli(&server, &bundle, &args_with_out(&renew, s(&again))).await;
    ok(&run);
    assert_eq!(run.json()["renewed"], true, "marked for early renewal");
    assert_eq!(sans(&again), ["www.example.org"]);
    // The marked certificate is replaced now: naming it again is refused.
    let run = cli(
        &server,
        &bundle,
        &args_with_out(&renew, s(&dir.path().join("third.pem"))),
    )
    .await;
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(run.stderr.contains("alreadyReplaced"), "{}", run.stderr);

    // issue over tls-alpn-01 with a given certificate key path
    let tls_cert = dir.path().join("tls.pem");
    let tls_key = dir.path().join("tls.key");
    let run = cli(
        &server,
        &bundle,
        &[
            "issue",
            "--account-key",
            s(&acct),
            "-d",
            "tls.example.org",
            "--out",
            s(&tls_cert),
            "--challenge",
            "tls-alpn-01",
            "--tls-port",
            &tls_port,
            "--bind-addr",
            "127.0.0.1",
            "--cert-key",
            s(&tls_key),
            "--cert-key-type",
            "ec:P-384",
        ],
    )
    .await;
    ok(&run);
    assert_eq!(sans(&tls_cert), ["tls.example.org"]);
    assert_eq!(mode(&tls_key), 0o600);

    // issue over dns-01 through --dns-hook
    let hook = dns_hook(dir.path());
    let dns_cert = dir.path().join("dns.pem");
    let args = [
        "issue",
        "--account-key",
        s(&acct),
        "-d",
        "dns.example.org",
        "--out",
        s(&dns_cert),
        "--challenge",
        "dns-01",
        "--dns-hook",
        s(&hook),
    ];
    let (run, ()) = tokio::join!(
        cli(&server, &bundle, &args),
        serve_hook(dir.path().to_owned(), &dns)
    );
    ok(&run);
    assert_eq!(sans(&dns_cert), ["dns.example.org"]);
    let log = std::fs::read_to_string(dir.path().join("hook.log")).expect("hook log");
    assert!(
        log.contains("present _acme-challenge.dns.example.org.") && log.contains("cleanup"),
        "{log}"
    );

    // revoke: reason 7 is a usage error; account-key revocation; twice is
    // an ACME error; self-revocation with the certificate key.
    let run = cli(
        &server,
        &bundle,
        &[
            "revoke",
            "--account-key",
            s(&acct),
            "--cert",
            s(&cert),
            "--reason",
            "7",
        ],
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("invalid reason code 7; valid values: 0–6, 8–10"),
        "{}",
        run.stderr
    );
    let run = cli(
        &server,
        &bundle,
        &[
            "revoke",
            "--account-key",
            s(&acct),
            "--cert",
            s(&cert),
            "--reason",
            "1",
        ],
    )
    .await;
    ok(&run);
    let run = cli(
        &server,
        &bundle,
        &[
            "--json",
            "revoke",
            "--account-key",
            s(&acct),
            "--cert",
            s(&cert),
        ],
    )
    .await;
    assert_eq!(run.code, 1, "revoking twice is an ACME error");
    assert_eq!(
        run.json()["acme_type"],
        "urn:ietf:params:acme:error:alreadyRevoked"
    );
    let run = cli(
        &server,
        &bundle,
        &[
            "revoke",
            "--account-key",
            s(&acct),
            "--cert",
            s(&tls_cert),
            "--cert-key",
            s(&tls_key),
        ],
    )
    .await;
    ok(&run);

    // key-change: the new key replaces the account key file.
    let new_key = dir.path().join("new.pem");
    let old_pem = std::fs::read(&acct).expect("old key");
    let run = cli(
        &server,
        &bundle,
        &[
            "account",
            "key-change",
            "--account-key",
            s(&acct),
            "--new-key",
            s(&new_key),
            "--new-key-type",
            "ec:P-384",
        ],
    )
    .await;
    ok(&run);
    assert_ne!(std::fs::read(&acct).expect("key"), old_pem);
    assert_eq!(
        std::fs::read(&acct).expect("key"),
        std::fs::read(&new_key).expect("new")
    );
    assert_eq!(mode(&acct), 0o600);
    let run = cli(
        &server,
        &bundle,
        &["account", "show", "--account-key", s(&acct)],
    )
    .await;
    ok(&run);

    // deregister removes the sidecar; a second deregister has none (I/O, 3).
    let run = cli(
        &server,
        &bundle,
        &["account", "deregister", "--account-key", s(&acct)],
    )
    .await;
    ok(&run);
    assert!(run.stdout.contains("deactivated"));
    assert!(!sidecar.exists());
    let run = cli(
        &server,
        &bundle,
        &["account", "deregister", "--account-key", s(&acct)],
    )
    .await;
    assert_eq!(run.code, 3, "missing sidecar is an I/O error");
}

/// `star order | fetch | cancel` (RFC 8739) against our CA with
/// six-second certificates: the rolling certificate changes, a plain GET
/// serves it when the order allows it, and after a cancel fetching fails
/// with `autoRenewalCanceled` (exit 1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_star_order_fetch_cancel() {
    let dns = DnsServer::start().await;
    let ca = Ca::start_with(
        free_port(),
        free_port(),
        Some(dns.addr()),
        "star_min_lifetime_secs = 3\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = ca.ca_cert.clone();
    let server = ca.directory.clone();
    let acct = dir.path().join("account.pem");
    let http_port = ca.http_port.to_string();
    let cert = dir.path().join("star.pem");
    let end = time::OffsetDateTime::now_utc() + time::Duration::seconds(120);
    let end = end
        .format(&time::format_description::well_known::Rfc3339)
        .expect("RFC 3339");

    // A lifetime under the server's minimum: the server's malformed, exit 1.
    let run = cli(
        &server,
        &bundle,
        &[
            "star",
            "order",
            "--account-key",
            s(&acct),
            "-d",
            "star.example.org",
            "--out",
            s(&cert),
            "--http-port",
            &http_port,
            "--bind-addr",
            "127.0.0.1",
            "--end-date",
            &end,
            "--lifetime",
            "2",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("minimum"), "{}", run.stderr);

    let run = cli(
        &server,
        &bundle,
        &[
            "--json",
            "star",
            "order",
            "--account-key",
            s(&acct),
            "-d",
            "star.example.org",
            "--out",
            s(&cert),
            "--http-port",
            &http_port,
            "--bind-addr",
            "127.0.0.1",
            "--end-date",
            &end,
            "--lifetime",
            "6",
            "--lifetime-adjust",
            "1",
            "--allow-certificate-get",
        ],
    )
    .await;
    ok(&run);
    let doc = run.json();
    let star_url = doc["star_certificate_url"]
        .as_str()
        .expect("star URL")
        .to_owned();
    let order_url = doc["order_url"].as_str().expect("order URL").to_owned();
    assert!(star_url.contains("/acme/cert/star/"), "{doc}");
    assert_eq!(sans(&cert), ["star.example.org"]);
    let serial_of = |path: &Path| {
        let pem = std::fs::read(path).expect("read");
        openssl::x509::X509::from_pem(&pem)
            .expect("PEM")
            .serial_number()
            .to_bn()
            .expect("bn")
            .to_hex_str()
            .expect("hex")
            .to_string()
    };
    let first = serial_of(&cert);

    // fetch (POST-as-GET, then a plain GET) until the certificate rolls over.
    let fetched = dir.path().join("fetched.pem");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut get = false;
    loop {
        let mut args = vec![
            "star",
            "fetch",
            "--account-key",
            s(&acct),
            "--url",
            &star_url,
            "--out",
            s(&fetched),
        ];
        if get {
            args.push("--get");
        }
        ok(&cli(&server, &bundle, &args).await);
        if serial_of(&fetched) != first {
            break;
        }
        get = !get;
        assert!(tokio::time::Instant::now() < deadline, "no new certificate");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(sans(&fetched), ["star.example.org"]);

    // cancel, then fetching is refused.
    let run = cli(
        &server,
        &bundle,
        &[
            "star",
            "cancel",
            "--account-key",
            s(&acct),
            "--order",
            &order_url,
        ],
    )
    .await;
    ok(&run);
    assert!(run.stdout.contains("canceled"), "{}", run.stdout);
    let run = cli(
        &server,
        &bundle,
        &[
            "star",
            "fetch",
            "--account-key",
            s(&acct),
            "--url",
            &star_url,
            "--out",
            s(&fetched),
        ],
    )
    .await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("autoRenewalCanceled"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_against_pebble() {
    let dns = DnsServer::start().await;
    let pebble = Pebble::start(free_port(), free_port(), dns.addr());
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = pebble.https_root.clone();
    let server = pebble.directory.clone();
    let acct = dir.path().join("account.pem");
    let http_port = pebble.http_port.to_string();

    ok(&cli(
        &server,
        &bundle,
        &[
            "account",
            "register",
            "--account-key",
            s(&acct),
            "--agree-tos",
        ],
    )
    .await);
    let cert = dir.path().join("cert.pem");
    let run = cli(
        &server,
        &bundle,
        &[
            "issue",
            "--account-key",
            s(&acct),
            "-d",
            "www.example.org",
            "-d",
            "api.example.org",
            "--out",
            s(&cert),
            "--http-port",
            &http_port,
            "--bind-addr",
            "127.0.0.1",
        ],
    )
    .await;
    ok(&run);
    assert_eq!(sans(&cert), ["api.example.org", "www.example.org"]);
    let renewed = dir.path().join("renewed.pem");
    ok(&cli(
        &server,
        &bundle,
        &[
            "renew",
            "--account-key",
            s(&acct),
            "-d",
            "www.example.org",
            "--cert",
            s(&cert),
            "--force",
            "--out",
            s(&renewed),
            "--http-port",
            &http_port,
            "--bind-addr",
            "127.0.0.1",
        ],
    )
    .await);
    assert_eq!(sans(&renewed), ["www.example.org"]);
    ok(&cli(
        &server,
        &bundle,
        &[
            "revoke",
            "--account-key",
            s(&acct),
            "--cert",
            s(&cert),
            "--reason",
            "4",
        ],
    )
    .await);
    let key = dir.path().join("renewed.pem.key.pem");
    ok(&cli(
        &server,
        &bundle,
        &[
            "revoke",
            "--account-key",
            s(&acct),
            "--cert",
            s(&renewed),
            "--cert-key",
            s(&key),
        ],
    )
    .await);
    ok(&cli(
        &server,
        &bundle,
        &["account", "deregister", "--account-key", s(&acct)],
    )
    .await);
}

/// `issue --ancestor-domain` (RFC 9444) against our CA with
/// `allow_subdomain_auth`: the first run validates `example.org` once
/// with dns-01 (the hook publishes `_acme-challenge.example.org`), a
/// second run for other names below it publishes nothing; a public-suffix
/// ancestor is the server's `rejectedIdentifier` (exit 1) and a challenge
/// other than dns-01 a usage error (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_subdomain_authorization() {
    let dns = DnsServer::start().await;
    let ca = Ca::start_with(
        free_port(),
        free_port(),
        Some(dns.addr()),
        "allow_subdomain_auth = true\n",
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = ca.ca_cert.clone();
    let server = ca.directory.clone();
    let acct = dir.path().join("account.pem");
    let hook = dns_hook(dir.path());
    let first = dir.path().join("first.pem");
    let args = [
        "issue",
        "--account-key",
        s(&acct),
        "-d",
        "api.example.org",
        "--out",
        s(&first),
        "--challenge",
        "dns-01",
        "--dns-hook",
        s(&hook),
        "--ancestor-domain",
        "example.org",
    ];
    let (run, ()) = tokio::join!(
        cli(&server, &bundle, &args),
        serve_hook(dir.path().to_owned(), &dns)
    );
    ok(&run);
    assert_eq!(sans(&first), ["api.example.org"]);
    let log = std::fs::read_to_string(dir.path().join("hook.log")).expect("hook log");
    assert!(
        log.contains("present _acme-challenge.example.org."),
        "the ancestor was validated: {log}"
    );

    let second = dir.path().join("second.pem");
    let run = cli(
        &server,
        &bundle,
        &[
            "issue",
            "--account-key",
            s(&acct),
            "-d",
            "www.example.org",
            "-d",
            "*.shop.example.org",
            "--out",
            s(&second),
            "--challenge",
            "dns-01",
            "--dns-hook",
            s(&hook),
            "--ancestor-domain",
            "example.org",
        ],
    )
    .await;
    ok(&run);
    assert_eq!(sans(&second), ["*.shop.example.org", "www.example.org"]);
    assert!(
        run.stderr.contains("authorization reused"),
        "{}",
        run.stderr
    );
    let log_after = std::fs::read_to_string(dir.path().join("hook.log")).expect("hook log");
    assert_eq!(log_after, log, "no record published for the second order");

    let run = cli(
        &server,
        &bundle,
        &[
            "issue",
            "--account-key",
            s(&acct),
            "-d",
            "example.co.uk",
            "--out",
            s(&dir.path().join("suffix.pem")),
            "--challenge",
            "dns-01",
            "--dns-hook",
            s(&hook),
            "--ancestor-domain",
            "co.uk",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("rejectedIdentifier"), "{}", run.stderr);

    let run = cli(
        &server,
        &bundle,
        &[
            "issue",
            "--account-key",
            s(&acct),
            "-d",
            "web.example.org",
            "--out",
            s(&dir.path().join("http.pem")),
            "--ancestor-domain",
            "example.org",
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("dns-01"), "{}", run.stderr);
}

/// `issue --challenge dns-persist-01` against our CA with an issuer
/// domain: the hook is asked to publish the reference's record
/// (`"<issuer>; accounturi=<account URL>"` at `_validation-persist`), which
/// the validator accepts; the certificate names the domain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_dns_persist_01() {
    let value = cli_dns_persist(false).await;
    assert!(
        value.starts_with("ca.akamu.test; accounturi=https://") && !value.contains("account-hash"),
        "the reference's record format: {value}"
    );
}

/// The same with `dns_persist_form = "draft-02"`: the CLI sees
/// `issuerDomainNames` and `accountHashPrefix` and publishes the hashed
/// account URI, which the validator accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_dns_persist_01_draft_02() {
    let value = cli_dns_persist(true).await;
    assert!(
        value.starts_with("ca.akamu.test; accounturi=https://")
            && value.contains("/acme/account-hash/sha-256/"),
        "draft-02's hashed account URI: {value}"
    );
}

/// Issues `persist.example.org` with `issue --challenge dns-persist-01`;
/// returns the record value the hook published.
async fn cli_dns_persist(draft_02: bool) -> String {
    let dns = DnsServer::start().await;
    let form = if draft_02 {
        "dns_persist_form = \"draft-02\"\n"
    } else {
        ""
    };
    let ca = Ca::start_with(
        free_port(),
        free_port(),
        Some(dns.addr()),
        &format!("dns_persist_issuer_domain = \"ca.akamu.test\"\n{form}"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().display();
    // The value has spaces: the hook writes name and value on two lines.
    let hook = dir.path().join("persist-hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nset -e\n[ \"$1\" = present ] || exit 0\n\
             printf '%s\\n%s\\n' \"$AKAMU_DNS_NAME\" \"$AKAMU_DNS_VALUE\" > {d}/record.tmp\n\
             mv {d}/record.tmp {d}/record\n\
             i=0; while [ ! -f {d}/published ]; do i=$((i+1)); [ $i -lt 600 ] || exit 1; sleep 0.1; done\n"
        ),
    )
    .expect("write hook");
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let publish = async {
        let path = dir.path().join("record");
        for _ in 0..1200 {
            if let Ok(text) = std::fs::read_to_string(&path) {
                let mut lines = text.lines();
                let (name, value) = (lines.next().expect("name"), lines.next().expect("value"));
                dns.set_txt(name, &[value]);
                std::fs::write(dir.path().join("published"), b"").expect("published");
                return value.to_owned();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the hook never asked for a record");
    };
    let acct = dir.path().join("account.pem");
    let cert = dir.path().join("persist.pem");
    let args = [
        "issue",
        "--account-key",
        s(&acct),
        "-d",
        "persist.example.org",
        "--out",
        s(&cert),
        "--challenge",
        "dns-persist-01",
        "--dns-hook",
        s(&hook),
    ];
    let (run, value) = tokio::join!(cli(&ca.directory, &ca.ca_cert, &args), publish);
    ok(&run);
    assert_eq!(sans(&cert), ["persist.example.org"]);
    value
}
