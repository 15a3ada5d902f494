//! Atomic file writes with explicit modes, for keys, certificates, counters
//! and account sidecars.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of private key files.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificate files.
pub const CERT_MODE: u32 = 0o644;

/// A write that failed, with the path the failing step worked on (the file,
/// its temporary sibling, or its parent directory).
#[derive(Debug, thiserror::Error)]
#[error("cannot write {}: {source}", path.display())]
pub struct WriteError {
    /// The path the failing step worked on.
    pub path: PathBuf,
    /// What the system said.
    #[source]
    pub source: io::Error,
}

/// Writes `bytes` to `path` with exactly `mode`, through a temporary file in
/// the same directory that is fsynced and renamed over `path`, so a crash
/// leaves either the old file or the new one. The parent directory must
/// exist (see [`create_parent`]).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let tmp = tmp_path(path);
    // A stale temporary file from a crash may exist; it holds nothing we need.
    let _ = fs::remove_file(&tmp);
    let result = write_tmp(&tmp, bytes, mode).and_then(|()| {
        fs::rename(&tmp, path).map_err(|source| WriteError {
            path: path.to_owned(),
            source,
        })
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates the parent directories of `path`, if it has any.
pub fn create_parent(path: &Path) -> Result<(), WriteError> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => fs::create_dir_all(parent).map_err(|source| WriteError {
            path: parent.to_owned(),
            source,
        }),
        None => Ok(()),
    }
}

fn write_tmp(tmp: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    let err = |source| WriteError {
        path: tmp.to_owned(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .map_err(err)?;
    // The umask may have narrowed the mode; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

/// `<path>.tmp`: the temporary sibling [`write_atomic`] renames from.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_mode_and_replaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/key.pem");
        create_parent(&path).expect("parents");
        write_atomic(&path, b"one", KEY_MODE).expect("write");
        write_atomic(&path, b"two", CERT_MODE).expect("rewrite");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, CERT_MODE);
        assert!(!tmp_path(&path).exists());
        assert_eq!(
            fs::read_dir(path.parent().expect("parent"))
                .expect("ls")
                .count(),
            1
        );
    }

    #[test]
    fn a_missing_parent_is_an_error_naming_the_temporary_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing/key.pem");
        let err = write_atomic(&path, b"x", KEY_MODE).expect_err("no parent");
        assert_eq!(err.path, tmp_path(&path));
        assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn a_stale_temporary_file_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        fs::write(tmp_path(&path), b"stale").expect("stale");
        write_atomic(&path, b"new", KEY_MODE).expect("write");
        assert_eq!(fs::read(&path).expect("read"), b"new");
        assert!(!tmp_path(&path).exists());
    }
}
