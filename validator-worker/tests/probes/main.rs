//! Integration tests: every probe against real servers on loopback.
//!
//! * `support` — a hyper HTTP(S) server, a hickory DNS server with an
//!   in-memory zone, an RFC 8737 TLS server, and a prober factory.
//! * `http01`, `dns01`, `tls_alpn01` — one file per challenge.
//! * `socket` — the real Unix-socket server driven by a tarpc client.

mod caa;
mod dns01;
mod http01;
mod socket;
mod support;
mod tls_alpn01;
