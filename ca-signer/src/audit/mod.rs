//! The signer's audit log: append-only, hash-chained JSON lines.
//!
//! Every line is one [`Record`]: the JSON object of its fields in a fixed
//! order, ending with `"hash"`, the lower-case hex SHA-256 of the line's bytes
//! up to (not including) `,"hash":` followed by `}`. Each record carries the
//! previous record's hash (`prev_hash`; 64 zeros for the first), so changing,
//! removing or reordering any byte breaks the chain at that record.
//!
//! [`AuditLog::append`] writes a whole line and fsyncs it before it returns:
//! the signer appends before a signature leaves it, and a failed append fails
//! the request. After a failed write the log refuses further appends (the
//! file may end in a partial line), so the signer fails closed.
//!
//! [`verify`] checks a whole file and returns the head hash, or the index of
//! the first bad record. [`search`] reads the log from a point in time
//! without reading all of it.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

pub mod search;

/// `prev_hash` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// A leaf certificate was signed.
    Issue,
    /// A CRL was signed.
    Crl,
    /// A ceremony step (key generation, root or intermediate signature).
    Ceremony,
    /// A request was refused (policy, key, lint).
    Refusal,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the log, from 0.
    pub seq: u64,
    /// When, Unix seconds.
    pub time: i64,
    /// What happened.
    pub operation: Operation,
    /// Certificate serial, lower-case hex (issue, ceremony).
    pub serial: Option<String>,
    /// SANs (issue, refusal).
    pub names: Vec<String>,
    /// Subject (ceremony) or issuer (CRL) as an RFC 4514 string.
    pub subject: Option<String>,
    /// The leaf profile (issue, refusal).
    pub profile: Option<String>,
    /// The uid of the process that asked over the Unix socket
    /// (`SO_PEERCRED`).
    pub requester_uid: Option<u32>,
    /// SHA-256 of the signed TBS (certificate or CRL), hex.
    pub tbs_sha256: Option<String>,
    /// CRL Number (crl).
    pub crl_number: Option<u64>,
    /// Free text: refusal reason, ceremony step, requesting account.
    pub detail: Option<String>,
    /// The ACME order a leaf was issued for (issue). Absent in records
    /// written before it existed, like the next two.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    /// SHA-256 of the request a leaf was issued for (order, account, CSR,
    /// identifiers, validity, profile; see `service::request_sha256`), hex
    /// (issue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_sha256: Option<String>,
    /// The signed certificate, base64 DER (issue): every issued
    /// certificate can be recovered from the log, and a repeated request
    /// is answered with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// The STAR terms recorded at an auto-renewed order's first issuance
    /// (issue): what every reissue of the order is checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub star: Option<crate::star::StarRecord>,
    /// The certificate's index in the transparency log (issue, while
    /// `[mtc] enabled`): written before the entry goes into the log, so
    /// the log is rebuilt from these records after a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtc_log_index: Option<u64>,
    /// The client name of the front end that asked over TCP with mutual
    /// TLS (the allowed DNS name of its certificate). Absent for requests
    /// over the Unix socket, and in records written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester_client: Option<String>,
    /// The previous record's `hash`.
    pub prev_hash: String,
    /// This record's hash (see the module docs).
    pub hash: String,
}

/// What a caller records; [`AuditLog::append`] adds seq, time and hashes.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// Certificate serial, hex.
    pub serial: Option<String>,
    /// SANs.
    pub names: Vec<String>,
    /// Subject or issuer.
    pub subject: Option<String>,
    /// Profile name.
    pub profile: Option<String>,
    /// Requester uid (Unix socket).
    pub requester_uid: Option<u32>,
    /// Requester client name (TCP with mutual TLS).
    pub requester_client: Option<String>,
    /// The TBS that was (or is about to be) signed.
    pub tbs_der: Option<Vec<u8>>,
    /// CRL Number.
    pub crl_number: Option<u64>,
    /// Free text.
    pub detail: Option<String>,
    /// The ACME order.
    pub order_id: Option<String>,
    /// The request's SHA-256, hex.
    pub request_sha256: Option<String>,
    /// The signed certificate (recorded as base64).
    pub certificate_der: Option<Vec<u8>>,
    /// The STAR terms of an auto-renewed order's first issuance.
    pub star: Option<crate::star::StarRecord>,
    /// The certificate's index in the transparency log.
    pub mtc_log_index: Option<u64>,
}

