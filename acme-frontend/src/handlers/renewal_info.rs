//! RFC 9773: ACME Renewal Information. `GET /acme/renewal-info/{cert-id}`
//! answers, without authentication, when this CA suggests renewing a
//! certificate; new-order's `replaces` names a predecessor the same way
//! ([`predecessor`]).

use std::sync::Arc;

use http::StatusCode;
use rand::Rng;
use serde_json::json;
use shared_proto::Identifier;

use super::views::rfc3339;
use crate::error::Error;
use crate::http::Reply;
use crate::protocol::CertificateStatus;
use crate::protocol::ari::{CertId, Reason, check_replacement, suggested_window};
use crate::store::models::CertRow;
use crate::{App, now, store};

/// `GET /acme/renewal-info/{cert-id}`.
pub async fn get(app: &Arc<App>, text: &str) -> Result<Reply, Error> {
    let id = CertId::parse(text)?;
    let (cert, mark) = app
        .store
        .read(move |c| {
            let Some(cert) = find(c, &id)? else {
                return Ok(None);
            };
            let mark = store::renewals::mark(c, &cert.id)?;
            Ok(Some((cert, mark)))
        })
        .await?
        .ok_or(Error::NotFound)?;
    let window = suggested_window(
        cert.not_before,
        cert.not_after,
        now(),
        reason_of(&cert, mark.is_some()),
    );
    let mut body = json!({
        "suggestedWindow": {
            "start": rfc3339(window.start),
            "end": rfc3339(window.end),
        }
    });
    if let Some((_, Some(url))) = &mark {
        body["explanationURL"] = url.clone().into();
    }
    // A jitter of up to a tenth, so that a fleet renewed together does not
    // come back together (RFC 9773 §4.3.1 leaves the value to the server).
    let base = app.config.server.ari_retry_after_secs;
    let jitter = rand::rng().random_range(0..=base / 10);
    Ok(Reply::json(StatusCode::OK, &body).retry_after(base + jitter))
}

/// The certificate a new order replaces (RFC 9773 §5).
#[derive(Clone, Debug)]
pub struct Predecessor {
    /// Its ARI identifier, canonical (echoed in the order).
    pub cert_id: String,
    /// Its row id.
    pub certificate_id: String,
    /// Whether its suggested window has opened: such a renewal is exempt
    /// from the per-domain certificate limit (as Let's Encrypt exempts ARI
    /// renewals).
    pub due: bool,
}

/// The certificate a new order of account `account_id` for `identifiers`
/// replaces, named by its ARI identifier `text` (RFC 9773 §5): it must be
/// ours, the account's, share an identifier with the order, and not be
/// replaced already.
pub async fn predecessor(
    app: &Arc<App>,
    text: &str,
    account_id: &str,
    identifiers: &[Identifier],
) -> Result<Predecessor, Error> {
    let id = CertId::parse(text)?;
    let canonical = id.text();
    let (cert, order_ids, replaced, mark) = app
        .store
        .read(move |c| {
            let Some(cert) = find(c, &id)? else {
                return Ok(None);
            };
            let ids = match store::orders::by_id(c, &cert.order_id)? {
                Some(order) => order.identifiers()?,
                None => Vec::new(),
            };
            let replaced = store::renewals::replaced_by(c, &cert.id)?;
            let mark = store::renewals::mark(c, &cert.id)?;
            Ok(Some((cert, ids, replaced, mark)))
        })
        .await?
        .ok_or_else(|| {
            Error::Malformed(format!(
                "replaces names {text:?}, which is no certificate of this CA"
            ))
        })?;
    let shared = order_ids.iter().any(|i| identifiers.contains(i));
    check_replacement(&cert.account_id, account_id, shared)?;
    if let Some(order) = replaced {
        return Err(Error::AlreadyReplaced(format!(
            "certificate {canonical} was already replaced by order {order}"
        )));
    }
    let t = now();
    let window = suggested_window(
        cert.not_before,
        cert.not_after,
        t,
        reason_of(&cert, mark.is_some()),
    );
    Ok(Predecessor {
        cert_id: canonical,
        certificate_id: cert.id,
        due: t >= window.start,
    })
}

/// Why a certificate's window is what it is.
fn reason_of(cert: &CertRow, marked: bool) -> Reason {
    if cert.status == CertificateStatus::Revoked {
        Reason::Revoked
    } else if marked {
        Reason::MarkedEarly
    } else {
        Reason::Schedule
    }
}

/// The certificate `id` names: its serial is in the store and its
/// Authority Key Identifier is the one `id` gives (a certificate of another
/// CA with the same serial is not ours).
fn find(c: &mut store::Conn, id: &CertId) -> Result<Option<CertRow>, Error> {
    let Some(cert) = store::certificates::by_serial(c, &id.serial_hex())? else {
        return Ok(None);
    };
    let aki = openssl::x509::X509::from_der(&cert.der)
        .ok()
        .and_then(|x| x.authority_key_id().map(|k| k.as_slice().to_vec()));
    Ok((aki.as_deref() == Some(id.key_id.as_slice())).then_some(cert))
}
