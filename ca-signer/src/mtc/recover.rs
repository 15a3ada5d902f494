//! Opening the log at start: read the entries file, check it against the
//! audit log's issue records as they stream by, append the tail the audit
//! log has and the file lacks (a crash between the two writes), check the
//! last published checkpoint, sign a fresh one.
//!
//! The rules, each of which stops the signer rather than guess:
//! * the audit records' `mtc_log_index` values are 0, 1, 2, … in order;
//! * the entry at each index is the certificate of the record with it;
//! * the file has no entry without a record (the record comes first);
//! * a partial last entry is cut off only when a record holds it in full;
//! * the tree reaches the published checkpoint's size with its root.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, RwLock};

use akamu_tlog::{NoteSigner, NoteVerifier, Tree, leaf_hash};

use super::{Appender, Entries, MtcError, MtcLog, Published};
use crate::audit::{Operation, Record};

/// The entries file as read, and what the audit log says about it.
pub struct Recovery {
    path: PathBuf,
    entries: Entries,
    /// Bytes after the last whole entry (a torn write).
    torn_at: Option<u64>,
    /// The next index the audit log should name.
    next_audit: u64,
    /// Certificates the audit log has at or beyond the file's end.
    missing: Vec<Vec<u8>>,
    /// The first disagreement seen.
    problem: Option<String>,
}

impl Recovery {
    /// Reads the entries file at `path` (a missing file is an empty log).
    pub fn read(path: &Path) -> Result<Self, MtcError> {
        let io = |source| MtcError::Io {
            path: path.to_owned(),
            source,
        };
        let mut entries = Entries {
            tree: Tree::new(),
            offsets: vec![0],
        };
        let mut torn_at = None;
        if path.exists() {
            let mut r = BufReader::new(File::open(path).map_err(io)?);
            let mut offset = 0u64;
            let mut buf = Vec::new();
            loop {
                let mut len = [0u8; 2];
                match read_full(&mut r, &mut len).map_err(io)? {
                    0 => break,
                    2 => {}
                    _ => {
                        torn_at = Some(offset);
                        break;
                    }
                }
                let n = usize::from(u16::from_be_bytes(len));
                buf.resize(n, 0);
                if read_full(&mut r, &mut buf).map_err(io)? < n {
                    torn_at = Some(offset);
                    break;
                }
                offset += 2 + n as u64;
                entries.tree.push(leaf_hash(&buf));
                entries.offsets.push(offset);
            }
        }
        Ok(Self {
            path: path.to_owned(),
            entries,
            torn_at,
            next_audit: 0,
            missing: Vec::new(),
            problem: None,
        })
    }

    /// Looks at the next verified audit record.
    pub fn observe(&mut self, r: &Record) {
        if self.problem.is_some() || r.operation != Operation::Issue {
            return;
        }
        let Some(index) = r.mtc_log_index else {
            return;
        };
        if index != self.next_audit {
            self.problem = Some(format!(
                "audit record {} gives log index {index}, expected {}",
                r.seq, self.next_audit
            ));
            return;
        }
        self.next_audit += 1;
        let Some(der) = r
            .certificate
            .as_deref()
            .and_then(|b| openssl::base64::decode_block(b).ok())
        else {
            self.problem = Some(format!(
                "audit record {} has log index {index} but no certificate",
                r.seq
            ));
            return;
        };
        match self.entries.tree.leaf(index) {
            Some(h) if h == leaf_hash(&der) => {}
            Some(_) => {
                self.problem = Some(format!(
                    "entry {index} is not the certificate of audit record {}",
                    r.seq
                ));
            }
            None => self.missing.push(der),
        }
    }

    /// Ends the check: appends the missing tail, checks the published
    /// checkpoint, signs a new one and returns the open log.
    pub fn finish(
        mut self,
        origin: &str,
        key: openssl::pkey::PKey<openssl::pkey::Private>,
    ) -> Result<MtcLog, MtcError> {
        let path = self.path.clone();
        let inconsistent = |reason: String| MtcError::Inconsistent {
            path: path.clone(),
            reason,
        };
        if let Some(p) = self.problem.take() {
            return Err(inconsistent(p));
        }
        let size = self.entries.tree.size();
        if size > self.next_audit {
            return Err(inconsistent(format!(
                "the file has {size} entries but the audit log records only {}; \
                 refusing to serve entries the audit log does not hold",
                self.next_audit
            )));
        }
        let io = |source| MtcError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o644)
            .open(&path)
            .map_err(io)?;
        let mut end = self.entries.offsets.last().copied().unwrap_or(0);
        if let Some(at) = self.torn_at {
            if self.missing.is_empty() {
                return Err(inconsistent(format!(
                    "a partial entry at byte {at} that no audit record holds"
                )));
            }
            tracing::warn!(target: "signer", at, "cutting a partial log entry; it is re-appended from the audit log");
            file.set_len(at).map_err(io)?;
            end = at;
        }
        if !self.missing.is_empty() {
            use std::io::Write;
            let mut bytes = Vec::new();
            for der in &self.missing {
                akamu_tlog::tile::push_entry(&mut bytes, der)
                    .ok_or(MtcError::TooLong(der.len()))?;
                end += 2 + der.len() as u64;
                self.entries.tree.push(leaf_hash(der));
                self.entries.offsets.push(end);
            }
            file.write_all(&bytes).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::warn!(
                target: "signer",
                count = self.missing.len(),
                size = self.entries.tree.size(),
                "appended log entries the audit log held and the log file lacked"
            );
        }
        let signer = NoteSigner::new(origin, key)?;
        let checkpoint_path = checkpoint_path(&path);
        check_published(&checkpoint_path, &signer, &self.entries.tree).map_err(inconsistent)?;
        let reader = file.try_clone().map_err(io)?;
        let log = MtcLog {
            path: path.clone(),
            checkpoint_path,
            signer,
            origin: origin.to_owned(),
            append: Mutex::new(Appender {
                file,
                end,
                poisoned: false,
            }),
            tree: RwLock::new(self.entries),
            reader,
            dirty: Mutex::new(false),
            wake: Condvar::new(),
            published: RwLock::new(Published {
                size: 0,
                note: Arc::new(String::new()),
                signed_at: 0,
            }),
        };
        let size = log.sign_checkpoint()?;
        tracing::info!(target: "signer", path = %path.display(), origin, size, "transparency log verified against the audit log");
        Ok(log)
    }
}

/// `<log_path>.checkpoint`.
pub fn checkpoint_path(log: &Path) -> PathBuf {
    let mut p = log.as_os_str().to_owned();
    p.push(".checkpoint");
    PathBuf::from(p)
}

/// The last checkpoint this log published must be a prefix of the tree.
/// One signed by another key (a new log key) is only reported.
fn check_published(path: &Path, signer: &NoteSigner, tree: &Tree) -> Result<(), String> {
    let Ok(note) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let verifier = NoteVerifier::parse(&signer.verifier_key()).map_err(|e| e.to_string())?;
    let cp = match verifier.open_checkpoint(&note) {
        Ok(cp) => cp,
        Err(e) => {
            tracing::warn!(target: "signer", error = %e, "the last published checkpoint is not this key's; not compared");
            return Ok(());
        }
    };
    if cp.size > tree.size() {
        return Err(format!(
            "a checkpoint of {} entries was published but only {} are left",
            cp.size,
            tree.size()
        ));
    }
    if tree.root_at(cp.size).ok() != Some(cp.root) {
        return Err(format!(
            "the entries no longer match the published checkpoint of {} entries",
            cp.size
        ));
    }
    Ok(())
}

/// Reads until `buf` is full or the end of the file; returns the bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
