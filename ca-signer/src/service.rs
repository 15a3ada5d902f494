//! `impl SignerRpc`: peer → policy → tbs → sign → log → reply.
//!
//! [`Issuer`] holds the CA and the leaf profile and does the synchronous work;
//! [`SignerService`] is the per-connection tarpc handler that runs it on a
//! blocking thread and maps errors once, through
//! [`Error::to_signer_error`].

use std::sync::Arc;
use std::time::Instant;

use rand::RngCore;
use shared_proto::peer::PeerCred;
use shared_proto::signer::{CaChain, IssueRequest, IssuedCertificate, SignerError, SignerRpc};
use tarpc::context::Context;

use crate::ca::{self, Ca};
use crate::config;
use crate::error::Error;
use crate::policy::{self, Checked, Profile};
use crate::tbs::{self, LeafUrls, SignedCertificate};

/// The CA and its leaf profile: everything needed to issue.
pub struct Issuer {
    ca: Ca,
    validity_days: u32,
    urls: LeafUrls,
}

impl Issuer {
    /// An issuer for `ca` with the leaf profile from `config`.
    pub fn new(ca: Ca, config: &config::Ca) -> Self {
        Self {
            ca,
            validity_days: config.validity_days,
            urls: LeafUrls {
                crl: config.crl_url.clone(),
                ocsp: config.ocsp_url.clone(),
            },
        }
    }

    /// The CA.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The profile leaves are checked against.
    pub fn profile(&self) -> Profile {
        Profile {
            validity_days: self.validity_days,
            ca_not_after: self.ca.not_after(),
        }
    }

    /// Checks `request`, builds the leaf and signs it. `now` is Unix seconds.
    pub fn issue(
        &self,
        request: &IssueRequest,
        now: i64,
        rng: &mut dyn RngCore,
    ) -> Result<IssuedCertificate, Error> {
        let checked = policy::check(&self.profile(), request, now)?;
        let signed = self.sign_checked(checked, rng)?;
        let chain_pem = format!("{}{}", ca::pem(&signed.der)?, self.ca.cert_pem());
        Ok(IssuedCertificate {
            der: signed.der,
            serial_hex: signed.serial_hex,
            not_before: signed.not_before,
            not_after: signed.not_after,
            chain_pem,
        })
    }

    /// Builds and signs a checked request.
    pub fn sign_checked(
        &self,
        checked: Checked,
        rng: &mut dyn RngCore,
    ) -> Result<SignedCertificate, Error> {
        tbs::build_leaf(checked, self.ca.issuer(), &self.urls, rng)?.sign(self.ca.key())
    }

    /// The chain served after each leaf.
    pub fn chain(&self) -> CaChain {
        CaChain {
            pem: self.ca.cert_pem().to_owned(),
        }
    }
}

/// The tarpc handler for one connection.
#[derive(Clone)]
pub struct SignerService {
    issuer: Arc<Issuer>,
    peer: PeerCred,
}

impl SignerService {
    /// A handler for a connection from `peer`.
    pub fn new(issuer: Arc<Issuer>, peer: PeerCred) -> Self {
        Self { issuer, peer }
    }
}

impl SignerRpc for SignerService {
    async fn issue_certificate(
        self,
        ctx: Context,
        request: IssueRequest,
    ) -> Result<IssuedCertificate, SignerError> {
        if ctx.deadline <= Instant::now() {
            tracing::warn!(target: "signer", uid = self.peer.uid, "request arrived after its deadline");
            return Err(SignerError::Internal);
        }
        let uid = self.peer.uid;
        let account = request.account_uri.clone();
        let order = request.order_id.clone();
        let sans: Vec<String> = request
            .identifiers
            .iter()
            .map(ToString::to_string)
            .collect();
        let issuer = Arc::clone(&self.issuer);
        // Signing is CPU work (and may block on a token): keep it off the
        // async workers. If the deadline passes, tarpc drops this future and
        // the result is discarded.
        let result = tokio::task::spawn_blocking(move || {
            issuer.issue(&request, crate::unix_now(), &mut rand::rng())
        })
        .await
        .map_err(Error::from)
        .and_then(|r| r);
        match result {
            Ok(cert) => {
                tracing::info!(
                    target: "signer",
                    serial = %cert.serial_hex,
                    sans = ?sans,
                    uid,
                    account = %account,
                    order = %order,
                    not_before = cert.not_before,
                    not_after = cert.not_after,
                    "issued certificate"
                );
                Ok(cert)
            }
            Err(e) => {
                let reply = e.to_signer_error();
                if reply != SignerError::Internal {
                    tracing::warn!(
                        target: "signer",
                        sans = ?sans,
                        uid,
                        account = %account,
                        order = %order,
                        reason = %e,
                        "refused certificate"
                    );
                }
                Err(reply)
            }
        }
    }

    async fn ca_chain(self, _ctx: Context) -> Result<CaChain, SignerError> {
        Ok(self.issuer.chain())
    }
}
