//! End-to-end tests of Akāmu: the real `acme-frontend`, `ca-signer` and
//! `validator-worker` binaries on real sockets, judged by third-party clients
//! (instant-acme, certbot), openssl, and hand-built requests.
//!
//! Build the binaries first: `cargo build --workspace --bins`, then
//! `cargo test -p tests`. Each test starts its own CA in its own temp dir;
//! set `AKAMU_E2E_SHOW_OUTPUT=1` to see the CA's output even when a test
//! passes (it is always printed when a test fails).

/// Harness: spawn the CA, a DNS server, an http-01 token server, clients.
mod support;

/// A user's happy paths: account, order, http-01 and dns-01, finalize,
/// download, and `openssl verify` of the chain.
mod issuance;

/// Debian's certbot, unmodified: standalone http-01, manual dns-01 with
/// hooks, update_account, revoke, unregister.
mod certbot;

/// certbot 5 from PyPI: profiles, IP addresses, renewal by ARI.
mod certbot5;

/// Debian's lego, unmodified: http-01, tls-alpn-01, dns-01 (exec hook),
/// wildcard, renew and revoke.
mod lego;

/// rustls-acme, as the reference's downstream servers embed it: obtain and
/// renew over tls-alpn-01.
mod rustls_acme;

/// Accounts: key rollover, EAB, deactivation, terms of service.
mod accounts;

/// Orders list, pre-authorization, authz reuse and deactivation, validity
/// window, lifetimes.
mod orders;

/// RFC 8555 §6–§7 as a table: each MUST and SHOULD a server controls, by
/// section, checked here or by the test it names; 413s reach the client.
mod conformance;

/// Protocol details: Retry-After, offered challenges, IP identifiers,
/// failed challenges.
mod rfc8555;

/// ACME Renewal Information (RFC 9773): windows, identifiers, `replaces`.
mod ari;

/// Certificate profiles: advertised from the signer, chosen, withdrawn.
mod profiles;

/// Multi-perspective validation (BR §3.2.2.9): five perspective processes,
/// one or two down, a hanging one cancelled, a lying one outvoted; five
/// over TCP with mutual TLS, with a wrong name, another CA, a refused
/// primary.
mod mpic;

/// CAA (RFC 8659, RFC 8657) at validation and re-checked at finalize; one
/// challenge attempt per authorization.
mod caa;

/// The test clock: expiry, statement age, CRL renewal and the STAR
/// schedule reached by moving the clock of a debug build (issue 18).
mod clock;

/// The soak's load: acme-bench rounds whose clients keep their accounts.
mod soak;

/// Chaos drill: kill -9 of random processes under load; nothing lost,
/// nothing stuck (issue 18).
mod chaos;

/// Upgrades: the current binaries on the records of an earlier commit;
/// downgrades refused (issue 18).
mod upgrade;

/// STAR (RFC 8739): rolling certificates, catch-up, cancel, the signer's
/// record, bad `auto-renewal` members.
mod star;

/// Several front ends on one database (issue 17): nonces, account changes,
/// a finalize race, one CRL, the jobs lease surviving a kill -9.
mod fleet;

/// dns-persist-01 in both record forms by raw JWS.
mod persist;
/// Post-quantum: an ML-DSA hierarchy by ceremony, ML-DSA subscriber and
/// account keys, judged by pyca/cryptography.
mod pq;
/// RFC 9444: one dns-01 validation of an ancestor covers the names below
/// it; bad `ancestorDomain` / `subdomainAuthAllowed` members.
mod subdomains;

/// Revocation by owner, certificate key, authorized account; refusals.
mod revocation;

/// Crash safety: kill -9 the signer or the validator, the launcher restarts
/// it, and no order or challenge is left stuck.
mod restart;

/// The transparency log (issue 16): entries, signed checkpoints judged by
/// pyca, `akamu-cli log verify|prove`, forks, tampering, a signer crash.
mod transparency;

/// Hand-built bad requests get precise RFC 8555 problem documents, never 500.
mod bad_input;

/// Stalled and idle connections are dropped after a deadline.
mod connections;

/// Sweeps of malformed payloads on every JWS endpoint and of JWS envelope
/// mistakes: each a 4xx problem document, and the CA serves on.
mod malformed;
// Issue 5's runtime proof: three users, the signer without a network (root only).
mod isolation;

/// The CA key in a SoftHSM2 token: ceremony with akamu-cli, ACME issuance
/// from the intermediate, chain verified to the root, leaf, intermediate and
/// CRL linted by pkilint.
mod hsm;

/// CRLs served by the frontend: ACME and operator revocations, checked with
/// `openssl crl -verify` and `openssl verify -crl_check`.
mod crl;

/// Key policy at finalize: RSA-1024, Fermat-weak and blocked keys are
/// `badPublicKey`; refusals are audited; a tampered audit log is caught.
mod key_policy;

/// Rate limits (issue 12): GCRA buckets in the database, 429 rateLimited
/// with Retry-After, overrides, X-Forwarded-For from trusted proxies,
/// pausing and `akamu-cli admin unpause`, per registered domain; caps.
mod rate_limits;

/// Operations (issue 12): `akamu-cli admin backup` under load and the
/// restore drill of the operations chapter.
mod backup;

/// Metrics (issue 12): `/metrics` on its own listener, checked with
/// `promtool check metrics`; the signer's and the validator's figures over
/// their RPC; off by default.
mod metrics;

/// A full disk under the state directory (a tmpfs; root only):
/// `serverInternal`, a consistent database, recovery once space is freed.
mod disk_full;

/// The TLS modes (issue 12): a certificate from our CA with its key type,
/// an operator's certificate kept and reloaded on SIGHUP, mutual TLS with
/// every refusal logged, TLS versions and the hybrid X25519MLKEM768 group.
mod tls;

/// TLS mode 1: plain HTTP behind Debian's nginx, every URL the proxy's.
mod proxy;

/// The signer over the network (issue 17): a separately started frontend
/// reaches `ca-signer` over TCP with mutual TLS; clients without a
/// certificate, from another CA or with a name not allowed are refused and
/// logged; the Unix socket keeps serving.
mod signer_tls;

/// The multi-node deployment of `scripts/multinode.sh` (issue 17): certbot
/// and lego through nginx, nonces and key rollover across front ends, kill
/// -9 of a front end under load, perspectives down and lying.
mod multinode;

/// PostgreSQL as the frontend's database (issue 17): issuance with
/// instant-acme and `akamu-cli admin` against `[database] url`.
mod postgres;
