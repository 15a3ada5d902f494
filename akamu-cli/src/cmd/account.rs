//! `akamu-cli account register|deregister|show|update|key-change`
//! (RFC 8555 §7.3).

use std::path::PathBuf;
use std::sync::Arc;

use akamu_client::{DEFAULT_POLL_TIMEOUT, KeyType};
use serde_json::json;

use crate::common::{
    ConnArgs, EabArgs, account_json, account_text, load_or_generate_key, register, require_account,
    write_private,
};
use crate::error::CliError;
use crate::output::Output;

/// `account` flags.
#[derive(clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

/// The account subcommands.
#[derive(clap::Subcommand)]
enum Action {
    /// Register a new ACME account and save its URL next to the key.
    Register {
        #[command(flatten)]
        conn: ConnArgs,
        /// Key type to generate when the key file does not exist.
        #[arg(long, default_value = "ec:P-256", value_name = "TYPE")]
        key_type: KeyType,
        /// Contact URI (e.g. mailto:admin@example.com); repeatable.
        #[arg(long = "contact", value_name = "URI")]
        contacts: Vec<String>,
        /// Agree to the server's terms of service.
        #[arg(long)]
        agree_tos: bool,
        #[command(flatten)]
        eab: EabArgs,
    },
    /// Deactivate the account (RFC 8555 §7.3.6) and remove the sidecar.
    Deregister {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Print the account URL, status and contacts.
    Show {
        #[command(flatten)]
        conn: ConnArgs,
    },
    /// Replace the contact list (no --contact clears it).
    Update {
        #[command(flatten)]
        conn: ConnArgs,
        /// New contact URI; repeatable.
        #[arg(long = "contact", value_name = "URI")]
        contacts: Vec<String>,
    },
    /// Roll the account key (RFC 8555 §7.3.5); the new key replaces the
    /// file given by --account-key.
    KeyChange {
        #[command(flatten)]
        conn: ConnArgs,
        /// New key PEM file; generated when absent.
        #[arg(long, value_name = "FILE")]
        new_key: PathBuf,
        /// Key type for generating --new-key.
        #[arg(long, default_value = "ec:P-256", value_name = "TYPE")]
        new_key_type: KeyType,
    },
}

/// Runs an account subcommand.
pub(crate) async fn run(args: Args, out: &Output) -> Result<(), CliError> {
    match args.action {
        Action::Register {
            conn,
            key_type,
            contacts,
            agree_tos,
            eab,
        } => {
            let client = conn.connect(DEFAULT_POLL_TIMEOUT).await?;
            let (key, _) = load_or_generate_key(&conn.account_key, key_type, out)?;
            let account =
                register(&client, &conn, Arc::new(key), &contacts, agree_tos, &eab).await?;
            out.progress(&format!(
                "account URL saved to {}",
                conn.sidecar().display()
            ));
            out.result(&account_text(&account), account_json(&account));
        }
        Action::Deregister { conn } => {
            let client = conn.connect(DEFAULT_POLL_TIMEOUT).await?;
            let account = require_account(&client, &conn).await?;
            let gone = client.deactivate_account(&account).await?;
            let sidecar = conn.sidecar();
            std::fs::remove_file(&sidecar).map_err(|e| CliError::io(&sidecar, e))?;
            out.result(
                &format!("Account {} deactivated", gone.url),
                json!({"url": gone.url, "status": gone.status}),
            );
        }
        Action::Show { conn } => {
            let client = conn.connect(DEFAULT_POLL_TIMEOUT).await?;
            let account = require_account(&client, &conn).await?;
            out.result(&account_text(&account), account_json(&account));
        }
        Action::Update { conn, contacts } => {
            let client = conn.connect(DEFAULT_POLL_TIMEOUT).await?;
            let account = require_account(&client, &conn).await?;
            let contacts: Vec<&str> = contacts.iter().map(String::as_str).collect();
            let updated = client.update_account(&account, &contacts).await?;
            out.result(&account_text(&updated), account_json(&updated));
        }
        Action::KeyChange {
            conn,
            new_key,
            new_key_type,
        } => {
            let client = conn.connect(DEFAULT_POLL_TIMEOUT).await?;
            let account = require_account(&client, &conn).await?;
            let (key, _) = load_or_generate_key(&new_key, new_key_type, out)?;
            let pem = key.to_pem()?;
            let rolled = client.key_change(&account, Arc::new(key)).await?;
            write_private(&conn.account_key, pem.as_bytes())?;
            out.progress(&format!(
                "new key written to {}",
                conn.account_key.display()
            ));
            out.result(&account_text(&rolled), account_json(&rolled));
        }
    }
    Ok(())
}
