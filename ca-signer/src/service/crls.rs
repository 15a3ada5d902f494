//! Signing CRLs, with a CRL Number that never repeats.

use std::path::{Path, PathBuf};

use shared_proto::peer::Peer;
use shared_proto::signer::{CrlRequest, SignedCrl};

use super::Issuer;
use crate::audit::{self, Operation, Summary};
use crate::crl;
use crate::error::Error;
use crate::files::{self, CERT_MODE};

/// The last CRL Number used, persisted next to the audit log.
pub(super) struct CrlCounter {
    pub(super) last: u64,
    path: PathBuf,
}

impl CrlCounter {
    /// The counter kept in `crl-number` next to the audit log at
    /// `audit_path`, never behind the highest number the log records.
    pub(super) fn restore(audit_path: &Path, summary: &Summary) -> Result<Self, Error> {
        let path = audit_path.with_file_name("crl-number");
        let stored = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().parse::<u64>().map_err(|_| Error::ConfigValue {
                field: "audit.path",
                problem: format!("{} does not hold a CRL Number", path.display()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(Error::Read { path, source }),
        };
        // Never go backwards, even if the counter file was lost.
        let last = stored.max(summary.max_crl_number.unwrap_or(0));
        Ok(Self { last, path })
    }
}

impl Issuer {
    /// Signs a CRL listing `request.revoked` with the next CRL Number, valid
    /// from `now` for `[ca] crl_validity_hours`. The number is persisted
    /// before signing, so it never repeats.
    pub fn generate_crl(
        &self,
        request: &CrlRequest,
        requester: Option<&Peer>,
        now: i64,
    ) -> Result<SignedCrl, Error> {
        let mut counter = self
            .crl
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let number = counter.last + 1;
        let next_update = now + self.crl_validity_secs;
        let linted = match crl::build(self.ca.issuer(), &request.revoked, number, now, next_update)
        {
            Ok(l) => l,
            Err(e) => {
                if e.is_refusal() {
                    self.audit.append(
                        Operation::Refusal,
                        audit::Entry {
                            detail: Some(format!("crl reason={e}")),
                            ..audit::Entry::from_requester(requester)
                        },
                        now,
                    )?;
                }
                return Err(e);
            }
        };
        files::write_atomic(&counter.path, format!("{number}\n").as_bytes(), CERT_MODE)?;
        counter.last = number;
        let tbs_der = linted.tbs_der().to_vec();
        let signed = linted.sign(self.ca.key())?;
        self.audit.append(
            Operation::Crl,
            audit::Entry {
                subject: Some(self.ca.issuer().name.to_string()),

                tbs_der: Some(tbs_der),
                crl_number: Some(number),
                detail: Some(format!("entries={}", signed.entries)),
                ..audit::Entry::from_requester(requester)
            },
            now,
        )?;
        Ok(SignedCrl {
            der: signed.der,
            number,
            this_update: now,
            next_update,
        })
    }
}
