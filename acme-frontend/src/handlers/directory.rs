//! RFC 8555 §7.1.1: the directory.

use http::StatusCode;
use serde_json::json;

use crate::App;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::resource::Resource;
use crate::http::{Reply, Request};

/// `POST /acme/directory`: a POST-as-GET by an account, answered as a GET
/// (RFC 8555 §6.3: "in addition to POST-as-GET requests for these
/// resources").
pub async fn post(app: &App, req: &Request) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    auth.require_post_as_get()?;
    get(app)
}

/// `GET /acme/directory`.
pub fn get(app: &App) -> Result<Reply, Error> {
    let u = &app.urls;
    let s = &app.config.server;
    let mut meta = serde_json::Map::new();
    if let Some(tos) = &s.terms_of_service_url {
        meta.insert("termsOfService".into(), tos.clone().into());
    }
    if let Some(web) = &s.website_url {
        meta.insert("website".into(), web.clone().into());
    }
    // The validator owns the CAA identities (it checks them).
    if let Some(info) = app.validator_facts.cached()
        && !info.caa_identities.is_empty()
    {
        meta.insert("caaIdentities".into(), info.caa_identities.clone().into());
    }
    // draft-ietf-acme-dns-persist-02 §3.2 and §4.1: what a client needs to
    // publish a record before it has an authorization.
    if let Some((issuer, shared_proto::validator::PersistForm::Draft02)) = app.persist_issuer() {
        meta.insert(
            "issuerDomainNames".into(),
            vec![super::views::persist_issuer_name(&issuer)].into(),
        );
        meta.insert("accountHashPrefix".into(), u.account_hash_prefix().into());
        if let Some(period) = s.dns_persist_key_rotation_secs {
            meta.insert("keyRotationPeriod".into(), period.into());
        }
    }
    // draft-ietf-acme-profiles: every profile the signer offers, with the
    // description or URL [server.profiles] gives it, else one made from
    // the signer's facts.
    let profiles: serde_json::Map<String, serde_json::Value> = app
        .ca
        .cached()
        .map(|info| {
            info.profiles
                .iter()
                .map(|p| {
                    let text = s
                        .profiles
                        .get(&p.name)
                        .cloned()
                        .unwrap_or_else(|| crate::ca::describe(p));
                    (p.name.clone(), text.into())
                })
                .collect()
        })
        .unwrap_or_default();
    if !profiles.is_empty() {
        meta.insert("profiles".into(), profiles.into());
    }
    // RFC 8739 §3.1.3: STAR is offered when a minimum lifetime is set.
    if let Some(min) = s.star_min_lifetime_secs {
        let mut star = serde_json::Map::new();
        star.insert("min-lifetime".into(), min.into());
        if let Some(max) = s.star_max_duration_secs {
            star.insert("max-duration".into(), max.into());
        }
        if s.star_allow_certificate_get {
            star.insert("allow-certificate-get".into(), true.into());
        }
        meta.insert("auto-renewal".into(), star.into());
    }
    // RFC 9444 §4.4.
    if s.allow_subdomain_auth {
        meta.insert("subdomainAuthAllowed".into(), true.into());
    }
    if s.external_account_required {
        meta.insert("externalAccountRequired".into(), true.into());
    }
    Ok(Reply::json(
        StatusCode::OK,
        &json!({
            "newNonce": u.of(Resource::NewNonce),
            "newAccount": u.of(Resource::NewAccount),
            "newOrder": u.of(Resource::NewOrder),
            "newAuthz": u.of(Resource::NewAuthz),
            "revokeCert": u.of(Resource::RevokeCert),
            "keyChange": u.of(Resource::KeyChange),
            "renewalInfo": u.renewal_info_base(),
            "meta": meta,
        }),
    ))
}
