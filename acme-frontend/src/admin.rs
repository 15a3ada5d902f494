//! Operator actions on the frontend's database, used by `akamu-cli admin`
//! and `akamu-cli audit reconcile`. They never involve the CA key: a
//! revocation is recorded here, and the running frontend notices it and has
//! the signer sign a new CRL. The CLI reaches the database only through
//! these functions (and they only through `store`).

use std::collections::BTreeSet;
use std::path::Path;

use crate::config::Config;
use crate::error::Error;
use crate::protocol::CertificateStatus;
use crate::protocol::revocation::check_reason;
use crate::store::models::CertRow;
use crate::{now, random_id, store};
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
    let db = store::Store::open(&config.database_path())?;
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

/// Every certificate serial in the database at `db_path`, normalised
/// ([`serial::normalize`]); opened read-only, so a running frontend is not
/// disturbed.
pub fn database_serials(db_path: &Path) -> Result<BTreeSet<String>, Error> {
    let mut conn = store::Store::open_read_only(db_path)?;
    Ok(store::certificates::all_serials(&mut conn)?
        .iter()
        .filter_map(|s| serial::normalize(s).ok())
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
}

/// Brings an audit-only certificate into the database at `db_path`, with
/// `chain_pem` (the CA chain served after the leaf) appended, so it is
/// listed, served, revocable and put on the CRL when revoked; an order still
/// `processing` completes with it. `Ok(false)` when it is there already.
pub fn import_certificate(
    db_path: &Path,
    cert: &AuditOnly,
    chain_pem: &str,
) -> Result<bool, Error> {
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
    let db = store::Store::open(db_path)?;
    let (order_id, uri, der) = (
        cert.order_id.clone(),
        cert.account_uri.clone(),
        cert.der.clone(),
    );
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
        let t = now();
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
        };
        store::certificates::import(c, row, t)
    })
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
