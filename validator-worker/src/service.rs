//! `impl ValidatorRpc`: checks the request, dispatches by challenge type, races
//! the probe against the probe deadline and logs the outcome.

use std::sync::Arc;

use shared_proto::IdentifierKind;
use shared_proto::statement::{
    CaaCheck, Perspective, SignedStatement, Statement, StatementKey, capped_expiry,
};
use shared_proto::validator::{
    ChallengeType, ValidateRequest, ValidationProblem, ValidationRecord, ValidatorInfo,
    ValidatorMetrics, ValidatorRpc,
};
use tarpc::context;

use crate::error::{ProbeError, RequestError};
use crate::perspectives::Perspectives;
use crate::probe::Prober;
use crate::{caa, dns01, http01, tls_alpn01};

/// Shortest token accepted (RFC 8555 §8.1: at least 128 bits of entropy,
/// which is 22 base64url characters).
pub const MIN_TOKEN_LEN: usize = 22;
/// Longest token or key authorization accepted.
pub const MAX_FIELD_LEN: usize = 512;

/// The validator service; cheap to clone (one per request).
#[derive(Clone)]
pub struct ValidatorService {
    prober: Arc<Prober>,
    statement_key: Option<Arc<StatementKey>>,
    /// As a remote perspective: the name and RIR label its statements carry.
    identity: Option<Perspective>,
    /// As a primary: the remote perspectives that must corroborate.
    perspectives: Option<Arc<Perspectives>>,
}

impl std::fmt::Debug for ValidatorService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValidatorService")
            .field("prober", &self.prober)
            .field("signs_statements", &self.statement_key.is_some())
            .finish()
    }
}

impl ValidatorService {
    /// A service probing with `prober` that signs no statements.
    pub fn new(prober: Arc<Prober>) -> Self {
        Self {
            prober,
            statement_key: None,
            identity: None,
            perspectives: None,
        }
    }

