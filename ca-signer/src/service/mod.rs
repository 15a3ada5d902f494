//! `impl SignerRpc`: peer → policy → tbs → sign → audit → reply.
//!
//! [`Issuer`] holds the CA, the leaf profile, the key policy, the audit log
//! and the CRL counter, and does the synchronous work; [`SignerService`] is
//! the per-connection tarpc handler that runs it on a blocking thread and
//! maps errors once, through [`Error::to_signer_error`].
//!
//! Every signature is appended to the audit log (and fsynced) before it is
//! returned; refusals are appended too. If the log cannot be written, the
//! request fails.
//!
//! Files: this one issues leaves; `statements` checks validator
//! statements, `crls` signs CRLs, `rpc` is the tarpc handler.

use std::sync::{Arc, Mutex};

use rand::RngCore;
use shared_proto::peer::Peer;
use shared_proto::signer::{CaInfo, IssueRequest, IssuedCertificate, ProfileInfo};
use shared_proto::statement::StatementVerifier;

use crate::audit::{self, AuditLog, Operation};
use crate::blocklist::Blocklist;
use crate::ca::{self, Ca};
use crate::config::{self, Config};
use crate::error::{Error, PolicyRefusal};
use crate::inflight::InFlight;
use crate::mtc::{self, MtcLog};
use crate::policy::{self, Checked, KeyPolicy, Profile};
use crate::recent::{self, RecentIssues};
use crate::star::{StarBook, StarRecord};
use crate::tbs::{self, LeafUrls, SignedCertificate};

mod crls;
mod rpc;
mod statements;

use crls::CrlCounter;
pub use rpc::SignerService;

/// The CA with everything needed to issue and to sign CRLs.
pub struct Issuer {
    ca: Ca,
    profile: Profile,
    profiles: std::collections::BTreeMap<String, Profile>,
    statements: Option<StatementVerifier>,
    /// `[[perspectives]]`: the remote perspectives whose corroboration each
    /// name needs, with their keys.
    perspectives: Vec<statements::TrustedKey>,
    /// `[policy] statement_max_age_secs`.
    statement_max_age_secs: i64,
    /// `[policy] caa_max_age_secs`.
    caa_max_age_secs: i64,
    /// `[policy] max_validity_days`, in seconds.
    max_validity_secs: i64,
    urls: LeafUrls,
    allow_p521: bool,
    allow_ed25519: bool,
    blocklist: Blocklist,
    audit: AuditLog,
    /// The transparency log, when `[mtc] enabled`.
    mtc: Option<Arc<MtcLog>>,
    crl: Mutex<CrlCounter>,
    crl_validity_secs: i64,
    /// Certificates issued recently, for repeated requests.
    recent: Mutex<RecentIssues>,
    /// The request digests being worked on, one request at a time each.
    in_flight: InFlight,
    /// The STAR orders recorded at their first issuance (from the audit
    /// log at start).
    star: Mutex<StarBook>,
}

/// What an ACME issuance was for, recorded with it.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// The order's id.
    pub order_id: &'a str,
    /// [`request_sha256`] of the request.
    pub request_sha256: &'a str,
    /// The STAR terms to record with a STAR order's first issuance.
    pub star: Option<&'a StarRecord>,
}

/// SHA-256 (hex) of what makes two issue requests the same: order, account,
/// CSR, identifiers, requested validity and profile (not the statements,
/// which only authorise). Every field is length- or tag-prefixed, so no two
/// different requests share an encoding.
pub fn request_sha256(request: &IssueRequest) -> String {
    let mut h = openssl::sha::Sha256::new();
    let mut bytes = |b: &[u8]| {
        h.update(&(b.len() as u64).to_be_bytes());
        h.update(b);
    };
    bytes(request.order_id.as_bytes());
    bytes(request.account_uri.as_bytes());
    bytes(&request.csr_der);
    bytes(&(request.identifiers.len() as u64).to_be_bytes());
    for id in &request.identifiers {
        bytes(id.to_string().as_bytes());
    }
    for t in [request.not_before, request.not_after] {
        match t {
            Some(t) => bytes(&t.to_be_bytes()),
            None => bytes(&[]),
        }
    }
    match &request.profile {
        Some(p) => bytes(p.as_bytes()),
        None => bytes(&[0xff]),
    }
    // Only STAR requests carry more, so ordinary digests are as before.
    if let Some(star) = &request.star {
        bytes(b"star");
        bytes(&star.end_date.to_be_bytes());
        bytes(&star.lifetime_secs.to_be_bytes());
        bytes(&star.lifetime_adjust_secs.to_be_bytes());
        bytes(&[u8::from(star.reissue)]);
    }
    hex::encode(h.finish())
}

