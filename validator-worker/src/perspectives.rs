//! Multi-perspective issuance corroboration (BR §3.2.2.9), the primary's
//! side: every validation is also asked of the configured remote
//! perspectives (other `validator-worker` processes with a
//! `[remote_perspective]`), concurrently with the primary's own probe; the
//! answers are counted with [`shared_proto::quorum::decide`] as they
//! arrive, and the outstanding requests are dropped (tarpc cancels them on
//! the perspective) as soon as the outcome is decided.
//!
//! A perspective is reached at a Unix socket or, on another host, over
//! TCP with mutual TLS ([`transport::connect_tls`]: the primary presents
//! its `[perspective_client]` certificate and checks the perspective's
//! certificate against the entry's `server_name`); [`connect`] is the one
//! place that knows the difference. A perspective whose certificate fails
//! the check does not corroborate, like one that is down.
//!
//! The primary does not verify the perspectives' signatures: it holds no
//! trust anchors for them. The signer does ([`Corroboration`]s travel in
//! the primary's statement); the primary only checks that each statement
//! claims the expected perspective and validation, so that a mismatch is
//! reported here rather than as a refusal at finalize.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use shared_proto::Identifier;
use shared_proto::deadline;
use shared_proto::quorum::{self, Decision, Outcome, Vote};
use shared_proto::statement::{Corroboration, SignedStatement};
use shared_proto::transport;
use shared_proto::validator::{
    ProblemKind, ValidateRequest, ValidationProblem, ValidationRecord, ValidatorRpcClient,
};

use shared_proto::tls::{ClientFiles, ClientTls};

use crate::config::{PerspectiveAddress, PerspectiveClient, PerspectiveConfig};
use crate::error::{Error, ProbeError};

/// The remote perspectives a primary asks, and how long it waits.
#[derive(Clone, Debug)]
pub struct Perspectives {
    list: Vec<Remote>,
    timeout: Duration,
}

/// One perspective and how to reach it.
#[derive(Clone, Debug)]
struct Remote {
    config: PerspectiveConfig,
    link: Link,
}

/// How a perspective is reached, its TLS settings loaded.
#[derive(Clone, Debug)]
pub enum Link {
    /// Its Unix socket.
    Unix(std::path::PathBuf),
    /// `host:port` with mutual TLS.
    Tls {
        /// `host:port`.
        addr: String,
        /// Our identity, the anchors, its expected name.
        tls: ClientTls,
    },
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(p) => write!(f, "unix:{}", p.display()),
            Self::Tls { addr, .. } => write!(f, "tcp:{addr}"),
        }
    }
}

impl Link {
    /// The link of `p`: a `tcp:` address takes the client identity of
    /// `client` and the entry's `server_name`.
    pub fn of(p: &PerspectiveConfig, client: Option<&ClientTls>) -> Result<Self, Error> {
        match &p.address {
            PerspectiveAddress::Unix(path) => Ok(Self::Unix(path.clone())),
            PerspectiveAddress::Tcp(addr) => {
                let (Some(client), Some(name)) = (client, p.server_name.as_deref()) else {
                    return Err(Error::InvalidConfig(
                        "a perspective at a tcp: address needs server_name and [perspective_client]",
                    ));
                };
                let tls = client
                    .for_server(name)
                    .map_err(|source| Error::PerspectiveTls {
                        name: p.name.clone(),
                        source,
                    })?;
                Ok(Self::Tls {
                    addr: addr.clone(),
                    tls,
                })
            }
        }
    }
}

/// Why one perspective did not corroborate.
#[derive(Debug)]
struct Failure {
    /// Its problem kind, when it answered with one.
    kind: Option<ProblemKind>,
    /// What went wrong.
    detail: String,
}

/// Connects to a perspective: the one place that knows how perspectives
/// are reached (a Unix socket, or TCP with mutual TLS), each within
/// [`deadline::CONNECT`].
pub async fn connect(link: &Link) -> Result<ValidatorRpcClient, String> {
    match link {
        Link::Unix(path) => {
            let stream = transport::connect(path)
                .await
                .map_err(|e| format!("cannot connect to {link}: {e}"))?;
            Ok(ValidatorRpcClient::new(Default::default(), transport::framed(stream)).spawn())
        }
        Link::Tls { addr, tls } => {
            let stream = transport::connect_tls(addr, tls)
                .await
                .map_err(|e| format!("cannot connect to {link}: {e}"))?;
            Ok(ValidatorRpcClient::new(Default::default(), transport::framed(stream)).spawn())
        }
    }
}

