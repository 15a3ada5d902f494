//! What the CA is, learned from the signer: its chain, the URLs it puts in
//! every leaf (the CRL's path is served here), its profiles and maximum
//! validity. The signer owns these facts (`ca_info`); the frontend keeps
//! only this copy of the signer's answer, fetched when first needed and
//! again after every reconnection to the signer (a restarted signer may
//! have a new configuration) and every [`REFRESH_EVERY`].

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use shared_proto::signer::{CaInfo, ProfileInfo};

use crate::App;
use crate::error::Error;

/// How often the facts are re-read even without a reconnection.
const REFRESH_EVERY: Duration = Duration::from_secs(300);

/// The signer's last answer to `ca_info`.
#[derive(Default)]
pub struct CaFacts {
    current: RwLock<Option<Arc<CaInfo>>>,
}

impl CaFacts {
    /// The facts as last fetched, if any.
    pub fn cached(&self) -> Option<Arc<CaInfo>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, info: CaInfo) -> Arc<CaInfo> {
        let info = Arc::new(info);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&info));
        info
    }
}

/// The CA's facts: the cached copy, or the signer's answer now.
pub async fn facts(app: &App) -> Result<Arc<CaInfo>, Error> {
    match app.ca.cached() {
        Some(info) => Ok(info),
        None => Box::pin(fetch(app)).await,
    }
}

/// Asks the signer and caches its answer.
async fn fetch(app: &App) -> Result<Arc<CaInfo>, Error> {
    let info = app.peers.ca_info().await??;
    let unknown: Vec<&String> = app
        .config
        .server
        .profiles
        .keys()
        .filter(|name| !info.profiles.iter().any(|p| &&p.name == name))
        .collect();
    if !unknown.is_empty() {
        tracing::warn!(
            target: "frontend",
            profiles = ?unknown,
            "[server.profiles] describes profiles the signer does not offer; they are not advertised"
        );
    }
    tracing::info!(
        target: "frontend",
        profiles = info.profiles.len(),
        crl_url = ?info.crl_url,
        "CA facts from the signer"
    );
    Ok(app.ca.store(info))
}

/// Keeps the facts current: re-reads them after each new connection to the
/// signer and every [`REFRESH_EVERY`].
pub async fn refresh_forever(app: Arc<App>) {
    loop {
        if let Err(e) = fetch(&app).await {
            tracing::warn!(target: "frontend", error = %e, "cannot read the CA's facts from the signer; will retry");
        }
        tokio::select! {
            () = app.peers.signer_connected().notified() => {}
            () = tokio::time::sleep(REFRESH_EVERY) => {}
        }
    }
}

/// The profile an order asks for, or the signer's default for `None`.
pub fn profile<'a>(info: &'a CaInfo, name: Option<&str>) -> Result<&'a ProfileInfo, Error> {
    let wanted = name.unwrap_or(&info.default_profile);
    info.profiles
        .iter()
        .find(|p| p.name == wanted)
        .ok_or_else(|| {
            Error::InvalidProfile(format!(
                "profile {wanted:?} is not offered (see the directory's meta.profiles)"
            ))
        })
}

/// A description of a profile for the directory's `meta.profiles` when
/// `[server.profiles]` gives none: its validity and extended key usages.
pub fn describe(p: &ProfileInfo) -> String {
    let hours = p.validity_secs / 3600;
    let validity = if hours % 24 == 0 {
        format!("{} days", hours / 24)
    } else {
        format!("{hours} hours")
    };
    format!(
        "certificates valid for {validity}, at most {} names, {}",
        p.max_sans,
        p.extended_key_usages.join(" and ")
    )
}

/// The URL path of the CRL, if the signer puts a CRL URL in its leaves.
pub fn crl_path(info: &CaInfo) -> Option<String> {
    info.crl_url.as_deref().and_then(crate::crl::serving_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> CaInfo {
        CaInfo {
            chain_pem: String::new(),
            crl_url: Some("https://ca.example/crl/ca.crl".into()),
            ocsp_url: None,
            ca_issuers_url: None,
            default_profile: "tls-server".into(),
            profiles: ["short", "tls-server"]
                .into_iter()
                .map(|name| ProfileInfo {
                    name: name.into(),
                    validity_secs: 86_400,
                    max_sans: 100,
                    extended_key_usages: vec!["serverAuth".into()],
                    authz_reuse_secs: None,
                })
                .collect(),
            max_validity_secs: 90 * 86_400,
            ca_not_after: i64::MAX,
            caa_max_age_secs: 8 * 3600,
        }
    }

    #[test]
    fn profiles_are_the_signers() {
        let info = info();
        assert_eq!(
            profile(&info, None).map(|p| p.name.as_str()).ok(),
            Some("tls-server")
        );
        assert_eq!(
            profile(&info, Some("short")).map(|p| p.name.as_str()).ok(),
            Some("short")
        );
        assert!(matches!(
            profile(&info, Some("long")),
            Err(Error::InvalidProfile(_))
        ));
        assert_eq!(crl_path(&info).as_deref(), Some("/crl/ca.crl"));
    }
}
