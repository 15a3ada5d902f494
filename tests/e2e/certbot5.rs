//! The current certbot from PyPI (5.x, beside Debian's 2.1) as today's
//! users run it: `--preferred-profile` and `--required-profile` (profiles),
//! `--ip-address` (an IP certificate certbot accepts), and `certbot renew`
//! deciding by ARI (RFC 9773): not due inside the window, due once the
//! operator marks the certificate with `renew-early` or revokes it.

use std::path::Path;

use openssl::nid::Nid;
use openssl::x509::X509;

use crate::support::certs::{dns_sans, ip_sans, lifetime_secs, openssl_verify, serial};
use crate::support::dns::DnsServer;
use crate::support::procs::{Ca, CaOptions};
use crate::support::tools::{Certbot, describe};

async fn start(dns: &DnsServer) -> Ca {
    Ca::start_async(CaOptions {
        dns_resolver_addr: Some(dns.addr()),
        extra_toml: "[signer.profiles.short]\nvalidity_hours = 24\ncommon_name = false\n".into(),
        ..CaOptions::default()
    })
    .await
}

/// `certonly --standalone` arguments for `ca`'s http-01 port.
fn standalone(ca: &Ca) -> Vec<String> {
    [
        "certonly",
        "--standalone",
        "--http-01-port",
        &ca.http_validation_port().to_string(),
        "--http-01-address",
        "127.0.0.1",
        "--agree-tos",
        "--register-unsafely-without-email",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn args<'a>(base: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    base.iter()
        .map(String::as_str)
        .chain(more.iter().copied())
        .collect()
}

fn live_leaf(certbot: &Certbot, ca: &Ca, lineage: &str) -> X509 {
    let path = certbot.live(lineage).join("cert.pem");
    openssl_verify(ca.ca_cert(), None, &path);
    X509::from_pem(&std::fs::read(&path).expect("cert.pem")).expect("PEM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot5_profiles_and_ip_addresses() {
    let dns = DnsServer::start().await;
    let ca = start(&dns).await;
    let work = tempfile::tempdir().expect("tempdir");
    let certbot = Certbot::pypi(&ca, work.path());
    let base = standalone(&ca);

    certbot
        .ok(&args(
            &base,
            &[
                "-d",
                "preferred.example.org",
                "--preferred-profile",
                "short",
            ],
        ))
        .await;
    let leaf = live_leaf(&certbot, &ca, "preferred.example.org");
    assert_eq!(lifetime_secs(&leaf), 86_400, "the short profile's validity");
    assert_eq!(dns_sans(&leaf), ["preferred.example.org"]);

    certbot
        .ok(&args(
            &base,
            &[
                "-d",
                "required.example.org",
                "--required-profile",
                "tls-server",
            ],
        ))
        .await;
    assert_eq!(
        lifetime_secs(&live_leaf(&certbot, &ca, "required.example.org")),
        90 * 86_400
    );
    let out = certbot
        .output(&args(
            &base,
            &["-d", "nope.example.org", "--required-profile", "nope"],
        ))
        .await;
    assert!(
        !out.status.success(),
        "an unknown required profile must fail"
    );
    let text = describe(&out, &certbot.log());
    assert!(text.contains("nope"), "{text}");

    // An IP address certificate: certbot 5.3+ checks what it got, and
    // refuses a CN holding an IP address.
    certbot
        .ok(&args(
            &base,
            &["--ip-address", "127.0.0.1", "--cert-name", "loopback"],
        ))
        .await;
    let leaf = live_leaf(&certbot, &ca, "loopback");
    assert_eq!(ip_sans(&leaf), ["127.0.0.1"]);
    assert_eq!(
        leaf.subject_name().entries_by_nid(Nid::COMMONNAME).count(),
        0
    );
}

/// `certbot renew` asks ARI: a fresh certificate is not due; after
/// `admin renew-early` it is renewed (replacing its predecessor); after a
/// revocation it is renewed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certbot5_renew_follows_the_ari_window() {
    let dns = DnsServer::start().await;
    let ca = start(&dns).await;
    let work = tempfile::tempdir().expect("tempdir");
    let certbot = Certbot::pypi(&ca, work.path());
    let name = "ari.example.org";
    let base = standalone(&ca);
    certbot.ok(&args(&base, &["-d", name])).await;
    let first = live_leaf(&certbot, &ca, name);

    let renew = ["renew", "--no-random-sleep-on-renew"];
    let out = certbot.ok(&renew).await;
    assert_eq!(
        serial(&live_leaf(&certbot, &ca, name)),
        serial(&first),
        "not due inside the ARI window: {}",
        describe(&out, "")
    );

    // certbot keeps our Retry-After (6 h plus jitter) in the lineage's
    // renewal configuration and asks ARI again only after it.
    let conf = certbot
        .config_dir()
        .join("renewal")
        .join(format!("{name}.conf"));
    let retry_after = ari_retry_after(&conf);
    let wait = (retry_after
        - time::PrimitiveDateTime::new(
            time::OffsetDateTime::now_utc().date(),
            time::OffsetDateTime::now_utc().time(),
        ))
    .whole_seconds();
    assert!(
        (6 * 3600 - 300..=6 * 3600 + 2160 + 300).contains(&wait),
        "certbot stored ari_retry_after {retry_after} ({wait} s from now)"
    );

    let marked = acme_frontend::admin::renew_early(
        Some(ca.config_path()),
        acme_frontend::admin::RenewEarly::Serials(vec![serial(&first)]),
        Some("https://example.org/incident"),
    )
    .expect("renew-early");
    assert_eq!(marked, 1);
    // Six hours pass for certbot: it forgets the stored Retry-After.
    forget_retry_after(&conf);
    certbot.ok(&renew).await;
    let second = live_leaf(&certbot, &ca, name);
    assert_ne!(serial(&second), serial(&first), "renewed after renew-early");

    let cert = certbot.live(name).join("cert.pem");
    certbot
        .ok(&[
            "revoke",
            "--cert-path",
            path_str(&cert),
            "--no-delete-after-revoke",
        ])
        .await;
    forget_retry_after(&conf);
    certbot.ok(&renew).await;
    let third = live_leaf(&certbot, &ca, name);
    assert_ne!(serial(&third), serial(&second), "renewed after revocation");
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The `ari_retry_after` certbot stored in a lineage's renewal
/// configuration (a naive local date-time; certbot runs with TZ=UTC here).
fn ari_retry_after(conf: &Path) -> time::PrimitiveDateTime {
    let text = std::fs::read_to_string(conf).expect("renewal conf");
    let value = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("ari_retry_after = "))
        .unwrap_or_else(|| panic!("no ari_retry_after in {}:\n{text}", conf.display()));
    time::PrimitiveDateTime::parse(
        value.trim(),
        &time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    )
    .unwrap_or_else(|e| panic!("ari_retry_after {value:?}: {e}"))
}

/// Removes the stored Retry-After, as if it had passed.
fn forget_retry_after(conf: &Path) {
    let text = std::fs::read_to_string(conf).expect("renewal conf");
    let kept: String = text
        .lines()
        .filter(|l| !l.trim().starts_with("ari_retry_after"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(conf, kept).expect("rewrite renewal conf");
}
