//! Validator statements: the signer issues only for names a fresh
//! statement from the validator covers, corroborated, when remote
//! perspectives are configured, by a quorum of them (BR §3.2.2.9).

use shared_proto::Identifier;
use shared_proto::quorum::{self, Decision, Outcome, Vote};
use shared_proto::signer::IssueRequest;
use shared_proto::statement::{CaaCheck, SignedStatement, Statement, StatementVerifier};

use super::Issuer;
use crate::error::{Error, PolicyRefusal};

/// A remote perspective the signer trusts (`[[perspectives]]`).
pub(crate) struct TrustedKey {
    /// Its name.
    pub(crate) name: String,
    /// Its RIR label, as configured here.
    pub(crate) rir: String,
    /// Its statement key.
    pub(crate) key: StatementVerifier,
}

impl Issuer {
    /// Whether the corroborations `signed` carries meet the quorum over
    /// every trusted perspective for name `id`: each perspective counts
    /// when a statement carries its name, verifies with its key, covers
    /// `id` for the account by the same method, and is fresh by the
    /// signer's measure, its CAA check too (`caa_max_age_secs`, of `id`
    /// itself). Else why not, naming each perspective that did
    /// not corroborate.
    fn corroborated(
        &self,
        signed: &SignedStatement,
        id: &Identifier,
        account_uri: &str,
        now: i64,
    ) -> Result<(), String> {
        if self.perspectives.is_empty() {
            return Ok(());
        }
        let mut outcomes = Vec::with_capacity(self.perspectives.len());
        let mut why_not = Vec::new();
        for p in &self.perspectives {
            let theirs = signed.corroborations.iter().filter(|c| {
                c.statement
                    .perspective
                    .as_ref()
                    .is_some_and(|q| q.name == p.name)
            });
            let mut reason = "no statement";
            let mut ok = false;
            for c in theirs {
                let st = &c.statement;
                if !p.key.verifies(c) {
                    reason = "a statement that does not verify with its key";
                } else if st.challenge_type != signed.statement.challenge_type
                    || !st.covers(id, account_uri, now)
                {
                    reason = "a statement of another validation";
                } else if !st.is_fresh(now, self.statement_max_age_secs) {
                    reason = "a stale statement";
                } else if !((st.identifier == *id
                    || !matches!(st.caa, Some(CaaCheck::Checked { .. })))
                    && st.caa_is_fresh(now, self.caa_max_age_secs))
                {
                    // The perspectives' CAA checks count like the
                    // primary's: recent, and of this very name.
                    reason = "a statement without a recent CAA check of this name";
                } else {
                    ok = true;
                    break;
                }
            }
            outcomes.push(if ok {
                Outcome::Corroborated
            } else {
                why_not.push(format!("{} ({}): {reason}", p.name, p.rir));
                Outcome::NotCorroborated
            });
        }
        let votes: Vec<Vote<'_>> = self
            .perspectives
            .iter()
            .zip(outcomes)
            .map(|(p, outcome)| Vote {
                rir: &p.rir,
                outcome,
            })
            .collect();
        if quorum::decide(&votes) == Decision::Met {
            return Ok(());
        }
        let unknown: Vec<&str> = signed
            .corroborations
            .iter()
            .filter_map(|c| c.statement.perspective.as_ref())
            .map(|q| q.name.as_str())
            .filter(|name| !self.perspectives.iter().any(|p| p.name == *name))
            .collect();
        let n = self.perspectives.len();
        let mut detail = format!(
            "{} of {n} trusted perspectives corroborate (at most {} may not, from at least {} distinct RIRs)",
            n - why_not.len(),
            quorum::max_non_corroborating(n),
            quorum::distinct_rirs_required(n),
        );
        if !why_not.is_empty() {
            detail.push_str(&format!("; not corroborated by {}", why_not.join("; ")));
        }
        if !unknown.is_empty() {
            detail.push_str(&format!(
                "; ignored statements of unknown perspectives {}",
                unknown.join(", ")
            ));
        }
        Err(detail)
    }

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
        let valid: Vec<&SignedStatement> = request
            .statements
            .iter()
            .filter(|s| match verifier.verify(s) {
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(target: "signer", error = %e, "ignoring a statement that does not verify");
                    false
                }
            })
            .collect();
        for id in &request.identifiers {
            let covering = valid
                .iter()
                .filter(|s| s.statement.covers(id, &request.account_uri, now));
            let mut newest_stale: Option<&Statement> = None;
            let mut stale_caa: Option<&Statement> = None;
            let mut uncorroborated: Option<String> = None;
            let mut fresh = false;
            for signed in covering {
                let st = &signed.statement;
                if st.is_fresh(now, self.statement_max_age_secs) {
                    // BR §3.2.2.9: the remote perspectives' quorum.
                    if let Err(detail) = self.corroborated(signed, id, &request.account_uri, now) {
                        uncorroborated = Some(detail);
                        continue;
                    }
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
            if let Some(detail) = uncorroborated {
                return Err(PolicyRefusal::Uncorroborated {
                    name: id.to_string(),
                    detail,
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
