//! Operator actions on the frontend's database, used by `akamu-cli admin`
//! (revocation, unpausing a rate-limited account, backups, checks) and
//! `akamu-cli audit reconcile`. They never involve the CA key: a
//! revocation is recorded here, and the running frontend notices it and has
//! the signer sign a new CRL. The CLI reaches the database only through
//! these functions (and they only through `store`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::Error;
use crate::protocol::identifier::{self, WireIdentifier};
use crate::protocol::revocation::check_reason;
use crate::protocol::{CertificateStatus, OrderStatus};
use crate::store::Location;
use crate::store::models::{CertRow, OrderRow};
use crate::{now, random_id, rate_limits, store};
use akamu_pki::serial;

/// What an operator revocation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Revoked {
    /// The certificate is now revoked.
    Done {
        /// Its id in the database.
        id: String,
    },
    /// It already was.
    AlreadyRevoked,
}

/// Revokes the certificate with serial `serial_hex` (any case, with or
/// without leading zeros or colons) for `reason` (RFC 5280 codes 0–6, 8–10),
/// in the database named by the frontend configuration at `config_path`
/// (the embedded default when `None`).
pub fn revoke(config_path: Option<&Path>, serial_hex: &str, reason: i64) -> Result<Revoked, Error> {
    let config = Config::load(config_path).map_err(|e| Error::Startup(e.to_string()))?;
    let reason = check_reason(Some(reason))?;
    let serial = serial::normalize(serial_hex)
        .map_err(|e| Error::Malformed(format!("{serial_hex:?}: {e}")))?;
    let db = store::Store::open_at(&config.database())?;
    db.run_blocking(move |c| {
        let row = store::certificates::by_serial(c, &serial)?
            .ok_or_else(|| Error::Malformed(format!("no certificate with serial {serial}")))?;
        if store::certificates::revoke(c, &row.id, reason, now())? {
            Ok(Revoked::Done { id: row.id })
        } else {
            Ok(Revoked::AlreadyRevoked)
        }
    })
}

/// Which certificates `renew_early` marks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenewEarly {
    /// These serials (any spelling [`serial::normalize`] accepts).
    Serials(Vec<String>),
    /// Every unexpired certificate issued before this Unix time.
    IssuedBefore(i64),
}

