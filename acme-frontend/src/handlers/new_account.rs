//! RFC 8555 §7.3: account creation and lookup by key.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use super::views;
use crate::auth::{KeyRef, Requester, authenticate};
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::{AccountStatus, contact};
use crate::store::{self, models::AccountRow};
use crate::{App, now, random_id};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    terms_of_service_agreed: bool,
    #[serde(default)]
    only_return_existing: bool,
}

/// `POST /acme/new-account`.
pub async fn post(app: &Arc<App>, req: &Request) -> Result<Reply, Error> {
    let auth = authenticate(
        app,
        &req.url,
        req.content_type.as_deref(),
        &req.body,
        KeyRef::Jwk,
    )
    .await?;
    let payload: Payload = auth.json()?;
    let Requester::Key { jwk } = &auth.requester else {
        return Err(Error::Malformed(
            "new-account must be signed with jwk".into(),
        ));
    };
    let thumbprint = jwk.thumbprint();
    let tp = thumbprint.clone();
    let existing = app
        .store
        .run(move |c| store::accounts::by_thumbprint(c, &tp))
        .await?;
    if let Some(account) = existing {
        return existing_reply(app, &account);
    }
    if payload.only_return_existing {
        return Err(Error::AccountDoesNotExist(
            "no account exists for this key".into(),
        ));
    }
    if let Some(tos) = &app.config.server.terms_of_service_url
        && !payload.terms_of_service_agreed
    {
        return Err(Error::UserActionRequired {
            detail: "you must agree to the terms of service (termsOfServiceAgreed)".into(),
            instance: tos.clone(),
        });
    }
    contact::validate(&payload.contact)?;
    let t = now();
    let row = AccountRow {
        id: random_id(12),
        status: AccountStatus::Valid.as_str().into(),
        contact: serde_json::to_string(&payload.contact)
            .map_err(|e| Error::Internal(format!("contact JSON: {e}")))?,
        jwk: jwk.canonical_json(),
        jwk_thumbprint: thumbprint,
        tos_agreed: payload.terms_of_service_agreed,
        created: t,
        updated: t,
    };
    let (account, created) = app
        .store
        .run(move |c| store::accounts::insert_or_existing(c, row))
        .await?;
    if !created {
        return existing_reply(app, &account);
    }
    tracing::info!(target: "frontend", account = %account.id, "account created");
    Ok(
        Reply::json(StatusCode::CREATED, &views::account(&app.urls, &account))
            .location(&app.urls.account(&account.id)),
    )
}

fn existing_reply(app: &App, account: &AccountRow) -> Result<Reply, Error> {
    if account.status != AccountStatus::Valid.as_str() {
        return Err(Error::Unauthorized(format!(
            "account is {}",
            account.status
        )));
    }
    Ok(
        Reply::json(StatusCode::OK, &views::account(&app.urls, account))
            .location(&app.urls.account(&account.id)),
    )
}
