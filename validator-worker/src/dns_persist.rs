//! dns-persist-01, as the reference and Let's Encrypt's 2026 text (the
//! IETF draft's -01 form) describe it: a standing TXT record at
//! `_validation-persist.<domain>` that names the CA and the account,
//!
//! ```text
//! "<issuer-domain>; accounturi=<account URL>[; policy=wildcard][; persistUntil=<YYYY-MM-DDTHH:MM:SSZ>]"
//! ```
//!
//! The first `;`-separated token is the issuer domain (compared without
//! case and without a trailing dot); the rest are `key=value` pairs in any
//! order, unknown keys ignored. The CA's issuer domain is the validator's
//! `dns_persist_issuer_domain` (one owner: the frontend learns it over the
//! RPC), so a frontend cannot borrow another CA's records.

use shared_proto::Identifier;
use shared_proto::validator::{ChallengeType, ValidationRecord};

use crate::error::{ProbeError, RequestError};
use crate::probe::Prober;

/// The label prepended to the validated name.
pub const LABEL: &str = "_validation-persist";

/// What one record grants, once it matched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// `persistUntil`, Unix seconds, if the record set one.
    pub persist_until: Option<i64>,
}

/// Why a record does not grant this validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// The first token names another CA.
    Issuer,
    /// No `accounturi`, or another account's.
    Account,
    /// A wildcard without `policy=wildcard`.
    Wildcard,
    /// `persistUntil` is in the past.
    Expired,
    /// `persistUntil` does not parse.
    BadDate,
}

impl Mismatch {
    fn describe(&self) -> &'static str {
        match self {
            Self::Issuer => "names another issuer domain",
            Self::Account => "names another account (accounturi)",
            Self::Wildcard => "lacks policy=wildcard for a wildcard name",
            Self::Expired => "has a persistUntil in the past",
            Self::BadDate => "has a persistUntil that is not YYYY-MM-DDTHH:MM:SSZ",
        }
    }
}

fn normalise_domain(s: &str) -> String {
    s.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// `YYYY-MM-DDTHH:MM:SSZ` (a lower-case `z` too) as Unix seconds.
fn parse_utc(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix('z'))?;
    let format = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, &format)
        .ok()
        .map(|t| t.assume_utc().unix_timestamp())
}

/// Whether record `txt` grants `account_uri` the validation of a name
/// (`wildcard`: a `*.` name) under issuer domain `issuer`, as of `now`.
pub fn check(
    txt: &str,
    issuer: &str,
    account_uri: &str,
    wildcard: bool,
    now: i64,
) -> Result<Grant, Mismatch> {
    let mut tokens = txt.split(';');
    let first = tokens.next().unwrap_or_default();
    if normalise_domain(first) != normalise_domain(issuer) {
        return Err(Mismatch::Issuer);
    }
    let mut account_ok = false;
    let mut wildcard_ok = false;
    let mut persist_until = None;
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("accounturi") {
            account_ok = value == account_uri;
        } else if key.eq_ignore_ascii_case("policy") {
            wildcard_ok = value.eq_ignore_ascii_case("wildcard");
        } else if key.eq_ignore_ascii_case("persistUntil") {
            persist_until = Some(parse_utc(value).ok_or(Mismatch::BadDate)?);
        }
    }
    if !account_ok {
        return Err(Mismatch::Account);
    }
    if wildcard && !wildcard_ok {
        return Err(Mismatch::Wildcard);
    }
    if persist_until.is_some_and(|t| t < now) {
        return Err(Mismatch::Expired);
    }
    Ok(Grant { persist_until })
}

/// Validates dns-persist-01 for `identifier` by the account at
/// `account_uri`, with the CA's `issuer` domain.
pub async fn validate(
    prober: &Prober,
    identifier: &Identifier,
    account_uri: &str,
    issuer: Option<&str>,
) -> Result<ValidationRecord, ProbeError> {
    let Some(issuer) = issuer else {
        return Err(RequestError::Unsupported {
            challenge: ChallengeType::DnsPersist01,
            identifier: identifier.to_string(),
            reason: "this validator has no dns_persist_issuer_domain",
        }
        .into());
    };
    let base = crate::dns01::dns_base(identifier, ChallengeType::DnsPersist01)?;
    let name = format!("{LABEL}.{base}");
    let records = prober.resolver.lookup_txt(&name).await?;
    let now = crate::now_unix();
    let mut why = Vec::new();
    for raw in &records {
        let txt = String::from_utf8_lossy(raw);
        match check(&txt, issuer, account_uri, identifier.is_wildcard(), now) {
            Ok(grant) => {
                return Ok(ValidationRecord {
                    persist_until: grant.persist_until,
                    ..ValidationRecord::name_only(base, now)
                });
            }
            Err(m) => why.push(m.describe()),
        }
    }
    why.sort_unstable();
    why.dedup();
    Err(ProbeError::PersistMismatch {
        name,
        seen: records.len(),
        why: why.join("; "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCT: &str = "https://acme.example.com/acme/account/42";

    #[test]
    fn records_as_the_reference_writes_them() {
        let now = 1_790_000_000;
        let ok = |txt: &str, wildcard| check(txt, "acme.example.com", ACCT, wildcard, now);
        assert_eq!(
            ok(&format!("acme.example.com; accounturi={ACCT}"), false),
            Ok(Grant {
                persist_until: None
            })
        );
        // Case and trailing dot of the issuer, spacing, order, unknown keys.
        assert!(
            ok(
                &format!("ACME.Example.com.;policy=wildcard ;x=y; accounturi={ACCT}"),
                true
            )
            .is_ok()
        );
        // policy=wildcard satisfies plain names too.
        assert!(
            ok(
                &format!("acme.example.com; accounturi={ACCT}; policy=wildcard"),
                false
            )
            .is_ok()
        );
        assert_eq!(
            ok(&format!("other.example; accounturi={ACCT}"), false),
            Err(Mismatch::Issuer)
        );
        assert_eq!(
            ok(
                "acme.example.com; accounturi=https://acme.example.com/acme/account/43",
                false
            ),
            Err(Mismatch::Account)
        );
        assert_eq!(ok("acme.example.com", false), Err(Mismatch::Account));
        assert_eq!(
            ok(&format!("acme.example.com; accounturi={ACCT}"), true),
            Err(Mismatch::Wildcard)
        );
        let until = |t: &str| {
            ok(
                &format!("acme.example.com; accounturi={ACCT}; persistUntil={t}"),
                false,
            )
        };
        assert_eq!(
            until("2027-01-15T08:00:00Z"),
            Ok(Grant {
                persist_until: Some(1_800_000_000)
            })
        );
        assert!(until("2027-01-15T08:00:00z").is_ok());
        assert_eq!(until("2020-01-01T00:00:00Z"), Err(Mismatch::Expired));
        assert_eq!(until("tomorrow"), Err(Mismatch::BadDate));
        assert_eq!(until("2027-01-15T08:00:00+01:00"), Err(Mismatch::BadDate));
    }

    #[test]
    fn dates() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2027-01-15T08:00:00Z"), Some(1_800_000_000));
        assert_eq!(parse_utc("2027-01-15 08:00:00Z"), None);
        assert_eq!(parse_utc("2027-01-15T08:00:00"), None);
    }
}
