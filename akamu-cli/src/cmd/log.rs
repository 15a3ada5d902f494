//! `akamu-cli log`: a monitor of the CA's transparency log, reading only
//! what anyone can fetch under `<base_url>/log/` (C2SP tlog-tiles).
//!
//! `verify` checks the checkpoint's signature with the log's verifier key,
//! recomputes the root from every entry bundle, compares every hash tile
//! with the recomputed tree, checks consistency with the checkpoint kept
//! in `--state` (then replaces it), and with `--config` checks that every
//! certificate in the CA's database is in the log at its recorded index.
//! `prove` finds a certificate in the log and prints and checks its
//! inclusion proof (RFC 9162 §2.1.3).
//!
//! Exit codes (besides the CLI's 2 and 3): 4 the log is not what its
//! signed checkpoint says, forked, or lacks a certificate; 5 the log could
//! not be reached or did not answer.

use std::path::{Path, PathBuf};
use std::time::Duration;

use akamu_client::{AcmeClient, Fetcher};
use akamu_tlog::merkle::{self, Hash};
use akamu_tlog::tile::{self, TileKind};
use akamu_tlog::{Checkpoint, NoteVerifier, Tree, leaf_hash};
use serde_json::json;

use crate::error::CliError;
use crate::output::Output;

/// `log` subcommands.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand, Clone, Debug)]
enum Sub {
    /// Verify the log: signature, entries, tiles, consistency with the last
    /// checkpoint seen, and (with --config) the CA's certificates.
    Verify(VerifyArgs),
    /// Print and check the inclusion proof of a certificate.
    Prove(ProveArgs),
}

