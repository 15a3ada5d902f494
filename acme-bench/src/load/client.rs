//! The bench's ACME accounts and the HTTPS client each one uses.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{Account, AccountCredentials, BodyWrapper, NewAccount};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// An HTTPS client for instant-acme trusting only the roots in `bundle`.
pub fn http_client(bundle: &Path, http1_only: bool) -> Result<Box<dyn instant_acme::HttpClient>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(bundle)
        .with_context(|| format!("read {}", bundle.display()))?
    {
        roots.add(cert.with_context(|| format!("parse {}", bundle.display()))?)?;
    }
    if roots.is_empty() {
        return Err(anyhow!("no certificate in {}", bundle.display()));
    }
    // ring cannot verify ML-DSA: a bench CA with an ML-DSA key (which signs
    // the frontend's certificate) needs aws-lc-rs; everything else stays on
    // ring, as the earlier figures were measured.
    let ml_dsa_ca = openssl::x509::X509::stack_from_pem(
        &std::fs::read(bundle).with_context(|| format!("read {}", bundle.display()))?,
    )?
    .iter()
    .any(|c| {
        c.public_key()
            .is_ok_and(|k| akamu_jose::MlDsa::of_key(&k).is_some())
    });
    let provider = if ml_dsa_ca {
        rustls::crypto::aws_lc_rs::default_provider()
    } else {
        rustls::crypto::ring::default_provider()
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // Without TCP_NODELAY, a request written in two TLS records waits for
    // the server's delayed ACK (40 ms on Linux) before its second half.
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1();
    // HTTP/2 is offered in ALPN unless asked not to (certbot speaks only
    // HTTP/1.1; lego, Caddy and instant-acme take HTTP/2 when offered).
    let connector = if http1_only {
        builder.wrap_connector(tcp)
    } else {
        builder.enable_http2().wrap_connector(tcp)
    };
    let client: HyperClient<_, BodyWrapper<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    Ok(Box::new(client))
}

/// One account per client (not timed): the accounts saved in `saved`
/// (instant-acme's credentials, a JSON array) when given and present,
/// new ones for the rest, which are then saved there too. Saved accounts
/// make a long run (the soak's rounds) behave like real clients, which
/// keep their account, instead of registering new ones each round.
pub async fn create_accounts(
    directory: &str,
    bundle: &Path,
    clients: u32,
    saved: Option<&Path>,
    http1_only: bool,
) -> Result<Vec<Account>> {
    let mut known: Vec<AccountCredentials> = match saved {
        Some(path) if path.exists() => serde_json::from_slice(
            &std::fs::read(path).with_context(|| format!("read {}", path.display()))?,
        )
        .with_context(|| format!("parse {}", path.display()))?,
        _ => Vec::new(),
    };
    let reused = known.len().min(clients as usize);
    let mut accounts = Vec::new();
    for credentials in known.drain(..reused) {
        let account = Account::builder_with_http(http_client(bundle, http1_only)?)
            .from_credentials(credentials)
            .await
            .map_err(|e| anyhow!("load a saved account: {e}"))?;
        accounts.push(account);
    }
    let mut set = tokio::task::JoinSet::new();
    for _ in reused..clients as usize {
        let http = http_client(bundle, http1_only)?;
        let directory = directory.to_owned();
        set.spawn(async move {
            Account::builder_with_http(http)
                .create(
                    &NewAccount {
                        contact: &[],
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    directory,
                    None,
                )
                .await
        });
    }
    let mut created = Vec::new();
    while let Some(res) = set.join_next().await {
        let (account, credentials) = res?.map_err(|e| anyhow!("create an account: {e}"))?;
        accounts.push(account);
        created.push(credentials);
    }
    if let Some(path) = saved
        && !created.is_empty()
    {
        save(path, &created)?;
    }
    Ok(accounts)
}

/// Appends `created` to the accounts saved in `path` (private keys: the
/// file is written owner-only).
fn save(path: &Path, created: &[AccountCredentials]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut all: Vec<serde_json::Value> = if path.exists() {
        serde_json::from_slice(&std::fs::read(path)?)?
    } else {
        Vec::new()
    };
    for credentials in created {
        all.push(serde_json::to_value(credentials)?);
    }
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("write {}", tmp.display()))?;
    file.write_all(&serde_json::to_vec(&all)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("write {}", path.display()))?;
    Ok(())
}
