//! `akamu-cli issue`: account (registered on first use) → order →
//! challenges → finalize → download.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use akamu_client::{
    Account, AcmeClient, Authorization, ChallengeSolver as _, Dns01Helper, DnsAccount01Helper,
    DnsPersist01Helper, Http01Solver, Identifier, KeyType, NewOrder, Order, PollOptions,
    StarOrderParams, TlsAlpn01Solver, build_csr, build_onion_csr,
};
use serde_json::json;

use crate::common::{
    ConnArgs, EabArgs, load_or_generate_key, read, register, sidecar_account, write_private,
    write_public,
};
use crate::error::CliError;
use crate::output::Output;

/// `issue` flags.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    pub conn: ConnArgs,
    #[command(flatten)]
    pub issue: IssueArgs,
}

/// Flags shared by `issue` and `renew`.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct IssueArgs {
    /// Domain (or IP address) to include; repeatable; the first is the CN.
    #[arg(short = 'd', long = "domain", required = true, value_name = "DOMAIN")]
    pub domains: Vec<String>,
    /// Output path for the PEM bundle (leaf + chain).
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Account key type when generating a new account key.
    #[arg(long, default_value = "ec:P-256", value_name = "TYPE")]
    pub key_type: KeyType,
    /// Certificate key type.
    #[arg(long, default_value = "ec:P-256", value_name = "TYPE")]
    pub cert_key_type: KeyType,
    /// Certificate private key PEM to reuse (generated there when absent);
    /// default: a new key saved to <out>.key.pem.
    #[arg(long, value_name = "FILE")]
    pub cert_key: Option<PathBuf>,
    /// Challenge type.
    #[arg(long, value_enum, default_value = "http-01", value_name = "TYPE")]
    pub challenge: ChallengeKind,
    /// RFC 9444: order the domains below DOMAIN under one authorization of
    /// DOMAIN that covers its subdomains (validated once with dns-01, then
    /// reused by later orders while it lasts). Needs a server advertising
    /// `subdomainAuthAllowed`.
    #[arg(long, value_name = "DOMAIN")]
    pub ancestor_domain: Option<String>,
    /// Port for the built-in http-01 solver.
    #[arg(long, default_value_t = 80, value_name = "PORT")]
    pub http_port: u16,
    /// Port for the built-in tls-alpn-01 solver.
    #[arg(long, default_value_t = 443, value_name = "PORT")]
    pub tls_port: u16,
    /// Address the built-in solvers listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED), value_name = "IP")]
    pub bind_addr: IpAddr,
    /// Ed25519 hidden-service private key PEM (onion-csr-01).
    #[arg(long, value_name = "FILE")]
    pub onion_key: Option<PathBuf>,
    /// Script that publishes and removes dns-01 / dns-persist-01 TXT
    /// records, called as `SCRIPT present|cleanup DOMAIN RECORD_NAME VALUE`
    /// (also in AKAMU_DNS_ACTION, _DOMAIN, _NAME, _VALUE). Without it the
    /// command asks you to add the record and press Enter.
    #[arg(long, value_name = "SCRIPT")]
    pub dns_hook: Option<PathBuf>,
    /// Maximum seconds to wait for validation and issuance.
    #[arg(long, default_value_t = 120, value_name = "SECS")]
    pub poll_timeout: u64,
    #[command(flatten)]
    pub eab: EabArgs,
}

/// The challenge types `issue` can answer.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChallengeKind {
    /// RFC 8555 §8.3, built-in HTTP server.
    #[value(name = "http-01")]
    Http01,
    /// RFC 8555 §8.4, TXT record by hook or by hand.
    #[value(name = "dns-01")]
    Dns01,
    /// draft-ietf-acme-dns-account-label: TXT at
    /// `_<account label>._acme-challenge`, by hook or by hand.
    #[value(name = "dns-account-01")]
    DnsAccount01,
    /// Persistent TXT record at `_validation-persist`.
    #[value(name = "dns-persist-01")]
    DnsPersist01,
    /// RFC 8737, built-in TLS server.
    #[value(name = "tls-alpn-01")]
    TlsAlpn01,
    /// RFC 9799, CSR signed by the hidden-service key.
    #[value(name = "onion-csr-01")]
    OnionCsr01,
}

impl ChallengeKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Http01 => "http-01",
            Self::Dns01 => "dns-01",
            Self::DnsAccount01 => "dns-account-01",
            Self::DnsPersist01 => "dns-persist-01",
            Self::TlsAlpn01 => "tls-alpn-01",
            Self::OnionCsr01 => "onion-csr-01",
        }
    }
}

