//! The CRL distribution point (RFC 5280 §4.2.1.13): the current CRL as DER.

use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};

use crate::App;
use crate::error::Error;
use crate::http::Reply;

/// `GET <path of crl_url>`.
pub fn get(app: &App) -> Result<Reply, Error> {
    let der = app.crl.der().ok_or(Error::NotYetAvailable(
        "the CRL is not available yet; retry shortly",
    ))?;
    Ok(Reply::empty(StatusCode::OK)
        .body(der.into())
        .header(CONTENT_TYPE, "application/pkix-crl")
        .header(CACHE_CONTROL, "max-age=60"))
}
