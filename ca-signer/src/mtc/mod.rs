//! The transparency log: every certificate the signer signs, as an entry of
//! an RFC 9162 Merkle tree, with C2SP checkpoints signed by the log's own
//! Ed25519 key ([`akamu_tlog`] has the formats).
//!
//! The entries file (`[mtc] log_path`) is the concatenation of the entries,
//! each a big-endian uint16 length and the certificate's DER: the encoding
//! of a C2SP entry bundle, so a bundle is a slice of it. The tree of
//! complete subtrees is kept in memory, rebuilt from the file at start.
//!
//! Order of an append ([`MtcLog::reserve`], then [`Reservation::commit`]):
//! the index is reserved under the append lock, the audit record carrying
//! the certificate and that index is written and fsynced, then the entry is
//! written to the file and the tree, and only then does the certificate
//! leave the signer. The audit log is the write-ahead log: the entries file
//! is fsynced in batches by the checkpointer before each checkpoint is
//! signed (a new one at most [`BATCH`] after an append), not once per
//! certificate. At start ([`recover`]) the file is checked entry by entry
//! against the audit records and a missing tail is appended from them; an
//! entry the audit log does not record, a different certificate at an
//! index, or a published checkpoint the entries no longer reach stops the
//! signer: the log is never truncated or rewritten silently.
//!
//! Files: this one holds the log, `recover` the start-up check, `key` the
//! log key.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use akamu_tlog::tile::{self, TilePath};
use akamu_tlog::{Checkpoint, NoteSigner, Tree};

pub mod key;
pub mod recover;

pub use recover::Recovery;

/// How long the checkpointer waits after an append before it signs, so a
/// burst of appends shares one fsync and one signature.
pub const BATCH: Duration = Duration::from_millis(200);

/// The most bytes of entries one `log_read` answer carries (below the RPC
/// frame cap); a larger bundle is read in parts.
pub const MAX_ENTRIES_BYTES: usize = 768 * 1024;

/// Fault point: after the audit record of a certificate and before its
/// log entry (crash tests; see [`fault`]).
pub const FAULT_AFTER_AUDIT: &str = "signer-after-audit-before-log";

/// Why the log cannot be opened, appended to or trusted.
#[derive(Debug, thiserror::Error)]
pub enum MtcError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The log and the audit log disagree, or a published checkpoint is
    /// not reached: the signer refuses to start rather than lose or
    /// rewrite entries.
    #[error("transparency log {path}: {reason}")]
    Inconsistent {
        /// The entries file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The log key is missing or unusable.
    #[error("transparency log key {path}: {reason}")]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A certificate longer than an entry can be (65535 bytes).
    #[error("certificate of {0} bytes is too long for a log entry")]
    TooLong(usize),
    /// An earlier write failed; the log takes nothing until restart (when
    /// the audit log fills the gap).
    #[error("an earlier append failed; refusing to append until restart")]
    Poisoned,
    /// A checkpoint could not be signed.
    #[error("signing a checkpoint: {0}")]
    Note(#[from] akamu_tlog::note::NoteError),
}

/// The open log.
pub struct MtcLog {
    path: PathBuf,
    checkpoint_path: PathBuf,
    signer: NoteSigner,
    origin: String,
    /// Held from the index's reservation to the entry's write.
    append: Mutex<Appender>,
    /// The tree and where each entry starts in the file.
    tree: RwLock<Entries>,
    /// For reading entries and for the checkpointer's fsync.
    reader: File,
    /// Set by an append, cleared by the checkpointer.
    dirty: Mutex<bool>,
    wake: Condvar,
    /// The newest signed checkpoint.
    published: RwLock<Published>,
}

struct Appender {
    file: File,
    end: u64,
    poisoned: bool,
}

#[derive(Default)]
struct Entries {
    tree: Tree,
    /// `offsets[i]`: where entry `i` starts; one more at the end.
    offsets: Vec<u64>,
}

#[derive(Clone)]
struct Published {
    size: u64,
    note: Arc<String>,
    /// When it was signed, Unix seconds (0: read back at start).
    signed_at: i64,
}

/// An index reserved for one certificate; the append lock is held until
/// [`commit`](Self::commit) or drop (which appends nothing).
pub struct Reservation<'a> {
    log: &'a MtcLog,
    guard: MutexGuard<'a, Appender>,
    index: u64,
    /// The entry as written: length, then the certificate.
    bytes: Vec<u8>,
}