impl Entry {
    /// An entry that names `requester` (its uid on the Unix socket, its
    /// client name over mutual TLS), the rest empty.
    pub fn from_requester(requester: Option<&shared_proto::peer::Peer>) -> Self {
        Self {
            requester_uid: requester.and_then(shared_proto::peer::Peer::uid),
            requester_client: requester.and_then(|p| p.client_name().map(str::to_owned)),
            ..Self::default()
        }
    }
}

/// Why the log cannot be read, written or trusted.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        /// The log.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// A record is malformed or breaks the chain.
    #[error("record {index} (line {line}) is broken: {reason}", line = index + 1)]
    Broken {
        /// Index of the first bad record (0-based; line = index + 1).
        index: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An earlier write failed and could not be rolled back; the log
    /// accepts nothing until restart.
    #[error("an earlier write failed and could not be undone; refusing to append")]
    Poisoned,
}

/// The open log.
pub struct AuditLog {
    path: PathBuf,
    state: Mutex<State>,
}

struct State {
    file: File,
    next_seq: u64,
    head: String,
    poisoned: bool,
}

/// What [`AuditLog::open`] learned from the existing records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Number of records.
    pub records: u64,
    /// The head hash.
    pub head: String,
    /// The highest CRL Number recorded, if any.
    pub max_crl_number: Option<u64>,
}

impl AuditLog {
    /// Opens (or creates, mode 0600) the log at `path` after verifying every
    /// existing record.
    pub fn open(path: &Path) -> Result<(Self, Summary), AuditError> {
        Self::open_observing(path, |_| {})
    }

