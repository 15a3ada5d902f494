//! Revocation rules (RFC 8555 §7.6, RFC 5280 §5.3.1) shared by ACME
//! revocation and the operator's `akamu-cli admin revoke`.

use crate::error::Error;

/// CRL reason codes a subscriber may use (RFC 5280 §5.3.1; 7 is unused).
pub fn check_reason(reason: Option<i64>) -> Result<i32, Error> {
    match reason.unwrap_or(0) {
        r @ (0..=6 | 8..=10) => Ok(r as i32),
        r => Err(Error::BadRevocationReason(format!(
            "reason code {r} is not allowed (0-6, 8-10)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes() {
        for ok in [None, Some(0), Some(1), Some(6), Some(8), Some(10)] {
            assert!(check_reason(ok).is_ok(), "{ok:?}");
        }
        for bad in [Some(7), Some(11), Some(-1)] {
            assert!(
                matches!(check_reason(bad), Err(Error::BadRevocationReason(_))),
                "{bad:?}"
            );
        }
    }
}
