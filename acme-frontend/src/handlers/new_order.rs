//! RFC 8555 §7.4: new orders. Valid authorizations of the same account for
//! the same identifier are reused; the rest are created with their
//! challenges.

use std::sync::Arc;

use http::StatusCode;
use serde::Deserialize;
use shared_proto::Identifier;

use super::views;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::identifier::{
    Offers, WireIdentifier, ancestors, offered_challenges, parse_all,
};
use crate::protocol::order::stored_order_status;
use crate::protocol::star;
use crate::protocol::validity::check_window;
use crate::protocol::{AuthzStatus, ChallengeStatus};
use crate::store::models::{AuthzRow, ChallengeRow, OrderRow, StarRow};
use crate::store::{self, orders::NewOrder};
use crate::{App, now, random_id, rate_limits};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    identifiers: Vec<WireIdentifier>,
    not_before: Option<String>,
    not_after: Option<String>,
    profile: Option<String>,
    /// RFC 9773 §5: the ARI identifier of the certificate this order
    /// replaces.
    replaces: Option<String>,
    /// RFC 8739 §3.1.1: a STAR order's terms (checked by
    /// `protocol::star::parse`, so a wrong type gets a detail).
    #[serde(rename = "auto-renewal")]
    auto_renewal: Option<serde_json::Value>,
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

/// A fresh pending authorization for `id` with the challenges it offers
/// (`offers`: the optional types turned on); with `subdomains`, one whose
/// validation covers the names below `id` (RFC 9444).
pub fn new_authz(
    id: &Identifier,
    account_id: &str,
    now: i64,
    lifetime: i64,
    subdomains: bool,
    offers: Offers,
) -> (AuthzRow, Vec<ChallengeRow>) {
    let authz_id = random_id(12);
    let challenges = offered_challenges(id, subdomains, offers)
        .iter()
        .map(|kind| ChallengeRow {
            id: format!("{authz_id}/{}", kind.as_str()),
            authz_id: authz_id.clone(),
            kind: kind.as_str().into(),
            status: ChallengeStatus::Pending,
            validated: None,
            error: None,
            validation_record: None,
            created: now,
            updated: now,
            response: None,
        })
        .collect();
    let authz = AuthzRow {
        id: authz_id,
        account_id: account_id.to_owned(),
        status: AuthzStatus::Pending,
        identifier_type: id.kind.as_str().into(),
        identifier_value: id.base_name().into(),
        wildcard: id.is_wildcard(),
        token: random_id(32),
        expires: now + lifetime,
        error: None,
        created: now,
        updated: now,
        statement: None,
        subdomain_auth_allowed: subdomains,
    };
    (authz, challenges)
}

/// Checks a new order's `auto-renewal` member (RFC 8739 §3.1.1) against
/// `[server] star_*`, the profile's validity and the CA's notAfter.
fn auto_renewal(
    app: &App,
    v: &serde_json::Value,
    has_window: bool,
    validity_secs: i64,
    ca_not_after: i64,
    now: i64,
) -> Result<star::AutoRenewal, Error> {
    let s = &app.config.server;
    let Some(min_lifetime) = s.star_min_lifetime_secs else {
        return Err(Error::Malformed(
            "this server does not offer STAR (auto-renewal) orders".into(),
        ));
    };
    if has_window {
        return Err(Error::Malformed(
            "a STAR order (auto-renewal) cannot carry notBefore or notAfter".into(),
        ));
    }
    let limits = star::Limits {
        min_lifetime,
        max_duration: s.star_max_duration_secs,
        allow_certificate_get: s.star_allow_certificate_get,
        max_validity: validity_secs,
    };
    let terms = star::parse(v, &limits, now)?;
    if terms.end_date > ca_not_after {
        return Err(Error::Malformed(
            "auto-renewal end-date is after the CA certificate's notAfter".into(),
        ));
    }
    Ok(terms)
}

