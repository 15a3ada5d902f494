//! `akamu-cli revoke` (RFC 8555 §7.6): with the account key, or with the
//! certificate's own key (`--cert-key`).

use std::path::PathBuf;

use akamu_client::{DEFAULT_POLL_TIMEOUT, pem_to_der, validate_reason};
use serde_json::json;

use crate::common::{ConnArgs, existing_account, load_key, read};
use crate::error::CliError;
use crate::output::Output;

/// `revoke` flags.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Args {
    #[command(flatten)]
    conn: ConnArgs,
    /// PEM file holding the certificate to revoke (the first block).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// CRL reason code: 0–6 or 8–10. Omit for unspecified.
    #[arg(long, value_name = "N")]
    reason: Option<u8>,
    /// The certificate's own private key: sign with it instead of the
    /// account key.
    #[arg(long, value_name = "FILE")]
    cert_key: Option<PathBuf>,
}

/// Runs `revoke`.
pub(crate) async fn run(args: Args, out: &Output) -> Result<(), CliError> {
    if let Some(r) = args.reason {
        validate_reason(r)?;
    }
    let pem = read(&args.cert)?;
    let Some(der) = pem_to_der(&pem).into_iter().next() else {
        return Err(CliError::BadFile {
            path: args.cert.clone(),
            reason: "no PEM certificate".into(),
        });
    };
    let client = args.conn.connect(DEFAULT_POLL_TIMEOUT).await?;
    let signed_by = if let Some(path) = &args.cert_key {
        let key = load_key(path)?;
        client
            .revoke_certificate_with_cert_key(&key, &der, args.reason)
            .await?;
        "certificate key"
    } else {
        let account = existing_account(&client, &args.conn).await?;
        client
            .revoke_certificate(&account, &der, args.reason)
            .await?;
        "account key"
    };
    out.result(
        &format!("Certificate {} revoked (signed with the {signed_by})", args.cert.display()),
        json!({"revoked": true, "certificate": args.cert, "reason": args.reason, "signed_by": signed_by}),
    );
    Ok(())
}