    /// [`open`](Self::open), handing each verified record to `observe` as
    /// the log streams by.
    pub fn open_observing(
        path: &Path,
        mut observe: impl FnMut(&Record),
    ) -> Result<(Self, Summary), AuditError> {
        let io_err = |source| AuditError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_err)?;
        }
        let summary = if path.exists() {
            // Streamed: a long log is verified without holding it in memory.
            let mut max_crl_number = None;
            let (records, head) = for_each_verified(path, |r| {
                max_crl_number = max_crl_number.max(r.crl_number);
                observe(r);
            })?;
            Summary {
                records,
                head,
                max_crl_number,
            }
        } else {
            Summary {
                records: 0,
                head: GENESIS.to_owned(),
                max_crl_number: None,
            }
        };
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io_err)?;
        if summary.records == 0 {
            // Make the new file's directory entry durable too.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(io_err)?;
            }
        }
        let log = Self {
            path: path.to_owned(),
            state: Mutex::new(State {
                file,
                next_seq: summary.records,
                head: summary.head.clone(),
                poisoned: false,
            }),
        };
        Ok((log, summary))
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entry` at time `now`, fsyncs, and returns the new record.
    /// The append's duration (and a failure) is counted for `/metrics`.
    pub fn append(
        &self,
        operation: Operation,
        entry: Entry,
        now: i64,
    ) -> Result<Record, AuditError> {
        let started = std::time::Instant::now();
        let result = self.append_timed(operation, entry, now);
        crate::metrics::audit_appended(started, result.is_ok());
        result
    }

    fn append_timed(
        &self,
        operation: Operation,
        entry: Entry,
        now: i64,
    ) -> Result<Record, AuditError> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.poisoned {
            return Err(AuditError::Poisoned);
        }
        let mut record = Record {
            seq: state.next_seq,
            time: now,
            operation,
            serial: entry.serial,
            names: entry.names,
            subject: entry.subject,
            profile: entry.profile,
            requester_uid: entry.requester_uid,
            tbs_sha256: entry.tbs_der.map(|t| hex::encode(openssl::sha::sha256(&t))),
            crl_number: entry.crl_number,
            detail: entry.detail,
            order_id: entry.order_id,
            request_sha256: entry.request_sha256,
            certificate: entry
                .certificate_der
                .map(|d| openssl::base64::encode_block(&d)),
            star: entry.star,
            mtc_log_index: entry.mtc_log_index,
            requester_client: entry.requester_client,
            prev_hash: state.head.clone(),
            hash: String::new(),
        };
        let line = encode(&mut record).map_err(|e| AuditError::Io {
            path: self.path.clone(),
            source: io::Error::other(e),
        })?;
        let io = |source| AuditError::Io {
            path: self.path.clone(),
            source,
        };
        let before = state.file.metadata().map_err(io)?.len();
        let written = state
            .file
            .write_all(line.as_bytes())
            .and_then(|()| state.file.sync_all());
        if let Err(source) = written {
            // A write cut short (a full disk) leaves part of the line: cut
            // the file back to where it was, so the log stays whole and the
            // next append (once there is space) goes on from the same head.
            // Only if that fails too does the log refuse every append.
            let undone = state
                .file
                .set_len(before)
                .and_then(|()| state.file.sync_all());
            if let Err(e) = undone {
                tracing::error!(target: "signer", error = %e, "cannot undo a failed audit append; refusing further appends");
                state.poisoned = true;
            }
            return Err(io(source));
        }
        state.next_seq += 1;
        state.head = record.hash.clone();
        Ok(record)
    }
}

/// Serializes `record` with its hash filled in; returns the line with `\n`.
fn encode(record: &mut Record) -> Result<String, serde_json::Error> {
    record.hash = String::new();
    let full = serde_json::to_string(record)?;
    let body = body_of(&full).unwrap_or(&full).to_owned();
    record.hash = hash_body(&body);
    let mut line = serde_json::to_string(record)?;
    line.push('\n');
    Ok(line)
}

/// The hashed part of a line: everything before `,"hash":`, plus `}`.
fn body_of(line: &str) -> Option<&str> {
    line.rfind(",\"hash\":").map(|i| &line[..i])
}

fn hash_body(body_without_brace: &str) -> String {
    let mut bytes = body_without_brace.as_bytes().to_vec();
    bytes.push(b'}');
    hex::encode(openssl::sha::sha256(&bytes))
}

/// Verifies the whole log at `path` and returns its head hash
/// ([`GENESIS`] for an empty log).
pub fn verify(path: &Path) -> Result<String, AuditError> {
    for_each_verified(path, |_| {}).map(|(_, head)| head)
}

/// Reads and verifies every record; returns them with the head hash.
pub fn read_verified(path: &Path) -> Result<(Vec<Record>, String), AuditError> {
    let mut records = Vec::new();
    let (_, head) = for_each_verified(path, |r| records.push(r.clone()))?;
    Ok((records, head))
}

/// Verifies the log at `path` one record at a time, handing each verified
/// record to `f` in order (memory stays flat however long the log is).
/// Returns the number of records and the head hash. Records before a broken
/// one have been passed to `f` when the error is returned.
pub fn for_each_verified(
    path: &Path,
    mut f: impl FnMut(&Record),
) -> Result<(u64, String), AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut reader = BufReader::new(file);
    let mut count = 0u64;
    let mut head = GENESIS.to_owned();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| AuditError::Io {
                path: path.to_owned(),
                source,
            })?;
        if n == 0 {
            break;
        }
        let index = count;
        let broken = |reason: &str| AuditError::Broken {
            index,
            reason: reason.to_owned(),
        };
        let Some(line) = buf.strip_suffix(b"\n") else {
            return Err(broken("incomplete last line (no newline)"));
        };
        let line = std::str::from_utf8(line).map_err(|_| broken("not UTF-8"))?;
        let record: Record =
            serde_json::from_str(line).map_err(|e| broken(&format!("not a valid record: {e}")))?;
        let body = body_of(line).ok_or_else(|| broken("no hash field"))?;
        if !line.ends_with(&format!(",\"hash\":\"{}\"}}", record.hash)) {
            return Err(broken("hash is not the last field"));
        }
        if hash_body(body) != record.hash {
            return Err(broken("hash does not match the record's contents"));
        }
        if record.seq != index {
            return Err(broken(&format!("seq is {}, expected {index}", record.seq)));
        }
        if record.prev_hash != head {
            return Err(broken("prev_hash is not the previous record's hash"));
        }
        f(&record);
        head = record.hash;
        count += 1;
    }
    Ok((count, head))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(serial: &str) -> Entry {
        Entry {
            serial: Some(serial.to_owned()),
            names: vec!["a.example.org".to_owned()],
            tbs_der: Some(b"tbs".to_vec()),
            requester_uid: Some(1000),
            ..Entry::default()
        }
    }

    #[test]
    fn appends_chain_and_verify() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/audit.log");
        let (log, s) = AuditLog::open(&path).expect("open");
        assert_eq!(s.records, 0);
        assert_eq!(verify(&path).expect("empty verifies"), GENESIS);
        let a = log.append(Operation::Issue, entry("01"), 10).expect("a");
        let b = log.append(Operation::Refusal, entry("02"), 11).expect("b");
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        assert_eq!(verify(&path).expect("verify"), b.hash);
        drop(log);

        let (log, s) = AuditLog::open(&path).expect("reopen");
        assert_eq!((s.records, s.head.as_str()), (2, b.hash.as_str()));
        let c = log
            .append(
                Operation::Crl,
                Entry {
                    crl_number: Some(7),
                    ..Entry::default()
                },
                12,
            )
            .expect("c");
        assert_eq!((c.seq, c.prev_hash.as_str()), (2, b.hash.as_str()));
        let (_, s) = AuditLog::open(&path).expect("reopen");
        assert_eq!(s.max_crl_number, Some(7));
    }

    #[test]
    fn records_name_the_requester_by_uid_or_by_tls_client_name() {
        use shared_proto::peer::{Peer, PeerCred, TlsClient};
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let (log, _) = AuditLog::open(&path).expect("open");
        let unix = Peer::Unix(PeerCred {
            uid: 1000,
            gid: 1000,
            pid: Some(42),
        });
        let tls = Peer::Tls(TlsClient {
            name: "frontend-1.ca.internal".into(),
            addr: "10.0.0.7:50000".parse().expect("addr"),
        });
        let by_uid = log
            .append(Operation::Crl, Entry::from_requester(Some(&unix)), 1)
            .expect("append");
        let by_name = log
            .append(Operation::Crl, Entry::from_requester(Some(&tls)), 2)
            .expect("append");
        assert_eq!(
            (by_uid.requester_uid, by_uid.requester_client),
            (Some(1000), None)
        );
        assert_eq!(
            (by_name.requester_uid, by_name.requester_client.as_deref()),
            (None, Some("frontend-1.ca.internal"))
        );
        // A record without a client name is written as before the field
        // existed, so older logs keep verifying.
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert!(!lines[0].contains("requester_client"), "{}", lines[0]);
        assert!(lines[1].contains(r#""requester_client":"frontend-1.ca.internal""#));
        assert_eq!(verify(&path).expect("verify"), by_name.hash);
    }

    #[test]
    fn any_flipped_byte_names_the_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("audit.log");
        let (log, _) = AuditLog::open(&path).expect("open");
        for i in 0..3 {
            log.append(Operation::Issue, entry(&format!("0{i}")), i)
                .expect("append");
        }
        let original = std::fs::read(&path).expect("read");
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(
                original
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            )
            .collect();
        for pos in 0..original.len() {
            let mut bytes = original.clone();
            bytes[pos] ^= 0x01;
            std::fs::write(&path, &bytes).expect("write");
            let record = line_starts.iter().filter(|s| **s <= pos).count() as u64 - 1;
            match verify(&path) {
                Err(AuditError::Broken { index, .. }) => {
                    // A flipped newline merges or splits lines: the damage is
                    // reported at that record or the next one.
                    assert!(index == record || index == record + 1, "pos {pos}: {index}");
                }
                other => panic!("pos {pos}: tamper not detected: {other:?}"),
            }
        }
        std::fs::write(&path, &original).expect("restore");
        assert!(verify(&path).is_ok());
    }
}
