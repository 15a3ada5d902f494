//! What every ACME command shares: the server connection flags, key files
//! (written 0600), the `<account-key>.account-url` sidecar, and EAB flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use akamu_client::{Account, AccountKey, AccountOptions, AcmeClient, EabOptions, KeyType};

use crate::error::CliError;
use crate::output::Output;

/// Flags naming the server and the account key.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ConnArgs {
    /// ACME directory URL (required: a private CA has no public default).
    #[arg(long, env = "AKAMU_SERVER", value_name = "URL")]
    pub server: String,
    /// PEM file of extra roots to trust for the server's HTTPS certificate
    /// (a private CA's root).
    #[arg(long, env = "AKAMU_CA_BUNDLE", value_name = "PEM")]
    pub ca_bundle: Option<PathBuf>,
    /// Account key PEM file.
    #[arg(long, value_name = "FILE")]
    pub account_key: PathBuf,
}

/// External Account Binding flags.
#[derive(clap::Args, Clone, Debug, Default)]
pub(crate) struct EabArgs {
    /// External Account Binding key ID.
    #[arg(long, value_name = "KID", requires = "eab_key")]
    pub eab_kid: Option<String>,
    /// EAB HMAC key, base64url without padding.
    #[arg(long, value_name = "KEY_B64U", requires = "eab_kid")]
    pub eab_key: Option<String>,
    /// EAB HMAC algorithm.
    #[arg(long, value_name = "ALG", default_value = "HS256", value_parser = ["HS256", "HS384", "HS512"])]
    pub eab_alg: String,
}

impl ConnArgs {
    /// Connects: fetches the directory, trusting `--ca-bundle` besides the
    /// system roots; `poll` bounds every wait.
    pub(crate) async fn connect(&self, poll: Duration) -> Result<AcmeClient, CliError> {
        let mut builder = AcmeClient::builder(&self.server).poll_timeout(poll);
        if let Some(bundle) = &self.ca_bundle {
            let pem = read(bundle)?;
            builder = builder.add_root_pem(&pem).map_err(|e| CliError::BadFile {
                path: bundle.clone(),
                reason: e.to_string(),
            })?;
        }
        Ok(builder.build().await?)
    }

    /// `<account-key>.account-url`.
    pub(crate) fn sidecar(&self) -> PathBuf {
        sidecar_path(&self.account_key)
    }
}

/// `<key>.account-url`.
pub(crate) fn sidecar_path(key: &Path) -> PathBuf {
    let mut s = key.as_os_str().to_owned();
    s.push(".account-url");
    PathBuf::from(s)
}

/// Reads a file.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::io(path, e))
}

/// Loads a key PEM file.
pub(crate) fn load_key(path: &Path) -> Result<AccountKey, CliError> {
    let pem = read(path)?;
    AccountKey::from_pem(&pem).map_err(|e| CliError::BadFile {
        path: path.to_owned(),
        reason: e.to_string(),
    })
}

/// Loads `path`, or generates a `key_type` key and saves it there (0600).
/// Returns the key and whether it was generated.
pub(crate) fn load_or_generate_key(
    path: &Path,
    key_type: KeyType,
    out: &Output,
) -> Result<(AccountKey, bool), CliError> {
    if path.exists() {
        return Ok((load_key(path)?, false));
    }
    let key = AccountKey::generate_key_type(key_type)?;
    write_private(path, key.to_pem()?.as_bytes())?;
    out.progress(&format!("generated {key_type} key {}", path.display()));
    Ok((key, true))
}

/// Writes `bytes` to `path` with mode 0600, replacing it atomically
/// (temporary file in the same directory, then rename).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    write_atomic(path, bytes, 0o600)
}

/// Writes a public file (certificate chain) atomically with mode 0644.
pub(crate) fn write_public(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    write_atomic(path, bytes, 0o644)
}

fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CliError> {
    daemon_kit::files::write_atomic(path, bytes, mode).map_err(|e| CliError::io(path, e.source))
}

/// The account for `--account-key`: from the sidecar when present (checked
/// with the server), otherwise `None`.
pub(crate) async fn sidecar_account(
    client: &AcmeClient,
    conn: &ConnArgs,
    key: Arc<AccountKey>,
) -> Result<Option<Account>, CliError> {
    let sidecar = conn.sidecar();
    if !sidecar.exists() {
        return Ok(None);
    }
    let url = String::from_utf8_lossy(&read(&sidecar)?).trim().to_owned();
    let account = Account {
        url,
        status: String::new(),
        contacts: Vec::new(),
        orders: None,
        key,
    };
    Ok(Some(client.get_account(&account).await?))
}

/// The existing account of `--account-key`: the sidecar's (checked with the
/// server), else the one the server finds for the key.
pub(crate) async fn existing_account(
    client: &AcmeClient,
    conn: &ConnArgs,
) -> Result<Account, CliError> {
    let key = Arc::new(load_key(&conn.account_key)?);
    match sidecar_account(client, conn, Arc::clone(&key)).await? {
        Some(a) => Ok(a),
        None => Ok(client.find_account(key).await?),
    }
}

/// The account from the sidecar; a missing sidecar is an I/O error that
/// says to register first.
pub(crate) async fn require_account(
    client: &AcmeClient,
    conn: &ConnArgs,
) -> Result<Account, CliError> {
    let key = Arc::new(load_key(&conn.account_key)?);
    match sidecar_account(client, conn, key).await? {
        Some(a) => Ok(a),
        None => Err(CliError::io(
            conn.sidecar(),
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file (run `akamu-cli account register` first)",
            ),
        )),
    }
}

/// Registers `key` and writes the sidecar.
pub(crate) async fn register(
    client: &AcmeClient,
    conn: &ConnArgs,
    key: Arc<AccountKey>,
    contacts: &[String],
    agree_tos: bool,
    eab: &EabArgs,
) -> Result<Account, CliError> {
    let hmac =
        match &eab.eab_key {
            Some(k) => Some(akamu_jose::b64_decode(k.trim()).map_err(|_| {
                CliError::Usage("--eab-key must be base64url without padding".into())
            })?),
            None => None,
        };
    let contacts: Vec<&str> = contacts.iter().map(String::as_str).collect();
    let opts = AccountOptions {
        contacts: &contacts,
        agree_tos,
        eab: match (&eab.eab_kid, &hmac) {
            (Some(kid), Some(hmac)) => Some(EabOptions {
                kid,
                hmac_key: hmac,
                alg: &eab.eab_alg,
            }),
            _ => None,
        },
    };
    let account = client.new_account(key, &opts).await?;
    write_private(&conn.sidecar(), format!("{}\n", account.url).as_bytes())?;
    Ok(account)
}

/// The account as JSON.
pub(crate) fn account_json(a: &Account) -> serde_json::Value {
    serde_json::json!({
        "url": a.url,
        "status": a.status,
        "contacts": a.contacts,
        "thumbprint": a.key.thumbprint(),
    })
}

/// The account as the reference's human lines.
pub(crate) fn account_text(a: &Account) -> String {
    let mut text = format!("URL:     {}\nStatus:  {}", a.url, a.status);
    for c in &a.contacts {
        text.push_str(&format!("\nContact: {c}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn private_files_are_0600_and_replaced_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k.pem");
        write_private(&path, b"one").expect("write");
        write_private(&path, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).expect("ls").count(),
            1,
            "no temp file left"
        );
        assert_eq!(
            sidecar_path(Path::new("/a/account.pem")),
            PathBuf::from("/a/account.pem.account-url")
        );
    }
}
