//! `akamu-cli audit`: verify the signer's hash-chained audit log, and
//! reconcile it with the frontend's database.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ca_signer::audit::{self, AuditError, Operation};
use ca_signer::server_cert;
use diesel::prelude::*;
use diesel::sql_types::Text;
use serde_json::json;

use crate::error::CliError;
use crate::output::Output;

/// `audit` subcommands.
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Clone, Debug)]
enum Action {
    /// Check the whole chain; print OK and the head hash, or name the first
    /// broken record.
    Verify {
        /// The audit log.
        path: PathBuf,
    },
    /// Report serials issued according to the audit log but missing from the
    /// database, and the reverse.
    Reconcile {
        /// The audit log.
        #[arg(long, value_name = "PATH")]
        audit_log: PathBuf,
        /// The frontend's configuration (for `[database] path`). Default:
        /// the embedded default configuration.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The SQLite database, instead of the one named by --config.
        #[arg(long, value_name = "PATH")]
        database: Option<PathBuf>,
    },
}

/// Runs an audit subcommand.
pub fn run(args: Args, out: &Output) -> Result<(), CliError> {
    match args.action {
        Action::Verify { path } => {
            let head = audit::verify(&path).map_err(|e| broken(&path, &e))?;
            out.result(
                &format!("OK {head}"),
                json!({ "ok": true, "head": head, "path": path }),
            );
            Ok(())
        }
        Action::Reconcile {
            audit_log,
            config,
            database,
        } => {
            // The frontend's own HTTPS certificates are signed at the
            // signer's start, not through ACME: they are never in the
            // database, and are listed apart.
            let mut server = BTreeSet::new();
            let mut logged = BTreeSet::new();
            let (_, head) = audit::for_each_verified(&audit_log, |r| {
                let Some(serial) = r.serial.as_deref() else {
                    return;
                };
                if r.operation != Operation::Issue {
                    return;
                }
                if r.detail.as_deref() == Some(server_cert::AUDIT_DETAIL) {
                    server.insert(normalise(serial));
                } else {
                    logged.insert(normalise(serial));
                }
            })
            .map_err(|e| broken(&audit_log, &e))?;
            let db_path = match database {
                Some(p) => p,
                None => acme_frontend::Config::load(config.as_deref())
                    .map_err(|e| CliError::Usage(e.to_string()))?
                    .database_path(),
            };
            let stored = database_serials(&db_path)?;
            let only_log: Vec<&String> = logged.difference(&stored).collect();
            let only_db: Vec<&String> = stored.difference(&logged).collect();
            let server: Vec<&String> = server.iter().collect();
            let human = format!(
                "audit log {} (head {head}): {} issued through ACME, {} server certificate(s) \
                 ({}); database {}: {} certificates\n\
                 in the audit log only: {}\nin the database only: {}",
                audit_log.display(),
                logged.len(),
                server.len(),
                list(&server),
                db_path.display(),
                stored.len(),
                list(&only_log),
                list(&only_db),
            );
            out.result(
                &human,
                json!({
                    "audit_only": only_log,
                    "database_only": only_db,
                    "server_certificates": server,
                    "head": head,
                }),
            );
            if only_log.is_empty() && only_db.is_empty() {
                Ok(())
            } else {
                Err(CliError::BadFile {
                    path: audit_log,
                    reason: format!(
                        "{} serial(s) in the audit log only, {} in the database only",
                        only_log.len(),
                        only_db.len()
                    ),
                })
            }
        }
    }
}

fn list(serials: &[&String]) -> String {
    if serials.is_empty() {
        "none".to_owned()
    } else {
        serials
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn broken(path: &Path, e: &AuditError) -> CliError {
    CliError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    }
}

/// The serial's canonical spelling ([`akamu_pki::serial::normalize`]), as
/// the frontend stores it; a text that is no serial is kept (lower-cased) so
/// that it shows up as a difference.
fn normalise(serial: &str) -> String {
    akamu_pki::serial::normalize(serial).unwrap_or_else(|_| serial.to_ascii_lowercase())
}

#[derive(QueryableByName)]
struct SerialRow {
    #[diesel(sql_type = Text)]
    serial_number: String,
}

/// Every certificate serial in the frontend's database (read-only).
fn database_serials(path: &Path) -> Result<BTreeSet<String>, CliError> {
    if !path.exists() {
        return Err(CliError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::NotFound, "database not found"),
        ));
    }
    let url = format!("file:{}?mode=ro", path.display());
    let bad = |e: &dyn std::fmt::Display| CliError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let mut conn = SqliteConnection::establish(&url).map_err(|e| bad(&e))?;
    let rows: Vec<SerialRow> = diesel::sql_query("SELECT serial_number FROM certificates")
        .load(&mut conn)
        .map_err(|e| bad(&e))?;
    Ok(rows.iter().map(|r| normalise(&r.serial_number)).collect())
}