impl Perspectives {
    /// The perspectives of `list`, each given `timeout` to answer; the
    /// TLS files of `client` are read here, once, for the `tcp:` ones.
    pub fn new(
        list: Vec<PerspectiveConfig>,
        timeout: Duration,
        client: Option<&PerspectiveClient>,
    ) -> Result<Self, Error> {
        let client = match client {
            None => None,
            Some(c) => {
                // The server name is the first tcp: entry's; each entry
                // gets its own through `for_server`.
                let first = list
                    .iter()
                    .find_map(|p| p.server_name.clone())
                    .unwrap_or_else(|| "localhost".to_owned());
                let files = ClientFiles {
                    ca_file: c.ca_file.clone(),
                    cert_file: c.cert_file.clone(),
                    key_file: c.key_file.clone(),
                    server_name: first,
                };
                Some(
                    ClientTls::load(&files).map_err(|source| Error::PerspectiveTls {
                        name: "[perspective_client]".into(),
                        source,
                    })?,
                )
            }
        };
        let list = list
            .into_iter()
            .map(|config| {
                let link = Link::of(&config, client.as_ref())?;
                Ok(Remote { config, link })
            })
            .collect::<Result<_, Error>>()?;
        Ok(Self { list, timeout })
    }

    /// Whether any perspective is configured.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `call` under the perspective timeout; running out is a failure
    /// saying so.
    async fn bounded<T>(&self, call: impl Future<Output = T>) -> Result<T, Failure> {
        tokio::time::timeout(self.timeout, call)
            .await
            .map_err(|_| Failure {
                kind: None,
                detail: format!("no answer within {} ms", self.timeout.as_millis()),
            })
    }

    /// Asks one perspective to validate `request`.
    async fn ask(&self, r: &Remote, request: &ValidateRequest) -> Result<Corroboration, Failure> {
        let p = &r.config;
        let call = async {
            let client = connect(&r.link)
                .await
                .map_err(|detail| Failure { kind: None, detail })?;
            client
                .validate_challenge(deadline::context_with(self.timeout), request.clone())
                .await
                .map_err(no_answer)
        };
        let answer = self.bounded(call).await??;
        match answer {
            Ok(record) => corroboration_of(p, request, record),
            Err(ValidationProblem { kind, detail }) => Err(Failure {
                kind: Some(kind),
                detail: format!("{}: {detail}", kind.acme_type()),
            }),
        }
    }

    /// Asks every perspective to validate `request` and waits until the
    /// quorum is decided: the corroborations received when it is met,
    /// else an [`ProbeError::Uncorroborated`] naming every perspective
    /// that did not corroborate. Requests still running then are
    /// cancelled.
    pub async fn corroborate(
        &self,
        request: &ValidateRequest,
    ) -> Result<Vec<Corroboration>, ProbeError> {
        self.gather(&request.identifier, |p| self.ask(p, request))
            .await
    }

    /// Has every perspective look CAA up again for its statement among
    /// `signed`'s corroborations (`recheck_caa`), or, with `below`, sign a
    /// statement for that name below the identifier with a CAA check of it
    /// (`caa_for_subdomain`); the same quorum, the same early end.
    pub async fn recheck(
        &self,
        signed: &SignedStatement,
        below: Option<&Identifier>,
    ) -> Result<Vec<Corroboration>, ProbeError> {
        let target = below.unwrap_or(&signed.statement.identifier);
        self.gather(target, |p| self.ask_recheck(p, signed, below))
            .await
    }

