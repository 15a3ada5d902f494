//! Requested validity windows (RFC 8555 §7.1.3 `notBefore`/`notAfter`).

use crate::error::Error;

/// Clock skew allowed on a requested notBefore in the past, in seconds.
pub const NOT_BEFORE_GRACE_SECS: i64 = 300;

/// Checks a requested validity window (RFC 8555 §7.1.3) against the
/// longest validity the signer gives under the order's profile,
/// `max_secs`.
pub fn check_window(
    not_before: Option<i64>,
    not_after: Option<i64>,
    now: i64,
    max_secs: i64,
) -> Result<(), Error> {
    let max = max_secs;
    if let Some(nb) = not_before {
        if nb < now - NOT_BEFORE_GRACE_SECS {
            return Err(Error::Malformed("notBefore is in the past".into()));
        }
        if nb > now + max {
            return Err(Error::Malformed(
                "notBefore is too far in the future".into(),
            ));
        }
    }
    if let Some(na) = not_after {
        let start = not_before.unwrap_or(now);
        if na <= start {
            return Err(Error::Malformed(
                "notAfter must be later than notBefore and now".into(),
            ));
        }
        if na - start > max {
            return Err(Error::Malformed(format!(
                "the requested validity exceeds this CA's maximum of {} days",
                max_secs / 86_400
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D90: i64 = 90 * 86_400;

    #[test]
    fn validity_window() {
        let now = 1_000_000;
        assert!(check_window(None, None, now, D90).is_ok());
        assert!(check_window(Some(now), Some(now + 90 * 86400), now, D90).is_ok());
        assert!(check_window(Some(now - 100), None, now, D90).is_ok());
        assert!(check_window(Some(now - 1000), None, now, D90).is_err());
        assert!(check_window(None, Some(now + 91 * 86400), now, D90).is_err());
        assert!(check_window(Some(now + 10), Some(now + 5), now, D90).is_err());
        assert!(check_window(None, Some(now - 1), now, D90).is_err());
    }
}