/// What an issuance produced.
pub(crate) struct Issued {
    /// The chain file.
    pub cert_path: PathBuf,
    /// The certificate key file.
    pub key_path: PathBuf,
    /// The certificate URL.
    pub cert_url: String,
    /// The order URL.
    pub order_url: String,
    /// The leaf's notAfter, as openssl prints it.
    pub not_after: String,
}

impl Issued {
    /// The result document.
    pub(crate) fn json(&self, domains: &[String]) -> serde_json::Value {
        json!({
            "certificate": self.cert_path,
            "key": self.key_path,
            "certificate_url": self.cert_url,
            "order_url": self.order_url,
            "not_after": self.not_after,
            "domains": domains,
        })
    }

    /// The result lines.
    pub(crate) fn text(&self) -> String {
        format!(
            "Certificate: {}\nKey:         {}\nExpires:     {}\nURL:         {}",
            self.cert_path.display(),
            self.key_path.display(),
            self.not_after,
            self.cert_url
        )
    }
}

/// Runs `issue`.
pub(crate) async fn run(args: Args, out: &Output) -> Result<(), CliError> {
    let issued = obtain(&args.conn, &args.issue, None, out).await?;
    out.result(&issued.text(), issued.json(&args.issue.domains));
    Ok(())
}

/// The whole issuance; `replaces` is the ARI cert-id of the certificate
/// being renewed, when the server supports ARI.
pub(crate) async fn obtain(
    conn: &ConnArgs,
    args: &IssueArgs,
    replaces: Option<&str>,
    out: &Output,
) -> Result<Issued, CliError> {
    obtain_with(conn, args, replaces, None, out).await
}

/// The terms of a STAR order (RFC 8739 `auto-renewal`).
#[derive(Clone, Debug)]
pub(crate) struct StarTerms {
    /// `end-date`, RFC 3339.
    pub end_date: String,
    /// `lifetime`, seconds.
    pub lifetime_secs: u64,
    /// `start-date`, RFC 3339.
    pub start_date: Option<String>,
    /// `lifetime-adjust`, seconds.
    pub lifetime_adjust_secs: u64,
    /// `allow-certificate-get`.
    pub allow_certificate_get: bool,
}

/// [`obtain`], or with `star` a STAR order whose rolling certificate URL
/// is returned as `cert_url`.
pub(crate) async fn obtain_with(
    conn: &ConnArgs,
    args: &IssueArgs,
    replaces: Option<&str>,
    star: Option<&StarTerms>,
    out: &Output,
) -> Result<Issued, CliError> {
    check(args)?;
    let poll = Duration::from_secs(args.poll_timeout);
    let client = conn.connect(poll).await?;
    let account = account(&client, conn, args, out).await?;

    let ids: Vec<Identifier> = args
        .domains
        .iter()
        .map(|d| match d.parse::<IpAddr>() {
            Ok(_) => Identifier::ip(d.as_str()),
            Err(_) => match &args.ancestor_domain {
                Some(a) if is_below(d, a) => Identifier::dns(d.as_str()).below(a.as_str()),
                _ => Identifier::dns(d.as_str()),
            },
        })
        .collect();
    let order = match star {
        Some(t) => {
            client
                .new_star_order(
                    &account,
                    &StarOrderParams {
                        identifiers: &ids,
                        end_date: &t.end_date,
                        lifetime_secs: t.lifetime_secs,
                        start_date: t.start_date.as_deref(),
                        lifetime_adjust_secs: t.lifetime_adjust_secs,
                        allow_certificate_get: t.allow_certificate_get,
                    },
                )
                .await?
        }
        None => {
            client
                .new_order_with(
                    &account,
                    &NewOrder {
                        identifiers: &ids,
                        replaces,
                        ..NewOrder::default()
                    },
                )
                .await?
        }
    };
    out.progress(&format!(
        "order placed: {} ({} authorization{})",
        order.url,
        order.authorizations.len(),
        if order.authorizations.len() == 1 {
            ""
        } else {
            "s"
        }
    ));

    solve_all(&client, &account, &order, args, out).await?;
    let on_wait = |status: &str, waited: Duration| out.waiting("order", status, waited);
    let opts = PollOptions {
        timeout: poll,
        on_wait: Some(&on_wait),
    };
    client.poll_order_with(&account, &order.url, &opts).await?;
    out.progress("order ready");

    let key_path = args
        .cert_key
        .clone()
        .unwrap_or_else(|| key_path_for(&args.out));
    let cert_key = match &args.cert_key {
        Some(path) => load_or_generate_key(path, args.cert_key_type, out)?.0,
        None => {
            let key = akamu_client::AccountKey::generate_key_type(args.cert_key_type)?;
            write_private(&key_path, key.to_pem()?.as_bytes())?;
            out.progress(&format!(
                "generated {} certificate key {}",
                args.cert_key_type,
                key_path.display()
            ));
            key
        }
    };
    let names: Vec<&str> = args.domains.iter().map(String::as_str).collect();
    let csr = build_csr(&names, cert_key.private_key())?;
    let on_wait = |status: &str, waited: Duration| out.waiting("issuance", status, waited);
    let opts = PollOptions {
        timeout: poll,
        on_wait: Some(&on_wait),
    };
    let done = client.finalize_with(&account, &order, &csr, &opts).await?;
    let cert_url = match star {
        Some(_) => done.star_certificate.clone(),
        None => done.certificate.clone(),
    };
    let cert_url = cert_url.ok_or_else(|| {
        CliError::Client(akamu_client::ClientError::Http(
            "the valid order has no certificate URL".into(),
        ))
    })?;
    out.progress("finalized");
    let pem = client.download_certificate(&account, &cert_url).await?;
    let not_after = openssl::x509::X509::from_pem(&pem)
        .map(|c| c.not_after().to_string())
        .unwrap_or_default();
    write_public(&args.out, &pem)?;
    out.progress(&format!("downloaded: {}", args.out.display()));
    Ok(Issued {
        cert_path: args.out.clone(),
        key_path,
        cert_url,
        order_url: order.url,
        not_after,
    })
}

