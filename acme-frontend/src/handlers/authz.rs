//! RFC 8555 §7.5: reading an authorization (POST-as-GET) and deactivating
//! it (§7.5.2).

use std::sync::Arc;

use http::StatusCode;

use super::views;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::ChallengeStatus;
use crate::protocol::require_owner;
use crate::store;
use crate::{App, now};

#[derive(serde::Deserialize)]
struct Update {
    status: Option<String>,
}

/// `POST /acme/authz/{id}`.
pub async fn post(app: &Arc<App>, req: &Request, id: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    let account_id = auth.account()?.id.clone();
    let deactivate = if auth.payload.is_empty() {
        false
    } else {
        let update: Update = auth.json()?;
        match update.status.as_deref() {
            Some("deactivated") => true,
            Some(other) => {
                return Err(Error::Malformed(format!(
                    "an authorization's status can only be set to deactivated, not {other:?}"
                )));
            }
            None => false,
        }
    };
    if deactivate {
        let aid = id.to_owned();
        let owner = app
            .store
            .read(move |c| store::authzs::by_id(c, &aid))
            .await?;
        let owner = owner.ok_or(Error::NotFound)?;
        require_owner(&owner.account_id, &account_id, "this authorization")?;
        let (aid, t) = (id.to_owned(), now());
        if !app
            .store
            .run(move |c| store::authzs::deactivate(c, &aid, t))
            .await?
        {
            return Err(Error::Malformed(
                "only pending or valid authorizations can be deactivated".into(),
            ));
        }
        tracing::info!(target: "frontend", authz = %id, "authorization deactivated");
    }
    let aid = id.to_owned();
    let (authz, challenges) = app
        .store
        .read(move |c| store::authzs::with_challenges(c, &aid))
        .await?
        .ok_or(Error::NotFound)?;
    require_owner(&authz.account_id, &account_id, "this authorization")?;
    let body = views::authz(
        &app.urls,
        &authz,
        &challenges,
        now(),
        app.persist_issuer().as_ref(),
    )?;
    let mut reply = Reply::json(StatusCode::OK, &body);
    if challenges
        .iter()
        .any(|c| c.status == ChallengeStatus::Processing)
    {
        reply = reply.retry_after(1);
    }
    Ok(reply)
}
