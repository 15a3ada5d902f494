//! dns-persist-01: a standing TXT record at `_validation-persist.<domain>`
//! that names the CA and the account. Two forms, chosen by the validator's
//! `dns_persist_form`:
//!
//! - `draft-01` (the default; the reference's form, which Boulder, Pebble
//!   and lego speak today): `accounturi` is the account URL and
//!   `persistUntil` an RFC 3339 UTC time,
//!
//!   ```text
//!   "<issuer-domain>; accounturi=<account URL>[; policy=wildcard][; persistUntil=<YYYY-MM-DDTHH:MM:SSZ>]"
//!   ```
//!
//! - `draft-02` (draft-ietf-acme-dns-persist-02 §4.1): `accounturi` is a
//!   hashed URI, `<accountHashPrefix>sha-256/<base64url of SHA-256(len ‖
//!   domain ‖ key thumbprint ‖ account URL)>`, where `domain` is the name
//!   the record is at (or `*`, the domain-less opt-out) and the thumbprint
//!   is of the account's current key or of an earlier key whose hash passed
//!   before and is still retained (the frontend keeps that history);
//!   `persistUntil` is Unix seconds.
//!
//! In both, the first `;`-separated token is the issuer domain (compared
//! without case and without a trailing dot); the rest are `key=value` pairs
//! in any order, unknown keys ignored; a wildcard needs `policy=wildcard`.
//! The CA's issuer domain is the validator's `dns_persist_issuer_domain`
//! (one owner: the frontend learns it over the RPC), so a frontend cannot
//! borrow another CA's records.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shared_proto::Identifier;
use shared_proto::validator::{
    ChallengeType, MAX_PERSIST_RETAINED, PersistAccount, PersistForm, PersistHash, ValidationRecord,
};

use crate::error::{ProbeError, RequestError};
use crate::probe::Prober;

/// The label prepended to the validated name.
pub const LABEL: &str = "_validation-persist";

/// The hash algorithm of the hashed URIs we compute and accept (RFC 6920
/// §9.4's Hash Name String; draft-02 requires `sha-256`, and we document
/// no other).
pub const HASH_NAME: &str = "sha-256";

/// What one record grants, once it matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// `persistUntil`, Unix seconds, if the record set one.
    pub persist_until: Option<i64>,
    /// draft-02: the hashed URI that matched.
    pub hash: Option<PersistHash>,
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
    /// draft-02: `accounturi` is not a hashed URI under the CA's prefix
    /// with the `sha-256` algorithm and a 43-character base64url value.
    BadHashedUri,
}

impl Mismatch {
    fn describe(&self, form: PersistForm) -> &'static str {
        match (self, form) {
            (Self::Issuer, _) => "names another issuer domain",
            (Self::Account, PersistForm::Draft01) => "names another account (accounturi)",
            (Self::Account, PersistForm::Draft02) => {
                "has an accounturi that is not this account's hashed URI for this name"
            }
            (Self::Wildcard, _) => "lacks policy=wildcard for a wildcard name",
            (Self::Expired, _) => "has a persistUntil in the past",
            (Self::BadDate, PersistForm::Draft01) => {
                "has a persistUntil that is not YYYY-MM-DDTHH:MM:SSZ"
            }
            (Self::BadDate, PersistForm::Draft02) => {
                "has a persistUntil that is not a base-10 Unix time"
            }
            (Self::BadHashedUri, _) => {
                "has an accounturi that is not <accountHashPrefix>sha-256/<43 base64url characters>"
            }
        }
    }

    /// Whether the record is malformed (draft-02 §6.2: `malformed`) rather
    /// than naming someone else (`unauthorized`).
    fn is_syntax(&self) -> bool {
        matches!(self, Self::BadDate | Self::BadHashedUri)
    }
}

