//! One module per top-level command; each has `Args` and `run`.

pub mod account;
pub mod admin;
pub mod audit;
pub mod ceremony;
pub mod issue;
pub mod renew;
pub mod revoke;