    /// Serves as the remote perspective `identity`: its statements name it.
    pub fn as_perspective(mut self, identity: Perspective) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Has every validation corroborated by `perspectives` (none: no
    /// corroboration).
    pub fn with_perspectives(mut self, perspectives: Perspectives) -> Self {
        self.perspectives = (!perspectives.is_empty()).then(|| Arc::new(perspectives));
        self
    }

    /// Signs a statement with `key` after every successful probe.
    pub fn with_statement_key(mut self, key: Arc<StatementKey>) -> Self {
        self.statement_key = Some(key);
        self
    }

    fn attach_statement(
        &self,
        request: &ValidateRequest,
        (mut record, caa): (ValidationRecord, CaaCheck),
    ) -> Result<ValidationRecord, ProbeError> {
        let Some(key) = &self.statement_key else {
            return Ok(record);
        };
        let mut id = [0u8; 16];
        openssl::rand::rand_bytes(&mut id).map_err(|e| {
            tracing::error!(error = %e, "no randomness for a statement id");
            ProbeError::Internal("cannot sign the validation statement")
        })?;
        let statement = Statement {
            id: id.iter().map(|b| format!("{b:02x}")).collect(),
            account_uri: request.account_uri.clone(),
            identifier: request.identifier.clone(),
            challenge_type: request.challenge_type,
            validated_at: record.validated_at,
            // The frontend asks for the authorization's expiry; the
            // validator decides how long its word lasts.
            // dns-persist-01: never past the record's persistUntil.
            expires: capped_expiry(
                record.validated_at,
                request.authz_expires,
                i64::from(self.prober.config.statement_max_age_secs),
            )
            .min(record.persist_until.unwrap_or(i64::MAX)),
            // `check_request` allowed it: dns-01, a registrable DNS name.
            covers_subdomains: request.covers_subdomains,
            caa: Some(caa),
            perspective: self.identity.clone(),
        };
        let signed = key.sign(statement).map_err(|e| {
            tracing::error!(error = %e, "statement signing failed");
            ProbeError::Internal("cannot sign the validation statement")
        })?;
        record.statement = Some(signed);
        Ok(record)
    }

    /// Validates one challenge: request checks, the probe, the deadline.
    pub async fn validate(
        &self,
        request: &ValidateRequest,
    ) -> Result<ValidationRecord, ValidationProblem> {
        let started = std::time::Instant::now();
        let result = match check_request(request) {
            Ok(()) => self.probe_corroborated(request).await,
            Err(e) => Err(e.into()),
        };
        match &result {
            Ok(_) => tracing::info!(
                identifier = %request.identifier,
                challenge = request.challenge_type.as_str(),
                result = "valid",
                "probe finished"
            ),
            Err(e) => tracing::info!(
                identifier = %request.identifier,
                challenge = request.challenge_type.as_str(),
                result = e.kind().acme_type(),
                detail = %e,
                "probe finished"
            ),
        }
        let result = result.map_err(ValidationProblem::from);
        crate::metrics::probed(
            request.challenge_type,
            result.as_ref().err().map(|p| p.kind),
            started.elapsed(),
        );
        result
    }

    /// The probe and, on a primary with remote perspectives, their
    /// corroboration, side by side: whichever fails first ends both; the
    /// statement carries the perspectives' statements.
    async fn probe_corroborated(
        &self,
        request: &ValidateRequest,
    ) -> Result<ValidationRecord, ProbeError> {
        let Some(perspectives) = &self.perspectives else {
            return self
                .probe(request)
                .await
                .and_then(|record| self.attach_statement(request, record));
        };
        let own = self.probe(request);
        let remote = perspectives.corroborate(request);
        tokio::pin!(own, remote);
        let (own, corroborations) = tokio::select! {
            own = &mut own => (own?, remote.await?),
            remote = &mut remote => {
                let corroborations = remote?;
                (own.await?, corroborations)
            }
        };
        let mut record = self.attach_statement(request, own)?;
        if let Some(signed) = &mut record.statement {
            signed.corroborations = corroborations;
        }
        Ok(record)
    }

    /// The probe and the CAA check (RFC 8659), side by side under the
    /// probe deadline; a failed probe is reported before a CAA refusal.
    async fn probe(
        &self,
        request: &ValidateRequest,
    ) -> Result<(ValidationRecord, CaaCheck), ProbeError> {
        let prober = &*self.prober;
        let id = &request.identifier;
        let key_auth = request.key_authorization.as_str();
        // Each challenge type's probe and the CAA check are boxed: the
        // request's future (spawned per RPC) would otherwise hold the largest
        // of all of them inline, ≈ 17 KB, allocated and moved for every
        // validation whichever type it is.
        let probe = async {
            match request.challenge_type {
                ChallengeType::Http01 => {
                    Box::pin(http01::validate(prober, id, &request.token, key_auth)).await
                }
                ChallengeType::Dns01 => Box::pin(dns01::validate(prober, id, key_auth)).await,
                ChallengeType::TlsAlpn01 => {
                    Box::pin(tls_alpn01::validate(prober, id, key_auth)).await
                }
                ChallengeType::OnionCsr01 => crate::onion::validate(
                    id,
                    &request.token,
                    key_auth,
                    request.onion_csr.as_deref(),
                ),
                ChallengeType::DnsPersist01 => {
                    Box::pin(crate::dns_persist::validate(
                        prober,
                        id,
                        &request.account_uri,
                        request.persist.as_ref(),
                    ))
                    .await
                }
                ChallengeType::DnsAccount01 => {
                    Box::pin(dns01::validate_account(
                        prober,
                        id,
                        key_auth,
                        &request.account_uri,
                    ))
                    .await
                }
            }
        };
        let both = async {
            let (record, caa) = tokio::join!(
                probe,
                Box::pin(caa::check(
                    prober,
                    id,
                    &request.account_uri,
                    request.challenge_type
                ))
            );
            Ok::<_, ProbeError>((record?, caa?))
        };
        match tokio::time::timeout(prober.config.probe_timeout(), both).await {
            Ok(result) => result,
            Err(_) => Err(ProbeError::Timeout {
                challenge: request.challenge_type,
                identifier: id.to_string(),
                after_ms: prober.config.probe_timeout_ms,
            }),
        }
    }
}

impl ValidatorRpc for ValidatorService {
    async fn validate_challenge(
        self,
        _: context::Context,
        request: ValidateRequest,
    ) -> Result<ValidationRecord, ValidationProblem> {
        self.validate(&request).await
    }

    async fn metrics(self, _: context::Context) -> ValidatorMetrics {
        crate::metrics::snapshot()
    }