/// Who the record must name.
#[derive(Clone, Copy, Debug)]
pub enum Expected<'a> {
    /// draft-01: the account URL itself.
    Url(&'a str),
    /// draft-02: one of these hashed URIs, under this prefix.
    Hashed {
        /// The directory's `accountHashPrefix`.
        prefix: &'a str,
        /// The hashed URIs this account may be named by here.
        accepted: &'a [PersistHash],
    },
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

/// draft-02's base-10 Unix time (digits only, an optional leading `-`).
fn parse_unix(s: &str) -> Option<i64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// draft-02 §4.1: the hashed account URI of `account_url` with the key
/// whose unpadded base64url SHA-256 JWK thumbprint is `thumbprint`, for a
/// record at `domain` (the normalised name, or `*`).
pub fn hashed_account_uri(
    prefix: &str,
    domain: &str,
    thumbprint: &str,
    account_url: &str,
) -> String {
    // A domain name is at most 253 octets, so its length fits the one
    // octet the draft gives it; a longer input (which dns_base never
    // yields) saturates rather than wraps.
    let len = u8::try_from(domain.len()).unwrap_or(u8::MAX);
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&[len]);
    ctx.update(domain.as_bytes());
    ctx.update(thumbprint.as_bytes());
    ctx.update(account_url.as_bytes());
    format!(
        "{prefix}{HASH_NAME}/{}",
        URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
    )
}

/// The hashed URIs an account may be named by at `domain`: its current key
/// for the name and in the domain-less form, and the retained ones.
pub fn accepted_hashes(
    account: &PersistAccount,
    domain: &str,
    account_url: &str,
) -> Vec<PersistHash> {
    let current = [domain, "*"].into_iter().map(|d| PersistHash {
        uri: hashed_account_uri(
            &account.account_hash_prefix,
            d,
            &account.key_thumbprint,
            account_url,
        ),
        domain: d.to_owned(),
        current_key: true,
    });
    let retained = account
        .retained
        .iter()
        .take(MAX_PERSIST_RETAINED)
        .map(|uri| PersistHash {
            uri: uri.clone(),
            domain: domain.to_owned(),
            current_key: false,
        });
    current.chain(retained).collect()
}

/// Whether `value` is a well-formed hashed URI under `prefix`.
fn is_hashed_uri(value: &str, prefix: &str) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix(HASH_NAME))
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|h| h.len() == 43 && URL_SAFE_NO_PAD.decode(h).is_ok_and(|d| d.len() == 32))
}

