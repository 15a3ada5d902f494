//! RFC 8555 §7.4: new orders, with one fresh authorization per identifier.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use super::views;
use crate::auth::{KeyRef, authenticate};
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::identifier::{WireIdentifier, offered_challenges, parse_all};
use crate::protocol::{AuthzStatus, ChallengeStatus, OrderStatus};
use crate::store::models::{AuthzRow, ChallengeRow, OrderRow};
use crate::store::{self, orders::NewOrder};
use crate::{App, now, random_id};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    identifiers: Vec<WireIdentifier>,
    not_before: Option<String>,
    not_after: Option<String>,
}

fn parse_time(field: &str, v: &Option<String>) -> Result<Option<i64>, Error> {
    v.as_deref()
        .map(|s| {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .map_err(|_| Error::Malformed(format!("{field} is not an RFC 3339 date-time")))
        })
        .transpose()
}

/// `POST /acme/new-order`.
pub async fn post(app: &Arc<App>, req: &Request) -> Result<Reply, Error> {
    let auth = authenticate(
        app,
        &req.url,
        req.content_type.as_deref(),
        &req.body,
        KeyRef::Kid,
    )
    .await?;
    let account = auth.account()?.clone();
    let payload: Payload = auth.json()?;
    let identifiers = parse_all(&payload.identifiers)?;
    let not_before = parse_time("notBefore", &payload.not_before)?;
    let not_after = parse_time("notAfter", &payload.not_after)?;
    if let (Some(nb), Some(na)) = (not_before, not_after)
        && na <= nb
    {
        return Err(Error::Malformed(
            "notAfter must be later than notBefore".into(),
        ));
    }

    let t = now();
    let s = &app.config.server;
    let order_id = random_id(12);
    let mut authzs = Vec::with_capacity(identifiers.len());
    let mut challenges = Vec::new();
    for id in &identifiers {
        let authz_id = random_id(12);
        for kind in offered_challenges(id) {
            challenges.push(ChallengeRow {
                id: format!("{authz_id}/{}", kind.as_str()),
                authz_id: authz_id.clone(),
                kind: kind.as_str().into(),
                status: ChallengeStatus::Pending.as_str().into(),
                validated: None,
                error: None,
                validation_record: None,
                created: t,
                updated: t,
            });
        }
        authzs.push(AuthzRow {
            id: authz_id,
            account_id: account.id.clone(),
            status: AuthzStatus::Pending.as_str().into(),
            identifier_type: id.kind.as_str().into(),
            identifier_value: id.base_name().into(),
            wildcard: id.is_wildcard(),
            token: random_id(32),
            expires: t + s.authz_expiry_secs,
            error: None,
            created: t,
            updated: t,
        });
    }
    let order = OrderRow {
        id: order_id.clone(),
        account_id: account.id.clone(),
        status: OrderStatus::Pending.as_str().into(),
        expires: t + s.order_expiry_secs,
        identifiers: views::identifiers_json(&identifiers).to_string(),
        not_before,
        not_after,
        error: None,
        csr: None,
        certificate_id: None,
        created: t,
        updated: t,
    };
    let body = views::order(&app.urls, &order, &authzs, t)?;
    let new = NewOrder {
        order,
        authzs,
        challenges,
    };
    app.store
        .run(move |c| store::orders::insert(c, new))
        .await?;
    tracing::info!(target: "frontend", order = %order_id, account = %account.id, n = identifiers.len(), "order created");
    Ok(Reply::json(StatusCode::CREATED, &body).location(&app.urls.order(&order_id)))
}
