//! `akamu-cli ceremony`: create the root and the issuing intermediate with
//! keys inside a PKCS#11 token (or in files for labs), and list what a token
//! holds. The work is done by `ca_signer::ceremony`; this file maps flags.

use std::path::{Path, PathBuf};

use ca_signer::ceremony::{self, IntermediateParams, KeyStore, RootParams, Token};
use ca_signer::config::{HashAlg, KeyType};
use serde_json::json;

use crate::error::CliError;
use crate::output::Output;

/// `ceremony` subcommands.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Args {
    #[command(subcommand)]
    step: Step,
}

/// One ceremony step.
#[derive(clap::Subcommand, Clone, Debug)]
enum Step {
    /// Generate the root key and write a self-signed root certificate.
    InitRoot(InitRoot),
    /// Generate the issuing key and have the root sign its certificate.
    IssueIntermediate(IssueIntermediate),
    /// List keys and certificates on the token with labels, ids and SPKI
    /// SHA-256 fingerprints.
    Show(TokenArgs),
    /// Generate the transparency log's Ed25519 key (not the CA key) and
    /// print its note verifier key, which relying parties and monitors
    /// need (`akamu-cli log verify --key`).
    LogKey(LogKey),
}

/// `ceremony log-key` flags.
#[derive(clap::Args, Clone, Debug)]
struct LogKey {
    /// Where to write the key (PKCS#8 PEM, mode 0600; must not exist): the
    /// signer's `[mtc] key_file`.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The log's origin, the signer's `[mtc] origin` (e.g.
    /// `acme.example.com/log`): the name in the verifier key.
    #[arg(long, value_name = "NAME")]
    origin: String,
}

/// Which token to use.
#[derive(clap::Args, Clone, Debug)]
struct TokenArgs {
    /// PKCS#11 module, e.g. /usr/lib/softhsm/libsofthsm2.so.
    #[arg(long, value_name = "M")]
    module: Option<PathBuf>,
    /// Label of the token.
    #[arg(long, value_name = "L")]
    token_label: Option<String>,
    /// File holding the user PIN (first line).
    #[arg(long, value_name = "F")]
    pin_file: Option<PathBuf>,
}

/// `ceremony init-root` flags.
#[derive(clap::Args, Clone, Debug)]
struct InitRoot {
    #[command(flatten)]
    token: TokenArgs,
    /// Label of the new key in the token.
    #[arg(long, value_name = "LABEL", conflicts_with = "key_file")]
    key_label: Option<String>,
    /// File backend: write the new key to this PEM file instead of a token.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Key type: ec:P-256, ec:P-384, rsa:3072, rsa:4096; with --key-file also
    /// ed25519, ed448, ml-dsa-44, ml-dsa-65, ml-dsa-87.
    #[arg(long, value_name = "TYPE", default_value = "ec:P-384")]
    key_type: KeyType,
    /// Signature digest: sha256, sha384 or sha512 (default: by key type).
    #[arg(long, value_name = "HASH")]
    hash: Option<String>,
    /// Subject, RFC 4514, e.g. "CN=Example Root,O=Example,C=US".
    #[arg(long)]
    subject: String,
    /// Validity in years.
    #[arg(long, value_name = "N", default_value_t = 20)]
    validity_years: u32,
    /// BasicConstraints pathLenConstraint of the root.
    #[arg(long, value_name = "N", default_value_t = 1)]
    path_len: u8,
    /// Where to write the root certificate (PEM).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Audit log to append to. Default: audit.log next to --out.
    #[arg(long, value_name = "PATH")]
    audit_log: Option<PathBuf>,
    /// Replace an existing key label, key file or output file.
    #[arg(long)]
    force: bool,
}

