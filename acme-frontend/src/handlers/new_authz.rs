//! RFC 8555 §7.4.1: pre-authorization.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;

use super::{new_order::new_authz, views};
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::identifier::{WireIdentifier, parse, subdomain_root};
use crate::{App, now, rate_limits, store};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    identifier: WireIdentifier,
    /// RFC 9444 §4.2: the authorization should cover the names below the
    /// identifier.
    #[serde(default)]
    subdomain_auth_allowed: bool,
}

/// `POST /acme/new-authz`.
pub async fn post(app: &Arc<App>, req: &Request) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    let account = auth.account()?.clone();
    let payload: Payload = auth.json()?;
    if payload.identifier.ancestor_domain.is_some() {
        return Err(Error::Malformed(
            "ancestorDomain belongs in new-order identifiers; new-authz takes subdomainAuthAllowed (RFC 9444)"
                .into(),
        ));
    }
    let id = parse(&payload.identifier)?;
    if id.is_wildcard() {
        return Err(Error::Malformed(
            "pre-authorization cannot be used for wildcard names (RFC 8555 §7.4.1)".into(),
        ));
    }
    let subdomains = payload.subdomain_auth_allowed;
    if subdomains {
        subdomain_root(
            &id,
            app.config.server.allow_subdomain_auth,
            "subdomainAuthAllowed",
        )?;
    }
    let t = now();
    let (authz, challenges) = new_authz(
        &id,
        &account.id,
        t,
        app.config.server.authz_expiry_secs,
        subdomains,
        app.offers(),
    );
    let body = views::authz(
        &app.urls,
        &authz,
        &challenges,
        t,
        app.persist_issuer().as_ref(),
    )?;
    let authz_id = authz.id.clone();
    let limits = app.rate_limits.clone();
    let account_id = account.id.clone();
    app.store
        .run(move |c| {
            if !limits.is_empty() {
                rate_limits::admit_new_authz(c, &limits, &account_id, &id, crate::now_ms())?;
            }
            store::authzs::insert(c, authz, challenges)
        })
        .await?;
    tracing::info!(target: "frontend", authz = %authz_id, account = %account.id, "pre-authorization created");
    Ok(Reply::json(StatusCode::CREATED, &body).location(&app.urls.authz(&authz_id)))
}
