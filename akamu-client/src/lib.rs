//! akamu-client: an async ACME (RFC 8555) client library.
//!
//! Accounts (with External Account Binding), orders, challenges, CSRs,
//! certificate download, revocation, ARI (RFC 9773), STAR (RFC 8739), and
//! built-in http-01 and tls-alpn-01 solvers. HTTP is hyper 1 over rustls
//! with the ring provider; cryptography is akamu-jose's (openssl).
//!
//! # End to end: P-256 key, http-01 challenge
//!
//! ```no_run
//! use akamu_client::{
//!     AccountKey, AccountOptions, AcmeClient,
//!     Http01Solver, Identifier, build_csr, ChallengeSolver as _,
//! };
//! use std::sync::Arc;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let key = Arc::new(AccountKey::generate("ec:P-256")?);
//!     let client = AcmeClient::new("https://acme.example.com/acme/directory").await?;
//!     let opts = AccountOptions {
//!         contacts: &["mailto:ops@example.com"],
//!         agree_tos: true,
//!         eab: None,
//!     };
//!     let account = client.new_account(Arc::clone(&key), &opts).await?;
//!
//!     let ids = vec![Identifier::dns("example.com")];
//!     let order = client.new_order(&account, &ids).await?;
//!
//!     let solver = Http01Solver::new(80);
//!     solver.start().await?;
//!     for authz_url in &order.authorizations {
//!         let authz = client.get_authorization(&account, authz_url).await?;
//!         if authz.status == "valid" { continue; }
//!         let challenge = authz.find_challenge("http-01")
//!             .expect("http-01 challenge not offered");
//!         let token = challenge.token.as_deref().expect("challenge has no token");
//!         let key_auth = account.key_authorization(token);
//!         solver.present(token, &key_auth).await?;
//!         client.trigger_challenge(&account, challenge).await?;
//!         let _order = client.poll_order(&account, &order.url).await?;
//!         solver.cleanup(token).await?;
//!     }
//!
//!     let cert_key = AccountKey::generate("ec:P-256")?;
//!     let csr_der = build_csr(&["example.com"], cert_key.private_key())?;
//!     let finalized = client.finalize(&account, &order, &csr_der).await?;
//!     let cert_url = finalized.certificate.expect("order has no certificate URL");
//!     let pem = client.download_certificate(&account, &cert_url).await?;
//!     std::fs::write("cert.pem", &pem)?;
//!     Ok(())
//! }
//! ```
//!
//! A private CA's HTTPS endpoint is trusted with
//! `AcmeClient::builder(url).add_root_pem(&root_pem)?.build().await?`.
//!
//! # Differences from the reference API
//!
//! Same names and shapes, except where Rust or this stack forced a change:
//!
//! - **Keys are openssl keys.** [`AccountKey`] wraps `akamu_jose::SigningKey`
//!   and [`AccountKey::private_key`] returns `&openssl::pkey::PKey<Private>`
//!   (the reference wraps synta's `BackendPrivateKey`); ML-DSA keys come
//!   from the vendored OpenSSL (docs: cryptography). [`AccountKey::to_pem`]
//!   returns a `String`;
//!   [`AccountKey::from_pem`] takes anything `AsRef<[u8]>`.
//! - **`ClientError::Acme` has more fields**: `status` and `subproblems`
//!   besides `acme_type` and `detail`; match with `Acme { acme_type, detail,
//!   .. }`. Added variants: `HttpStatus` (an error status without a problem
//!   document, e.g. 404), `InvalidArgument` (refused before sending, e.g.
//!   reason code 7), `Unsupported` (not in the server's directory),
//!   `Timeout` (polling deadline) and `Invalid` (an order or authorization
//!   became invalid without a problem document).
//! - **Trust and plain HTTP** are builder options the reference does not
//!   have: [`ClientBuilder::add_root_pem`], [`ClientBuilder::only_added_roots`],
//!   and, under [`danger`], plain HTTP and disabled verification.
//! - **Polling**: [`AcmeClient::finalize`] waits (within the poll deadline)
//!   until the order is `valid`, so `finalized.certificate` is set as the
//!   reference's example expects. Added: [`AcmeClient::poll_authorization`],
//!   [`AcmeClient::poll_order_with`] / [`AcmeClient::finalize_with`]
//!   (deadline and progress callback), [`AcmeClient::get_order`],
//!   [`AcmeClient::new_order_with`] (notBefore/notAfter, ARI `replaces`),
//!   [`AcmeClient::deactivate_authorization`].
//! - **ARI**: [`AcmeClient::get_renewal_info`] returns
//!   [`ClientError::Unsupported`] without a request when the directory has no
//!   `renewalInfo`; [`renewal_cert_id`] is public.
//! - **STAR**: [`AcmeClient::new_star_order`] returns `Unsupported` without
//!   a request when the directory's `meta` has no `auto-renewal`, so a server
//!   that ignores the member cannot turn it into an ordinary order.
//!   STAR orders are [`Order`]s (with `star_certificate`).
//! - **Solvers**: [`Http01Solver::with_addr`] and
//!   [`TlsAlpn01Solver::with_addr`] bind a chosen address (and port 0);
//!   `local_addr` reports it. [`Identifier::onion`] builds a `dns`
//!   identifier, as RFC 9799 §3 specifies.

mod account;
mod ari;
mod client;
mod csr;
pub mod danger;
mod error;
mod key;
mod order;
mod revoke;
mod solver;
mod star;
mod transport;

pub use account::{Account, AccountOptions, EabOptions};
pub use akamu_jose::KeyType;
pub use ari::{RenewalInfo, cert_id_from_parts, renewal_cert_id};
pub use client::{
    AcmeClient, ClientBuilder, DEFAULT_POLL_TIMEOUT, Directory, DirectoryMeta, Fetcher,
};
pub use csr::{build_csr, build_onion_csr, pem_to_der};
pub use error::{ACME_ERROR_PREFIX, ClientError, Problem, Subproblem};
pub use key::AccountKey;
pub use order::{Authorization, Challenge, Identifier, NewOrder, OnWait, Order, PollOptions};
pub use revoke::validate_reason;
pub use solver::{
    ChallengeSolver, Dns01Helper, DnsAccount01Helper, DnsPersist01Helper, Http01Solver,
    SolverFuture, TlsAlpn01Solver, reverse_dns_name,
};
pub use star::StarOrderParams;
pub use transport::{DEFAULT_REQUEST_TIMEOUT, MAX_RESPONSE_BYTES};
