//! The certificates issued recently, by request digest, so that a
//! repeated request is answered with the certificate already signed instead
//! of a second one.
//!
//! A request is repeated when the certificate never reached the frontend's
//! database: the frontend died between the signer's answer and its commit,
//! or the signer died between its audit record and its answer. The order
//! stays `processing` and the frontend asks again with the same request.
//! Without this, the first certificate would be signed and audited but
//! never stored or served. The table is rebuilt at start from the audit
//! log's last [`CAPACITY`] issue records, which carry the request's digest
//! and the certificate.

use std::collections::{HashMap, VecDeque};

use der::Decode;
use x509_cert::Certificate;

use crate::audit::{Operation, Record};
use crate::tbs::SignedCertificate;

/// How many issuances are remembered: more than a frontend can have in
/// flight when it or the signer dies.
pub const CAPACITY: usize = 1024;

/// A bounded map from a request's digest (`service::request_sha256`, which
/// covers its order) to the certificate issued for it.
#[derive(Debug, Default)]
pub struct RecentIssues {
    by_digest: HashMap<String, SignedCertificate>,
    /// Insertion order, for evicting the oldest.
    order: VecDeque<String>,
}

/// What a repeat needs from an issue record: the request's digest, the
/// certificate (base64 DER) and its serial.
fn repeatable(r: &Record) -> Option<(&str, &str, &str)> {
    if r.operation != Operation::Issue {
        return None;
    }
    Some((
        r.request_sha256.as_deref()?,
        r.certificate.as_deref()?,
        r.serial.as_deref()?,
    ))
}

/// Keeps in `tail` the last [`CAPACITY`] records a repeat could use, as the
/// audit log streams by at start (the others are not cloned).
pub fn keep_tail(tail: &mut VecDeque<Record>, r: &Record) {
    if repeatable(r).is_some() {
        if tail.len() == CAPACITY {
            tail.pop_front();
        }
        tail.push_back(r.clone());
    }
}

impl RecentIssues {
    /// The table for the audit log's recent issue records (oldest first).
    /// A record whose certificate does not decode is skipped with a warning
    /// (the log's hash chain was verified; this is a record from a future
    /// format, not tampering).
    pub fn from_records(records: impl IntoIterator<Item = Record>) -> RecentIssues {
        let mut table = RecentIssues::default();
        for r in records {
            let Some((digest, cert, serial)) = repeatable(&r) else {
                continue;
            };
            match decode(cert, serial) {
                Some(signed) => table.insert(digest.to_owned(), signed),
                None => tracing::warn!(
                    target: "signer",
                    seq = r.seq,
                    "audit record's certificate does not decode; not kept for repeats"
                ),
            }
        }
        table
    }

    /// The certificate issued for the request with digest `request_sha256`
    /// (hex), if it is recent.
    pub fn get(&self, request_sha256: &str) -> Option<&SignedCertificate> {
        self.by_digest.get(request_sha256)
    }

    /// Remembers `signed` for `request_sha256`, forgetting the oldest entry
    /// past [`CAPACITY`].
    pub fn insert(&mut self, request_sha256: String, signed: SignedCertificate) {
        if self
            .by_digest
            .insert(request_sha256.clone(), signed)
            .is_none()
        {
            self.order.push_back(request_sha256);
        }
        while self.order.len() > CAPACITY {
            if let Some(old) = self.order.pop_front() {
                self.by_digest.remove(&old);
            }
        }
    }

    /// How many certificates are remembered.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
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
        let n = CAPACITY + 6;
        for i in 0..n {
            t.insert(format!("d{i}"), cert(&format!("{i:x}")));
        }
        assert_eq!(t.len(), CAPACITY);
        assert!(t.get("d0").is_none(), "the oldest is forgotten");
        assert!(t.get("d5").is_none());
        let newest = n - 1;
        assert_eq!(
            t.get(&format!("d{newest}")).map(|c| c.serial_hex.clone()),
            Some(format!("{newest:x}"))
        );
        assert!(t.get("d6").is_some(), "the oldest kept one");
        // The same key again replaces, and does not count twice.
        t.insert("d6".into(), cert("ff"));
        assert_eq!(t.len(), CAPACITY);
        assert!(t.get("other digest").is_none());
    }
}