/// Marks certificates for early renewal (RFC 9773, as Boulder's incident
/// tooling does): their renewal-info window then lies in the past, with
/// `explanation_url` as its `explanationURL`. The mark is durable (a
/// database row per certificate). Returns how many were marked; an unknown
/// serial is an error and marks nothing.
pub fn renew_early(
    config_path: Option<&Path>,
    which: RenewEarly,
    explanation_url: Option<&str>,
) -> Result<usize, Error> {
    let config = Config::load(config_path).map_err(|e| Error::Startup(e.to_string()))?;
    if let Some(url) = explanation_url {
        let ok = url
            .parse::<http::Uri>()
            .is_ok_and(|u| matches!(u.scheme_str(), Some("https" | "http")) && u.host().is_some());
        if !ok {
            return Err(Error::Malformed(format!(
                "explanation URL {url:?} is not an http(s) URL"
            )));
        }
    }
    let serials = match &which {
        RenewEarly::Serials(list) => list
            .iter()
            .map(|s| serial::normalize(s).map_err(|e| Error::Malformed(format!("{s:?}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?,
        RenewEarly::IssuedBefore(_) => Vec::new(),
    };
    let url = explanation_url.map(str::to_owned);
    let db = store::Store::open_at(&config.database())?;
    let t = now();
    db.run_blocking(move |c| {
        let ids = match which {
            RenewEarly::IssuedBefore(before) => {
                store::renewals::unexpired_issued_before(c, before, t)?
            }
            RenewEarly::Serials(_) => serials
                .iter()
                .map(|s| {
                    store::certificates::by_serial(c, s)?
                        .map(|row| row.id)
                        .ok_or_else(|| Error::Malformed(format!("no certificate with serial {s}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        store::renewals::mark_early(c, &ids, url.as_deref(), t)
    })
}

/// Lifts the pauses of an account (rate limit
/// `failed_validations_per_account_identifier`) in the database named by
/// the frontend configuration at `config_path`: for `identifiers` (`name`,
/// `dns:name`, an IP address or `ip:address`), or every paused identifier
/// of the account when empty. `account` is its id or URL. Returns what was
/// lifted (empty when nothing was paused).
pub fn unpause(
    config_path: Option<&Path>,
    account: &str,
    identifiers: &[String],
) -> Result<rate_limits::Unpaused, Error> {
    let config = Config::load(config_path).map_err(|e| Error::Startup(e.to_string()))?;
    let account_id = rate_limits::account_id_of(account)
        .ok_or_else(|| Error::Malformed(format!("{account:?} is not an account id or URL")))?;
    let ids = identifiers
        .iter()
        .map(|s| operator_identifier(s))
        .collect::<Result<Vec<_>, _>>()?;
    let db = store::Store::open_at(&config.database())?;
    db.run_blocking(move |c| {
        if store::accounts::by_id(c, &account_id)?.is_none() {
            return Err(Error::Malformed(format!("no account {account_id}")));
        }
        let only = (!ids.is_empty()).then_some(ids.as_slice());
        rate_limits::unpause(c, &account_id, only)
    })
}

/// An identifier as an operator types it: `dns:name`, `ip:address`, or
/// the bare name or address.
fn operator_identifier(s: &str) -> Result<shared_proto::Identifier, Error> {
    let (kind, value) = match s.split_once(':') {
        Some((kind @ ("dns" | "ip"), value)) => (kind, value),
        _ if s.parse::<std::net::IpAddr>().is_ok() => ("ip", s),
        _ => ("dns", s),
    };
    let wire = WireIdentifier {
        kind: kind.to_owned(),
        value: value.to_owned(),
        ancestor_domain: None,
    };
    identifier::parse(&wire)
}

/// Every certificate serial in the database at `db_path`, normalised
/// ([`serial::normalize`]); opened read-only, so a running frontend is not
/// disturbed.
pub fn database_serials(db: &Location) -> Result<BTreeSet<String>, Error> {
    let mut conn = store::Store::open_read_only_at(db)?;
    Ok(store::certificates::all_serials(&mut conn)?
        .iter()
        .filter_map(|s| serial::normalize(s).ok())
        .collect())
}

/// A certificate's DER and its index in the transparency log, if any.
pub type LoggedCertificate = (Vec<u8>, Option<u64>);

/// Every certificate in the database at `db_path` (opened read-only) with
/// its transparency-log index, for `akamu-cli log verify --config`.
pub fn logged_certificates(db: &Location) -> Result<Vec<LoggedCertificate>, Error> {
    let mut conn = store::Store::open_read_only_at(db)?;
    Ok(store::certificates::all_logged(&mut conn)?
        .into_iter()
        .map(|(der, index)| (der, index.and_then(|i| u64::try_from(i).ok())))
        .collect())
}

/// A certificate the signer's audit log holds but the database does not.
#[derive(Clone, Debug)]
pub struct AuditOnly {
    /// The leaf, DER.
    pub der: Vec<u8>,
    /// The order it was signed for.
    pub order_id: String,
    /// The requesting account's URL, from the audit record; used when the
    /// order row is gone.
    pub account_uri: Option<String>,
    /// Its index in the transparency log, from the audit record.
    pub mtc_log_index: Option<u64>,
}

/// Brings an audit-only certificate into the database at `db_path`, with
/// `chain_pem` (the CA chain served after the leaf) appended, so it is
/// listed, served, revocable and put on the CRL when revoked; an order still
/// `processing` completes with it. When its order row is gone (a restored
/// backup older than the order), a `valid` stand-in order naming the
/// certificate's SANs takes its place; its account must be in the database.
/// `Ok(false)` when it is there already.
pub fn import_certificate(db: &Location, cert: &AuditOnly, chain_pem: &str) -> Result<bool, Error> {
    let x509 = openssl::x509::X509::from_der(&cert.der)
        .map_err(|e| Error::Malformed(format!("audit record certificate: {e}")))?;
    let serial = serial::to_hex(
        &x509
            .serial_number()
            .to_bn()
            .map_err(|e| Error::Malformed(format!("audit record certificate: {e}")))?
            .to_vec(),
    );
    let (not_before, not_after) = (asn1_unix(x509.not_before())?, asn1_unix(x509.not_after())?);
    let leaf_pem = x509
        .to_pem()
        .map_err(|e| Error::Malformed(format!("audit record certificate: {e}")))?;
    let pem = format!("{}{chain_pem}", String::from_utf8_lossy(&leaf_pem));
    let identifiers = san_identifiers(&x509).to_string();
    let db = store::Store::open_at(db)?;
    let (order_id, uri, der) = (
        cert.order_id.clone(),
        cert.account_uri.clone(),
        cert.der.clone(),
    );
    let mtc_log_index = cert
        .mtc_log_index
        .map(|i| {
            i64::try_from(i).map_err(|_| {
                Error::Malformed(format!("audit record log index {i} is out of range"))
            })
        })
        .transpose()?;
    db.run_blocking(move |c| {
        let account_id = match store::orders::by_id(c, &order_id)? {
            Some(order) => order.account_id,
            None => uri
                .as_deref()
                .and_then(|u| u.rsplit('/').next())
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    Error::Malformed(format!(
                        "order {order_id} is not in the database and the audit record names no account"
                    ))
                })?,
        };
        if store::accounts::by_id(c, &account_id)?.is_none() {
            return Err(Error::Malformed(format!(
                "account {account_id} (of order {order_id}) is not in the database: \
                 the certificate cannot be imported without it"
            )));
        }
        let t = now();
        let stand_in = OrderRow {
            id: order_id.clone(),
            account_id: account_id.clone(),
            status: OrderStatus::Valid,
            expires: not_before,
            identifiers,
            not_before: Some(not_before),
            not_after: Some(not_after),
            error: None,
            csr: None,
            certificate_id: None,
            created: t,
            updated: t,
            profile: None,
            replaces: None,
            replaces_certificate: None,
        };
        let row = CertRow {
            id: random_id(12),
            order_id,
            account_id,
            serial_number: serial,
            status: CertificateStatus::Valid,
            der,
            pem,
            not_before,
            not_after,
            revoked_at: None,
            revocation_reason: None,
            created: t,
            mtc_log_index,
        };
        store::certificates::import(c, row, stand_in, t)
    })
}

/// What [`backup`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Backup {
    /// The backup file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// How many certificates it holds.
    pub certificates: i64,
}

/// Writes a consistent copy of the database named by the frontend
/// configuration at `config_path` (the embedded default when `None`) to
/// `out`, while the frontend serves. See [`backup_database`].
pub fn backup(config_path: Option<&Path>, out: &Path) -> Result<Backup, Error> {
    match database(config_path)? {
        Location::Sqlite(path) => backup_database(&path, out),
        Location::Postgres(options) => Err(Error::Malformed(format!(
            "the database is PostgreSQL ({}): `admin backup` copies SQLite files only; \
             take the backup with PostgreSQL's own tools, e.g. `pg_dump --format=custom \
             --file={} <url>`, and restore it with `pg_restore` (docs: Operations, Backup)",
            store::pg::redact(&options.url),
            out.display()
        ))),
    }
}

/// Writes a consistent copy of the database at `db_path` to `out` (mode
/// 0600: it holds EAB keys) and checks it ([`check_database`]) before it
/// appears under its name. `out` must not exist: an existing file is never
/// overwritten, not even one created while the copy was written.
///
/// The copy is one read transaction of SQLite's `VACUUM INTO` (see
/// `store::maintenance`), written beside `out` and linked into place.
pub fn backup_database(db_path: &Path, out: &Path) -> Result<Backup, Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let exists = |source: std::io::Error| Error::Io {
        context: "refusing to overwrite",
        path: out.to_owned(),
        source,
    };
    if out.symlink_metadata().is_ok() {
        return Err(exists(std::io::ErrorKind::AlreadyExists.into()));
    }
    let name = out
        .file_name()
        .ok_or_else(|| Error::Malformed(format!("{} names no file", out.display())))?;
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let partial = Partial(dir.join(format!(
        ".{}.partial-{}",
        name.to_string_lossy(),
        random_id(6)
    )));
    let io = |context: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source: std::io::Error| Error::Io {
            context,
            path,
            source,
        }
    };
    // SQLite writes into an existing empty file, keeping its mode.
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial.0)
        .map_err(io("creating", &partial.0))?;
    store::maintenance::vacuum_into(db_path, &partial.0)?;
    std::fs::File::open(&partial.0)
        .and_then(|f| f.sync_all())
        .map_err(io("syncing", &partial.0))?;
    let report = check_database(&partial.0)?;
    if !report.problems.is_empty() {
        return Err(Error::Internal(format!(
            "the copy of {} fails its check: {}",
            db_path.display(),
            report.problems.join("; ")
        )));
    }
    // A hard link never replaces an existing file.
    std::fs::hard_link(&partial.0, out).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => exists(e),
        _ => io("linking", out)(e),
    })?;
    drop(partial);
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing", dir))?;
    let bytes = std::fs::metadata(out).map_err(io("reading", out))?.len();
    Ok(Backup {
        path: out.to_owned(),
        bytes,
        certificates: report.certificates,
    })
}

/// A temporary file removed on drop.
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What [`check_database`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabaseReport {
    /// `PRAGMA integrity_check` and `PRAGMA foreign_key_check` findings;
    /// empty when the database is consistent.
    pub problems: Vec<String>,
    /// How many certificates it holds.
    pub certificates: i64,
}

/// Checks the database at `db_path` (SQLite's integrity check and every
/// foreign key), opened read-only: safe beside a running frontend, and on
/// a backup before it is restored.
pub fn check_database(db_path: &Path) -> Result<DatabaseReport, Error> {
    check_location(&Location::Sqlite(db_path.to_owned()))
}

/// [`check_database`] for either dialect (PostgreSQL enforces its foreign
/// keys itself: only the certificates are counted there).
pub fn check_location(db: &Location) -> Result<DatabaseReport, Error> {
    let mut conn = store::Store::open_read_only_at(db)?;
    Ok(DatabaseReport {
        problems: store::maintenance::problems(&mut conn)?,
        certificates: store::maintenance::certificate_count(&mut conn)?,
    })
}

/// The database of the frontend configuration at `config_path` (the
/// embedded default when `None`): its SQLite file or its PostgreSQL URL.
pub fn database(config_path: Option<&Path>) -> Result<Location, Error> {
    Ok(Config::load(config_path)
        .map_err(|e| Error::Startup(e.to_string()))?
        .database())
}

/// The database path of the frontend configuration at `config_path` (the
/// embedded default when `None`).
pub fn database_path(config_path: Option<&Path>) -> Result<PathBuf, Error> {
    Ok(Config::load(config_path)
        .map_err(|e| Error::Startup(e.to_string()))?
        .database_path())
}

/// The certificate's SANs as an order's identifiers JSON
/// (`[{"type":"dns","value":…}]`).
fn san_identifiers(x509: &openssl::x509::X509) -> serde_json::Value {
    let names = x509.subject_alt_names();
    let ids: Vec<serde_json::Value> = names
        .iter()
        .flat_map(|stack| stack.iter())
        .filter_map(|name| {
            if let Some(dns) = name.dnsname() {
                return Some(serde_json::json!({ "type": "dns", "value": dns }));
            }
            let ip = match name.ipaddress()? {
                [a, b, c, d] => std::net::IpAddr::from([*a, *b, *c, *d]),
                bytes => std::net::IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
            };
            Some(serde_json::json!({ "type": "ip", "value": ip.to_string() }))
        })
        .collect();
    serde_json::Value::Array(ids)
}

/// Unix seconds of an ASN.1 time.
fn asn1_unix(t: &openssl::asn1::Asn1TimeRef) -> Result<i64, Error> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0)
        .map_err(|e| Error::Internal(format!("ASN.1 epoch: {e}")))?;
    let d = epoch
        .diff(t)
        .map_err(|e| Error::Malformed(format!("certificate time: {e}")))?;
    Ok(i64::from(d.days) * 86400 + i64::from(d.secs))
}