/// `POST /acme/new-order`.
pub async fn post(app: &Arc<App>, req: &Request) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    let account = auth.account()?.clone();
    let payload: Payload = auth.json()?;
    let identifiers = parse_all(
        &payload.identifiers,
        app.config.server.max_identifiers_per_order,
    )?;
    let ancestors = ancestors(&payload.identifiers, app.config.server.allow_subdomain_auth)?;
    let not_before = parse_time("notBefore", &payload.not_before)?;
    let not_after = parse_time("notAfter", &payload.not_after)?;
    let t = now();
    let ca = crate::ca::facts(app).await?;
    // Profiles are the signer's (draft-ietf-acme-profiles): an unknown one
    // is invalidProfile; none means the signer's default.
    let profile = payload.profile;
    let chosen = crate::ca::profile(&ca, profile.as_deref())?;
    let validity_secs = chosen.validity_secs;
    let validated_since = chosen.authz_reuse_secs.map_or(i64::MIN, |r| t - r);
    let replaces = match &payload.replaces {
        Some(text) => {
            Some(super::renewal_info::predecessor(app, text, &account.id, &identifiers).await?)
        }
        None => None,
    };
    let renewal_exempt = replaces.as_ref().is_some_and(|p| p.due);
    check_window(not_before, not_after, t, validity_secs)?;
    let star = match &payload.auto_renewal {
        None => None,
        Some(v) => Some(auto_renewal(
            app,
            v,
            not_before.is_some() || not_after.is_some(),
            validity_secs,
            ca.ca_not_after,
            t,
        )?),
    };

    let lifetime = app.config.server.authz_expiry_secs;
    let offers = app.offers();
    let order_expires = t + app.config.server.order_expiry_secs;
    let order_id = random_id(12);
    let aid = account.id.clone();
    let ids = identifiers.clone();
    let oid = order_id.clone();
    let order_identifiers = views::identifiers_json(&identifiers).to_string();
    // Limits are decided in the job that inserts the order: a refusal, or
    // a failure after the spend, rolls the whole order back, spend included.
    let limits = app.rate_limits.clone();
    let (order, authzs, star) = app
        .store
        .run(move |c| {
            let mut authzs: Vec<AuthzRow> = Vec::with_capacity(ids.len());
            let mut new_authzs = Vec::new();
            let mut challenges = Vec::new();
            // What each identifier needs: its own authorization, or
            // (RFC 9444 `ancestorDomain`) one for its ancestor covering
            // subdomains, shared by every identifier below that ancestor.
            let mut needed: Vec<(&Identifier, bool)> = Vec::with_capacity(ids.len());
            for id in &ids {
                let need = match ancestors.get(id) {
                    Some(ancestor) => (ancestor, true),
                    None => (id, false),
                };
                if !needed.contains(&need) {
                    needed.push(need);
                }
            }
            for (id, subdomains) in needed {
                match store::authzs::reusable_since(c, &aid, id, t, validated_since, subdomains)? {
                    Some(existing) => authzs.push(existing),
                    None => {
                        let (authz, chall) = new_authz(id, &aid, t, lifetime, subdomains, offers);
                        authzs.push(authz.clone());
                        new_authzs.push(authz);
                        challenges.extend(chall);
                    }
                }
            }
            if !limits.is_empty() {
                let order = rate_limits::NewOrder {
                    account_id: &aid,
                    identifiers: &ids,
                    new_authzs: new_authzs.len(),
                    // An ARI renewal (RFC 9773 `replaces`) inside its
                    // predecessor's window.
                    renewal_exempt,
                };
                rate_limits::admit_new_order(c, &limits, &order, crate::now_ms())?;
            }
            let statuses: Vec<AuthzStatus> = authzs.iter().map(|a| a.status).collect();
            let order = OrderRow {
                id: oid,
                account_id: aid,
                status: stored_order_status(&statuses),
                expires: order_expires,
                identifiers: order_identifiers,
                not_before,
                not_after,
                error: None,
                csr: None,
                certificate_id: None,
                created: t,
                updated: t,
                profile,
                replaces: replaces.as_ref().map(|p| p.cert_id.clone()),
                replaces_certificate: replaces.map(|p| p.certificate_id),
            };
            store::orders::insert(
                c,
                NewOrder {
                    order: order.clone(),
                    authz_ids: authzs.iter().map(|a| a.id.clone()).collect(),
                    new_authzs,
                    challenges,
                },
            )?;
            let star = star.map(|s| StarRow {
                order_id: order.id.clone(),
                start_date: s.start_date,
                end_date: s.end_date,
                lifetime: s.lifetime,
                lifetime_adjust: s.lifetime_adjust,
                allow_certificate_get: s.allow_certificate_get,
                csr: None,
                next_issue: None,
                reissue_start: None,
                canceled_at: None,
            });
            if let Some(row) = &star {
                store::star::insert(c, row)?;
            }
            Ok((order, authzs, star))
        })
        .await?;
    let body = views::order(&app.urls, &order, &authzs, star.as_ref(), t)?;
    tracing::info!(target: "frontend", order = %order_id, account = %account.id, n = identifiers.len(), "order created");
    Ok(Reply::json(StatusCode::CREATED, &body).location(&app.urls.order(&order_id)))
}