    async fn validator_info(self, _: context::Context) -> ValidatorInfo {
        ValidatorInfo {
            caa_identities: self.prober.config.caa_identities.clone(),
            dns_persist_issuer_domain: self.prober.config.dns_persist_issuer_domain.clone(),
            dns_persist_form: self.prober.config.dns_persist_form,
            tor_connectivity: self.prober.config.tor_socks_proxy.is_some(),
        }
    }

    async fn recheck_caa(
        self,
        _: context::Context,
        statement: SignedStatement,
    ) -> Result<SignedStatement, ValidationProblem> {
        self.recheck(statement).await
    }

    async fn caa_for_subdomain(
        self,
        _: context::Context,
        statement: SignedStatement,
        name: shared_proto::Identifier,
    ) -> Result<SignedStatement, ValidationProblem> {
        self.recheck_below(statement, name).await
    }
}

impl ValidatorService {
    /// Looks CAA up again for `signed`, a statement this validator made
    /// that has not expired, and signs it again with the new CAA time (same
    /// id, identifier, account, method, validation time and expiry). A
    /// record set that now forbids issuance is a `caa` problem.
    pub async fn recheck(
        &self,
        signed: SignedStatement,
    ) -> Result<SignedStatement, ValidationProblem> {
        self.recheck_for(signed, None).await
    }

    /// The statement for `name`, below the identifier of `signed` (which
    /// must cover subdomains), with a CAA check of `name` itself; see
    /// `ValidatorRpc::caa_for_subdomain`.
    pub async fn recheck_below(
        &self,
        signed: SignedStatement,
        name: shared_proto::Identifier,
    ) -> Result<SignedStatement, ValidationProblem> {
        self.recheck_for(signed, Some(name)).await
    }