/// `ceremony issue-intermediate` flags.
#[derive(clap::Args, Clone, Debug)]
struct IssueIntermediate {
    #[command(flatten)]
    token: TokenArgs,
    /// Label of the root key in the token.
    #[arg(long, value_name = "LABEL", conflicts_with = "root_key_file")]
    root_key_label: Option<String>,
    /// File backend: the root key's PEM file.
    #[arg(long, value_name = "PATH")]
    root_key_file: Option<PathBuf>,
    /// The root certificate (PEM).
    #[arg(long, value_name = "FILE")]
    root_cert: PathBuf,
    /// Label of the new issuing key in the token.
    #[arg(long, value_name = "LABEL", conflicts_with = "key_file")]
    key_label: Option<String>,
    /// File backend: write the new issuing key to this PEM file.
    #[arg(long, value_name = "PATH")]
    key_file: Option<PathBuf>,
    /// Key type of the issuing key.
    #[arg(long, value_name = "TYPE", default_value = "ec:P-256")]
    key_type: KeyType,
    /// Digest of the root's signature (default: by the root's key type).
    #[arg(long, value_name = "HASH")]
    hash: Option<String>,
    /// Subject, RFC 4514, e.g. "CN=Example Issuing CA,O=Example,C=US".
    #[arg(long)]
    subject: String,
    /// Validity in years (never beyond the root's).
    #[arg(long, value_name = "N", default_value_t = 5)]
    validity_years: u32,
    /// CRL distribution point of the root's CRL.
    #[arg(long, value_name = "URL")]
    crl_url: Option<String>,
    /// URL of the root certificate (AIA caIssuers).
    #[arg(long, value_name = "URL")]
    ca_issuers_url: Option<String>,
    /// Add the clientAuth EKU beside serverAuth.
    #[arg(long)]
    client_auth: bool,
    /// Where to write the intermediate certificate (PEM).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Audit log to append to. Default: audit.log next to --out.
    #[arg(long, value_name = "PATH")]
    audit_log: Option<PathBuf>,
    /// Replace an existing key label, key file or output file.
    #[arg(long)]
    force: bool,
}

/// Runs a ceremony step.
pub(crate) fn run(args: Args, out: &Output) -> Result<(), CliError> {
    let now = ca_signer::unix_now();
    let mut say = |s: &str| out.progress(s);
    match args.step {
        Step::LogKey(a) => {
            let key =
                ca_signer::mtc::key::generate_file(&a.out).map_err(|e| CliError::BadFile {
                    path: a.out.clone(),
                    reason: e.to_string(),
                })?;
            let signer = akamu_tlog::NoteSigner::new(&a.origin, key)
                .map_err(|e| CliError::Usage(format!("--origin: {e}")))?;
            let vkey = signer.verifier_key();
            out.result(
                &format!(
                    "log key written to {}
verifier key: {vkey}",
                    a.out.display()
                ),
                json!({"key_file": a.out, "verifier_key": vkey}),
            );
        }
        Step::InitRoot(a) => {
            let key_type = a.key_type;
            let params = RootParams {
                key: store(
                    &a.token,
                    a.key_label.as_deref(),
                    a.key_file.as_deref(),
                    "--key-label",
                )?,
                key_type,
                hash: hash(a.hash.as_deref(), key_type)?,
                subject: a.subject,
                validity_years: a.validity_years,
                path_len: Some(a.path_len),
                audit_log: audit_log(a.audit_log, &a.out),
                out: a.out,
                force: a.force,
            };
            let done = ceremony::init_root(&params, now, &mut rand::rng(), &mut say)
                .map_err(|e| failed(&params.out, &e))?;
            report(out, "root", &params.out, &params.audit_log, &done);
        }
        Step::IssueIntermediate(a) => {
            let key_type = a.key_type;
            let root_hash = match a.hash.as_deref() {
                Some(h) => hash(Some(h), key_type)?,
                None => root_hash(&a.root_cert)?,
            };
            let params = IntermediateParams {
                root_key: store(
                    &a.token,
                    a.root_key_label.as_deref(),
                    a.root_key_file.as_deref(),
                    "--root-key-label",
                )?,
                root_cert: a.root_cert,
                key: store(
                    &a.token,
                    a.key_label.as_deref(),
                    a.key_file.as_deref(),
                    "--key-label",
                )?,
                key_type,
                hash: root_hash,
                subject: a.subject,
                validity_years: a.validity_years,
                crl_url: a.crl_url,
                ca_issuers_url: a.ca_issuers_url,
                client_auth: a.client_auth,
                audit_log: audit_log(a.audit_log, &a.out),
                out: a.out,
                force: a.force,
            };
            let done = ceremony::issue_intermediate(&params, now, &mut rand::rng(), &mut say)
                .map_err(|e| failed(&params.out, &e))?;
            report(out, "intermediate", &params.out, &params.audit_log, &done);
        }
        Step::Show(t) => {
            let token = token(&t)?;
            let objects = ceremony::show(&token).map_err(|e| failed(&token.module, &e))?;
            let mut human = format!(
                "token {:?}: {} object(s)\n",
                token.token_label,
                objects.len()
            );
            let mut list = Vec::new();
            for o in &objects {
                human.push_str(&format!(
                    "{:<12} label={:?} id={} spki_sha256={}{}\n",
                    o.class,
                    o.label,
                    o.id,
                    o.spki_sha256.as_deref().unwrap_or("-"),
                    match (o.sensitive, o.extractable) {
                        (Some(s), Some(x)) => format!(" sensitive={s} extractable={x}"),
                        _ => String::new(),
                    }
                ));
                list.push(json!({
                    "class": o.class, "label": o.label, "id": o.id,
                    "spki_sha256": o.spki_sha256, "sensitive": o.sensitive,
                    "extractable": o.extractable,
                }));
            }
            out.result(human.trim_end(), json!({ "objects": list }));
        }
    }
    Ok(())
}

