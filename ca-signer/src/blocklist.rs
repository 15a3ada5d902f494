//! The blocklist of subscriber keys: SHA-256 hashes of SubjectPublicKeyInfos,
//! hex, one a line, `#` starts a comment. `akamu-cli admin block-key` appends
//! to it; the signer re-reads it when the file changes, without a restart.

use std::collections::BTreeSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::error::Error;

/// A blocklist file, cached until its modification time or size changes.
pub struct Blocklist {
    path: PathBuf,
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    stamp: Option<(SystemTime, u64)>,
    hashes: Arc<BTreeSet<[u8; 32]>>,
}

impl Blocklist {
    /// A blocklist backed by `path` (a missing file blocks nothing).
    pub fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current set of blocked hashes, re-read if the file changed.
    pub fn current(&self) -> Result<Arc<BTreeSet<[u8; 32]>>, Error> {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stamp = match std::fs::metadata(&self.path) {
            Ok(m) => Some((m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(Error::Read {
                    path: self.path.clone(),
                    source,
                });
            }
        };
        if stamp != cache.stamp || (stamp.is_some() && cache.stamp.is_none()) {
            cache.hashes = Arc::new(match stamp {
                Some(_) => load(&self.path)?,
                None => BTreeSet::new(),
            });
            cache.stamp = stamp;
        }
        Ok(Arc::clone(&cache.hashes))
    }
}

/// Reads a blocklist file.
pub fn load(path: &Path) -> Result<BTreeSet<[u8; 32]>, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut out = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        out.insert(parse_hash(line).ok_or_else(|| Error::ConfigValue {
            field: "policy.blocked_keys_file",
            problem: format!("{} line {}: not a SHA-256 hex hash", path.display(), i + 1),
        })?);
    }
    Ok(out)
}

/// Parses 64 hex digits (either case, optional `:` separators).
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let clean: String = text.chars().filter(|c| *c != ':').collect();
    let bytes = hex::decode(clean).ok()?;
    bytes.try_into().ok()
}

/// Appends `hash` with a comment to the blocklist at `path` (created 0644),
/// fsynced. Returns false if it was already listed.
pub fn add(path: &Path, hash: &[u8; 32], comment: &str) -> Result<bool, Error> {
    if path.exists() && load(path)?.contains(hash) {
        return Ok(false);
    }
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    let mut f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o644)
        .open(path)
        .map_err(err)?;
    let comment: String = comment.chars().filter(|c| !c.is_control()).collect();
    writeln!(f, "{}  # {comment}", hex::encode(hash)).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_load_and_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("blocked-keys.txt");
        let list = Blocklist::new(&path);
        assert!(list.current().expect("empty").is_empty());
        let h = [7u8; 32];
        assert!(add(&path, &h, "test\nkey").expect("add"));
        assert!(!add(&path, &h, "again").expect("dup"));
        assert!(list.current().expect("reload").contains(&h));
        std::fs::write(&path, "# nothing\n\nzz\n").expect("write");
        assert!(list.current().is_err());
        assert_eq!(parse_hash(&"AB:".repeat(32)), Some([0xab; 32]));
    }
}
