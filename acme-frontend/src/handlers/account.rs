//! RFC 8555 §7.3.2–§7.3.6: reading, updating and deactivating an account, and
//! its orders list (§7.1.2.1).

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::views;
use crate::auth::{self, KeyRef};
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::require_owner;
use crate::protocol::{AccountStatus, contact};
use crate::store;
use crate::{App, now};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Update {
    contact: Option<Vec<String>>,
    status: Option<String>,
}

/// `POST /acme/account/{id}`: POST-as-GET, contact update or deactivation.
pub async fn post(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    let mut account = auth.account()?.clone();
    if account.id != id {
        return Err(Error::Unauthorized(
            "the kid does not match the account URL".into(),
        ));
    }
    if !auth.payload.is_empty() {
        let update: Update = auth.json()?;
        let t = now();
        if let Some(status) = update.status {
            if status != AccountStatus::Deactivated.as_str() {
                return Err(Error::Malformed(format!(
                    "an account's status can only be set to deactivated, not {status:?}"
                )));
            }
            let aid = account.id.clone();
            auth::update_account(app, &account.id, move |c| {
                store::accounts::set_status(c, &aid, AccountStatus::Deactivated, t)
            })
            .await?;
            account.status = AccountStatus::Deactivated;
            tracing::info!(target: "frontend", account = %account.id, "account deactivated");
        }
        if let Some(contacts) = update.contact {
            contact::validate(&contacts)?;
            let json = serde_json::to_string(&contacts)
                .map_err(|e| Error::Internal(format!("contact JSON: {e}")))?;
            let (aid, j) = (account.id.clone(), json.clone());
            auth::update_account(app, &account.id, move |c| {
                store::accounts::update_contact(c, &aid, &j, t)
            })
            .await?;
            account.contact = json;
        }
    }
    Ok(
        Reply::json(StatusCode::OK, &views::account(&app.urls, &account))
            .location(&app.urls.account(&account.id)),
    )
}

/// Orders per page of the orders list.
pub const ORDERS_PAGE: i64 = 100;

/// `POST /acme/orders/{account}[?cursor=N]`: the account's order URLs,
/// newest first, [`ORDERS_PAGE`] per page, with `Link: rel="next"` to the
/// following page (RFC 8555 §7.1.2.1).
pub async fn orders(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    auth.require_post_as_get()?;
    let account = auth.account()?;
    require_owner(&account.id, id, "the orders list")?;
    let cursor = match req.query.as_deref() {
        None => 0,
        Some(q) => q
            .strip_prefix("cursor=")
            .and_then(|n| n.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::Malformed("the only query parameter is cursor=N".into()))?,
    };
    let aid = account.id.clone();
    let mut ids = app
        .store
        .read(move |c| {
            store::orders::ids_for_account(c, &aid, cursor * ORDERS_PAGE, ORDERS_PAGE + 1)
        })
        .await?;
    let more = ids.len() as i64 > ORDERS_PAGE;
    ids.truncate(ORDERS_PAGE as usize);
    let urls: Vec<String> = ids.iter().map(|o| app.urls.order(o)).collect();
    let reply = Reply::json(StatusCode::OK, &json!({ "orders": urls }));
    Ok(if more {
        reply.link(
            &format!("{}?cursor={}", app.urls.orders(id), cursor + 1),
            "next",
        )
    } else {
        reply
    })
}