/// Whether `name` lies strictly below `ancestor` on label boundaries
/// (`*.example.org` and `a.example.org` below `example.org`), ignoring
/// case and trailing dots.
fn is_below(name: &str, ancestor: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let ancestor = ancestor.trim_end_matches('.').to_ascii_lowercase();
    let base = name.strip_prefix("*.").unwrap_or(&name);
    (name.starts_with("*.") && base == ancestor)
        || base
            .strip_suffix(ancestor.as_str())
            .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// `<out>.key.pem`.
fn key_path_for(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".key.pem");
    PathBuf::from(s)
}

/// Refuses flag combinations that cannot work, before any network traffic.
fn check(args: &IssueArgs) -> Result<(), CliError> {
    let wildcard = args.domains.iter().any(|d| d.starts_with("*."));
    if wildcard
        && matches!(
            args.challenge,
            ChallengeKind::Http01 | ChallengeKind::TlsAlpn01
        )
    {
        return Err(CliError::Usage(format!(
            "{} cannot validate wildcard names (RFC 8555 §8.3, RFC 8737 §3): use dns-01, dns-account-01 or dns-persist-01",
            args.challenge.as_str()
        )));
    }
    if args.challenge == ChallengeKind::OnionCsr01 && args.onion_key.is_none() {
        return Err(CliError::Usage("onion-csr-01 needs --onion-key".into()));
    }
    if let Some(ancestor) = &args.ancestor_domain {
        if !matches!(
            args.challenge,
            ChallengeKind::Dns01 | ChallengeKind::DnsAccount01
        ) {
            return Err(CliError::Usage(
                "--ancestor-domain needs --challenge dns-01 or dns-account-01: only a DNS change covers the names below a domain".into(),
            ));
        }
        if !args.domains.iter().any(|d| is_below(d, ancestor)) {
            return Err(CliError::Usage(format!(
                "--ancestor-domain {ancestor}: none of the domains lies below it"
            )));
        }
    }
    if args.poll_timeout == 0 {
        return Err(CliError::Usage("--poll-timeout must be at least 1".into()));
    }
    Ok(())
}

/// The sidecar's account, or a new registration.
async fn account(
    client: &AcmeClient,
    conn: &ConnArgs,
    args: &IssueArgs,
    out: &Output,
) -> Result<Account, CliError> {
    let (key, generated) = load_or_generate_key(&conn.account_key, args.key_type, out)?;
    let key = Arc::new(key);
    if !generated && let Some(a) = sidecar_account(client, conn, Arc::clone(&key)).await? {
        return Ok(a);
    }
    if let Some(tos) = &client.directory().meta.terms_of_service {
        out.progress(&format!("agreeing to the terms of service: {tos}"));
    }
    let account = register(client, conn, key, &[], true, &args.eab).await?;
    out.progress(&format!("account registered: {}", account.url));
    Ok(account)
}

