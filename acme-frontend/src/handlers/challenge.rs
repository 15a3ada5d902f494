//! RFC 8555 §7.5.1: responding to a challenge. `{}` starts validation in
//! the background and waits up to `[server] challenge_wait_ms` for it: a
//! validation that finishes in time is answered with its result (`valid` or
//! `invalid`), a slower one with `processing` (the client polls). An empty
//! payload reads the challenge.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use shared_proto::validator::{ChallengeType, MAX_ONION_CSR};

use super::views;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::ChallengeStatus;
use crate::protocol::require_owner;
use crate::store;
use crate::store::models::{AuthzRow, ChallengeRow};
use crate::{App, jobs, now};

/// `POST /acme/chall/{authz}/{type}`.
pub async fn post(
    app: &Arc<App>,
    req: &Request,
    authz_id: &str,
    kind: &str,
) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    let account_id = auth.account()?.id.clone();
    let respond = !auth.payload.is_empty();
    let mut response = None;
    if respond {
        // Any JSON object is a response (RFC 8555 §7.5.1: `{}` for the
        // challenge types we offer); `json` refuses everything else,
        // including text that is not UTF-8, before its members are skipped.
        // onion-csr-01 needs its `csr` member (RFC 9799 §3.2).
        let payload = auth.json::<Response>()?;
        if kind == ChallengeType::OnionCsr01.as_str() {
            response = Some(onion_csr(payload.csr)?);
        }
    }
    let aid = authz_id.to_owned();
    let authz = app
        .store
        .read(move |c| store::authzs::by_id(c, &aid))
        .await?
        .ok_or(Error::NotFound)?;
    require_owner(&authz.account_id, &account_id, "this challenge")?;
    let challenge_id = format!("{authz_id}/{kind}");
    let (authz, challenge) = if respond {
        let (aid, cid, t) = (authz_id.to_owned(), challenge_id.clone(), now());
        let started = app
            .store
            .run(move |c| store::authzs::start_challenge(c, &aid, &cid, response, t))
            .await?
            .ok_or(Error::NotFound)?;
        let probe = started.dispatch.then(|| {
            jobs::dispatch_probe(
                app.clone(),
                started.challenge.clone(),
                started.authz.clone(),
            )
        });
        let wait = Duration::from_millis(app.config.server.challenge_wait_ms);
        match probe.flatten() {
            // The probe records its result before it ends; on timeout it
            // goes on in the background.
            Some(task) if !wait.is_zero() => match tokio::time::timeout(wait, task).await {
                Ok(_) => read_challenge(app, authz_id, &challenge_id).await?,
                Err(_) => (started.authz, started.challenge),
            },
            _ => (started.authz, started.challenge),
        }
    } else {
        read_challenge(app, authz_id, &challenge_id).await?
    };
    let mut reply = Reply::json(
        StatusCode::OK,
        &views::challenge(&app.urls, &authz, &challenge, app.persist_issuer().as_ref()),
    )
    .link(&app.urls.authz(&authz.id), "up");
    if challenge.status == ChallengeStatus::Processing {
        reply = reply.retry_after(1);
    }
    Ok(reply)
}

/// A challenge response's members we read.
#[derive(serde::Deserialize)]
struct Response {
    /// onion-csr-01: base64url of the DER CSR.
    csr: Option<String>,
}

/// onion-csr-01's `csr` member: present, base64url, a DER size the
/// validator accepts (it judges the content).
fn onion_csr(csr: Option<String>) -> Result<String, Error> {
    let Some(text) = csr else {
        return Err(Error::Malformed(
            "an onion-csr-01 response needs a csr member (RFC 9799 §3.2)".into(),
        ));
    };
    let der = akamu_jose::b64_decode(&text)
        .map_err(|_| Error::Malformed("the csr member is not base64url".into()))?;
    if der.is_empty() || der.len() > MAX_ONION_CSR {
        return Err(Error::Malformed(format!(
            "the csr member must hold 1 to {MAX_ONION_CSR} bytes of DER"
        )));
    }
    Ok(text)
}

/// The authorization `authz_id` and its challenge `challenge_id` as stored.
async fn read_challenge(
    app: &App,
    authz_id: &str,
    challenge_id: &str,
) -> Result<(AuthzRow, ChallengeRow), Error> {
    let (aid, cid) = (authz_id.to_owned(), challenge_id.to_owned());
    let (authz, challenges) = app
        .store
        .read(move |c| store::authzs::with_challenges(c, &aid))
        .await?
        .ok_or(Error::NotFound)?;
    let challenge = challenges
        .into_iter()
        .find(|c| c.id == cid)
        .ok_or(Error::NotFound)?;
    Ok((authz, challenge))
}
