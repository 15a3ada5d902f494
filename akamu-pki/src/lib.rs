//! X.509 pieces that more than one Akāmu crate needs and that are not part of
//! the IPC contract: PKCS#10 requests ([`csr`]), public keys from
//! SubjectPublicKeyInfo ([`spki`]) and certificate serial numbers
//! ([`serial`]).
//!
//! The frontend checks a CSR before it calls the signer, and the signer
//! checks it again because it trusts no caller: both run [`csr`]. No I/O.

pub mod csr;
pub mod serial;
pub mod spki;

#[cfg(test)]
mod test_support;
