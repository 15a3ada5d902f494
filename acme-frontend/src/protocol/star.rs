//! STAR (RFC 8739): the `auto-renewal` member of a new order and the
//! reissue schedule. Pure: the time comes in as an argument.
//!
//! Each certificate of a STAR order has a nominal start `s`: it is valid
//! from `s - lifetime-adjust` to `s + lifetime`, cut at `end-date`. The
//! first starts at the finalize (or at `start-date` when that is later);
//! the next one is due when a third of the current one's lifetime is left,
//! and starts when it is actually issued (after downtime, at once: a
//! catch-up certificate starts then). No certificate starts at or after
//! `end-date`.

use serde_json::Value;

use crate::error::Error;

/// The server's STAR settings (`[server] star_*`) and the chosen profile's
/// validity, against which an `auto-renewal` object is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `star_min_lifetime_secs`.
    pub min_lifetime: i64,
    /// `star_max_duration_secs`.
    pub max_duration: Option<i64>,
    /// `star_allow_certificate_get`.
    pub allow_certificate_get: bool,
    /// The validity of the order's profile, seconds: `lifetime +
    /// lifetime-adjust` must fit in it.
    pub max_validity: i64,
}

/// An accepted `auto-renewal` object (RFC 8739 §3.1.1), times in Unix
/// seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AutoRenewal {
    /// `start-date`, if given.
    pub start_date: Option<i64>,
    /// `end-date`.
    pub end_date: i64,
    /// `lifetime`, seconds.
    pub lifetime: i64,
    /// `lifetime-adjust`, seconds (0 when absent).
    pub lifetime_adjust: i64,
    /// `allow-certificate-get` (false when absent).
    pub allow_certificate_get: bool,
}

fn malformed(detail: impl Into<String>) -> Error {
    Error::Malformed(detail.into())
}

fn date(v: &Value, member: &str) -> Result<i64, Error> {
    v.as_str()
        .and_then(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
        })
        .map(|t| t.unix_timestamp())
        .ok_or_else(|| {
            malformed(format!(
                "auto-renewal {member} is not an RFC 3339 date-time"
            ))
        })
}

fn seconds(v: &Value, member: &str) -> Result<i64, Error> {
    v.as_i64().ok_or_else(|| {
        malformed(format!(
            "auto-renewal {member} is not an integer number of seconds"
        ))
    })
}

/// Checks an order's `auto-renewal` member at `now` against `limits`.
pub fn parse(v: &Value, limits: &Limits, now: i64) -> Result<AutoRenewal, Error> {
    let obj = v
        .as_object()
        .ok_or_else(|| malformed("auto-renewal is not an object"))?;
    let end_date = date(
        obj.get("end-date")
            .ok_or_else(|| malformed("auto-renewal has no end-date"))?,
        "end-date",
    )?;
    let lifetime = seconds(
        obj.get("lifetime")
            .ok_or_else(|| malformed("auto-renewal has no lifetime"))?,
        "lifetime",
    )?;
    let start_date = obj
        .get("start-date")
        .map(|v| date(v, "start-date"))
        .transpose()?;
    let lifetime_adjust = obj
        .get("lifetime-adjust")
        .map(|v| seconds(v, "lifetime-adjust"))
        .transpose()?
        .unwrap_or(0);
    let allow_certificate_get = match obj.get("allow-certificate-get") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(malformed(
                "auto-renewal allow-certificate-get is not a boolean",
            ));
        }
    };
    if end_date <= now {
        return Err(malformed("auto-renewal end-date is in the past"));
    }
    if start_date.is_some_and(|s| s >= end_date) {
        return Err(malformed(
            "auto-renewal start-date is not before its end-date",
        ));
    }
    if lifetime < limits.min_lifetime {
        return Err(malformed(format!(
            "auto-renewal lifetime of {lifetime} s is under this server's minimum of {} s",
            limits.min_lifetime
        )));
    }
    if lifetime_adjust < 0 {
        return Err(malformed("auto-renewal lifetime-adjust is negative"));
    }
    if lifetime.saturating_add(lifetime_adjust) > limits.max_validity {
        return Err(malformed(format!(
            "auto-renewal lifetime + lifetime-adjust exceeds the profile's validity of {} s",
            limits.max_validity
        )));
    }
    if let Some(max) = limits.max_duration
        && end_date - now > max
    {
        return Err(malformed(format!(
            "auto-renewal end-date is more than this server's maximum duration of {max} s away"
        )));
    }
    if allow_certificate_get && !limits.allow_certificate_get {
        return Err(malformed(
            "this server does not allow auto-renewal allow-certificate-get",
        ));
    }
    Ok(AutoRenewal {
        start_date,
        end_date,
        lifetime,
        lifetime_adjust,
        allow_certificate_get,
    })
}

/// The terms the schedule needs (what the order's row stores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    /// `end-date`.
    pub end_date: i64,
    /// `lifetime`.
    pub lifetime: i64,
    /// `lifetime-adjust`.
    pub lifetime_adjust: i64,
}

/// The nominal start of the first certificate of an order finalized at
/// `finalized` with `start-date` `start_date`.
pub fn first_start(start_date: Option<i64>, finalized: i64) -> i64 {
    start_date.map_or(finalized, |s| s.max(finalized))
}

