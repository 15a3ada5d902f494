//! The signer's transparency log, served read-only per C2SP `tlog-tiles`
//! under `/log/`: `checkpoint` (a signed note), `key` (its note verifier
//! key), hash tiles `tile/<L>/<N>[.p/<W>]` and entry bundles
//! `tile/entries/<N>[.p/<W>]`.
//!
//! The frontend holds no log key and keeps no copy: each answer is read
//! from the signer (`log_read`). A client checks the checkpoint's
//! signature with the key it got out of band and every tile against the
//! checkpoint's root, so a frontend that altered what it serves would be
//! caught (`akamu-cli log verify`).

use http::StatusCode;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use shared_proto::signer::{LogRead, LogReadError};

use akamu_tlog::{TileKind, TilePath};

use crate::App;
use crate::error::Error;
use crate::http::Reply;

/// `GET /log/checkpoint`.
pub async fn checkpoint(app: &App) -> Result<Reply, Error> {
    let note = read(app, LogRead::Checkpoint).await?;
    Ok(text(note).header(CACHE_CONTROL, "no-cache"))
}

/// `GET /log/key`.
pub async fn key(app: &App) -> Result<Reply, Error> {
    let key = read(app, LogRead::VerifierKey).await?;
    Ok(text(key).header(CACHE_CONTROL, "max-age=3600"))
}

/// `GET /log/tile/<rest>`.
pub async fn tile(app: &App, rest: &str) -> Result<Reply, Error> {
    let path = TilePath::parse(rest).ok_or(Error::NotFound)?;
    let bytes = match path.kind {
        TileKind::Hash(level) => {
            read(
                app,
                LogRead::HashTile {
                    level,
                    index: path.index,
                    width: path.width,
                },
            )
            .await?
        }
        TileKind::Entries => entries(app, &path).await?,
    };
    // A full tile never changes; a partial one is replaced by wider ones.
    let cache = if path.is_full() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(Reply::empty(StatusCode::OK)
        .body(bytes.into())
        .header(CONTENT_TYPE, "application/octet-stream")
        .header(CACHE_CONTROL, cache))
}

/// An entry bundle, read from the signer in parts that fit its frames.
async fn entries(app: &App, path: &TilePath) -> Result<Vec<u8>, Error> {
    let mut bundle = Vec::new();
    let mut have: u16 = 0;
    while have < path.width {
        let part = read(
            app,
            LogRead::Entries {
                index: path.index,
                width: path.width,
                from: have,
            },
        )
        .await?;
        let count = akamu_tlog::tile::split_entries(&part)
            .map(|e| e.len())
            .filter(|n| *n > 0)
            .ok_or_else(|| Error::Internal("the signer sent a malformed entry bundle".into()))?;
        have = have.saturating_add(u16::try_from(count).unwrap_or(u16::MAX));
        bundle.extend_from_slice(&part);
    }
    Ok(bundle)
}

async fn read(app: &App, request: LogRead) -> Result<Vec<u8>, Error> {
    match app.peers.log_read(request).await? {
        Ok(bytes) => Ok(bytes),
        Err(LogReadError::Disabled | LogReadError::NotFound) => Err(Error::NotFound),
        Err(LogReadError::Internal) => Err(Error::Internal(
            "the signer could not read its transparency log".into(),
        )),
    }
}

fn text(bytes: Vec<u8>) -> Reply {
    Reply::empty(StatusCode::OK)
        .body(bytes.into())
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
}
