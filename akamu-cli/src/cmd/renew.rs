//! `akamu-cli renew`: ask ARI (RFC 9773) whether the certificate is due,
//! then issue a replacement (or always, with `--force`).

use std::path::PathBuf;

use akamu_client::{AcmeClient, ClientError, DEFAULT_POLL_TIMEOUT, pem_to_der, renewal_cert_id};
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cmd::issue::{IssueArgs, obtain};
use crate::common::{ConnArgs, read};
use crate::error::CliError;
use crate::output::Output;

/// `renew` flags.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    conn: ConnArgs,
    #[command(flatten)]
    issue: IssueArgs,
    /// The current certificate (PEM), checked against ARI. Without it no
    /// ARI check is made.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// Renew regardless of the ARI window.
    #[arg(long)]
    force: bool,
}

/// What ARI said.
enum Verdict {
    /// Renew; `replaces` is the cert-id when the server knows ARI.
    Renew { replaces: Option<String> },
    /// Not yet: the window starts later.
    Wait { start: String, end: String },
}

/// Runs `renew`.
pub(crate) async fn run(args: Args, out: &Output) -> Result<(), CliError> {
    let verdict = match (&args.cert, args.force) {
        (Some(cert), false) => ari_verdict(&args.conn, cert, out).await?,
        (Some(cert), true) => {
            out.progress("--force: skipping the ARI window check");
            // Still name the replaced certificate when the server has ARI.
            let client = args.conn.connect(DEFAULT_POLL_TIMEOUT).await?;
            Verdict::Renew {
                replaces: replaces_id(&client, cert)?,
            }
        }
        (None, _) => Verdict::Renew { replaces: None },
    };
    match verdict {
        Verdict::Wait { start, end } => {
            out.result(
                &format!("Not renewing: the renewal window is {start} – {end}"),
                json!({"renewed": false, "window_start": start, "window_end": end}),
            );
            Ok(())
        }
        Verdict::Renew { replaces } => {
            let issued = obtain(&args.conn, &args.issue, replaces.as_deref(), out).await?;
            let mut doc = issued.json(&args.issue.domains);
            doc["renewed"] = true.into();
            out.result(&format!("Renewed.\n{}", issued.text()), doc);
            Ok(())
        }
    }
}

async fn ari_verdict(
    conn: &ConnArgs,
    cert: &std::path::Path,
    out: &Output,
) -> Result<Verdict, CliError> {
    let pem = read(cert)?;
    let client = conn.connect(DEFAULT_POLL_TIMEOUT).await?;
    match client.get_renewal_info(&pem).await {
        Ok(info) => {
            let start = OffsetDateTime::parse(&info.window_start, &Rfc3339).map_err(|e| {
                ClientError::Http(format!("renewal window start {:?}: {e}", info.window_start))
            })?;
            out.progress(&format!(
                "ARI window: {} – {}",
                info.window_start, info.window_end
            ));
            if OffsetDateTime::now_utc() < start {
                return Ok(Verdict::Wait {
                    start: info.window_start,
                    end: info.window_end,
                });
            }
            Ok(Verdict::Renew {
                replaces: replaces_id(&client, cert)?,
            })
        }
        Err(ClientError::InvalidArgument(e)) => Err(CliError::BadFile {
            path: cert.to_owned(),
            reason: e,
        }),
        Err(e) => {
            out.warn(&format!("ARI check failed ({e}); renewing anyway"));
            Ok(Verdict::Renew { replaces: None })
        }
    }
}

/// The cert-id for the order's `replaces`, only when the server has ARI.
fn replaces_id(client: &AcmeClient, cert: &std::path::Path) -> Result<Option<String>, CliError> {
    if client.directory().renewal_info.is_none() {
        return Ok(None);
    }
    let pem = read(cert)?;
    let Some(der) = pem_to_der(&pem).into_iter().next() else {
        return Err(CliError::BadFile {
            path: cert.to_owned(),
            reason: "no PEM certificate".into(),
        });
    };
    Ok(renewal_cert_id(&der).ok())
}