impl Issuer {
    /// An issuer for `ca` configured by `config`; opens (and verifies) the
    /// audit log and restores the CRL Number.
    pub fn new(ca: Ca, config: &Config) -> Result<Self, Error> {
        let audit_path = config.audit_path();
        let mut tail = recent::Tail::new(config.audit.recent_issuances);
        let mut star = StarBook::new();
        let mut log = if config.mtc.enabled {
            Some(mtc::Recovery::read(&config.mtc_log_path())?)
        } else {
            None
        };
        let (audit, summary) = AuditLog::open_observing(&audit_path, |r| {
            tail.observe(r);
            star.observe(r);
            if let Some(log) = &mut log {
                log.observe(r);
            }
        })?;
        let mtc = match log {
            Some(log) => {
                let key =
                    mtc::key::load_or_generate(&config.mtc_key_path(), config.mtc.generate_key)?;
                // validate() made sure it is there.
                let origin = config.mtc.origin.as_deref().unwrap_or_default();
                let log = Arc::new(log.finish(origin, key)?);
                log.spawn_checkpointer()?;
                Some(log)
            }
            None => None,
        };
        let crl = CrlCounter::restore(&audit_path, &summary)?;
        let make_profile = |name: &str| {
            let settings = config.profiles.get(name);
            let validity_hours = settings
                .and_then(|p| p.validity_hours)
                .map_or(i64::from(config.ca.validity_days) * 24, i64::from);
            Profile {
                name: name.to_owned(),
                validity_secs: validity_hours * 3600,
                max_sans: settings.map_or_else(config::default_max_sans, |p| p.max_sans),
                client_auth: settings.is_some_and(|p| p.client_auth),
                common_name: settings.is_none_or(|p| p.common_name),
                authz_reuse_secs: settings.and_then(|p| p.authz_reuse_secs).map(i64::from),
                ca_not_after: ca.not_after(),
                key_types: settings.and_then(|p| p.key_types.clone()),
            }
        };
        let profile = make_profile(&config.policy.default_profile);
        let mut profiles: std::collections::BTreeMap<String, Profile> = config
            .profiles
            .keys()
            .map(|name| (name.clone(), make_profile(name)))
            .collect();
        profiles.insert(profile.name.clone(), profile.clone());
        let statements = match &config.validator_public_key_file {
            Some(path) => {
                Some(
                    StatementVerifier::from_file(path).map_err(|e| Error::ConfigValue {
                        field: "validator_public_key_file",
                        problem: e.to_string(),
                    })?,
                )
            }
            None if config.insecure_issue_without_statements => {
                tracing::warn!(
                    target: "signer",
                    "INSECURE: insecure_issue_without_statements is set and there is no \
                     validator_public_key_file: any allowed caller gets a certificate for any \
                     name, without validation statements"
                );
                None
            }
            None => {
                return Err(Error::ConfigValue {
                    field: "validator_public_key_file",
                    problem: "required: without it the signer would issue on the caller's word \
                              alone (set insecure_issue_without_statements = true to do that \
                              in a test or a lab)"
                        .to_owned(),
                });
            }
        };
        let perspectives = config
            .perspectives
            .iter()
            .map(|p| {
                Ok(statements::TrustedKey {
                    name: p.name.clone(),
                    rir: p.rir.clone(),
                    key: StatementVerifier::from_file(&p.public_key_file).map_err(|e| {
                        Error::ConfigValue {
                            field: "perspectives",
                            problem: format!("{}: {e}", p.name),
                        }
                    })?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        if !perspectives.is_empty() {
            tracing::info!(
                target: "signer",
                perspectives = perspectives.len(),
                max_non_corroborating = shared_proto::quorum::max_non_corroborating(perspectives.len()),
                "issuance needs multi-perspective corroboration"
            );
        }
        tracing::info!(
            target: "signer",
            audit = %audit_path.display(),
            records = summary.records,
            head = %summary.head,
            crl_number = crl.last,
            "audit log verified"
        );
        Ok(Self {
            ca,
            profile,
            profiles,
            statements,
            perspectives,
            statement_max_age_secs: i64::from(config.policy.statement_max_age_secs),
            caa_max_age_secs: i64::from(config.policy.caa_max_age_secs),
            max_validity_secs: i64::from(config.policy.max_validity_days) * 86_400,
            urls: LeafUrls {
                crl: config.ca.crl_url.clone(),
                ocsp: config.ca.ocsp_url.clone(),
                ca_issuers: config.ca.ca_issuers_url.clone(),
            },
            allow_p521: config.policy.allow_p521,
            allow_ed25519: config.policy.allow_ed25519,
            blocklist: Blocklist::new(&config.blocked_keys_path()),
            audit,
            mtc,
            crl: Mutex::new(crl),
            crl_validity_secs: i64::from(config.ca.crl_validity_hours) * 3600,
            recent: Mutex::new(RecentIssues::from_tail(tail)),
            in_flight: InFlight::default(),
            star: Mutex::new(star),
        })
    }

    /// The CA.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// The audit log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The transparency log, when `[mtc] enabled`.
    pub fn mtc(&self) -> Option<&Arc<MtcLog>> {
        self.mtc.as_ref()
    }

    /// The profile leaves are checked against.
    pub fn profile(&self) -> Profile {
        self.profile.clone()
    }

    /// The subscriber key policy, with the blocklist as it is now.
    pub fn key_policy(&self) -> Result<KeyPolicy, Error> {
        Ok(KeyPolicy {
            allow_p521: self.allow_p521,
            allow_ed25519: self.allow_ed25519,
            key_types: None,
            blocked: self.blocklist.current()?,
        })
    }

    /// Checks `request`, builds the leaf, signs it and audits it. A refusal
    /// is audited too. `now` is Unix seconds; `requester` is the peer that asked.
    ///
    /// A request equal to one this signer has issued for (same order,
    /// account, CSR, identifiers, validity and profile) is answered with that
    /// certificate, not a new one (see [`crate::recent`]): no new signature,
    /// so nothing new to check or audit. Identical requests are handled one
    /// at a time, so two that arrive together get one certificate.
    pub fn issue(
        &self,
        request: &IssueRequest,
        requester: Option<&Peer>,
        now: i64,
        rng: &mut dyn RngCore,
    ) -> Result<IssuedCertificate, Error> {
        let digest = request_sha256(request);
        // Held until the certificate is in the table (or the request
        // failed): an identical request waits here, then finds it.
        let _turn = self.in_flight.enter(&digest);
        if let Some(signed) = self.already_issued(request, &digest)? {
            tracing::warn!(
                target: "signer",
                order = %request.order_id,
                serial = %signed.serial_hex,
                "repeated request: answering with the certificate already issued for it"
            );
            crate::metrics::repeated();
            return self.issued(signed);
        }
        let star = match &request.star {
            None => "",
            Some(t) if t.reissue => " star=reissue",
            Some(_) => " star=first",
        };
        let detail = format!(
            "account={} order={}{star}",
            request.account_uri, request.order_id
        );
        let result = self
            .check_request(request, now)
            .and_then(|(checked, star)| {
                let origin = Origin {
                    order_id: &request.order_id,
                    request_sha256: &digest,
                    star: star.as_ref(),
                };
                let signed =
                    self.sign_checked(checked, requester, &detail, Some(origin), now, rng)?;
                if let Some(star) = star {
                    let mut book = self
                        .star
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    book.prune(now);
                    book.insert(&request.order_id, star);
                }
                Ok(signed)
            });
        let signed = match result {
            Ok(signed) => signed,
            Err(e) => {
                if e.is_refusal() {
                    crate::metrics::refused();
                    let names = request
                        .identifiers
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    // The profile asked for (the default when none was):
                    // the one the request was refused under, or an unknown
                    // name.
                    let profile = request
                        .profile
                        .clone()
                        .unwrap_or_else(|| self.profile.name.clone());
                    self.audit.append(
                        Operation::Refusal,
                        audit::Entry {
                            names,
                            profile: Some(profile),

                            detail: Some(format!("{detail} reason={e}")),
                            ..audit::Entry::from_requester(requester)
                        },
                        now,
                    )?;
                }
                return Err(e);
            }
        };
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(digest, signed.clone(), now);
        self.issued(signed)
    }

    /// Checks `request` at `now`: its profile, the statements (or, for a
    /// STAR reissue, the signer's record of the order instead), the policy
    /// and, for a STAR order, the certificate's window against the order's
    /// terms. Returns the checked request and, for a STAR order's first
    /// issuance, the terms to record with it.
    fn check_request(
        &self,
        request: &IssueRequest,
        now: i64,
    ) -> Result<(Checked, Option<StarRecord>), Error> {
        let profile = self.select_profile(request)?;
        let book = || {
            self.star
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let record = match &request.star {
            None => None,
            Some(terms) if terms.reissue => {
                Some(book().check_reissue(request, &profile.name, now)?.clone())
            }
            Some(terms) => {
                self.check_statements(request, now)?;
                Some(book().check_first(request, terms, &profile.name, now)?)
            }
        };
        if record.is_none() {
            self.check_statements(request, now)?;
        }
        let keys = self.key_policy()?;
        let checked = policy::check(profile, &keys, request, now)?;
        if let Some(record) = &record {
            record.check_window(&request.order_id, &checked)?;
        }
        let first = request.star.as_ref().is_some_and(|t| !t.reissue);
        Ok((checked, record.filter(|_| first)))
    }

    /// The certificate already issued for `request` (digest `digest`), if
    /// any and if it verifies with the current issuing key: from the table
    /// of recent issuances, else, when the request may have been signed
    /// before the table's coverage (its `processing_since`, less
    /// [`recent::REPEAT_MARGIN_SECS`], is not after the newest issuance the
    /// table dropped), from the audit log read from that time on. A log
    /// that cannot be read fails the request rather than risk a second
    /// signature.
    fn already_issued(
        &self,
        request: &IssueRequest,
        digest: &str,
    ) -> Result<Option<SignedCertificate>, Error> {
        let (hit, complete_after) = {
            let table = self
                .recent
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            (table.get(digest).cloned(), table.complete_after())
        };
        if let Some(signed) = hit {
            // The log holds the same certificate: a miss there too.
            return Ok(Some(signed).filter(|s| self.signed_by_current_issuer(&s.der)));
        }
        let (Some(since), Some(complete_after)) = (request.processing_since, complete_after) else {
            return Ok(None);
        };
        let from = since.saturating_sub(recent::REPEAT_MARGIN_SECS);
        if from > complete_after {
            return Ok(None);
        }
        let Some((signed, time)) = recent::find_in_log(self.audit.path(), from, digest)? else {
            return Ok(None);
        };
        if !self.signed_by_current_issuer(&signed.der) {
            return Ok(None);
        }
        tracing::info!(
            target: "signer",
            order = %request.order_id,
            serial = %signed.serial_hex,
            "repeated request found in the audit log"
        );
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(digest.to_owned(), signed.clone(), time);
        Ok(Some(signed))
    }

    /// Whether `der` is a certificate whose signature verifies with the
    /// current issuing key: a certificate remembered from before the CA was
    /// replaced is not handed out with the new chain (a new one is issued).
    fn signed_by_current_issuer(&self, der: &[u8]) -> bool {
        use der::{Decode, Encode};
        let Ok(cert) = x509_cert::Certificate::from_der(der) else {
            return false;
        };
        let Ok(tbs) = cert.tbs_certificate().to_der() else {
            return false;
        };
        self.ca
            .issuer()
            .public_key
            .verify(&tbs, cert.signature().raw_bytes())
            .unwrap_or(false)
    }

    /// The reply for a signed leaf: it, its serial and validity, the chain.
    fn issued(&self, signed: SignedCertificate) -> Result<IssuedCertificate, Error> {
        let chain_pem = format!("{}{}", ca::pem(&signed.der)?, self.ca.chain_pem());
        Ok(IssuedCertificate {
            der: signed.der,
            serial_hex: signed.serial_hex,
            not_before: signed.not_before,
            not_after: signed.not_after,
            chain_pem,
            mtc_log_index: signed.mtc_log_index,
        })
    }

    /// The profile a request asks for (the default when it names none).
    fn select_profile(&self, request: &IssueRequest) -> Result<&Profile, Error> {
        match &request.profile {
            None => Ok(&self.profile),
            Some(name) => self
                .profiles
                .get(name)
                .ok_or_else(|| PolicyRefusal::UnknownProfile(name.clone()).into()),
        }
    }

    /// Builds, signs and audits a checked request. A lint failure is audited
    /// as a refusal by the caller. The audit record carries the certificate,
    /// and for an ACME issuance (`origin`) the order and the CSR's hash.
    pub fn sign_checked(
        &self,
        checked: Checked,
        requester: Option<&Peer>,
        detail: &str,
        origin: Option<Origin<'_>>,
        now: i64,
        rng: &mut dyn RngCore,
    ) -> Result<SignedCertificate, Error> {
        let names: Vec<String> = checked.sans().iter().map(ToString::to_string).collect();
        let profile = checked.profile().to_owned();
        let linted = tbs::build_leaf(checked, self.ca.issuer(), &self.urls, rng)?;
        let tbs_der = linted.tbs_der().to_vec();
        let mut signed = linted.sign(self.ca.key())?;
        // The log's index is reserved first and recorded in the audit
        // record, which is the log's write-ahead record (`mtc`).
        let reservation = match &self.mtc {
            Some(log) => Some(log.reserve(&signed.der)?),
            None => None,
        };
        self.audit.append(
            Operation::Issue,
            audit::Entry {
                serial: Some(signed.serial_hex.clone()),
                names,
                profile: Some(profile),

                tbs_der: Some(tbs_der),
                detail: Some(detail.to_owned()),
                order_id: origin.map(|o| o.order_id.to_owned()),
                request_sha256: origin.map(|o| o.request_sha256.to_owned()),
                certificate_der: Some(signed.der.clone()),
                star: origin.and_then(|o| o.star.cloned()),
                mtc_log_index: reservation.as_ref().map(mtc::Reservation::index),
                ..audit::Entry::from_requester(requester)
            },
            now,
        )?;
        if let Some(r) = reservation {
            // Crash tests aim at an RPC's issuance, not the start-up's.
            if let (Some(log), Some(_)) = (&self.mtc, origin) {
                mtc::fault(mtc::FAULT_AFTER_AUDIT, &log.fault_marker());
            }
            signed.mtc_log_index = Some(r.commit()?);
        }
        Ok(signed)
    }

    /// What the CA is, for the frontend: the chain served after each leaf
    /// (`cert_file`, then `chain_file`), the URLs put in leaves, the
    /// profiles, the validity ceiling and the CA's own notAfter.
    pub fn ca_info(&self) -> CaInfo {
        let profile_info = |p: &Profile| ProfileInfo {
            name: p.name.clone(),
            validity_secs: p.validity_secs,
            // At most policy::MAX_IDENTIFIERS (config validation).
            max_sans: u32::try_from(p.max_sans).unwrap_or(u32::MAX),
            extended_key_usages: std::iter::once("serverAuth")
                .chain(p.client_auth.then_some("clientAuth"))
                .map(str::to_owned)
                .collect(),
            authz_reuse_secs: p.authz_reuse_secs,
        };
        CaInfo {
            chain_pem: self.ca.chain_pem(),
            crl_url: self.urls.crl.clone(),
            ocsp_url: self.urls.ocsp.clone(),
            ca_issuers_url: self.urls.ca_issuers.clone(),
            default_profile: self.profile.name.clone(),
            // A BTreeMap: sorted by name.
            profiles: self.profiles.values().map(profile_info).collect(),
            max_validity_secs: self.max_validity_secs,
            ca_not_after: self.ca.not_after(),
            caa_max_age_secs: self.caa_max_age_secs,
        }
    }
}
