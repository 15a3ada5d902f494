//! The URLs of every resource, built from `base_url` (paths as in the
//! Akāmu reference).

/// URL builder.
#[derive(Clone, Debug)]
pub struct Urls {
    base: String,
}

impl Urls {
    /// URLs under `base` (no trailing slash).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The absolute URL of a request path.
    pub fn absolute(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
    /// `/acme/directory`.
    pub fn directory(&self) -> String {
        self.absolute("/acme/directory")
    }
    /// Prefix of account URLs.
    pub fn account_prefix(&self) -> String {
        self.absolute("/acme/account/")
    }
    /// An account.
    pub fn account(&self, id: &str) -> String {
        format!("{}{id}", self.account_prefix())
    }
    /// An account's orders list.
    pub fn orders(&self, account_id: &str) -> String {
        self.absolute(&format!("/acme/orders/{account_id}"))
    }
    /// An order.
    pub fn order(&self, id: &str) -> String {
        self.absolute(&format!("/acme/order/{id}"))
    }
    /// An order's finalize URL.
    pub fn finalize(&self, id: &str) -> String {
        self.absolute(&format!("/acme/order/{id}/finalize"))
    }
    /// An authorization.
    pub fn authz(&self, id: &str) -> String {
        self.absolute(&format!("/acme/authz/{id}"))
    }
    /// A challenge.
    pub fn challenge(&self, authz_id: &str, kind: &str) -> String {
        self.absolute(&format!("/acme/chall/{authz_id}/{kind}"))
    }
    /// A certificate.
    pub fn certificate(&self, id: &str) -> String {
        self.absolute(&format!("/acme/cert/{id}"))
    }
}
