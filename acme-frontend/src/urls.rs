//! The URLs of every resource: `base_url` + the path from the one resource
//! table ([`Resource`]).

use crate::http::resource::Resource;

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
    /// The absolute URL of `resource`.
    pub fn of(&self, resource: Resource<'_>) -> String {
        self.absolute(&resource.path())
    }
    /// The directory's `renewalInfo` (RFC 9773 §3): the renewal-info URL
    /// of a certificate is this, `/`, and its identifier.
    pub fn renewal_info_base(&self) -> String {
        let url = self.of(Resource::RenewalInfo(""));
        url.trim_end_matches('/').to_owned()
    }
    /// `/acme/directory`.
    pub fn directory(&self) -> String {
        self.of(Resource::Directory)
    }
    /// Prefix of account URLs (an account URL with an empty id).
    pub fn account_prefix(&self) -> String {
        self.of(Resource::Account(""))
    }
    /// draft-ietf-acme-dns-persist-02's `accountHashPrefix`: hashed
    /// account URIs are this, the algorithm, `/` and the hash. Nothing is
    /// served there; the URI only names the account under this CA.
    pub fn account_hash_prefix(&self) -> String {
        self.absolute("/acme/account-hash/")
    }
    /// An account.
    pub fn account(&self, id: &str) -> String {
        self.of(Resource::Account(id))
    }
    /// An account's orders list.
    pub fn orders(&self, account_id: &str) -> String {
        self.of(Resource::Orders(account_id))
    }
    /// An order.
    pub fn order(&self, id: &str) -> String {
        self.of(Resource::Order(id))
    }
    /// An order's finalize URL.
    pub fn finalize(&self, id: &str) -> String {
        self.of(Resource::Finalize(id))
    }
    /// An authorization.
    pub fn authz(&self, id: &str) -> String {
        self.of(Resource::Authz(id))
    }
    /// A challenge.
    pub fn challenge(&self, authz_id: &str, kind: &str) -> String {
        self.of(Resource::Challenge(authz_id, kind))
    }
    /// A certificate.
    pub fn certificate(&self, id: &str) -> String {
        self.of(Resource::Certificate(id))
    }
    /// The rolling certificate URL of STAR order `order_id` (RFC 8739).
    pub fn star_certificate(&self, order_id: &str) -> String {
        self.of(Resource::StarCertificate(order_id))
    }
}
