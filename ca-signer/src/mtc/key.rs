//! The log's Ed25519 key: a PKCS#8 PEM file of mode 0600, made by
//! `akamu-cli ceremony log-key` or, when `[mtc] generate_key` is set (the
//! one-command start), by the signer on its first start. It is not the CA
//! key and signs nothing but checkpoints.

use std::path::Path;

use openssl::pkey::{Id, PKey, Private};

use super::MtcError;

/// Loads the log key at `path`, generating it first when it does not exist
/// and `generate` is set.
pub fn load_or_generate(path: &Path, generate: bool) -> Result<PKey<Private>, MtcError> {
    let bad = |reason: String| MtcError::Key {
        path: path.to_owned(),
        reason,
    };
    if !path.exists() {
        if !generate {
            return Err(bad(
                "missing (make it with `akamu-cli ceremony log-key --out <file>`)".to_owned(),
            ));
        }
        let key = generate_file(path).map_err(|e| bad(e.to_string()))?;
        tracing::info!(target: "signer", path = %path.display(), "generated the transparency log key");
        return Ok(key);
    }
    let pem = std::fs::read(path).map_err(|source| MtcError::Io {
        path: path.to_owned(),
        source,
    })?;
    let key = PKey::private_key_from_pem(&pem).map_err(|e| bad(e.to_string()))?;
    if key.id() != Id::ED25519 {
        return Err(bad("not an Ed25519 key".to_owned()));
    }
    Ok(key)
}

/// Writes a new Ed25519 key to `path` (PKCS#8 PEM, mode 0600; the file
/// must not exist) and returns it.
pub fn generate_file(path: &Path) -> Result<PKey<Private>, Box<dyn std::error::Error>> {
    let key = PKey::generate_ed25519()?;
    let pem = key.private_key_to_pem_pkcs8()?;
    daemon_kit::files::create_parent(path)?;
    if path.exists() {
        return Err(format!("{} exists; refusing to overwrite a log key", path.display()).into());
    }
    daemon_kit::files::write_atomic(path, &pem, daemon_kit::files::KEY_MODE)?;
    Ok(key)
}
