//! RFC 8555 §7.3.5: account key rollover.

use std::sync::Arc;

use akamu_jose::{Alg, FlattenedJws, Jwk};
use http::StatusCode;
use serde::Deserialize;

use super::views;
use crate::auth::{self, KeyRef};
use crate::error::{Error, JwsError};
use crate::http::{Reply, Request};
use crate::{App, now, store};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Inner {
    account: String,
    old_key: serde_json::Value,
}

/// `POST /acme/key-change`: outer JWS by the old key (`kid`), inner JWS by
/// the new key (`jwk`) over `{account, oldKey}`.
pub async fn post(app: &Arc<App>, req: &Request) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    let account = auth.account()?.clone();
    let inner = FlattenedJws::parse(&auth.payload)
        .map_err(|e| Error::Malformed(format!("key-change payload is not a JWS: {e}")))?;
    let header = inner.header()?;
    let alg =
        Alg::parse(&header.alg).ok_or_else(|| JwsError::UnsupportedAlg(header.alg.clone()))?;
    if header.kid.is_some() {
        return Err(Error::Malformed("the inner JWS must not have a kid".into()));
    }
    let new_jwk =
        Jwk::from_json(header.jwk.as_ref().ok_or_else(|| {
            Error::Malformed("the inner JWS must carry the new key as jwk".into())
        })?)?;
    if header.url.as_deref() != Some(req.url.as_str()) {
        return Err(Error::Malformed(
            "the inner JWS url must equal the outer url".into(),
        ));
    }
    new_jwk.check_alg(alg)?;
    let new_key = new_jwk.to_public_key()?;
    inner.verify(alg, &new_key)?;
    let payload: Inner = akamu_jose::from_json_object(&inner.payload_bytes()?)
        .map_err(|e| Error::Malformed(format!("inner payload: {e}")))?;
    let account_url = app.urls.account(&account.id);
    if payload.account != account_url {
        return Err(Error::Unauthorized(
            "inner payload names another account".into(),
        ));
    }
    let old_key = Jwk::from_json(&payload.old_key)?;
    if old_key.thumbprint() != account.jwk_thumbprint {
        return Err(Error::Unauthorized(
            "oldKey is not the account's current key".into(),
        ));
    }
    let new_tp = new_jwk.thumbprint();
    if new_tp == account.jwk_thumbprint {
        return Err(Error::Malformed("the new key is the current key".into()));
    }
    let (aid, old_tp, jwk_json, tp, t) = (
        account.id.clone(),
        account.jwk_thumbprint.clone(),
        new_jwk.canonical_json(),
        new_tp.clone(),
        now(),
    );
    let swapped = auth::update_account(app, &account.id, move |c| {
        store::accounts::swap_key(c, &aid, &old_tp, &jwk_json, &tp, t)
    })
    .await?;
    match swapped {
        store::accounts::KeySwap::Done(updated) => {
            tracing::info!(target: "frontend", account = %account.id, "account key changed");
            Ok(
                Reply::json(StatusCode::OK, &views::account(&app.urls, &updated))
                    .location(&account_url),
            )
        }
        store::accounts::KeySwap::KeyInUse(other) => Err(Error::Conflict {
            detail: "the new key is already registered to an account".into(),
            location: app.urls.account(&other),
        }),
        store::accounts::KeySwap::Stale => Err(Error::Unauthorized(
            "the account key changed concurrently; retry".into(),
        )),
    }
}
