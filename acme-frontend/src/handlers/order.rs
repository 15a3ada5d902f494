//! RFC 8555 §7.4: reading an order (POST-as-GET).

use std::sync::Arc;

use http::StatusCode;

use super::views;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::require_owner;
use crate::store;
use crate::{App, now};

/// Seconds a client should wait before polling a processing order again.
pub const PROCESSING_RETRY_AFTER: u32 = 1;

/// `POST /acme/order/{id}`.
pub async fn post(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    auth.require_post_as_get()?;
    let account_id = auth.account()?.id.clone();
    reply(app, id, &account_id, StatusCode::OK).await
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
    let (order, authzs) = app
        .store
        .read(move |c| store::orders::with_authzs(c, &oid))
        .await?
        .ok_or(Error::NotFound)?;
    require_owner(&order.account_id, account_id, "this order")?;
    let body = views::order(&app.urls, &order, &authzs, now())?;
    let mut reply = Reply::json(status, &body).location(&app.urls.order(id));
    if body["status"] == "processing" {
        reply = reply.retry_after(PROCESSING_RETRY_AFTER);
    }
    Ok(reply)
}
