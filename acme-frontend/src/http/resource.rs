//! The one table of this server's ACME resources: each row gives a
//! resource's path (the Akāmu reference's) and the methods it answers.
//! Routing ([`super::router`]), the `Allow` header of a 405 and URL building
//! ([`crate::urls`]) all read it, so a new endpoint is one row here plus its
//! handler in the router's match (which the compiler makes exhaustive).

/// One path segment of a row: a literal, or a captured id.
macro_rules! segment {
    ($lit:literal) => {
        $lit
    };
    ($capture:ident) => {
        $capture
    };
}

/// A path segment as a literal, or `None` for a captured id.
macro_rules! literal {
    ($lit:literal) => {
        Some($lit)
    };
    ($capture:ident) => {
        None
    };
}

/// The last literal of a row's segments: the resource's name.
const fn last_literal(segments: &[Option<&'static str>]) -> &'static str {
    let mut i = segments.len();
    while i > 0 {
        i -= 1;
        if let Some(s) = segments[i] {
            return s;
        }
    }
    ""
}

macro_rules! resources {
    ($(
        $(#[$doc:meta])*
        $variant:ident $(($($field:ident),+))? => [$($seg:tt),+], allow $allow:literal;
    )+) => {
        /// A resource of this server, with the ids its path carries.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Resource<'a> {
            $(
                $(#[$doc])*
                $variant $(($(resources!(@str $field)),+))?,
            )+
        }

        impl<'a> Resource<'a> {
            /// The resource at `path` (no query), if any.
            pub fn parse(path: &'a str) -> Option<Self> {
                let segments: Vec<&'a str> = path.strip_prefix('/')?.split('/').collect();
                match segments.as_slice() {
                    $(
                        [$($seg),+] => Some(Self::$variant $(($(*$field),+))?),
                    )+
                    _ => None,
                }
            }

            /// The path of this resource.
            pub fn path(&self) -> String {
                let mut path = String::new();
                match self {
                    $(
                        Self::$variant $(($($field),+))? => {
                            $(
                                path.push('/');
                                path.push_str(segment!($seg));
                            )+
                        }
                    )+
                }
                path
            }

            /// The resource's name, the last literal segment of its path
            /// (`new-order`, `finalize`, `chall`): the `endpoint` label of
            /// the request metrics, never a URL or an id.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => const { last_literal(&[$(literal!($seg)),+]) },)+
                }
            }

            /// The methods this resource answers, as the `Allow` header of a
            /// 405 lists them (RFC 9110 §15.5.6).
            pub fn allow(&self) -> &'static str {
                match self {
                    $(Self::$variant { .. } => $allow,)+
                }
            }
        }
    };
    (@str $field:ident) => { &'a str };
}

resources! {
    /// RFC 8555 §7.1.1; GET, and POST-as-GET as for every resource (§6.3).
    Directory => ["acme", "directory"], allow "GET, HEAD, POST";
    /// RFC 8555 §7.2; GET, and POST-as-GET as for every resource (§6.3).
    NewNonce => ["acme", "new-nonce"], allow "GET, HEAD, POST";
    /// RFC 8555 §7.3.
    NewAccount => ["acme", "new-account"], allow "POST";
    /// RFC 8555 §7.3.2: an account, by id.
    Account(id) => ["acme", "account", id], allow "POST";
    /// RFC 8555 §7.1.2.1: an account's orders list, by account id.
    Orders(id) => ["acme", "orders", id], allow "POST";
    /// RFC 8555 §7.4.
    NewOrder => ["acme", "new-order"], allow "POST";
    /// RFC 8555 §7.4.1.
    NewAuthz => ["acme", "new-authz"], allow "POST";
    /// RFC 8555 §7.6.
    RevokeCert => ["acme", "revoke-cert"], allow "POST";
    /// RFC 8555 §7.3.5.
    KeyChange => ["acme", "key-change"], allow "POST";
    /// RFC 8555 §7.1.3: an order, by id.
    Order(id) => ["acme", "order", id], allow "POST";
    /// RFC 8555 §7.4: an order's finalize URL.
    Finalize(id) => ["acme", "order", id, "finalize"], allow "POST";
    /// RFC 8555 §7.1.4: an authorization, by id.
    Authz(id) => ["acme", "authz", id], allow "POST";
    /// RFC 8555 §7.1.5: a challenge, by authorization id and type.
    Challenge(authz, kind) => ["acme", "chall", authz, kind], allow "POST";
    /// RFC 8555 §7.4.2: a certificate chain, by id (POST-as-GET only: a
    /// plain GET is refused as for every resource but the two above, §6.3).
    Certificate(id) => ["acme", "cert", id], allow "POST";
    /// RFC 8739 §3.3: the rolling certificate of a STAR order, by order
    /// id: POST-as-GET by the owner, or GET when the order allows it.
    StarCertificate(id) => ["acme", "cert", "star", id], allow "GET, HEAD, POST";
    /// The CA certificate at position `n` of the signer's chain (`0` issued
    /// the leaves), DER: the target of a certificate's `Link: rel="up"`.
    /// Public like the CRL (GET), and POST-as-GET for clients that fetch
    /// every ACME link that way.
    Issuer(n) => ["acme", "issuer", n], allow "GET, HEAD, POST";
    /// RFC 9773 §4: the renewal information of a certificate, by its ARI
    /// certificate identifier. Unauthenticated GET (§4.1).
    RenewalInfo(cert_id) => ["acme", "renewal-info", cert_id], allow "GET, HEAD";
    /// The transparency log's newest signed checkpoint (C2SP
    /// tlog-checkpoint as a signed note); its tiles are under
    /// `/log/tile/` ([`LOG_TILE_PREFIX`]).
    LogCheckpoint => ["log", "checkpoint"], allow "GET, HEAD";
    /// The transparency log's note verifier key.
    LogKey => ["log", "key"], allow "GET, HEAD";
}

/// The prefix of the transparency log's tiles (C2SP tlog-tiles paths of
/// variable depth, so not rows of the table).
pub const LOG_TILE_PREFIX: &str = "/log/tile/";

impl Resource<'_> {
    /// Whether this resource answers `method`.
    pub fn allows(&self, method: &http::Method) -> bool {
        self.allow().split(", ").any(|m| m == method.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_back_from_its_path() {
        let all = [
            Resource::Directory,
            Resource::NewNonce,
            Resource::NewAccount,
            Resource::Account("a1"),
            Resource::Orders("a1"),
            Resource::NewOrder,
            Resource::NewAuthz,
            Resource::RevokeCert,
            Resource::KeyChange,
            Resource::Order("o1"),
            Resource::Finalize("o1"),
            Resource::Authz("z1"),
            Resource::Challenge("z1", "http-01"),
            Resource::Certificate("c1"),
            Resource::StarCertificate("o1"),
            Resource::Issuer("0"),
            Resource::RenewalInfo("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"),
        ];
        for r in all {
            let path = r.path();
            assert_eq!(Resource::parse(&path), Some(r), "{path}");
        }
        assert_eq!(Resource::Finalize("o1").path(), "/acme/order/o1/finalize");
        // Names label the request metrics: one per row, none empty.
        let names: std::collections::BTreeSet<&str> = all.iter().map(Resource::name).collect();
        assert_eq!(names.len(), all.len(), "{names:?}");
        assert!(!names.contains(""));
        assert_eq!(Resource::NewOrder.name(), "new-order");
        assert_eq!(Resource::Finalize("o1").name(), "finalize");
        assert_eq!(Resource::StarCertificate("o1").name(), "star");
        assert_eq!(
            Resource::parse("/acme/cert/star/o1"),
            Some(Resource::StarCertificate("o1"))
        );
        assert_eq!(
            Resource::parse("/acme/cert/c1"),
            Some(Resource::Certificate("c1"))
        );
    }

    #[test]
    fn unknown_paths_and_methods() {
        for bad in [
            "",
            "/",
            "/acme",
            "/acme/order",
            "/acme/order/o/x",
            "acme/directory",
        ] {
            assert_eq!(Resource::parse(bad), None, "{bad:?}");
        }
        // RFC 8555 §6.3: GET only for the directory and newNonce (and the
        // issuer certificate, which is no ACME resource); POST-as-GET for
        // all.
        for r in [
            Resource::Directory,
            Resource::NewNonce,
            Resource::Issuer("0"),
        ] {
            assert!(r.allows(&http::Method::GET), "{r:?}");
            assert!(r.allows(&http::Method::HEAD), "{r:?}");
            assert!(r.allows(&http::Method::POST), "{r:?}");
        }
        assert!(!Resource::Certificate("c").allows(&http::Method::GET));
        assert!(!Resource::Certificate("c").allows(&http::Method::HEAD));
        assert!(!Resource::Order("o").allows(&http::Method::GET));
    }
}