/// The solver in use for one run.
enum Solver {
    Http(Http01Solver),
    Tls(TlsAlpn01Solver),
    None,
}

async fn solve_all(
    client: &AcmeClient,
    account: &Account,
    order: &Order,
    args: &IssueArgs,
    out: &Output,
) -> Result<(), CliError> {
    let mut solver = match args.challenge {
        ChallengeKind::Http01 => {
            let s = Http01Solver::with_addr(SocketAddr::new(args.bind_addr, args.http_port));
            s.start().await?;
            Solver::Http(s)
        }
        ChallengeKind::TlsAlpn01 => {
            let mut s = TlsAlpn01Solver::with_addr(SocketAddr::new(args.bind_addr, args.tls_port));
            s.start().await?;
            Solver::Tls(s)
        }
        _ => Solver::None,
    };
    let total = order.authorizations.len();
    let result = async {
        for (i, url) in order.authorizations.iter().enumerate() {
            let authz = client.get_authorization(account, url).await?;
            let n = i + 1;
            if authz.status == "valid" {
                out.progress(&format!(
                    "challenge {n}/{total} valid: {} (authorization reused)",
                    authz.identifier.value
                ));
                continue;
            }
            solve_one(client, account, &authz, args, &solver, out).await?;
            out.progress(&format!(
                "challenge {n}/{total} valid: {} ({})",
                authz.identifier.value,
                args.challenge.as_str()
            ));
        }
        Ok::<(), CliError>(())
    }
    .await;
    if let Solver::Tls(s) = &mut solver {
        s.cleanup();
    }
    result
}

