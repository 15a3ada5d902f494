//! The certificates issued recently, by order and request digest, so that a
//! repeated request is answered with the certificate already signed instead
//! of a second one.
//!
//! A request is repeated when the certificate never reached the frontend's
//! database: the frontend died between the signer's answer and its commit,
//! or the signer died between its audit record and its answer. The order
//! stays `processing` and the frontend asks again with the same request. Without this, the first certificate would be signed and audited but
//! never stored or served. The table is rebuilt at start from the audit
//! log's last [`audit::RECENT_ISSUES`] issue records, which carry the order,
//! the request's digest and the certificate.

use std::collections::{HashMap, VecDeque};

use der::Decode;
use x509_cert::Certificate;

use crate::audit::{self, Record};
use crate::tbs::SignedCertificate;

/// `(order id, request SHA-256 hex)`.
type Key = (String, String);

/// A bounded map from [`Key`] to the certificate issued for it.
#[derive(Debug, Default)]
pub struct RecentIssues {
    by_key: HashMap<Key, SignedCertificate>,
    /// Insertion order, for evicting the oldest.
    order: VecDeque<Key>,
}

impl RecentIssues {
    /// The table for the audit log's recent issue records (oldest first).
    /// A record whose certificate does not decode is skipped with a warning
    /// (the log's hash chain was verified; this is a record from a future
    /// format, not tampering).
    pub fn from_records(records: &[Record]) -> RecentIssues {
        let mut table = RecentIssues::default();
        for r in records {
            let (Some(order), Some(digest), Some(cert), Some(serial)) =
                (&r.order_id, &r.request_sha256, &r.certificate, &r.serial)
            else {
                continue;
            };
            match decode(cert, serial) {
                Some(signed) => table.insert(order.clone(), digest.clone(), signed),
                None => tracing::warn!(
                    target: "signer",
                    seq = r.seq,
                    "audit record's certificate does not decode; not kept for repeats"
                ),
            }
        }
        table
    }

    /// The certificate issued for `order_id` and the request with digest
    /// `request_sha256` (hex), if it is recent.
    pub fn get(&self, order_id: &str, request_sha256: &str) -> Option<&SignedCertificate> {
        self.by_key
            .get(&(order_id.to_owned(), request_sha256.to_owned()))
    }

    /// Remembers `signed` for `order_id` and `request_sha256`, forgetting
    /// the oldest entry past [`audit::RECENT_ISSUES`].
    pub fn insert(&mut self, order_id: String, request_sha256: String, signed: SignedCertificate) {
        let key = (order_id, request_sha256);
        if self.by_key.insert(key.clone(), signed).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > audit::RECENT_ISSUES {
            if let Some(old) = self.order.pop_front() {
                self.by_key.remove(&old);
            }
        }
    }

    /// How many certificates are remembered.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// A certificate from its audit record: base64 DER and the serial.
fn decode(b64: &str, serial: &str) -> Option<SignedCertificate> {
    let der = openssl::base64::decode_block(b64).ok()?;
    let cert = Certificate::from_der(&der).ok()?;
    let validity = cert.tbs_certificate().validity();
    let secs = |t: &x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).ok();
    Some(SignedCertificate {
        not_before: secs(&validity.not_before)?,
        not_after: secs(&validity.not_after)?,
        serial_hex: serial.to_owned(),
        der,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(serial: &str) -> SignedCertificate {
        SignedCertificate {
            der: serial.as_bytes().to_vec(),
            serial_hex: serial.to_owned(),
            not_before: 0,
            not_after: 1,
        }
    }

    #[test]
    fn keeps_the_newest_entries_up_to_the_bound() {
        let mut t = RecentIssues::default();
        let n = audit::RECENT_ISSUES + 6;
        for i in 0..n {
            t.insert(format!("o{i}"), format!("d{i}"), cert(&format!("{i:x}")));
        }
        assert_eq!(t.len(), audit::RECENT_ISSUES);
        assert!(t.get("o0", "d0").is_none(), "the oldest is forgotten");
        assert!(t.get("o5", "d5").is_none());
        let newest = n - 1;
        assert_eq!(
            t.get(&format!("o{newest}"), &format!("d{newest}"))
                .map(|c| c.serial_hex.clone()),
            Some(format!("{newest:x}"))
        );
        assert!(t.get("o6", "d6").is_some(), "the oldest kept one");
        // The same key again replaces, and does not count twice.
        t.insert("o6".into(), "d6".into(), cert("ff"));
        assert_eq!(t.len(), audit::RECENT_ISSUES);
        assert!(t.get("o6", "other digest").is_none());
    }
}
