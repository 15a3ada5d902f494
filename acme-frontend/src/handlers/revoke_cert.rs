//! RFC 8555 §7.6: certificate revocation, by the owning account, by an
//! account authorized for every name in the certificate, or by the
//! certificate's own key.

use std::net::IpAddr;
use std::sync::Arc;

use http::StatusCode;
use openssl::x509::X509;
use serde::Deserialize;
use shared_proto::Identifier;

use crate::auth::{KeyRef, Requester};
use crate::error::Error;
use crate::http::{Reply, Request};
use crate::protocol::revocation::check_reason;
use crate::store;
use crate::{App, now};
use akamu_pki::serial;

#[derive(Deserialize)]
struct Payload {
    certificate: String,
    reason: Option<i64>,
}

/// The DNS and IP names of a certificate.
fn names(cert: &X509) -> Vec<Identifier> {
    let mut out = Vec::new();
    if let Some(sans) = cert.subject_alt_names() {
        for gn in sans.iter() {
            if let Some(d) = gn.dnsname() {
                out.push(Identifier::dns(d));
            } else if let Some(ip) = gn.ipaddress() {
                let addr = match ip.len() {
                    4 => <[u8; 4]>::try_from(ip).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(ip).ok().map(IpAddr::from),
                    _ => None,
                };
                out.extend(addr.map(Identifier::ip));
            }
        }
    }
    out
}

/// `POST /acme/revoke-cert`.
pub async fn post(app: &Arc<App>, req: &Request) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Either).await?;
    let payload: Payload = auth.json()?;
    let reason = check_reason(payload.reason)?;
    let der = akamu_jose::b64_decode(&payload.certificate)
        .map_err(|_| Error::Malformed("certificate is not base64url".into()))?;
    if der.len() > crate::protocol::MAX_CERTIFICATE_BYTES {
        return Err(Error::Malformed(format!(
            "certificate is larger than {} bytes",
            crate::protocol::MAX_CERTIFICATE_BYTES
        )));
    }
    let x509 = X509::from_der(&der)
        .map_err(|_| Error::Malformed("certificate is not a DER X.509 certificate".into()))?;
    let serial = serial::to_hex(
        &x509
            .serial_number()
            .to_bn()
            .map_err(|e| Error::Malformed(format!("certificate serial: {e}")))?
            .to_vec(),
    );
    let s = serial.clone();
    let row = app
        .store
        .read(move |c| store::certificates::by_serial(c, &s))
        .await?
        .filter(|r| r.der == der)
        .ok_or_else(|| Error::Malformed("this certificate was not issued by this CA".into()))?;

    match &auth.requester {
        Requester::Key { jwk } => {
            let key = jwk.to_public_key()?;
            let cert_key = x509
                .public_key()
                .map_err(|e| Error::Internal(format!("certificate key: {e}")))?;
            if !key.public_eq(&cert_key) {
                return Err(Error::Unauthorized(
                    "the JWS key is not the certificate's key".into(),
                ));
            }
        }
        Requester::Account(account) if account.id == row.account_id => {}
        Requester::Account(account) => {
            let (aid, ids, t) = (account.id.clone(), names(&x509), now());
            let covered = app
                .store
                .read(move |c| {
                    for id in &ids {
                        if store::authzs::reusable(c, &aid, id, t)?.is_none() {
                            return Ok(false);
                        }
                    }
                    Ok(!ids.is_empty())
                })
                .await?;
            if !covered {
                return Err(Error::Unauthorized(
                    "the account neither owns this certificate nor holds valid authorizations for all its names".into(),
                ));
            }
        }
    }
    // draft-ietf-acme-dns-persist-02 §4.2: a revocation signed with the
    // certificate's key is the emergency stop for a compromised account,
    // so the hashed URIs its owner passed stop being accepted (first, so
    // that even a certificate revoked before still stops them).
    let prune = matches!(auth.requester, Requester::Key { .. }).then(|| row.account_id.clone());
    let (id, t) = (row.id.clone(), now());
    let revoked = app
        .store
        .run_durable(move |c| {
            if let Some(owner) = &prune {
                let n = store::accounts::prune_persist_hashes(c, owner)?;
                if n > 0 {
                    tracing::info!(target: "frontend", account = %owner, hashes = n,
                        "dns-persist-01 hashes forgotten after a revocation with the certificate key");
                }
            }
            store::certificates::revoke(c, &id, reason, t)
        })
        .await?;
    if !revoked {
        return Err(Error::AlreadyRevoked(
            "the certificate is already revoked".into(),
        ));
    }
    tracing::info!(target: "frontend", %serial, reason, "certificate revoked");
    crate::metrics::revoked();
    app.revocations.notify_one();
    Ok(Reply::empty(StatusCode::OK))
}
