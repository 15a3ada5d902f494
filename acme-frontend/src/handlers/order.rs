//! RFC 8555 §7.4: reading an order (POST-as-GET); RFC 8739 §3.1.2:
//! canceling a STAR order (`{"status": "canceled"}`).

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use super::views;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::require_owner;
use crate::store;
use crate::{App, now};

/// Seconds a client should wait before polling a processing order again.
pub const PROCESSING_RETRY_AFTER: u32 = 1;

/// An update of an order: only a STAR order's cancellation.
#[derive(Deserialize)]
struct Update {
    status: Option<serde_json::Value>,
}

/// `POST /acme/order/{id}`: POST-as-GET, or a STAR order's cancellation.
pub async fn post(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    let account_id = auth.account()?.id.clone();
    if auth.require_post_as_get().is_err() {
        let update: Update = auth.json()?;
        match update.status {
            Some(serde_json::Value::String(s)) if s == "canceled" => {
                cancel(app, id, &account_id).await?;
            }
            Some(_) => {
                return Err(Error::Malformed(
                    "an order's status can only be set to \"canceled\" (a STAR order)".into(),
                ));
            }
            None => {
                return Err(Error::Malformed(
                    "an order update must set status (or be a POST-as-GET)".into(),
                ));
            }
        }
    }
    reply(app, id, &account_id, StatusCode::OK).await
}

/// Cancels the auto-renewal of STAR order `id` for its owner `account_id`.
async fn cancel(app: &App, id: &str, account_id: &str) -> Result<(), Error> {
    let oid = id.to_owned();
    let (order, star) = app
        .store
        .read(move |c| {
            let order = store::orders::by_id(c, &oid)?;
            let star = store::star::by_order(c, &oid)?;
            Ok(order.map(|o| (o, star)))
        })
        .await?
        .ok_or(Error::NotFound)?;
    require_owner(&order.account_id, account_id, "this order")?;
    let Some(star) = star else {
        return Err(Error::Malformed(
            "only a STAR (auto-renewal) order can be canceled".into(),
        ));
    };
    let t = now();
    if star.canceled_at.is_some() {
        return Err(Error::AutoRenewalCancellationInvalid(
            "the order is already canceled".into(),
        ));
    }
    if t >= star.end_date {
        return Err(Error::AutoRenewalCancellationInvalid(
            "the order is past its end-date".into(),
        ));
    }
    let oid = id.to_owned();
    let canceled = app
        .store
        .run(move |c| store::star::cancel(c, &oid, t))
        .await?;
    if !canceled {
        return Err(Error::AutoRenewalCancellationInvalid(
            "the order is already canceled".into(),
        ));
    }
    tracing::info!(target: "frontend", order = %id, "STAR order canceled");
    Ok(())
}

/// The order `id` as `account_id` sees it, with `Location` and, while
/// processing, `Retry-After`.
pub async fn reply(
    app: &App,
    id: &str,
    account_id: &str,
    status: StatusCode,
) -> Result<Reply, Error> {
    let oid = id.to_owned();
    let (order, authzs, star) = app
        .store
        .read(move |c| {
            let Some((order, authzs)) = store::orders::with_authzs(c, &oid)? else {
                return Ok(None);
            };
            let star = store::star::by_order(c, &oid)?;
            Ok(Some((order, authzs, star)))
        })
        .await?
        .ok_or(Error::NotFound)?;
    require_owner(&order.account_id, account_id, "this order")?;
    let body = views::order(&app.urls, &order, &authzs, star.as_ref(), now())?;
    let mut reply = Reply::json(status, &body).location(&app.urls.order(id));
    if body["status"] == "processing" {
        reply = reply.retry_after(PROCESSING_RETRY_AFTER);
    }
    Ok(reply)
}