impl MtcLog {
    /// The log's origin (its name).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of entries.
    pub fn size(&self) -> u64 {
        self.read_tree().tree.size()
    }

    /// The note verifier key of the log's key.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier_key()
    }

    /// The newest signed checkpoint (a signed note).
    pub fn checkpoint(&self) -> Arc<String> {
        Arc::clone(&self.read_published().note)
    }

    /// The size of the newest signed checkpoint.
    pub fn checkpoint_size(&self) -> u64 {
        self.read_published().size
    }

    /// The log's figures for `/metrics`.
    pub fn figures(&self) -> shared_proto::signer::LogFigures {
        let published = self.read_published().clone();
        shared_proto::signer::LogFigures {
            entries: self.size(),
            checkpoint_entries: published.size,
            checkpoint_time: published.signed_at,
        }
    }

    fn read_tree(&self) -> std::sync::RwLockReadGuard<'_, Entries> {
        self.tree
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read_published(&self) -> std::sync::RwLockReadGuard<'_, Published> {
        self.published
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves the next index for `der`; the append lock is held until
    /// the reservation is committed or dropped.
    pub fn reserve(&self, der: &[u8]) -> Result<Reservation<'_>, MtcError> {
        let mut bytes = Vec::with_capacity(der.len() + 2);
        tile::push_entry(&mut bytes, der).ok_or(MtcError::TooLong(der.len()))?;
        let guard = self
            .append
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.poisoned {
            return Err(MtcError::Poisoned);
        }
        let index = self.size();
        Ok(Reservation {
            log: self,
            guard,
            index,
            bytes,
        })
    }

    /// Hash tile `path`, if the tree has its hashes.
    pub fn hash_tile(&self, path: &TilePath) -> Option<Vec<u8>> {
        tile::hash_tile(&self.read_tree().tree, path)
    }

    /// Entries `from ..` of bundle `index` of width `width`, as bundle
    /// bytes, as many as fit in [`MAX_ENTRIES_BYTES`] (at least one);
    /// `None` if the log does not have them.
    pub fn entries(&self, index: u64, width: u16, from: u16) -> Result<Option<Vec<u8>>, MtcError> {
        if from >= width || width == 0 || width > 256 {
            return Ok(None);
        }
        let (start, end) = {
            let entries = self.read_tree();
            let base = index.checked_mul(tile::TILE_WIDTH);
            let (Some(first), Some(last)) = (
                base.and_then(|b| b.checked_add(u64::from(from))),
                base.and_then(|b| b.checked_add(u64::from(width))),
            ) else {
                return Ok(None);
            };
            if last > entries.tree.size() {
                return Ok(None);
            }
            let (first, last) = (first as usize, last as usize);
            let start = entries.offsets[first];
            let mut stop = first + 1;
            while stop < last && entries.offsets[stop + 1] - start <= MAX_ENTRIES_BYTES as u64 {
                stop += 1;
            }
            (start, entries.offsets[stop])
        };
        let mut buf = vec![0u8; (end - start) as usize];
        self.reader
            .read_exact_at(&mut buf, start)
            .map_err(|source| MtcError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(Some(buf))
    }

    /// Signs a checkpoint of the tree as it is now, after the entries file
    /// is synced, and publishes it (memory and `<log_path>.checkpoint`).
    pub fn sign_checkpoint(&self) -> Result<u64, MtcError> {
        let (size, root) = {
            let e = self.read_tree();
            (e.tree.size(), e.tree.root())
        };
        // Everything written so far, at least `size` entries, reaches the
        // disk before a checkpoint names them.
        self.reader.sync_data().map_err(|source| MtcError::Io {
            path: self.path.clone(),
            source,
        })?;
        let body = Checkpoint {
            origin: self.origin.clone(),
            size,
            root,
        }
        .body();
        let note = self.signer.sign(&body)?;
        daemon_kit::files::write_atomic(&self.checkpoint_path, note.as_bytes(), 0o644).map_err(
            |e| MtcError::Io {
                path: e.path,
                source: e.source,
            },
        )?;
        *self
            .published
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Published {
            size,
            note: Arc::new(note),
            signed_at: daemon_kit::clock::unix_now(),
        };
        Ok(size)
    }

    /// Starts the thread that signs a new checkpoint [`BATCH`] after each
    /// burst of appends.
    pub fn spawn_checkpointer(self: &Arc<Self>) -> Result<(), MtcError> {
        let log = Arc::clone(self);
        std::thread::Builder::new()
            .name("mtc-checkpoint".into())
            .spawn(move || log.checkpoint_forever())
            .map(drop)
            .map_err(|source| MtcError::Io {
                path: self.path.clone(),
                source,
            })
    }

    fn checkpoint_forever(&self) {
        loop {
            {
                let mut dirty = self
                    .dirty
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                while !*dirty {
                    dirty = self
                        .wake
                        .wait(dirty)
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                }
                *dirty = false;
            }
            std::thread::sleep(BATCH);
            match self.sign_checkpoint() {
                Ok(size) => tracing::debug!(target: "signer", size, "signed a log checkpoint"),
                Err(e) => {
                    tracing::error!(target: "signer", error = %e, "cannot sign a log checkpoint; retrying");
                    *self
                        .dirty
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}

impl Reservation<'_> {
    /// The index the certificate gets.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Writes the entry (no fsync: the audit record already holds it) and
    /// adds it to the tree. A failed write poisons the log until restart.
    pub fn commit(mut self) -> Result<u64, MtcError> {
        let log = self.log;
        let before = self.guard.end;
        if let Err(source) = self.guard.file.write_all(&self.bytes) {
            // Cut a partial entry off if we can; either way the index is
            // in the audit log, so nothing more is appended until the
            // restart re-appends it from there.
            if let Err(e) = self.guard.file.set_len(before) {
                tracing::error!(target: "signer", error = %e, "cannot undo a failed log append");
            }
            self.guard.poisoned = true;
            return Err(MtcError::Io {
                path: log.path.clone(),
                source,
            });
        }
        self.guard.end += self.bytes.len() as u64;
        {
            let mut e = log
                .tree
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            e.tree.push(akamu_tlog::leaf_hash(&self.bytes[2..]));
            e.offsets.push(self.guard.end);
        }
        drop(self.guard);
        *log.dirty
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = true;
        log.wake.notify_one();
        Ok(self.index)
    }
}

/// Fault points for crash tests: a debug build aborts at `point` when
/// `AKAMU_FAULT_POINT` names it, once per `marker` file (created first, so
/// the restarted signer goes on). Release builds compile it away.
pub fn fault(point: &'static str, marker: &Path) {
    #[cfg(debug_assertions)]
    {
        if std::env::var("AKAMU_FAULT_POINT").ok().as_deref() == Some(point)
            && File::create_new(marker).is_ok()
        {
            tracing::error!(target: "signer", point, "fault point reached: aborting");
            std::process::abort();
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (point, marker);
}

impl MtcLog {
    /// Where [`fault`] keeps its marker.
    pub fn fault_marker(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".fault-fired");
        PathBuf::from(p)
    }
}

#[cfg(test)]
mod tests;
