//! JSON representations of resources (RFC 8555 §7.1.2–§7.1.5).

use serde_json::{Value, json};
use shared_proto::Identifier;
use shared_proto::validator::PersistForm;

use crate::error::{Error, problem_value};
use crate::protocol::OrderStatus;
use crate::store::models::{AccountRow, AuthzRow, ChallengeRow, OrderRow, StarRow};
use crate::urls::Urls;

/// RFC 3339 text of a Unix time.
pub fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// An HTTP date (RFC 9110 §5.6.7, IMF-fixdate) of a Unix time.
pub fn http_date(t: i64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let Ok(d) = time::OffsetDateTime::from_unix_timestamp(t) else {
        return String::new();
    };
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(d.weekday().number_days_from_monday())],
        d.day(),
        MONTHS[usize::from(u8::from(d.month()) - 1)],
        d.year(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// Identifiers as stored and shown.
pub fn identifiers_json(ids: &[Identifier]) -> Value {
    Value::Array(
        ids.iter()
            .map(|i| json!({"type": i.kind.as_str(), "value": i.value}))
            .collect(),
    )
}

fn stored_problem(json: &Option<String>) -> Option<Value> {
    json.as_deref().and_then(|s| serde_json::from_str(s).ok())
}

/// An account object.
pub fn account(urls: &Urls, a: &AccountRow) -> Value {
    let contact: Value = serde_json::from_str(&a.contact).unwrap_or_else(|_| json!([]));
    json!({
        "status": a.status,
        "contact": contact,
        "termsOfServiceAgreed": a.tos_agreed,
        "orders": urls.orders(&a.id),
    })
}

/// An order object, with its status derived as of `now`; a STAR order
/// (`star`) shows its `auto-renewal` terms, `star-certificate` in place of
/// `certificate`, and `canceled` once canceled (RFC 8739 §3.1).
pub fn order(
    urls: &Urls,
    o: &OrderRow,
    authzs: &[AuthzRow],
    star: Option<&StarRow>,
    now: i64,
) -> Result<Value, Error> {
    let status = o.status_at(authzs, now);
    let shown = match star {
        Some(s) if s.canceled_at.is_some() => "canceled",
        _ => status.as_str(),
    };
    let mut v = json!({
        "status": shown,
        "expires": rfc3339(o.expires),
        "identifiers": serde_json::from_str::<Value>(&o.identifiers).unwrap_or_else(|_| json!([])),
        "authorizations": authzs.iter().map(|a| urls.authz(&a.id)).collect::<Vec<_>>(),
        "finalize": urls.finalize(&o.id),
    });
    if let Some(nb) = o.not_before {
        v["notBefore"] = rfc3339(nb).into();
    }
    if let Some(na) = o.not_after {
        v["notAfter"] = rfc3339(na).into();
    }
    if let Some(p) = &o.profile {
        v["profile"] = p.clone().into();
    }
    if let Some(replaces) = &o.replaces {
        v["replaces"] = replaces.clone().into();
    }
    if let Some(s) = star {
        let mut terms = json!({
            "end-date": rfc3339(s.end_date),
            "lifetime": s.lifetime,
            "lifetime-adjust": s.lifetime_adjust,
            "allow-certificate-get": s.allow_certificate_get,
        });
        if let Some(start) = s.start_date {
            terms["start-date"] = rfc3339(start).into();
        }
        v["auto-renewal"] = terms;
        if o.certificate_id.is_some() {
            v["star-certificate"] = urls.star_certificate(&o.id).into();
        }
    } else if let Some(cert) = &o.certificate_id {
        v["certificate"] = urls.certificate(cert).into();
    }
    if let Some(err) = stored_problem(&o.error) {
        v["error"] = err;
    } else if status == OrderStatus::Invalid && o.status != OrderStatus::Invalid {
        v["error"] = problem_value(&Error::Malformed(
            "the order or one of its authorizations expired".into(),
        ));
    }
    Ok(v)
}

/// The challenge field listing dns-persist-01's issuer domain names: the
/// reference's `issuer-domain-names`, draft-02's `issuerDomainNames`.
fn persist_field(form: PersistForm) -> &'static str {
    match form {
        PersistForm::Draft01 => "issuer-domain-names",
        PersistForm::Draft02 => "issuerDomainNames",
    }
}

/// An issuer domain name as draft-02 §3.1 writes it: lowercase, no
/// trailing dot.
pub fn persist_issuer_name(issuer: &str) -> String {
    issuer.trim_end_matches('.').to_ascii_lowercase()
}

/// A challenge object; `persist_issuer` is dns-persist-01's issuer domain
/// and record form (the validator's).
pub fn challenge(
    urls: &Urls,
    authz: &AuthzRow,
    c: &ChallengeRow,
    persist_issuer: Option<&(String, PersistForm)>,
) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": urls.challenge(&authz.id, &c.kind),
        "status": c.status,
    });
    // dns-persist-01 has no token: the record names the issuer and the
    // account, under the field name of the form the validator checks.
    if c.kind == "dns-persist-01" {
        let (names, field) = match persist_issuer {
            Some((issuer, form)) => (vec![persist_issuer_name(issuer)], persist_field(*form)),
            None => (Vec::new(), persist_field(PersistForm::default())),
        };
        v[field] = json!(names);
    } else {
        v["token"] = authz.token.clone().into();
    }
    // RFC 9799 §3.2: the CA's nonce the CSR must carry; ours is the token
    // (a CSR carrying the key authorization, as our client and the
    // reference build it, is accepted too).
    if c.kind == "onion-csr-01" {
        v["nonce"] = authz.token.clone().into();
    }
    if let Some(t) = c.validated {
        v["validated"] = rfc3339(t).into();
    }
    if let Some(err) = stored_problem(&c.error) {
        v["error"] = err;
    }
    if let Some(rec) = c
        .validation_record
        .as_deref()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        v["validationRecord"] = json!([rec]);
    }
    v
}

/// An authorization object, with its status as of `now`.
pub fn authz(
    urls: &Urls,
    a: &AuthzRow,
    challenges: &[ChallengeRow],
    now: i64,
    persist_issuer: Option<&(String, PersistForm)>,
) -> Result<Value, Error> {
    let status = a.status_at(now);
    let mut v = json!({
        "identifier": {"type": a.identifier_type, "value": a.identifier_value},
        "status": status.as_str(),
        "expires": rfc3339(a.expires),
        "challenges": challenges.iter().map(|c| challenge(urls, a, c, persist_issuer)).collect::<Vec<_>>(),
    });
    if a.wildcard {
        v["wildcard"] = true.into();
    }
    // RFC 9444 §4.1.
    if a.subdomain_auth_allowed {
        v["subdomainAuthAllowed"] = true.into();
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_are_imf_fixdate() {
        assert_eq!(
            super::http_date(784_111_777),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(super::http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