    async fn recheck_for(
        &self,
        signed: SignedStatement,
        below: Option<shared_proto::Identifier>,
    ) -> Result<SignedStatement, ValidationProblem> {
        let st = &signed.statement;
        let refuse = |reason| ProbeError::Recheck {
            id: st.id.clone(),
            reason,
        };
        let target = below.as_ref().unwrap_or(&st.identifier);
        let result = async {
            let key = self
                .statement_key
                .as_ref()
                .ok_or(ProbeError::Internal("this validator signs no statements"))?;
            if !key.signed_this(&signed) {
                return Err(refuse("it was not signed by this validator"));
            }
            let now = crate::now_unix();
            if now >= st.expires {
                return Err(refuse("it has expired"));
            }
            if let Some(name) = &below
                && (!st.covers_subdomains
                    || *name == st.identifier
                    || !st.covers(name, &st.account_uri, now))
            {
                return Err(refuse("it does not cover that name as a subdomain"));
            }
            let caa = tokio::time::timeout(
                self.prober.config.probe_timeout(),
                caa::check(&self.prober, target, &st.account_uri, st.challenge_type),
            )
            .await
            .map_err(|_| ProbeError::Timeout {
                challenge: st.challenge_type,
                identifier: target.to_string(),
                after_ms: self.prober.config.probe_timeout_ms,
            })??;
            let mut statement = st.clone();
            statement.caa = Some(caa);
            if let Some(name) = &below {
                statement.identifier = name.clone();
                statement.covers_subdomains = false;
                statement.id = format!("{}/{}", st.id, name.value);
            }
            let mut resigned = key.sign(statement).map_err(|e| {
                tracing::error!(error = %e, "statement signing failed");
                ProbeError::Internal("cannot sign the validation statement")
            })?;
            // BR §3.2.2.9: the remote perspectives check CAA again too,
            // under the same quorum.
            resigned.corroborations = match &self.perspectives {
                Some(perspectives) => perspectives.recheck(&signed, below.as_ref()).await?,
                None => signed.corroborations.clone(),
            };
            Ok(resigned)
        }
        .await;
        match &result {
            Ok(_) => {
                tracing::info!(identifier = %target, statement = %st.id, result = "valid", "CAA re-checked")
            }
            Err(e) => {
                tracing::info!(identifier = %target, statement = %st.id, result = e.kind().acme_type(), detail = %e, "CAA re-checked")
            }
        }
        result.map_err(ValidationProblem::from)
    }
}

fn is_base64url(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 8555 §8.1 shape checks on the token and the key authorization.
pub fn check_request(request: &ValidateRequest) -> Result<(), RequestError> {
    let token = request.token.as_str();
    if token.len() < MIN_TOKEN_LEN || token.len() > MAX_FIELD_LEN || !is_base64url(token) {
        return Err(RequestError::BadToken);
    }
    let key_auth = request.key_authorization.as_str();
    let thumbprint = key_auth
        .strip_prefix(token)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(RequestError::BadKeyAuthorization)?;
    if thumbprint.is_empty() || key_auth.len() > MAX_FIELD_LEN || !is_base64url(thumbprint) {
        return Err(RequestError::BadKeyAuthorization);
    }
    if request.covers_subdomains {
        let refuse = |reason| {
            Err(RequestError::Subdomains {
                identifier: request.identifier.to_string(),
                reason,
            })
        };
        if !request.challenge_type.is_dns_change() {
            return refuse(
                "only a DNS change (dns-01, dns-account-01) proves control of the names below a domain",
            );
        }
        if request.identifier.kind != IdentifierKind::Dns || request.identifier.is_wildcard() {
            return refuse("only a DNS name without a wildcard label has subdomains");
        }
        if shared_proto::identifier::is_public_suffix(&request.identifier.value) {
            return refuse("it is a public suffix");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use shared_proto::Identifier;

    use super::*;

    fn request(token: &str, key_auth: &str) -> ValidateRequest {
        ValidateRequest {
            identifier: Identifier::dns("a.example"),
            challenge_type: ChallengeType::Http01,
            token: token.into(),
            key_authorization: key_auth.into(),
            account_uri: "https://ca.example/acct/1".into(),
            authz_expires: 0,
            covers_subdomains: false,
            onion_csr: None,
            persist: None,
        }
    }

    #[test]
    fn a_validation_future_is_small() {
        // The RPC server spawns this future for every validation: keep the
        // probes' large futures out of it (they are boxed, see `probe`).
        let mut c = crate::config::Config::new("x.sock", vec![0]);
        c.dns_resolver_addr = Some("127.0.0.1:9".parse().expect("addr"));
        let service = ValidatorService::new(Arc::new(Prober::new(c).expect("prober")));
        let ctx = tarpc::context::current();
        let future = service.validate_challenge(ctx, request("t", "t.k"));
        let size = std::mem::size_of_val(&future);
        assert!(size <= 4096, "the validation future is {size} bytes");
    }

    #[test]
    fn subdomain_coverage_only_for_dns01_on_a_registrable_name() {
        let t = "abcdefghijklmnopqrstuv";
        let mut r = request(t, &format!("{t}.thumb-_1"));
        r.covers_subdomains = true;
        assert!(matches!(
            check_request(&r),
            Err(RequestError::Subdomains { .. })
        ));
        r.challenge_type = ChallengeType::Dns01;
        r.identifier = Identifier::dns("example.org");
        assert!(check_request(&r).is_ok());
        for refused in ["co.uk", "*.example.org"] {
            r.identifier = Identifier::dns(refused);
            assert!(
                matches!(check_request(&r), Err(RequestError::Subdomains { .. })),
                "{refused}"
            );
        }
    }

    #[test]
    fn request_checks() {
        let t = "abcdefghijklmnopqrstuv";
        assert!(check_request(&request(t, &format!("{t}.thumb-_1"))).is_ok());
        for (token, ka) in [
            ("short", "short.x".to_owned()),
            (
                "abcdefghijklmnopqrstu/",
                "abcdefghijklmnopqrstu/.x".to_owned(),
            ),
            (
                "abcdefghijklmnopqrstu=",
                "abcdefghijklmnopqrstu=.x".to_owned(),
            ),
        ] {
            assert!(
                matches!(
                    check_request(&request(token, &ka)),
                    Err(RequestError::BadToken)
                ),
                "{token}"
            );
        }
        for ka in [
            t.to_owned(),
            format!("{t}."),
            format!("{t}x.thumb"),
            format!("other.{t}"),
            format!("{t}.th umb"),
            format!("{t}.thumb\r\nX: y"),
        ] {
            assert!(
                matches!(
                    check_request(&request(t, &ka)),
                    Err(RequestError::BadKeyAuthorization)
                ),
                "{ka:?}"
            );
        }
    }
}
