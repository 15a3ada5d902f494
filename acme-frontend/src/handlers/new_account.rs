//! RFC 8555 §7.3: account creation and lookup by key.

use std::sync::Arc;

use akamu_jose::{FlattenedJws, Jwk};
use http::StatusCode;
use serde::Deserialize;

use super::views;
use crate::auth::{KeyRef, Requester};
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::{AccountStatus, contact};
use crate::rate_limits;
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
    external_account_binding: Option<serde_json::Value>,
}

/// `POST /acme/new-account`.
pub async fn post(app: &Arc<App>, req: &Request) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Jwk).await?;
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
        .read(move |c| store::accounts::by_thumbprint(c, &tp))
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
    let eab_kid = match &payload.external_account_binding {
        Some(eab) => Some(verify_eab(app, eab, jwk, &req.url).await?),
        None if app.config.server.external_account_required => {
            return Err(Error::ExternalAccountRequired(
                "this server requires externalAccountBinding on new accounts".into(),
            ));
        }
        None => None,
    };
    let t = now();
    let row = AccountRow {
        id: random_id(12),
        status: AccountStatus::Valid,
        contact: serde_json::to_string(&payload.contact)
            .map_err(|e| Error::Internal(format!("contact JSON: {e}")))?,
        jwk: jwk.canonical_json(),
        jwk_thumbprint: thumbprint,
        tos_agreed: payload.terms_of_service_agreed,
        created: t,
        updated: t,
    };
    // The limits are spent in the job that creates the account, once it is
    // known to be new: a refusal rolls the account (and an EAB key's use)
    // back, and an existing account costs nothing.
    let limits = app.rate_limits.clone();
    let ip = req.client_ip;
    let (account, created) = app
        .store
        .run(move |c| {
            let (account, created) = match eab_kid {
                Some(kid) => store::eab::create_account_with_key(c, row, &kid)?,
                None => store::accounts::insert_or_existing(c, row)?,
            };
            if created && !limits.is_empty() {
                rate_limits::admit_new_account(c, &limits, ip, crate::now_ms())?;
            }
            Ok((account, created))
        })
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

/// Checks an External Account Binding (RFC 8555 §7.3.4) and returns its
/// key id; the key is consumed when the account is created.
async fn verify_eab(
    app: &App,
    eab: &serde_json::Value,
    jwk: &Jwk,
    url: &str,
) -> Result<String, Error> {
    if !eab.is_object() {
        return Err(Error::Malformed(
            "externalAccountBinding is not a flattened JWS: expected a JSON object".into(),
        ));
    }
    let jws: FlattenedJws = serde_json::from_value(eab.clone()).map_err(|e| {
        Error::Malformed(format!(
            "externalAccountBinding is not a flattened JWS: {e}"
        ))
    })?;
    let header = jws.header()?;
    if !matches!(header.alg.as_str(), "HS256" | "HS384" | "HS512") {
        return Err(Error::Malformed(format!(
            "externalAccountBinding must use HS256, HS384 or HS512, not {:?}",
            header.alg
        )));
    }
    if header.nonce.is_some() || header.jwk.is_some() {
        return Err(Error::Malformed(
            "externalAccountBinding must not carry a nonce or a jwk".into(),
        ));
    }
    if header.url.as_deref() != Some(url) {
        return Err(Error::Malformed(
            "externalAccountBinding url must be the new-account URL".into(),
        ));
    }
    let kid = header
        .kid
        .ok_or_else(|| Error::Malformed("externalAccountBinding has no kid".into()))?;
    let bound: serde_json::Value = serde_json::from_slice(&jws.payload_bytes()?)
        .map_err(|e| Error::Malformed(format!("externalAccountBinding payload: {e}")))?;
    let bound = Jwk::from_json(&bound)?;
    if bound.thumbprint() != jwk.thumbprint() {
        return Err(Error::Malformed(
            "externalAccountBinding payload is not the account key".into(),
        ));
    }
    let k = kid.clone();
    let key = app
        .store
        .read(move |c| store::eab::unused_key(c, &k))
        .await?
        .ok_or_else(|| {
            Error::Unauthorized(format!(
                "external account key {kid:?} is unknown or already used"
            ))
        })?;
    let mac = akamu_jose::b64_decode(&jws.signature)?;
    akamu_jose::hmac_verify(&header.alg, &key, &jws.signing_input(), &mac)
        .map_err(|_| Error::Unauthorized("externalAccountBinding MAC does not verify".into()))?;
    Ok(kid)
}

fn existing_reply(app: &App, account: &AccountRow) -> Result<Reply, Error> {
    if account.status != AccountStatus::Valid {
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
