//! The wall clock: the only place the daemons read `SystemTime`. Everything
//! below the entry points takes `now` as a parameter.

use std::time::{SystemTime, UNIX_EPOCH};

/// The current time in Unix seconds (0 if the clock is before the epoch,
/// `i64::MAX` if it is beyond what an `i64` holds).
#[allow(clippy::disallowed_methods)] // the one place that reads the clock
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The current time in Unix milliseconds (for rate-limit buckets, whose
/// periods can be a second or two).
#[allow(clippy::disallowed_methods)] // the one place that reads the clock
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
}
