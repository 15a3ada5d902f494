//! Repeated requests: a request the signer has already signed is answered
//! with the certificate already signed, never with a second one.
//!
//! A request is repeated when the certificate never reached the frontend's
//! database: the frontend died between the signer's answer and its commit,
//! or the signer died between its audit record and its answer. The order
//! stays `processing` and the frontend asks again with the same request
//! (same `service::request_sha256`). Without this, the first certificate
//! would be signed and audited but never stored or served.
//!
//! Two places answer a repeat:
//!
//! * [`RecentIssues`], in memory: the newest issuances (by default
//!   [`CAPACITY`]), rebuilt at start from the audit log's tail. It knows
//!   from when it is complete ([`RecentIssues::complete_after`]): every
//!   issuance recorded later than the newest one it dropped is in it.
//! * The audit log itself ([`find_in_log`]), for a request that misses the
//!   table although it may have been signed before the table's coverage:
//!   the frontend says since when the order has been `processing`
//!   (`IssueRequest::processing_since`), and the signer reads the log from
//!   [`REPEAT_MARGIN_SECS`] before that, by binary search to the first
//!   record at that time and then streamed. A request without
//!   `processing_since` that misses the table is a new issuance: the
//!   frontend always sends it.
//!
//! The log read costs in proportion to the records written since
//! `processing_since`: seconds' worth after a frontend crash under load,
//! but a frontend that comes back after days with orders still
//! `processing` makes the signer read days of log for each of them (once:
//! the answer then goes into the table). Orders expire, which bounds it.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use der::Decode;
use x509_cert::Certificate;

use crate::audit::{AuditError, Operation, Record, search};
use crate::tbs::SignedCertificate;

/// How many issuances are remembered by default: more than a frontend can
/// have in flight when it or the signer dies (`[audit] recent_issuances`).
pub const CAPACITY: usize = 1024;

/// How long before `processing_since` the log is searched from: covers a
/// frontend clock ahead of the signer's, and records appended slightly out
/// of time order (each request reads the clock before it waits for the
/// log).
pub const REPEAT_MARGIN_SECS: i64 = 300;

/// A bounded map from a request's digest (`service::request_sha256`, which
/// covers its order) to the certificate issued for it.
#[derive(Debug)]
pub struct RecentIssues {
    by_digest: HashMap<String, (SignedCertificate, i64)>,
    /// Insertion order, for evicting the oldest.
    order: VecDeque<String>,
    capacity: usize,
    /// The latest time of an issuance the table does not hold (dropped at
    /// start or evicted since); `None` while it holds every one.
    dropped_up_to: Option<i64>,
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

/// The last `capacity` records a repeat could use, kept as the audit log
/// streams by at start (the others are not cloned), and the latest time of
/// those dropped.
#[derive(Debug)]
pub struct Tail {
    records: VecDeque<Record>,
    capacity: usize,
    dropped_up_to: Option<i64>,
}

impl Tail {
    /// An empty tail keeping at most `capacity` records.
    pub fn new(capacity: usize) -> Self {
        Self {
            records: VecDeque::new(),
            capacity: capacity.max(1),
            dropped_up_to: None,
        }
    }