async fn solve_one(
    client: &AcmeClient,
    account: &Account,
    authz: &Authorization,
    args: &IssueArgs,
    solver: &Solver,
    out: &Output,
) -> Result<(), CliError> {
    let kind = args.challenge.as_str();
    let Some(chall) = authz.find_challenge(kind) else {
        let offered: Vec<&str> = authz.challenges.iter().map(|c| c.r#type.as_str()).collect();
        return Err(CliError::Client(akamu_client::ClientError::Unsupported(
            format!(
                "{kind} is not offered for {} (offered: {})",
                authz.identifier.value,
                offered.join(", ")
            ),
        )));
    };
    let token = chall.token.clone().unwrap_or_default();
    let key_auth = account.key_authorization(&token);
    let domain = authz.identifier.value.as_str();
    let mut dns_record: Option<(String, String)> = None;
    match (args.challenge, solver) {
        (ChallengeKind::Http01, Solver::Http(s)) => s.present(&token, &key_auth).await?,
        (ChallengeKind::TlsAlpn01, Solver::Tls(s)) => {
            s.present(domain, &authz.identifier.r#type, &key_auth)
                .await?;
        }
        (ChallengeKind::Dns01 | ChallengeKind::DnsAccount01 | ChallengeKind::DnsPersist01, _) => {
            let (name, value) = match args.challenge {
                ChallengeKind::Dns01 => (
                    Dns01Helper::record_name(domain),
                    Dns01Helper::txt_value(&key_auth)?,
                ),
                ChallengeKind::DnsAccount01 => (
                    DnsAccount01Helper::record_name(domain, &account.url),
                    DnsAccount01Helper::txt_value(&key_auth)?,
                ),
                _ => {
                    // draft-02 (`issuerDomainNames` and the directory's
                    // `accountHashPrefix`) when the server shows it, else
                    // the reference's form (`issuer-domain-names`).
                    let first = |field: &str| {
                        chall
                            .extra
                            .get(field)
                            .and_then(|v| v.get(0))
                            .and_then(|v| v.as_str())
                    };
                    let prefix = client.directory().meta.account_hash_prefix.as_deref();
                    let value = match (first("issuerDomainNames"), prefix) {
                        (Some(issuer), Some(prefix)) => {
                            let uri = DnsPersist01Helper::hashed_account_uri(
                                prefix,
                                Some(domain),
                                account.key.thumbprint(),
                                &account.url,
                            )?;
                            DnsPersist01Helper::txt_value_draft02(
                                issuer,
                                &uri,
                                authz.wildcard,
                                None,
                            )
                        }
                        _ => {
                            let issuer = first("issuer-domain-names").ok_or_else(|| {
                                CliError::Client(akamu_client::ClientError::Http(
                                    "the dns-persist-01 challenge names no issuer domain names"
                                        .into(),
                                ))
                            })?;
                            DnsPersist01Helper::txt_value(
                                issuer,
                                &account.url,
                                authz.wildcard,
                                None,
                            )?
                        }
                    };
                    (DnsPersist01Helper::record_name(domain), value)
                }
            };
            let shown = if authz.wildcard {
                format!("*.{domain}")
            } else {
                domain.to_owned()
            };
            publish_txt(args, &shown, &name, &value, out).await?;
            dns_record = Some((name, value));
        }
        (ChallengeKind::OnionCsr01, _) => {
            // check() made sure the flag is there.
            let path = args.onion_key.as_deref().unwrap_or(Path::new(""));
            let hs_key = read(path)?;
            let csr = build_onion_csr(domain, &key_auth, &hs_key)?;
            client
                .trigger_challenge_onion(account, &chall.url, &csr)
                .await?;
        }
        _ => {}
    }
    if args.challenge != ChallengeKind::OnionCsr01 {
        client.trigger_challenge(account, chall).await?;
    }
    out.progress(&format!("challenge triggered for {domain}"));
    let on_wait = |status: &str, waited: Duration| {
        out.waiting(&format!("{domain} validation"), status, waited);
    };
    let opts = PollOptions {
        timeout: Duration::from_secs(args.poll_timeout),
        on_wait: Some(&on_wait),
    };
    let result = client.poll_authorization(account, &authz.url, &opts).await;
    match solver {
        Solver::Http(s) => s.cleanup(&token).await?,
        Solver::Tls(s) => s.remove(domain, &authz.identifier.r#type),
        Solver::None => {}
    }
    if let (Some((name, value)), Some(hook)) = (&dns_record, &args.dns_hook)
        && matches!(
            args.challenge,
            ChallengeKind::Dns01 | ChallengeKind::DnsAccount01
        )
        && let Err(e) = run_hook(hook, "cleanup", domain, name, value, args.poll_timeout).await
    {
        out.warn(&format!("DNS cleanup for {name}: {e}"));
    }
    result?;
    Ok(())
}

/// Publishes a TXT record through `--dns-hook`, or asks the operator.
async fn publish_txt(
    args: &IssueArgs,
    domain: &str,
    name: &str,
    value: &str,
    out: &Output,
) -> Result<(), CliError> {
    if let Some(hook) = &args.dns_hook {
        out.progress(&format!("dns hook: present {name}"));
        return run_hook(hook, "present", domain, name, value, args.poll_timeout).await;
    }
    eprintln!(
        "{} challenge for {domain}:\n  Name:  {name}\n  Type:  TXT\n  Value: {value}\n\nPress Enter after the TXT record has propagated (Ctrl-C to abort)...",
        args.challenge.as_str().to_ascii_uppercase()
    );
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|n| (n, line))
    })
    .await
    .map_err(|e| CliError::Dns(format!("prompt task: {e}")))?;
    match line {
        Ok((0, _)) => Err(CliError::Dns(
            "stdin closed before Enter (use --dns-hook for automation)".into(),
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(CliError::Dns(format!("reading stdin: {e}"))),
    }
}

/// Runs `hook action domain name value` with a deadline.
async fn run_hook(
    hook: &Path,
    action: &str,
    domain: &str,
    name: &str,
    value: &str,
    timeout_secs: u64,
) -> Result<(), CliError> {
    let mut cmd = tokio::process::Command::new(hook);
    cmd.args([action, domain, name, value])
        .env("AKAMU_DNS_ACTION", action)
        .env("AKAMU_DNS_DOMAIN", domain)
        .env("AKAMU_DNS_NAME", name)
        .env("AKAMU_DNS_VALUE", value)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let status = tokio::time::timeout(Duration::from_secs(timeout_secs), cmd.status())
        .await
        .map_err(|_| {
            CliError::Dns(format!(
                "{} {action} took over {timeout_secs} s",
                hook.display()
            ))
        })?
        .map_err(|e| CliError::Dns(format!("cannot run {}: {e}", hook.display())))?;
    if status.success() {
        Ok(())
    } else {
        Err(CliError::Dns(format!(
            "{} {action} exited with {status}",
            hook.display()
        )))
    }
}
