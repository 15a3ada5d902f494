//! `akamu-cli star` (RFC 8739): `order` places a STAR order and takes it
//! through validation and finalize like `issue` (writing the first
//! certificate); `fetch` downloads the order's current certificate (POST-as-GET
//! with the account, or `--get` without one); `cancel` stops the renewals.

use std::path::PathBuf;

use akamu_client::DEFAULT_POLL_TIMEOUT;
use serde_json::json;

use super::issue::{IssueArgs, StarTerms, obtain_with};
use crate::common::{ConnArgs, existing_account, write_public};
use crate::error::CliError;
use crate::output::Output;

/// `star` flags.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

/// The `star` subcommands.
#[derive(clap::Subcommand, Clone, Debug)]
enum Command {
    /// Place a STAR order, validate, finalize and write the first
    /// certificate; prints the order and rolling certificate URLs.
    Order(Box<OrderArgs>),
    /// Download the current certificate of a STAR order.
    Fetch(FetchArgs),
    /// Cancel a STAR order's automatic renewal.
    Cancel(CancelArgs),
}

/// `star order` flags.
#[derive(clap::Args, Clone, Debug)]
struct OrderArgs {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    issue: IssueArgs,
    /// `end-date` (RFC 3339): no certificate is valid after it.
    #[arg(long, value_name = "RFC3339")]
    end_date: String,
    /// `lifetime` of each certificate, seconds.
    #[arg(long, value_name = "SECS")]
    lifetime: u64,
    /// `start-date` (RFC 3339); default: at the finalize.
    #[arg(long, value_name = "RFC3339")]
    start_date: Option<String>,
    /// `lifetime-adjust`: pre-dating of each notBefore, seconds.
    #[arg(long, default_value_t = 0, value_name = "SECS")]
    lifetime_adjust: u64,
    /// Ask that the rolling certificate may be fetched with a plain GET.
    #[arg(long)]
    allow_certificate_get: bool,
}

/// `star fetch` flags.
#[derive(clap::Args, Clone, Debug)]
struct FetchArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The order's `star-certificate` URL.
    #[arg(long, value_name = "URL")]
    url: String,
    /// Output path for the PEM chain.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Fetch with an unauthenticated GET (the order must allow it).
    #[arg(long)]
    get: bool,
}

/// `star cancel` flags.
#[derive(clap::Args, Clone, Debug)]
struct CancelArgs {
    #[command(flatten)]
    conn: ConnArgs,
    /// The order URL.
    #[arg(long, value_name = "URL")]
    order: String,
}

/// Runs `star`.
pub(crate) async fn run(args: Args, out: &Output) -> Result<(), CliError> {
    match args.command {
        Command::Order(a) => order(*a, out).await,
        Command::Fetch(a) => fetch(a, out).await,
        Command::Cancel(a) => cancel(a, out).await,
    }
}

async fn order(args: OrderArgs, out: &Output) -> Result<(), CliError> {
    if args.lifetime == 0 {
        return Err(CliError::Usage("--lifetime must be at least 1".into()));
    }
    let terms = StarTerms {
        end_date: args.end_date.clone(),
        lifetime_secs: args.lifetime,
        start_date: args.start_date.clone(),
        lifetime_adjust_secs: args.lifetime_adjust,
        allow_certificate_get: args.allow_certificate_get,
    };
    let issued = obtain_with(&args.conn, &args.issue, None, Some(&terms), out).await?;
    let mut doc = issued.json(&args.issue.domains);
    doc["star_certificate_url"] = issued.cert_url.clone().into();
    doc["end_date"] = args.end_date.into();
    out.result(
        &format!(
            "{}\nOrder:       {}\nRenewed automatically until the end-date; fetch with `akamu-cli star fetch --url {}`",
            issued.text(),
            issued.order_url,
            issued.cert_url
        ),
        doc,
    );
    Ok(())
}

async fn fetch(args: FetchArgs, out: &Output) -> Result<(), CliError> {
    let client = args.conn.connect(DEFAULT_POLL_TIMEOUT).await?;
    let pem = if args.get {
        client.get_star_certificate(&args.url).await?
    } else {
        let account = existing_account(&client, &args.conn).await?;
        client
            .download_star_certificate(&account, &args.url)
            .await?
    };
    let cert = openssl::x509::X509::from_pem(&pem).map_err(|e| CliError::BadFile {
        path: args.out.clone(),
        reason: format!("the server's answer is not a PEM certificate: {e}"),
    })?;
    let not_before = cert.not_before().to_string();
    let not_after = cert.not_after().to_string();
    write_public(&args.out, &pem)?;
    out.result(
        &format!(
            "Certificate: {}\nValid:       {not_before} to {not_after}",
            args.out.display()
        ),
        json!({"certificate": args.out, "not_before": not_before, "not_after": not_after, "url": args.url}),
    );
    Ok(())
}

async fn cancel(args: CancelArgs, out: &Output) -> Result<(), CliError> {
    let client = args.conn.connect(DEFAULT_POLL_TIMEOUT).await?;
    let account = existing_account(&client, &args.conn).await?;
    let order = client.cancel_star_order(&account, &args.order).await?;
    out.result(
        &format!(
            "STAR order {} canceled (status {})",
            args.order, order.status
        ),
        json!({"order": args.order, "status": order.status}),
    );
    Ok(())
}