    /// Asks one perspective to re-check CAA for its own statement.
    async fn ask_recheck(
        &self,
        r: &Remote,
        signed: &SignedStatement,
        below: Option<&Identifier>,
    ) -> Result<Corroboration, Failure> {
        let p = &r.config;
        let theirs = signed
            .corroborations
            .iter()
            .find(|c| {
                c.statement
                    .perspective
                    .as_ref()
                    .is_some_and(|q| q.name == p.name)
            })
            .ok_or_else(|| Failure {
                kind: None,
                detail: "no statement of this validation to re-check".into(),
            })?;
        let theirs = SignedStatement {
            statement: theirs.statement.clone(),
            signature: theirs.signature.clone(),
            corroborations: Vec::new(),
        };
        let call = async {
            let client = connect(&r.link)
                .await
                .map_err(|detail| Failure { kind: None, detail })?;
            let ctx = deadline::context_with(self.timeout);
            match below {
                None => client.recheck_caa(ctx, theirs).await,
                Some(name) => client.caa_for_subdomain(ctx, theirs, name.clone()).await,
            }
            .map_err(no_answer)
        };
        let answer = self.bounded(call).await??;
        match answer {
            Ok(new) => {
                let target = below.unwrap_or(&signed.statement.identifier);
                if new.statement.perspective.as_ref().map(|q| q.name.as_str())
                    != Some(p.name.as_str())
                    || new.statement.identifier != *target
                {
                    return Err(Failure {
                        kind: None,
                        detail: "its answer is not a re-check of its statement".into(),
                    });
                }
                Ok(new.into())
            }
            Err(ValidationProblem { kind, detail }) => Err(Failure {
                kind: Some(kind),
                detail: format!("{}: {detail}", kind.acme_type()),
            }),
        }
    }

    /// Runs `ask` for every perspective concurrently and decides the
    /// quorum as the answers arrive.
    async fn gather<'a, F, Fut>(
        &'a self,
        identifier: &Identifier,
        ask: F,
    ) -> Result<Vec<Corroboration>, ProbeError>
    where
        F: Fn(&'a Remote) -> Fut,
        Fut: Future<Output = Result<Corroboration, Failure>>,
    {
        let mut outcomes = vec![Outcome::Pending; self.list.len()];
        let mut failures: Vec<Option<Failure>> = self.list.iter().map(|_| None).collect();
        let mut got = Vec::new();
        let mut pending: FuturesUnordered<_> = self
            .list
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let answer = ask(p);
                async move { (i, answer.await) }
            })
            .collect();
        loop {
            let votes: Vec<Vote<'_>> = self
                .list
                .iter()
                .zip(&outcomes)
                .map(|(p, &outcome)| Vote {
                    rir: &p.config.rir,
                    outcome,
                })
                .collect();
            match quorum::decide(&votes) {
                Decision::Met => {
                    let asked = self.list.len();
                    let answered = outcomes.iter().filter(|o| **o != Outcome::Pending).count();
                    tracing::info!(
                        identifier = %identifier,
                        corroborated = got.len(),
                        asked,
                        cancelled = asked - answered,
                        "multi-perspective quorum met"
                    );
                    return Ok(got);
                }
                Decision::Failed => {
                    let detail = describe(&self.list, &outcomes, &failures);
                    tracing::info!(identifier = %identifier, %detail, "multi-perspective quorum failed");
                    let kind = failures
                        .iter()
                        .flatten()
                        .find_map(|f| f.kind)
                        .unwrap_or(ProblemKind::ServerInternal);
                    return Err(ProbeError::Uncorroborated { kind, detail });
                }
                Decision::Undecided => {}
            }
            // Undecided means some perspective is still pending.
            let Some((i, result)) = pending.next().await else {
                return Err(ProbeError::Internal("multi-perspective quorum undecided"));
            };
            match result {
                Ok(c) => {
                    outcomes[i] = Outcome::Corroborated;
                    got.push(c);
                }
                Err(f) => {
                    tracing::info!(perspective = %self.list[i].config.name, detail = %f.detail, "perspective did not corroborate");
                    outcomes[i] = Outcome::NotCorroborated;
                    failures[i] = Some(f);
                }
            }
        }
    }
}

