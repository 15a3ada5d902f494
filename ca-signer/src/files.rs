//! Writing key and certificate files with explicit modes, through
//! [`daemon_kit::files`], with the signer's error type.

use std::path::Path;

pub use daemon_kit::files::{CERT_MODE, KEY_MODE};

use crate::error::Error;

/// Writes `bytes` to `path` with `mode`, creating parent directories, through
/// a temporary file in the same directory that is fsynced and renamed over
/// `path`, so a crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    let err = |e: daemon_kit::files::WriteError| Error::Write {
        path: e.path,
        source: e.source,
    };
    daemon_kit::files::create_parent(path).map_err(err)?;
    daemon_kit::files::write_atomic(path, bytes, mode).map_err(err)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn writes_with_mode_and_parents() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/key.pem");
        write_atomic(&path, b"one", KEY_MODE).expect("write");
        write_atomic(&path, b"two", CERT_MODE).expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, CERT_MODE);
        assert!(!daemon_kit::files::tmp_path(&path).exists());
    }
}
