//! `akamu-cli audit`: verify the signer's hash-chained audit log, and
//! reconcile it with the frontend's database.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use acme_frontend::admin::{self, AuditOnly};
use ca_signer::audit::{self, AuditError, Operation, Record};
use ca_signer::server_cert;
use serde_json::json;

use crate::error::CliError;
use crate::output::Output;

/// `audit` subcommands.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Args {
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
    /// database, and the reverse; with --import, bring the audit-only
    /// certificates into the database (served, listed, revocable).
    Reconcile {
        /// The audit log.
        #[arg(long, value_name = "PATH")]
        audit_log: PathBuf,
        /// The frontend's configuration (for `[database] path` or `url`).
        /// Default: the embedded default configuration.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The SQLite database, instead of the one named by --config.
        #[arg(long, value_name = "PATH")]
        database: Option<PathBuf>,
        /// Store every certificate found only in the audit log in the
        /// database (the certificate each record carries, with its order),
        /// so it can be served, revoked and put on the CRL. Needs --chain.
        #[arg(long, requires = "chain")]
        import: bool,
        /// The CA chain (PEM, issuing CA first) served after an imported
        /// leaf: the signer's `cert_file` followed by its `chain_file`.
        #[arg(long, value_name = "PEM")]
        chain: Option<PathBuf>,
    },
}

/// Runs an audit subcommand.
pub(crate) fn run(args: Args, out: &Output) -> Result<(), CliError> {
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
            import,
            chain,
        } => {
            // The frontend's own HTTPS certificates are signed at the
            // signer's start, not through ACME: they are never in the
            // database, and are listed apart.
            let mut server = BTreeSet::new();
            let mut logged = BTreeMap::new();
            let (_, head) = audit::for_each_verified(&audit_log, |r| {
                let Some(serial) = r
                    .serial
                    .as_deref()
                    .and_then(|s| akamu_pki::serial::normalize(s).ok())
                else {
                    return;
                };
                if r.operation != Operation::Issue {
                    return;
                }
                if r.detail.as_deref() == Some(server_cert::AUDIT_DETAIL) {
                    server.insert(serial);
                } else {
                    logged.insert(serial, audit_only(r));
                }
            })
            .map_err(|e| broken(&audit_log, &e))?;
            let db = match database {
                Some(p) => acme_frontend::store::Location::Sqlite(p),
                None => acme_frontend::Config::load(config.as_deref())
                    .map_err(|e| CliError::Usage(e.to_string()))?
                    .database(),
            };
            let db_path = std::path::PathBuf::from(db.to_string());
            let bad_db = |e: acme_frontend::error::Error| CliError::BadFile {
                path: db_path.clone(),
                reason: e.to_string(),
            };
            let stored = admin::database_serials(&db).map_err(bad_db)?;
            let logged_serials: BTreeSet<String> = logged.keys().cloned().collect();
            let mut only_log: Vec<&String> = logged_serials.difference(&stored).collect();
            let only_db: Vec<&String> = stored.difference(&logged_serials).collect();
            let mut imported = Vec::new();
            if import && let Some(chain) = &chain {
                let chain_pem =
                    std::fs::read_to_string(chain).map_err(|e| CliError::io(chain, e))?;
                for serial in &only_log {
                    let Some(Some(cert)) = logged.get(*serial) else {
                        continue;
                    };
                    admin::import_certificate(&db, cert, &chain_pem).map_err(bad_db)?;
                    imported.push((*serial).clone());
                }
                only_log.retain(|s| !imported.contains(s));
            }
            let server: Vec<&String> = server.iter().collect();
            let human = format!(
                "audit log {} (head {head}): {} issued through ACME, {} server certificate(s) \
                 ({}); database {}: {} certificates\n\
                 in the audit log only: {}\nin the database only: {}\nimported: {}",
                audit_log.display(),
                logged.len(),
                server.len(),
                list(&server),
                db_path.display(),
                stored.len(),
                list(&only_log),
                list(&only_db),
                list(&imported.iter().collect::<Vec<_>>()),
            );
            out.result(
                &human,
                json!({
                    "audit_only": only_log,
                    "database_only": only_db,
                    "server_certificates": server,
                    "imported": imported,
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

/// What an issue record holds for an import: its certificate, order and
/// account (`None` for records written before they carried certificates).
fn audit_only(r: &Record) -> Option<AuditOnly> {
    let der = openssl::base64::decode_block(r.certificate.as_deref()?).ok()?;
    let account_uri = r.detail.as_deref().and_then(|d| {
        d.split(' ')
            .find_map(|kv| kv.strip_prefix("account="))
            .map(str::to_owned)
    });
    Some(AuditOnly {
        der,
        order_id: r.order_id.clone()?,
        account_uri,
        mtc_log_index: r.mtc_log_index,
    })
}
