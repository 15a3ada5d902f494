//! RFC 8555 §7.5: reading an authorization (POST-as-GET).

use std::sync::Arc;

use http::StatusCode;

use super::views;
use crate::auth::{KeyRef, authenticate};
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::store;
use crate::{App, now};

/// `POST /acme/authz/{id}`.
pub async fn post(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = authenticate(
        app,
        &req.url,
        req.content_type.as_deref(),
        &req.body,
        KeyRef::Kid,
    )
    .await?;
    auth.require_post_as_get()?;
    let account_id = auth.account()?.id.clone();
    let aid = id.to_owned();
    let (authz, challenges) = app
        .store
        .run(move |c| store::authzs::with_challenges(c, &aid))
        .await?
        .ok_or(Error::NotFound)?;
    if authz.account_id != account_id {
        return Err(Error::Unauthorized(
            "this authorization belongs to another account".into(),
        ));
    }
    let body = views::authz(&app.urls, &authz, &challenges, now())?;
    let mut reply = Reply::json(StatusCode::OK, &body);
    if challenges.iter().any(|c| c.status == "processing") {
        reply = reply.retry_after(1);
    }
    Ok(reply)
}
