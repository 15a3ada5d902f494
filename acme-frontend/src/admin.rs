//! Operator actions on the frontend's database, used by `akamu-cli admin`.
//! They never involve the CA key: a revocation is recorded here, and the
//! running frontend notices it and has the signer sign a new CRL.

use std::path::Path;

use crate::config::Config;
use crate::error::Error;
use crate::protocol::revocation::check_reason;
use crate::{now, store};

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
    let serial = normalise_serial(serial_hex)
        .ok_or_else(|| Error::Malformed(format!("{serial_hex:?} is not a hexadecimal serial")))?;
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

/// Lower-case hex without separators or leading zeros (as openssl's BIGNUM
/// prints it and as the store keeps it).
pub fn normalise_serial(s: &str) -> Option<String> {
    let hex: String = s
        .chars()
        .filter(|c| *c != ':')
        .collect::<String>()
        .to_ascii_lowercase();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let trimmed = hex.trim_start_matches('0');
    Some(if trimmed.is_empty() {
        "0".into()
    } else {
        trimmed.into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_forms() {
        assert_eq!(normalise_serial("00:AB:cd").as_deref(), Some("abcd"));
        assert_eq!(normalise_serial("0x12"), None);
        assert_eq!(normalise_serial(""), None);
    }
}
