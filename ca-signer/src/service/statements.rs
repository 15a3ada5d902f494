//! Validator statements: the signer issues only for names a fresh
//! statement from the validator covers.

use shared_proto::signer::IssueRequest;
use shared_proto::statement::{CaaCheck, Statement};

use super::Issuer;
use crate::error::{Error, PolicyRefusal};

impl Issuer {
    /// With a validator key configured: every identifier must be covered by
    /// a statement that verifies with it, for this account, unexpired (a
    /// wildcard by a dns-01 statement), and fresh by the signer's own
    /// measure (`[policy] statement_max_age_secs`; see
    /// [`Statement::is_fresh`]). The frontend can pass statements along but
    /// cannot make them, nor make them last. A name covered only by stale statements is refused
    /// with [`PolicyRefusal::StaleStatement`], naming the newest of them;
    /// one whose statement's CAA check is missing or older than `[policy]
    /// caa_max_age_secs` with [`PolicyRefusal::StaleCaa`].
    pub fn check_statements(&self, request: &IssueRequest, now: i64) -> Result<(), Error> {
        let Some(verifier) = &self.statements else {
            return Ok(());
        };
        let valid: Vec<&Statement> = request
            .statements
            .iter()
            .filter_map(|s| match verifier.verify(s) {
                Ok(st) => Some(st),
                Err(e) => {
                    tracing::warn!(target: "signer", error = %e, "ignoring a statement that does not verify");
                    None
                }
            })
            .collect();
        for id in &request.identifiers {
            let covering = valid
                .iter()
                .filter(|st| st.covers(id, &request.account_uri, now));
            let mut newest_stale: Option<&Statement> = None;
            let mut stale_caa: Option<&Statement> = None;
            let mut fresh = false;
            for st in covering {
                if st.is_fresh(now, self.statement_max_age_secs) {
                    // RFC 8659 and the Baseline Requirements: the CAA
                    // check behind the statement must be recent too, and
                    // be a check of this very name: a subdomain
                    // statement's check (RFC 9444) was of its ancestor,
                    // whose CAA a name below may override.
                    let caa_of_this_name =
                        st.identifier == *id || !matches!(st.caa, Some(CaaCheck::Checked { .. }));
                    if caa_of_this_name && st.caa_is_fresh(now, self.caa_max_age_secs) {
                        fresh = true;
                        break;
                    }
                    stale_caa = Some(st);
                    continue;
                }
                if newest_stale.is_none_or(|n| st.validated_at > n.validated_at) {
                    newest_stale = Some(st);
                }
            }
            if fresh {
                continue;
            }
            if let Some(st) = stale_caa {
                return Err(PolicyRefusal::StaleCaa {
                    name: id.to_string(),
                    statement: st.id.clone(),
                    // A subdomain statement's check was of another name.
                    checked_at: st.caa_checked_at().filter(|_| st.identifier == *id),
                    max_age_secs: self.caa_max_age_secs,
                    now,
                }
                .into());
            }
            return Err(match newest_stale {
                Some(st) => PolicyRefusal::StaleStatement {
                    name: id.to_string(),
                    statement: st.id.clone(),
                    validated_at: st.validated_at,
                    max_age_secs: self.statement_max_age_secs,
                    now,
                }
                .into(),
                None => PolicyRefusal::Unvalidated(id.to_string()).into(),
            });
        }
        Ok(())
    }
}
