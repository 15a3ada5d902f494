//! The CA certificates above our leaves, one resource each: `/acme/issuer/0`
//! is the CA that signs the leaves, `/acme/issuer/1` the one above it, and
//! so on up the signer's chain. Each is served as DER
//! (`application/pkix-cert`, RFC 2585 §4.1), as Boulder served its
//! `issuer-cert`, with `Link: rel="up"` to the next one while there is one.
//!
//! RFC 8555 §7.1 allows `up` "from certificate resources to indicate a
//! resource from which the client may fetch a chain of CA certificates".
//! Today's clients take the chain from the PEM download itself (§7.4.2);
//! older ones followed `up` to the issuer and parsed DER (lego until 2025,
//! by POST-as-GET, when a download held no chain; ACMEv1 clients against
//! Boulder's `issuer-cert`). So a certificate download links `up` here (see
//! [`super::certificate`]).

use std::sync::Arc;

use http::StatusCode;
use http::header::CONTENT_TYPE;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::App;
use crate::auth::KeyRef;
use crate::error::Error;
use crate::http::resource::Resource;
use crate::http::{Reply, Request};

/// The media type of one DER certificate (RFC 2585 §4.1).
pub const PKIX_CERT: &str = "application/pkix-cert";

/// `GET /acme/issuer/{n}`: CA certificates are public.
pub async fn get(app: &Arc<App>, n: &str) -> Result<Reply, Error> {
    let index = parse_index(n)?;
    let info = crate::ca::facts(app).await?;
    let chain = ders(&info.chain_pem);
    let der = chain.get(index).ok_or(Error::NotFound)?;
    let reply = Reply::empty(StatusCode::OK)
        .body(der.clone().into())
        .header(CONTENT_TYPE, PKIX_CERT);
    Ok(if index + 1 < chain.len() {
        reply.link(&url(app, index + 1), "up")
    } else {
        reply
    })
}

/// `POST /acme/issuer/{n}`: the same by POST-as-GET of any account.
pub async fn post(app: &Arc<App>, req: &Request, n: &str) -> Result<Reply, Error> {
    let auth = req.authenticate(app, KeyRef::Kid).await?;
    auth.require_post_as_get()?;
    get(app, n).await
}

/// The `up` link of a certificate chain stored as `chain_pem` (leaf first):
/// the resource of the leaf's issuer, when that issuer is in the signer's
/// current chain (as the signer last told it; a certificate download never
/// waits for the signer).
pub fn up_of(app: &App, chain_pem: &str) -> Option<String> {
    let info = app.ca.cached()?;
    let issuer = ders(chain_pem).into_iter().nth(1)?;
    let index = ders(&info.chain_pem)
        .iter()
        .position(|der| *der == issuer)?;
    Some(url(app, index))
}

/// The URL of the CA certificate at `index` of the chain.
fn url(app: &App, index: usize) -> String {
    app.urls.of(Resource::Issuer(&index.to_string()))
}

/// The position a path names: a decimal number without leading zeros, so
/// that each certificate has one URL.
fn parse_index(n: &str) -> Result<usize, Error> {
    match n.parse::<usize>() {
        Ok(index) if index.to_string() == n => Ok(index),
        _ => Err(Error::NotFound),
    }
}

/// The DER of each certificate in a PEM text, in order (text that is not a
/// certificate is skipped).
fn ders(pem: &str) -> Vec<Vec<u8>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .filter_map(Result::ok)
        .map(|der| der.to_vec())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_per_position() {
        assert_eq!(parse_index("0").ok(), Some(0));
        assert_eq!(parse_index("12").ok(), Some(12));
        for bad in ["", "01", "-1", "+1", "x", "1.0", "99999999999999999999999"] {
            assert!(parse_index(bad).is_err(), "{bad:?}");
        }
    }
}