fn report(out: &Output, what: &str, path: &Path, log: &Path, done: &ceremony::Outcome) {
    out.result(
        &format!(
            "{what} certificate {} (serial {}, SPKI SHA-256 {}); audit log {} head {}",
            path.display(),
            done.serial_hex,
            done.spki_sha256,
            log.display(),
            done.audit_head
        ),
        json!({
            "certificate": path, "serial": done.serial_hex, "spki_sha256": done.spki_sha256,
            "audit_log": log, "audit_head": done.audit_head,
        }),
    );
}

fn failed(path: &Path, e: &ca_signer::Error) -> CliError {
    match e {
        ca_signer::Error::ConfigValue { .. } => CliError::Usage(e.to_string()),
        _ => CliError::BadFile {
            path: path.to_owned(),
            reason: e.to_string(),
        },
    }
}

fn token(t: &TokenArgs) -> Result<Token, CliError> {
    match (&t.module, &t.token_label, &t.pin_file) {
        (Some(module), Some(label), Some(pin)) => Ok(Token {
            module: module.clone(),
            token_label: label.clone(),
            pin_file: pin.clone(),
        }),
        _ => Err(CliError::Usage(
            "a token needs --module, --token-label and --pin-file (or use --key-file)".to_owned(),
        )),
    }
}

fn store(
    t: &TokenArgs,
    label: Option<&str>,
    file: Option<&Path>,
    label_flag: &str,
) -> Result<KeyStore, CliError> {
    match (label, file) {
        (Some(label), None) => Ok(KeyStore::Token {
            token: token(t)?,
            label: label.to_owned(),
        }),
        (None, Some(file)) => Ok(KeyStore::File(file.to_owned())),
        _ => Err(CliError::Usage(format!(
            "give {label_flag} (token) or the matching --…-file (file backend)"
        ))),
    }
}

fn hash(s: Option<&str>, key_type: KeyType) -> Result<HashAlg, CliError> {
    Ok(match s {
        Some("sha256") => HashAlg::Sha256,
        Some("sha384") => HashAlg::Sha384,
        Some("sha512") => HashAlg::Sha512,
        Some(other) => {
            return Err(CliError::Usage(format!(
                "unknown --hash {other:?} (sha256, sha384, sha512)"
            )));
        }
        None => match key_type {
            KeyType::EcP384 => HashAlg::Sha384,
            KeyType::EcP521 => HashAlg::Sha512,
            _ => HashAlg::Sha256,
        },
    })
}

/// The digest that suits the root key, read from the root certificate.
fn root_hash(root_cert: &Path) -> Result<HashAlg, CliError> {
    let pem = std::fs::read(root_cert).map_err(|e| CliError::io(root_cert, e))?;
    let cert = openssl::x509::X509::from_pem(&pem).map_err(|e| CliError::BadFile {
        path: root_cert.to_owned(),
        reason: e.to_string(),
    })?;
    let bits = cert.public_key().map(|k| k.bits()).unwrap_or(256);
    let is_ec = cert
        .public_key()
        .is_ok_and(|k| k.id() == openssl::pkey::Id::EC);
    Ok(match (is_ec, bits) {
        (true, 384) => HashAlg::Sha384,
        (true, b) if b > 384 => HashAlg::Sha512,
        _ => HashAlg::Sha256,
    })
}

fn audit_log(explicit: Option<PathBuf>, out: &Path) -> PathBuf {
    explicit.unwrap_or_else(|| {
        out.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("audit.log")
    })
}