/// `(notBefore, notAfter)` of the certificate starting at `start`, or
/// `None` when no certificate starts then (at or after `end-date`).
pub fn window(terms: &Terms, start: i64) -> Option<(i64, i64)> {
    if start >= terms.end_date {
        return None;
    }
    let not_after = start.saturating_add(terms.lifetime).min(terms.end_date);
    Some((start - terms.lifetime_adjust, not_after))
}

/// When the certificate after the one starting at `start` is due, or
/// `None` when that one is the last (it reaches `end-date`).
pub fn next_due(terms: &Terms, start: i64) -> Option<i64> {
    let (_, not_after) = window(terms, start)?;
    if not_after >= terms.end_date {
        return None;
    }
    Some(not_after - (terms.lifetime / 3).max(1))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn limits() -> Limits {
        Limits {
            min_lifetime: 60,
            max_duration: Some(86_400),
            allow_certificate_get: true,
            max_validity: 7 * 86_400,
        }
    }

    fn rfc3339(t: i64) -> String {
        time::OffsetDateTime::from_unix_timestamp(t)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    }

    #[test]
    fn a_good_object_is_accepted() {
        let v = json!({
            "start-date": rfc3339(NOW + 10),
            "end-date": rfc3339(NOW + 3600),
            "lifetime": 600,
            "lifetime-adjust": 30,
            "allow-certificate-get": true,
        });
        assert_eq!(
            parse(&v, &limits(), NOW).expect("ok"),
            AutoRenewal {
                start_date: Some(NOW + 10),
                end_date: NOW + 3600,
                lifetime: 600,
                lifetime_adjust: 30,
                allow_certificate_get: true,
            }
        );
        let minimal = json!({"end-date": rfc3339(NOW + 3600), "lifetime": 60});
        let got = parse(&minimal, &limits(), NOW).expect("ok");
        assert_eq!((got.lifetime_adjust, got.allow_certificate_get), (0, false));
    }

    #[test]
    fn every_member_is_checked() {
        let end = rfc3339(NOW + 3600);
        let cases = [
            (json!("x"), "not an object"),
            (json!({"lifetime": 600}), "no end-date"),
            (json!({"end-date": end}), "no lifetime"),
            (json!({"end-date": 5, "lifetime": 600}), "end-date is not"),
            (
                json!({"end-date": end, "lifetime": "600"}),
                "lifetime is not",
            ),
            (json!({"end-date": end, "lifetime": 1.5}), "lifetime is not"),
            (
                json!({"end-date": end, "lifetime": 600, "start-date": true}),
                "start-date is not",
            ),
            (
                json!({"end-date": end, "lifetime": 600, "lifetime-adjust": "1"}),
                "lifetime-adjust is not",
            ),
            (
                json!({"end-date": end, "lifetime": 600, "allow-certificate-get": "yes"}),
                "allow-certificate-get is not",
            ),
            (
                json!({"end-date": rfc3339(NOW - 1), "lifetime": 600}),
                "end-date is in the past",
            ),
            (
                json!({"end-date": end, "start-date": end, "lifetime": 600}),
                "start-date is not before",
            ),
            (
                json!({"end-date": end, "lifetime": 59}),
                "under this server's minimum",
            ),
            (
                json!({"end-date": end, "lifetime": 600, "lifetime-adjust": -1}),
                "negative",
            ),
            (
                json!({"end-date": end, "lifetime": 7 * 86_400, "lifetime-adjust": 1}),
                "profile's validity",
            ),
            (
                json!({"end-date": rfc3339(NOW + 86_401), "lifetime": 600}),
                "maximum duration",
            ),
        ];
        for (v, want) in cases {
            match parse(&v, &limits(), NOW) {
                Err(Error::Malformed(d)) => assert!(d.contains(want), "{v}: {d:?} lacks {want:?}"),
                other => panic!("{v}: {other:?}"),
            }
        }
        let no_get = Limits {
            allow_certificate_get: false,
            ..limits()
        };
        let v = json!({"end-date": end, "lifetime": 600, "allow-certificate-get": true});
        assert!(parse(&v, &no_get, NOW).is_err());
    }

    #[test]
    fn the_schedule_rolls_until_the_end_date() {
        let terms = Terms {
            end_date: NOW + 1000,
            lifetime: 300,
            lifetime_adjust: 10,
        };
        assert_eq!(first_start(None, NOW), NOW);
        assert_eq!(first_start(Some(NOW + 50), NOW), NOW + 50);
        assert_eq!(first_start(Some(NOW - 50), NOW), NOW);
        assert_eq!(window(&terms, NOW), Some((NOW - 10, NOW + 300)));
        // Due when a third (100 s) is left.
        assert_eq!(next_due(&terms, NOW), Some(NOW + 200));
        // Cut at the end-date; that one is the last.
        assert_eq!(window(&terms, NOW + 800), Some((NOW + 790, NOW + 1000)));
        assert_eq!(next_due(&terms, NOW + 800), None);
        assert_eq!(window(&terms, NOW + 1000), None);
        assert_eq!(next_due(&terms, NOW + 1000), None);
        // Walking the schedule: every certificate overlaps the next, none
        // ends after the end-date, and it ends.
        let mut start = NOW;
        let mut n = 0;
        while let Some(due) = next_due(&terms, start) {
            let (_, na) = window(&terms, start).expect("window");
            let (nb, next_na) = window(&terms, due).expect("next window");
            assert!(nb < na && next_na <= terms.end_date);
            start = due;
            n += 1;
            assert!(n < 100);
        }
        assert_eq!(n, 4);
    }
}
