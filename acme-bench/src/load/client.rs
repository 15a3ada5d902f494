//! The bench's ACME accounts and the HTTPS client each one uses.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use instant_acme::{Account, BodyWrapper, NewAccount};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// An HTTPS client for instant-acme trusting only the roots in `bundle`.
pub fn http_client(bundle: &Path) -> Result<Box<dyn instant_acme::HttpClient>> {
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
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(tcp);
    let client: HyperClient<_, BodyWrapper<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(connector);
    Ok(Box::new(client))
}

/// Creates one account per client (not timed).
pub async fn create_accounts(directory: &str, bundle: &Path, clients: u32) -> Result<Vec<Account>> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let http = http_client(bundle)?;
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
                .map(|(account, _)| account)
        });
    }
    let mut accounts = Vec::new();
    while let Some(res) = set.join_next().await {
        accounts.push(res?.map_err(|e| anyhow!("create an account: {e}"))?);
    }
    Ok(accounts)
}