    /// Looks at the next record of the log.
    pub fn observe(&mut self, r: &Record) {
        if repeatable(r).is_none() {
            return;
        }
        if self.records.len() == self.capacity
            && let Some(old) = self.records.pop_front()
        {
            self.dropped_up_to = self.dropped_up_to.max(Some(old.time));
        }
        self.records.push_back(r.clone());
    }
}

impl RecentIssues {
    /// An empty table of `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            by_digest: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            dropped_up_to: None,
        }
    }

    /// The table for the audit log's tail. A record whose certificate does
    /// not decode is skipped with a warning (the log's hash chain was
    /// verified; this is a record from a future format, not tampering) and
    /// counts as dropped.
    pub fn from_tail(tail: Tail) -> RecentIssues {
        let mut table = RecentIssues::new(tail.capacity);
        table.dropped_up_to = tail.dropped_up_to;
        for r in tail.records {
            let Some((digest, cert, serial)) = repeatable(&r) else {
                continue;
            };
            match decode(cert, serial) {
                Some(mut signed) => {
                    signed.mtc_log_index = r.mtc_log_index;
                    table.insert(digest.to_owned(), signed, r.time);
                }
                None => {
                    tracing::warn!(
                        target: "signer",
                        seq = r.seq,
                        "audit record's certificate does not decode; not kept for repeats"
                    );
                    table.dropped_up_to = table.dropped_up_to.max(Some(r.time));
                }
            }
        }
        table
    }

    /// The certificate issued for the request with digest `request_sha256`
    /// (hex), if the table holds it.
    pub fn get(&self, request_sha256: &str) -> Option<&SignedCertificate> {
        self.by_digest.get(request_sha256).map(|(c, _)| c)
    }

    /// From when the table is complete: every issuance recorded at a time
    /// later than this is in it. `None` when it holds every issuance of the
    /// log.
    pub fn complete_after(&self) -> Option<i64> {
        self.dropped_up_to
    }

    /// Remembers `signed`, recorded at `time`, for `request_sha256`,
    /// forgetting the oldest entry past the capacity.
    pub fn insert(&mut self, request_sha256: String, signed: SignedCertificate, time: i64) {
        if self
            .by_digest
            .insert(request_sha256.clone(), (signed, time))
            .is_none()
        {
            self.order.push_back(request_sha256);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front()
                && let Some((_, t)) = self.by_digest.remove(&old)
            {
                self.dropped_up_to = self.dropped_up_to.max(Some(t));
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

/// The certificate of the last issue record for `request_sha256` recorded
/// at `from` or later in the audit log at `path`, and its record's time.
/// Streams the log from the first record at `from` (see
/// [`search::first_at_or_after`]); a line being appended is ignored.
pub fn find_in_log(
    path: &Path,
    from: i64,
    request_sha256: &str,
) -> Result<Option<(SignedCertificate, i64)>, AuditError> {
    let io = |source| AuditError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let start = search::first_at_or_after(&file, len, from).map_err(io)?;
    let mut found = None;
    let mut index = 0u64;
    search::for_each_line_from(&mut file, start, len, |line| {
        index += 1;
        // Most lines are other requests': look for the digest before
        // parsing.
        let Ok(text) = std::str::from_utf8(line) else {
            return Err(std::io::Error::other("audit log line is not UTF-8"));
        };
        if !text.contains(request_sha256) {
            return Ok(());
        }
        let record: Record = serde_json::from_str(text)
            .map_err(|e| std::io::Error::other(format!("an audit log line does not parse: {e}")))?;
        if let Some((digest, cert, serial)) = repeatable(&record)
            && digest == request_sha256
        {
            match decode(cert, serial) {
                Some(mut signed) => {
                    signed.mtc_log_index = record.mtc_log_index;
                    found = Some((signed, record.time));
                }
                None => tracing::warn!(
                    target: "signer",
                    seq = record.seq,
                    "audit record's certificate does not decode; not used for a repeat"
                ),
            }
        }
        Ok(())
    })
    .map_err(io)?;
    tracing::debug!(target: "signer", from, lines = index, found = found.is_some(), "searched the audit log for a repeat");
    Ok(found)
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
        mtc_log_index: None,
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
            mtc_log_index: None,
        }
    }

    #[test]
    fn keeps_the_newest_entries_up_to_the_bound() {
        let mut t = RecentIssues::new(CAPACITY);
        assert_eq!(t.complete_after(), None);
        let n = CAPACITY + 6;
        for i in 0..n {
            t.insert(format!("d{i}"), cert(&format!("{i:x}")), 100 + i as i64);
        }
        assert_eq!(t.len(), CAPACITY);
        assert!(t.get("d0").is_none(), "the oldest is forgotten");
        assert!(t.get("d5").is_none());
        assert_eq!(t.complete_after(), Some(105), "complete after d5's time");
        let newest = n - 1;
        assert_eq!(
            t.get(&format!("d{newest}")).map(|c| c.serial_hex.clone()),
            Some(format!("{newest:x}"))
        );
        assert!(t.get("d6").is_some(), "the oldest kept one");
        // The same key again replaces, and does not count twice.
        t.insert("d6".into(), cert("ff"), 200);
        assert_eq!(t.len(), CAPACITY);
        assert!(t.get("other digest").is_none());
    }

    #[test]
    fn a_small_table_knows_what_it_dropped() {
        let mut t = RecentIssues::new(2);
        t.insert("a".into(), cert("1"), 10);
        t.insert("b".into(), cert("2"), 20);
        assert_eq!(t.complete_after(), None);
        t.insert("c".into(), cert("3"), 15);
        assert_eq!(t.complete_after(), Some(10));
        t.insert("d".into(), cert("4"), 30);
        assert_eq!(t.complete_after(), Some(20));
        t.insert("e".into(), cert("5"), 31);
        assert_eq!(
            t.complete_after(),
            Some(20),
            "never goes back, even when entries came out of time order"
        );
    }
}
