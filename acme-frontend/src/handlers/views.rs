//! JSON representations of resources (RFC 8555 §7.1.2–§7.1.5).

use serde_json::{Value, json};
use shared_proto::Identifier;

use crate::error::{Error, problem_value};
use crate::protocol::OrderStatus;
use crate::store::models::{AccountRow, AuthzRow, ChallengeRow, OrderRow};
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

/// An order object, with its status derived as of `now`.
pub fn order(urls: &Urls, o: &OrderRow, authzs: &[AuthzRow], now: i64) -> Result<Value, Error> {
    let status = o.status_at(authzs, now);
    let mut v = json!({
        "status": status.as_str(),
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
    if let Some(cert) = &o.certificate_id {
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

/// A challenge object.
pub fn challenge(urls: &Urls, authz: &AuthzRow, c: &ChallengeRow) -> Value {
    let mut v = json!({
        "type": c.kind,
        "url": urls.challenge(&authz.id, &c.kind),
        "status": c.status,
        "token": authz.token,
    });
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
) -> Result<Value, Error> {
    let status = a.status_at(now);
    let mut v = json!({
        "identifier": {"type": a.identifier_type, "value": a.identifier_value},
        "status": status.as_str(),
        "expires": rfc3339(a.expires),
        "challenges": challenges.iter().map(|c| challenge(urls, a, c)).collect::<Vec<_>>(),
    });
    if a.wildcard {
        v["wildcard"] = true.into();
    }
    Ok(v)
}
