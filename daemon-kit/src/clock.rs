//! The wall clock: the only place the daemons read `SystemTime`. Everything
//! below the entry points takes `now` as a parameter.
//!
//! Tests move the clock of running daemons without sleeping: in a **debug
//! build**, when [`TEST_CLOCK_ENV`] names a file, the number of seconds
//! written in it (e.g. `86400`, or `-60`) is added to every reading, read
//! again on each call, so a test that rewrites the file moves the frontend,
//! the signer and the validator (the launcher's children inherit the
//! variable) at once. Release builds compile the hook away: the variable is
//! never read and the clock is the system's.

use std::time::{SystemTime, UNIX_EPOCH};

/// Names the file holding the test clock's shift in seconds (debug builds
/// only; ignored by release builds).
pub const TEST_CLOCK_ENV: &str = "AKAMU_TEST_CLOCK_FILE";

/// The current time in Unix seconds (0 if the clock is before the epoch,
/// `i64::MAX` if it is beyond what an `i64` holds).
#[allow(clippy::disallowed_methods)] // the one place that reads the clock
pub fn unix_now() -> i64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    wall.saturating_add(shift_secs())
}

/// The current time in Unix milliseconds (for rate-limit buckets, whose
/// periods can be a second or two).
#[allow(clippy::disallowed_methods)] // the one place that reads the clock
pub fn unix_now_ms() -> i64 {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    wall.saturating_add(shift_secs().saturating_mul(1000))
}

/// The test clock's shift in seconds: always 0 in a release build, and in
/// a debug build unless [`TEST_CLOCK_ENV`] is set.
pub fn shift_secs() -> i64 {
    #[cfg(debug_assertions)]
    {
        test_clock::shift()
    }
    #[cfg(not(debug_assertions))]
    {
        0
    }
}

#[cfg(debug_assertions)]
mod test_clock {
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    /// The file named by the environment, read once per process.
    fn file() -> Option<&'static Path> {
        static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
        FILE.get_or_init(|| {
            let path = std::env::var_os(super::TEST_CLOCK_ENV).map(PathBuf::from);
            if let Some(path) = &path {
                tracing::warn!(file = %path.display(),
                    "debug build: the clock is shifted by the seconds in {}", super::TEST_CLOCK_ENV);
            }
            path
        })
        .as_deref()
    }

    pub(super) fn shift() -> i64 {
        file().map_or(0, read)
    }

    /// The shift written in `path`; 0 when it is missing or not a number
    /// (a test writing the file must never stop the clock).
    pub(super) fn read(path: &Path) -> i64 {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_2026() {
        // 2026-01-01T00:00:00Z
        assert!(unix_now() > 1_767_225_600);
        assert!(unix_now_ms() / 1000 >= unix_now() - 1);
    }

    #[cfg(debug_assertions)]
    #[test]
    fn the_test_clock_file_is_read_on_every_call() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("clock");
        assert_eq!(test_clock::read(&path), 0, "missing file");
        std::fs::write(&path, "86400\n").expect("write");
        assert_eq!(test_clock::read(&path), 86_400);
        std::fs::write(&path, "-60").expect("write");
        assert_eq!(test_clock::read(&path), -60);
        std::fs::write(&path, "soon").expect("write");
        assert_eq!(test_clock::read(&path), 0, "not a number");
    }
}
