//! One module per top-level command; each has `Args` and `run`.

pub(crate) mod account;
pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod ceremony;
pub(crate) mod issue;
pub(crate) mod log;
pub(crate) mod renew;
pub(crate) mod revoke;
pub(crate) mod star;