/// The perspective's statement from its record, if it claims the
/// perspective and the validation asked for.
fn corroboration_of(
    p: &PerspectiveConfig,
    request: &ValidateRequest,
    record: ValidationRecord,
) -> Result<Corroboration, Failure> {
    let bad = |why: &str| Failure {
        kind: None,
        detail: format!("its answer {why}"),
    };
    let signed = record
        .statement
        .ok_or_else(|| bad("carries no signed statement"))?;
    let st = &signed.statement;
    if st.perspective.as_ref().map(|q| q.name.as_str()) != Some(p.name.as_str()) {
        return Err(bad("is not signed as this perspective"));
    }
    if st.identifier != request.identifier
        || st.account_uri != request.account_uri
        || st.challenge_type != request.challenge_type
    {
        return Err(bad("is a statement of another validation"));
    }
    Ok(signed.into())
}

/// `name (RIR): why` for each perspective that did not corroborate.
fn describe(list: &[Remote], outcomes: &[Outcome], failures: &[Option<Failure>]) -> String {
    let failed = list
        .iter()
        .zip(outcomes)
        .zip(failures)
        .filter(|((_, o), _)| **o == Outcome::NotCorroborated)
        .map(|((p, _), f)| {
            let why = f.as_ref().map_or("failed", |f| f.detail.as_str());
            format!("{} ({}): {why}", p.config.name, p.config.rir)
        })
        .collect::<Vec<_>>();
    let n = list.len();
    if failed.is_empty() {
        return format!(
            "the {n} remote perspectives cannot give corroboration from {} distinct RIRs",
            quorum::distinct_rirs_required(n)
        );
    }
    format!(
        "{} of {n} remote perspectives did not corroborate (the quorum allows at most {}, \
         and needs corroboration from {} distinct RIRs): {}",
        failed.len(),
        quorum::max_non_corroborating(n),
        quorum::distinct_rirs_required(n),
        failed.join("; ")
    )
}

/// A call that reached no answer (transport or RPC error).
fn no_answer(e: impl std::fmt::Display) -> Failure {
    Failure {
        kind: None,
        detail: format!("no answer: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp_entry(name: &str, server_name: &str) -> PerspectiveConfig {
        PerspectiveConfig {
            name: name.into(),
            rir: "ARIN".into(),
            address: PerspectiveAddress::Tcp(format!("{name}.ca.internal:4710")),
            server_name: Some(server_name.into()),
        }
    }

    /// The client files are read once, at start-up: a missing one stops
    /// the validator with its path; readable ones give each `tcp:` entry
    /// its own expected name.
    #[test]
    fn client_files_are_loaded_once_and_named_when_missing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let client = PerspectiveClient {
            ca_file: dir.path().join("missing-ca.pem"),
            cert_file: dir.path().join("primary.crt"),
            key_file: dir.path().join("primary.key"),
        };
        let err = Perspectives::new(
            vec![tcp_entry("p1", "p1.ca.internal")],
            Duration::from_secs(1),
            Some(&client),
        )
        .expect_err("missing CA file");
        assert!(err.to_string().contains("missing-ca.pem"), "{err}");

        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf =
            rcgen::CertificateParams::new(vec!["primary.ca.internal".to_owned()]).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = leaf.signed_by(&key, &issuer).expect("leaf");
        std::fs::write(dir.path().join("ca.pem"), ca_pem).expect("write");
        std::fs::write(&client.cert_file, cert.pem()).expect("write");
        std::fs::write(&client.key_file, key.serialize_pem()).expect("write");
        let client = PerspectiveClient {
            ca_file: dir.path().join("ca.pem"),
            ..client
        };
        let unix = PerspectiveConfig {
            name: "p3".into(),
            rir: "RIPE".into(),
            address: PerspectiveAddress::Unix("/run/p3.sock".into()),
            server_name: None,
        };
        let ps = Perspectives::new(
            vec![
                tcp_entry("p1", "p1.ca.internal"),
                tcp_entry("p2", "10.0.0.2"),
                unix,
            ],
            Duration::from_secs(1),
            Some(&client),
        )
        .expect("loaded");
        let links: Vec<String> = ps.list.iter().map(|r| r.link.to_string()).collect();
        assert_eq!(
            links,
            [
                "tcp:p1.ca.internal:4710",
                "tcp:p2.ca.internal:4710",
                "unix:/run/p3.sock"
            ]
        );
        // A tcp: entry without the client settings is refused.
        assert!(
            Perspectives::new(
                vec![tcp_entry("p1", "p1.ca.internal")],
                Duration::from_secs(1),
                None
            )
            .is_err()
        );
    }
}