/// Where the log is.
#[derive(clap::Args, Clone, Debug)]
struct LogArgs {
    /// The log's URL, `<base_url>/log`.
    #[arg(long, value_name = "URL")]
    log: String,
    /// PEM file of extra roots to trust for the server's HTTPS certificate.
    #[arg(long, env = "AKAMU_CA_BUNDLE", value_name = "PEM")]
    ca_bundle: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    log: LogArgs,
    /// The log's note verifier key (`name+id+key`), or a file holding it;
    /// obtained out of band, never from the log itself.
    #[arg(long, value_name = "KEY")]
    key: String,
    /// File keeping the last verified checkpoint: the new one must be
    /// consistent with it, and then replaces it.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// The frontend's configuration: check that every certificate in its
    /// database is in the log.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(clap::Args, Clone, Debug)]
struct ProveArgs {
    #[command(flatten)]
    log: LogArgs,
    /// The certificate (PEM, the first certificate of the file, or DER).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// The log's verifier key or a file holding it. Default: fetched from
    /// `<log>/key` (which only a key obtained out of band makes meaningful).
    #[arg(long, value_name = "KEY")]
    key: Option<String>,
}

/// Runs `log`.
pub(crate) async fn run(args: Args, out: &Output) -> Result<(), CliError> {
    match args.command {
        Sub::Verify(a) => verify(a, out).await,
        Sub::Prove(a) => prove(a, out).await,
    }
}

/// The log as fetched and checked against its signed checkpoint.
struct Fetched {
    checkpoint: Checkpoint,
    note: String,
    tree: Tree,
}

async fn verify(a: VerifyArgs, out: &Output) -> Result<(), CliError> {
    let fetcher = fetcher(&a.log)?;
    let verifier = verifier(&a.key)?;
    let f = fetch_log(&fetcher, &a.log.log, &verifier, out).await?;
    let cp = &f.checkpoint;
    let mut report = json!({
        "origin": cp.origin,
        "size": cp.size,
        "root": hex::encode(cp.root),
    });
    let mut lines = vec![format!(
        "checkpoint verified: {} entries, root {} ({})",
        cp.size,
        hex::encode(cp.root),
        cp.origin
    )];
    if let Some(state) = &a.state {
        if let Some(old) = read_state(state, &verifier)? {
            let proof = consistent(&old, cp, &f.tree)?;
            lines.push(format!(
                "consistent with the previous checkpoint of {} entries ({} proof hashes)",
                old.size,
                proof.len()
            ));
            report["previous_size"] = old.size.into();
            report["consistency_proof"] = proof.iter().map(hex::encode).collect();
        }
        daemon_kit::files::write_atomic(state, f.note.as_bytes(), 0o644).map_err(|e| {
            CliError::Io {
                path: e.path,
                source: e.source,
            }
        })?;
    }
    if let Some(config) = &a.config {
        let DbCheck {
            checked,
            unindexed,
            unlogged,
            pending,
        } = check_database(config, &f.tree, out)?;
        lines.push(format!(
            "{checked} certificates of the database are in the log at their index"
        ));
        if unindexed > 0 {
            lines.push(format!(
                "{unindexed} certificates without a recorded index are in the log"
            ));
        }
        if pending > 0 {
            lines.push(format!(
                "{pending} certificates are newer than the checkpoint (not yet covered)"
            ));
        }
        if unlogged > 0 {
            lines.push(format!(
                "{unlogged} certificates were issued while the log was off"
            ));
        }
        report["certificates_checked"] = checked.into();
        report["certificates_unindexed"] = unindexed.into();
        report["certificates_pending"] = pending.into();
        report["certificates_unlogged"] = unlogged.into();
    }
    out.result(&lines.join("\n"), report);
    Ok(())
}

async fn prove(a: ProveArgs, out: &Output) -> Result<(), CliError> {
    let fetcher = fetcher(&a.log)?;
    let key = match &a.key {
        Some(k) => k.clone(),
        None => {
            out.warn("no --key: using the key the log itself serves (check it out of band)");
            let url = format!("{}/key", a.log.log.trim_end_matches('/'));
            let body = get(&fetcher, &url)
                .await?
                .ok_or_else(|| broken(&url, "no key"))?;
            String::from_utf8_lossy(&body).trim().to_owned()
        }
    };
    let verifier = verifier(&key)?;
    let der = read_certificate(&a.cert)?;
    let f = fetch_log(&fetcher, &a.log.log, &verifier, out).await?;
    let leaf = leaf_hash(&der);
    let size = f.checkpoint.size;
    let index = f
        .tree
        .level(0)
        .iter()
        .position(|h| *h == leaf)
        .ok_or_else(|| {
            CliError::LogBroken(format!(
                "{} is not among the {size} entries of the checkpoint",
                a.cert.display()
            ))
        })? as u64;
    let proof = f
        .tree
        .inclusion_proof(index, size)
        .map_err(|e| CliError::LogBroken(e.to_string()))?;
    merkle::verify_inclusion(&leaf, index, size, &proof, &f.checkpoint.root)
        .map_err(|e| CliError::LogBroken(format!("inclusion proof: {e}")))?;
    let proof_hex: Vec<String> = proof.iter().map(hex::encode).collect();
    let human = format!(
        "{} is entry {index} of {size}\nleaf hash {}\nroot      {}\ninclusion proof (RFC 9162 §2.1.3), verified:\n{}",
        a.cert.display(),
        hex::encode(leaf),
        hex::encode(f.checkpoint.root),
        proof_hex
            .iter()
            .map(|h| format!("  {h}"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    out.result(
        &human,
        json!({
            "index": index,
            "size": size,
            "leaf_hash": hex::encode(leaf),
            "root": hex::encode(f.checkpoint.root),
            "proof": proof_hex,
            "checkpoint": f.note,
        }),
    );
    Ok(())
}

fn fetcher(a: &LogArgs) -> Result<Fetcher, CliError> {
    let mut builder = AcmeClient::builder(&a.log).request_timeout(Duration::from_secs(30));
    if let Some(bundle) = &a.ca_bundle {
        let pem = crate::common::read(bundle)?;
        builder = builder.add_root_pem(&pem).map_err(|e| CliError::BadFile {
            path: bundle.clone(),
            reason: e.to_string(),
        })?;
    }
    builder
        .build_fetcher()
        .map_err(|e| CliError::Unreachable(e.to_string()))
}

/// A verifier key given inline or as a file.
fn verifier(key: &str) -> Result<NoteVerifier, CliError> {
    let text = if Path::new(key).is_file() {
        std::fs::read_to_string(key).map_err(|e| CliError::io(key, e))?
    } else {
        key.to_owned()
    };
    NoteVerifier::parse(text.trim()).map_err(|e| CliError::Usage(format!("--key: {e}")))
}

fn broken(url: &str, what: &str) -> CliError {
    CliError::LogBroken(format!("{url}: {what}"))
}

/// GETs `url`: `None` for a 404; any other failure is unreachability.
async fn get(fetcher: &Fetcher, url: &str) -> Result<Option<Vec<u8>>, CliError> {
    fetcher
        .get(url)
        .await
        .map(|b| b.map(|b| b.to_vec()))
        .map_err(|e| CliError::Unreachable(e.to_string()))
}

/// Fetches the checkpoint, verifies it, rebuilds the tree from the entry
/// bundles and checks every hash tile against it.
async fn fetch_log(
    fetcher: &Fetcher,
    log: &str,
    verifier: &NoteVerifier,
    out: &Output,
) -> Result<Fetched, CliError> {
    let base = log.trim_end_matches('/');
    let url = format!("{base}/checkpoint");
    let note = get(fetcher, &url)
        .await?
        .ok_or_else(|| CliError::Unreachable(format!("{url}: not found")))?;
    let note = String::from_utf8(note).map_err(|_| broken(&url, "not UTF-8"))?;
    let checkpoint = verifier
        .open_checkpoint(&note)
        .map_err(|e| broken(&url, &format!("checkpoint refused: {e}")))?;
    let size = checkpoint.size;
    out.progress(&format!("checkpoint: {size} entries"));
    let mut tree = Tree::new();
    for t in tile::tiles_for_size(size, TileKind::Entries) {
        let url = format!("{base}/tile/{t}");
        let bundle = get(fetcher, &url)
            .await?
            .ok_or_else(|| broken(&url, "missing tile"))?;
        let entries = tile::split_entries(&bundle)
            .ok_or_else(|| broken(&url, "entry bundle does not parse"))?;
        if entries.len() != usize::from(t.width) {
            return Err(broken(
                &url,
                &format!("{} entries, expected {}", entries.len(), t.width),
            ));
        }
        for e in entries {
            tree.push(leaf_hash(e));
        }
    }
    if tree.root() != checkpoint.root {
        return Err(CliError::LogBroken(format!(
            "the entries served do not hash to the signed root of {size} entries"
        )));
    }
    for t in tile::hash_tiles_for_size(size) {
        let url = format!("{base}/tile/{t}");
        let served = get(fetcher, &url)
            .await?
            .ok_or_else(|| broken(&url, "missing tile"))?;
        if tile::hash_tile(&tree, &t).as_deref() != Some(&served[..]) {
            return Err(broken(&url, "hash tile differs from the signed tree"));
        }
    }
    Ok(Fetched {
        checkpoint,
        note,
        tree,
    })
}

/// The checkpoint kept in the state file, if any (it must verify: a
/// state file is the monitor's own memory).
fn read_state(path: &Path, verifier: &NoteVerifier) -> Result<Option<Checkpoint>, CliError> {
    let note = match std::fs::read_to_string(path) {
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io(path, e)),
    };
    verifier
        .open_checkpoint(&note)
        .map(Some)
        .map_err(|e| CliError::BadFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// The consistency proof from `old` to `new`, verified; a fork otherwise.
fn consistent(old: &Checkpoint, new: &Checkpoint, tree: &Tree) -> Result<Vec<Hash>, CliError> {
    if old.size > new.size {
        return Err(CliError::LogBroken(format!(
            "fork: the log shrank from {} to {} entries",
            old.size, new.size
        )));
    }
    let proof = tree
        .consistency_proof(old.size, new.size)
        .map_err(|e| CliError::LogBroken(e.to_string()))?;
    merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &proof).map_err(|_| {
        CliError::LogBroken(format!(
            "fork: the checkpoint of {} entries (root {}) is not a prefix of the checkpoint of {} entries",
            old.size,
            hex::encode(old.root),
            new.size
        ))
    })?;
    Ok(proof)
}

/// What `--config` found.
struct DbCheck {
    /// Certificates that are the entry at their recorded index.
    checked: u64,
    /// Certificates without an index that are in the log anyway.
    unindexed: u64,
    /// Certificates without an index that are not in the log (issued
    /// while the log was off).
    unlogged: u64,
    /// Certificates whose index is beyond the checkpoint (newer than it).
    pending: u64,
}

/// Checks the database's certificates against the tree: each with an
/// index must be that entry; one without, issued while the log was off, is
/// counted.
fn check_database(config: &Path, tree: &Tree, out: &Output) -> Result<DbCheck, CliError> {
    let bad_db = |e: acme_frontend::error::Error| CliError::BadFile {
        path: config.to_owned(),
        reason: e.to_string(),
    };
    let db = acme_frontend::admin::database(Some(config)).map_err(bad_db)?;
    let certs = acme_frontend::admin::logged_certificates(&db).map_err(bad_db)?;
    let mut c = DbCheck {
        checked: 0,
        unindexed: 0,
        unlogged: 0,
        pending: 0,
    };
    for (der, index) in certs {
        let h = leaf_hash(&der);
        match index {
            Some(i) if i >= tree.size() => c.pending += 1,
            Some(i) if tree.leaf(i) == Some(h) => c.checked += 1,
            Some(i) => {
                return Err(CliError::LogBroken(format!(
                    "missing certificate: entry {i} of the log is not the database's certificate \
                     with that index"
                )));
            }
            None => {
                if tree.level(0).contains(&h) {
                    c.unindexed += 1;
                } else {
                    c.unlogged += 1;
                }
            }
        }
    }
    if c.unlogged > 0 {
        out.warn(&format!(
            "{} certificates of the database have no log index and are not in the log",
            c.unlogged
        ));
    }
    Ok(c)
}

/// The DER of the first certificate in `path` (PEM or DER).
fn read_certificate(path: &Path) -> Result<Vec<u8>, CliError> {
    let bytes = crate::common::read(path)?;
    let bad = |reason: String| CliError::BadFile {
        path: path.to_owned(),
        reason,
    };
    let x509 = if bytes.starts_with(b"-----") {
        openssl::x509::X509::from_pem(&bytes)
    } else {
        openssl::x509::X509::from_der(&bytes)
    }
    .map_err(|e| bad(format!("not a certificate: {e}")))?;
    x509.to_der().map_err(|e| bad(e.to_string()))
}
