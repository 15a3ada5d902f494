//! One module per RFC 8555 resource. A handler parses, authenticates, calls
//! `protocol`, calls `store`, and builds the reply.

pub mod account;
pub mod authz;
pub mod certificate;
pub mod challenge;
pub mod crl;
pub mod directory;
pub mod finalize;
pub mod issuer;
pub mod key_change;
pub mod log;
pub mod new_account;
pub mod new_authz;
pub mod new_nonce;
pub mod new_order;
pub mod order;
pub mod renewal_info;
pub mod revoke_cert;
pub mod views;
