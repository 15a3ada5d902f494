//! Writing key and certificate files with explicit modes.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// Mode of private key files.
pub const KEY_MODE: u32 = 0o600;
/// Mode of certificate files.
pub const CERT_MODE: u32 = 0o644;

/// Writes `bytes` to `path` with `mode`, creating parent directories, through
/// a temporary file in the same directory that is fsynced and renamed over
/// `path`, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Write { path, source }
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(err(parent))?;
    }
    let tmp = tmp_path(path);
    // A stale temporary file from a crash may exist; it holds nothing we need.
    let _ = fs::remove_file(&tmp);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err(&tmp))?;
    // The umask may have narrowed the mode; set it exactly.
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err(&tmp))?;
    file.write_all(bytes).map_err(err(&tmp))?;
    file.sync_all().map_err(err(&tmp))?;
    fs::rename(&tmp, path).map_err(err(path))?;
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_mode_and_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/key.pem");
        write_atomic(&path, b"one", KEY_MODE).expect("write");
        write_atomic(&path, b"two", CERT_MODE).expect("rewrite");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, CERT_MODE);
        assert!(!tmp_path(&path).exists());
    }
}