/// Whether record `txt` grants `expected` the validation of a name
/// (`wildcard`: a `*.` name) under issuer domain `issuer`, as of `now`.
pub fn check(
    txt: &str,
    issuer: &str,
    expected: Expected<'_>,
    wildcard: bool,
    now: i64,
) -> Result<Grant, Mismatch> {
    let mut tokens = txt.split(';');
    let first = tokens.next().unwrap_or_default();
    if normalise_domain(first) != normalise_domain(issuer) {
        return Err(Mismatch::Issuer);
    }
    let mut account = None;
    let mut wildcard_ok = false;
    let mut persist_until = None;
    for token in tokens {
        let Some((key, value)) = token.split_once('=') else {
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.eq_ignore_ascii_case("accounturi") {
            account = Some(value);
        } else if key.eq_ignore_ascii_case("policy") {
            wildcard_ok = value.eq_ignore_ascii_case("wildcard");
        } else if key.eq_ignore_ascii_case("persistUntil") {
            let parsed = match expected {
                Expected::Url(_) => parse_utc(value),
                Expected::Hashed { .. } => parse_unix(value),
            };
            persist_until = Some(parsed.ok_or(Mismatch::BadDate)?);
        }
    }
    let Some(account) = account else {
        return Err(Mismatch::Account);
    };
    let hash = match expected {
        Expected::Url(url) if account == url => None,
        Expected::Url(_) => return Err(Mismatch::Account),
        Expected::Hashed { prefix, accepted } => {
            // Simple string comparison (draft-02 §4.1), no normalisation.
            match accepted.iter().find(|h| h.uri == account) {
                Some(h) => Some(h.clone()),
                None if is_hashed_uri(account, prefix) => return Err(Mismatch::Account),
                None => return Err(Mismatch::BadHashedUri),
            }
        }
    };
    if wildcard && !wildcard_ok {
        return Err(Mismatch::Wildcard);
    }
    if persist_until.is_some_and(|t| t < now) {
        return Err(Mismatch::Expired);
    }
    Ok(Grant {
        persist_until,
        hash,
    })
}

/// Validates dns-persist-01 for `identifier` by the account at
/// `account_uri`, with the CA's `issuer` domain, in `form`; `persist`
/// carries the account's keys for the draft-02 form.
pub async fn validate(
    prober: &Prober,
    identifier: &Identifier,
    account_uri: &str,
    persist: Option<&PersistAccount>,
) -> Result<ValidationRecord, ProbeError> {
    let config = &prober.config;
    let Some(issuer) = config.dns_persist_issuer_domain.as_deref() else {
        return Err(RequestError::Unsupported {
            challenge: ChallengeType::DnsPersist01,
            identifier: identifier.to_string(),
            reason: "this validator has no dns_persist_issuer_domain",
        }
        .into());
    };
    let form = config.dns_persist_form;
    let base = crate::dns01::dns_base(identifier, ChallengeType::DnsPersist01)?;
    let accepted;
    let expected = match form {
        PersistForm::Draft01 => Expected::Url(account_uri),
        PersistForm::Draft02 => {
            let Some(account) = persist else {
                return Err(RequestError::Unsupported {
                    challenge: ChallengeType::DnsPersist01,
                    identifier: identifier.to_string(),
                    reason: "the draft-02 form needs the account's key thumbprint and hash prefix",
                }
                .into());
            };
            accepted = accepted_hashes(account, &base, account_uri);
            Expected::Hashed {
                prefix: &account.account_hash_prefix,
                accepted: &accepted,
            }
        }
    };
    let name = format!("{LABEL}.{base}");
    let records = prober.resolver.lookup_txt(&name).await?;
    let now = crate::now_unix();
    let mut why = Vec::new();
    let mut syntax = false;
    for raw in &records {
        let txt = String::from_utf8_lossy(raw);
        match check(&txt, issuer, expected, identifier.is_wildcard(), now) {
            Ok(grant) => {
                return Ok(ValidationRecord {
                    persist_until: grant.persist_until,
                    persist_hash: grant.hash,
                    ..ValidationRecord::name_only(base, now)
                });
            }
            Err(m) => {
                // Records for other CAs are ignored (draft-02 §4.4).
                syntax |= m != Mismatch::Issuer && m.is_syntax();
                why.push(m.describe(form));
            }
        }
    }
    why.sort_unstable();
    why.dedup();
    Err(ProbeError::PersistMismatch {
        name,
        seen: records.len(),
        why: why.join("; "),
        form,
        syntax,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCT: &str = "https://acme.example.com/acme/account/42";

    #[test]
    fn records_as_the_reference_writes_them() {
        let now = 1_790_000_000;
        let ok = |txt: &str, wildcard| {
            check(txt, "acme.example.com", Expected::Url(ACCT), wildcard, now)
        };
        assert_eq!(
            ok(&format!("acme.example.com; accounturi={ACCT}"), false),
            Ok(Grant {
                persist_until: None,
                hash: None
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
                persist_until: Some(1_800_000_000),
                hash: None
            })
        );
        assert!(until("2027-01-15T08:00:00z").is_ok());
        assert_eq!(until("2020-01-01T00:00:00Z"), Err(Mismatch::Expired));
        assert_eq!(until("tomorrow"), Err(Mismatch::BadDate));
        assert_eq!(until("2027-01-15T08:00:00+01:00"), Err(Mismatch::BadDate));
    }

    /// draft-ietf-acme-dns-persist-02 §8.2's test vectors.
    #[test]
    fn hashed_uri_vectors() {
        let prefix = "https://ca.example/account-hash/";
        let key = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        let acct = "https://ca.example/acct/123";
        assert_eq!(
            hashed_account_uri(prefix, "example.com", key, acct),
            "https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw"
        );
        assert_eq!(
            hashed_account_uri(prefix, "*", key, acct),
            "https://ca.example/account-hash/sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug"
        );
    }

    #[test]
    fn draft_02_records() {
        let prefix = "https://ca.example/account-hash/";
        let key = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        let acct = "https://ca.example/acct/123";
        let old = hashed_account_uri(prefix, "example.com", &"A".repeat(43), acct);
        let account = PersistAccount {
            account_hash_prefix: prefix.into(),
            key_thumbprint: key.into(),
            retained: vec![old.clone()],
        };
        let accepted = accepted_hashes(&account, "example.com", acct);
        let expected = Expected::Hashed {
            prefix,
            accepted: &accepted,
        };
        let now = 1_790_000_000;
        let ok = |txt: &str, wildcard| check(txt, "authority.example", expected, wildcard, now);
        // The draft's own record, split over character-strings as a zone
        // file writes it (the resolver joins them).
        let grant = ok(
            "authority.example; accounturi=https://ca.example/account-hash/sha-256/5SQm7n6tPh2-PlLbCKGnViTXX5z19SCN4cPGQHSk-kw",
            false,
        )
        .expect("the draft's example");
        let hash = grant.hash.expect("hash");
        assert!(hash.current_key);
        assert_eq!(hash.domain, "example.com");
        // The domain-less form.
        let grant = ok(
            "authority.example; accounturi=https://ca.example/account-hash/sha-256/NpDnSwUthQK8zCgFdefYxAdAVPnygMLbs9US6oO-5ug; policy=wildcard",
            true,
        )
        .expect("domain-less form, wildcard");
        assert_eq!(grant.hash.expect("hash").domain, "*");
        // A retained hash of an earlier key.
        let grant = ok(&format!("authority.example; accounturi={old}"), false).expect("retained");
        assert!(!grant.hash.expect("hash").current_key);
        // Another account (well formed, not ours).
        let other = hashed_account_uri(prefix, "example.com", key, "https://ca.example/acct/124");
        assert_eq!(
            ok(&format!("authority.example; accounturi={other}"), false),
            Err(Mismatch::Account)
        );
        // The hash for another name does not move to this one.
        let elsewhere = hashed_account_uri(prefix, "example.net", key, acct);
        assert_eq!(
            ok(&format!("authority.example; accounturi={elsewhere}"), false),
            Err(Mismatch::Account)
        );
        // The draft-01 form (the account URL) is malformed here, as is
        // another algorithm or prefix.
        for bad in [
            acct.to_owned(),
            format!("{prefix}sha-512/{}", "A".repeat(43)),
            format!(
                "https://other.example/account-hash/sha-256/{}",
                "A".repeat(43)
            ),
            format!("{prefix}sha-256/short"),
        ] {
            assert_eq!(
                ok(&format!("authority.example; accounturi={bad}"), false),
                Err(Mismatch::BadHashedUri),
                "{bad}"
            );
        }
        let record = hash.uri;
        let until = |t: &str| {
            ok(
                &format!("authority.example; accounturi={record}; persistUntil={t}"),
                false,
            )
        };
        assert_eq!(
            until("1800000000").expect("future").persist_until,
            Some(1_800_000_000)
        );
        assert_eq!(until("1767225600"), Err(Mismatch::Expired));
        assert_eq!(until("2027-01-15T08:00:00Z"), Err(Mismatch::BadDate));
        assert_eq!(until("+1800000000"), Err(Mismatch::BadDate));
        assert_eq!(
            ok(&format!("authority.example; accounturi={record}"), true),
            Err(Mismatch::Wildcard)
        );
        assert!(Mismatch::BadDate.is_syntax() && !Mismatch::Account.is_syntax());
    }

    #[test]
    fn dates() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2027-01-15T08:00:00Z"), Some(1_800_000_000));
        assert_eq!(parse_utc("2027-01-15 08:00:00Z"), None);
        assert_eq!(parse_utc("2027-01-15T08:00:00"), None);
    }
}
