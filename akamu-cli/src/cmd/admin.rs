//! `akamu-cli admin`: operator actions that never touch the CA key.
//! `revoke` records a revocation in the frontend's database (the frontend
//! then has the signer sign a new CRL); `block-key` adds a key to the
//! signer's blocklist, which the signer re-reads on its next request;
//! `unpause` lifts the pause repeated failed validations put on an
//! account's identifiers; `backup` writes a consistent copy of the
//! database while the frontend serves, `check` checks a database (live,
//! backup or restored), and `renew-early` moves certificates' ARI windows
//! into the past.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::CliError;
use crate::output::Output;

/// `admin` subcommands.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Clone, Debug)]
enum Action {
    /// Revoke a certificate as the operator.
    Revoke {
        /// The certificate's serial, hex.
        #[arg(long, value_name = "HEX")]
        serial: String,
        /// RFC 5280 reason code (0–6, 8–10).
        #[arg(long, value_name = "N", default_value_t = 0)]
        reason: i64,
        /// The frontend's configuration. Default: the embedded default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Lift the pause that repeated failed validations put on an account
    /// (rate limit `failed_validations_per_account_identifier`): for the
    /// identifiers given, or for every one when none is.
    Unpause {
        /// The account, by id or URL.
        #[arg(long, value_name = "URL|ID")]
        account: String,
        /// An identifier to unpause (`example.org`, `dns:example.org`,
        /// `192.0.2.1`); repeat for several. Default: all of the account's.
        #[arg(long, value_name = "IDENTIFIER")]
        identifier: Vec<String>,
        /// The frontend's configuration. Default: the embedded default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Write a consistent copy of the frontend's database to a new file
    /// while the CA serves (SQLite `VACUUM INTO`); never overwrites a file.
    Backup {
        /// The frontend's configuration (for `[database] path` or `url`). Default:
        /// the embedded default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The backup file to create; it must not exist.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check a database: SQLite's integrity check and every foreign key.
    /// Exits non-zero when anything is wrong.
    Check {
        /// The frontend's configuration (for `[database] path` or `url`). Default:
        /// the embedded default.
        #[arg(long, value_name = "FILE", conflicts_with = "database")]
        config: Option<PathBuf>,
        /// The SQLite file to check (a backup, say), instead of --config's.
        #[arg(long, value_name = "FILE")]
        database: Option<PathBuf>,
    },
    /// Ask ARI clients to renew certificates now (RFC 9773): their
    /// renewal-info window moves into the past. Durable.
    RenewEarly {
        /// Serials (hex) of the certificates to renew.
        #[arg(long, value_name = "HEX", num_args = 1.., required_unless_present = "issued_before", conflicts_with = "issued_before")]
        serial: Vec<String>,
        /// Every unexpired certificate issued before this time (RFC 3339).
        #[arg(long, value_name = "RFC3339")]
        issued_before: Option<String>,
        /// A page explaining why, given to clients as `explanationURL`.
        #[arg(long, value_name = "URL")]
        explanation_url: Option<String>,
        /// The frontend's configuration. Default: the embedded default.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Add a public key to the signer's blocklist (SPKI SHA-256).
    BlockKey {
        /// The SPKI SHA-256, hex.
        #[arg(long, value_name = "HEX", conflicts_with_all = ["cert", "public_key", "csr"])]
        spki_sha256: Option<String>,
        /// A PEM certificate whose key to block.
        #[arg(long, value_name = "FILE")]
        cert: Option<PathBuf>,
        /// A PEM public (or private) key to block.
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
        /// A PEM CSR whose key to block.
        #[arg(long, value_name = "FILE")]
        csr: Option<PathBuf>,
        /// The blocklist file (`[policy] blocked_keys_file`).
        #[arg(long, value_name = "FILE", conflicts_with = "signer_config")]
        blocklist: Option<PathBuf>,
        /// The signer's configuration, to find its blocklist file.
        #[arg(long, value_name = "FILE")]
        signer_config: Option<PathBuf>,
        /// Why (kept as a comment in the file).
        #[arg(long, default_value = "blocked by akamu-cli admin block-key")]
        comment: String,
    },
}

/// Runs an admin subcommand.
pub(crate) fn run(args: Args, out: &Output) -> Result<(), CliError> {
    match args.action {
        Action::Revoke {
            serial,
            reason,
            config,
        } => {
            let done = acme_frontend::admin::revoke(config.as_deref(), &serial, reason)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let (human, state) = match done {
                acme_frontend::admin::Revoked::Done { id } => (
                    format!("revoked {serial} (certificate {id}), reason {reason}"),
                    "revoked",
                ),
                acme_frontend::admin::Revoked::AlreadyRevoked => {
                    (format!("{serial} was already revoked"), "already_revoked")
                }
            };
            out.result(&human, json!({ "serial": serial, "state": state }));
            Ok(())
        }
        Action::RenewEarly {
            serial,
            issued_before,
            explanation_url,
            config,
        } => {
            let which = match &issued_before {
                Some(t) => {
                    let t = time::OffsetDateTime::parse(
                        t,
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map_err(|e| CliError::Usage(format!("--issued-before {t:?}: {e}")))?;
                    acme_frontend::admin::RenewEarly::IssuedBefore(t.unix_timestamp())
                }
                None => acme_frontend::admin::RenewEarly::Serials(serial.clone()),
            };
            let n = acme_frontend::admin::renew_early(
                config.as_deref(),
                which,
                explanation_url.as_deref(),
            )
            .map_err(|e| CliError::Usage(e.to_string()))?;
            out.result(
                &format!("{n} certificates marked for renewal now"),
                json!({ "marked": n, "explanation_url": explanation_url }),
            );
            Ok(())
        }
        Action::Unpause {
            account,
            identifier,
            config,
        } => {
            let done = acme_frontend::admin::unpause(config.as_deref(), &account, &identifier)
                .map_err(|e| CliError::Usage(e.to_string()))?;
            let human = if done.identifiers.is_empty() {
                format!("account {account} had nothing paused")
            } else {
                format!(
                    "unpaused account {account} for {}",
                    done.identifiers.join(", ")
                )
            };
            out.result(
                &human,
                json!({ "account": account, "unpaused": done.identifiers }),
            );
            Ok(())
        }
        Action::Backup { config, out: file } => {
            let done = acme_frontend::admin::backup(config.as_deref(), &file).map_err(|e| {
                CliError::BadFile {
                    path: file.clone(),
                    reason: e.to_string(),
                }
            })?;
            out.result(
                &format!(
                    "backup written to {} ({} bytes, {} certificates, integrity ok)",
                    done.path.display(),
                    done.bytes,
                    done.certificates
                ),
                json!({
                    "path": done.path,
                    "bytes": done.bytes,
                    "certificates": done.certificates,
                }),
            );
            Ok(())
        }
        Action::Check { config, database } => {
            let db = match database {
                Some(p) => acme_frontend::store::Location::Sqlite(p),
                None => acme_frontend::admin::database(config.as_deref())
                    .map_err(|e| CliError::Usage(e.to_string()))?,
            };
            // The file, or the URL without its password.
            let path = std::path::PathBuf::from(db.to_string());
            let bad = |reason: String| CliError::BadFile {
                path: path.clone(),
                reason,
            };
            let report =
                acme_frontend::admin::check_location(&db).map_err(|e| bad(e.to_string()))?;
            if !report.problems.is_empty() {
                return Err(bad(format!(
                    "database is inconsistent: {}",
                    report.problems.join("; ")
                )));
            }
            out.result(
                &format!(
                    "database {} ok ({} certificates)",
                    path.display(),
                    report.certificates
                ),
                json!({ "ok": true, "path": path, "certificates": report.certificates }),
            );
            Ok(())
        }
        Action::BlockKey {
            spki_sha256,
            cert,
            public_key,
            csr,
            blocklist,
            signer_config,
            comment,
        } => {
            let hash = match (spki_sha256, cert, public_key, csr) {
                (Some(h), ..) => ca_signer::blocklist::parse_hash(&h)
                    .ok_or_else(|| CliError::Usage(format!("{h:?} is not a SHA-256 hex hash")))?,
                (None, Some(p), _, _) => spki_hash(&p, |b| {
                    openssl::x509::X509::from_pem(b)?
                        .public_key()?
                        .public_key_to_der()
                })?,
                (None, None, Some(p), _) => spki_hash(&p, |b| {
                    openssl::pkey::PKey::public_key_from_pem(b)
                        .and_then(|k| k.public_key_to_der())
                        .or_else(|_| {
                            openssl::pkey::PKey::private_key_from_pem(b)?.public_key_to_der()
                        })
                })?,
                (None, None, None, Some(p)) => spki_hash(&p, |b| {
                    openssl::x509::X509Req::from_pem(b)?
                        .public_key()?
                        .public_key_to_der()
                })?,
                _ => {
                    return Err(CliError::Usage(
                        "give --spki-sha256, --cert, --public-key or --csr".to_owned(),
                    ));
                }
            };
            let file = match (blocklist, signer_config) {
                (Some(f), _) => f,
                (None, Some(c)) => ca_signer::Config::load(&c)
                    .map_err(|e| CliError::Usage(e.to_string()))?
                    .blocked_keys_path(),
                (None, None) => {
                    return Err(CliError::Usage(
                        "give --blocklist FILE or --signer-config FILE".to_owned(),
                    ));
                }
            };
            let added = ca_signer::blocklist::add(&file, &hash, &comment).map_err(|e| {
                CliError::BadFile {
                    path: file.clone(),
                    reason: e.to_string(),
                }
            })?;
            let hex = hex::encode(hash);
            let human = if added {
                format!("blocked key {hex} in {}", file.display())
            } else {
                format!("key {hex} was already blocked in {}", file.display())
            };
            out.result(
                &human,
                json!({ "spki_sha256": hex, "added": added, "blocklist": file }),
            );
            Ok(())
        }
    }
}

fn spki_hash(
    path: &Path,
    spki: impl Fn(&[u8]) -> Result<Vec<u8>, openssl::error::ErrorStack>,
) -> Result<[u8; 32], CliError> {
    let bytes = std::fs::read(path).map_err(|e| CliError::io(path, e))?;
    let der = spki(&bytes).map_err(|e| CliError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(openssl::sha::sha256(&der))
}
