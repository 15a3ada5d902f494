//! The ACME protocol core: statuses, transitions, identifier and contact rules,
//! CSR-versus-order checks. Plain functions over plain data; time comes in as
//! an argument.
//!
//! **Invariant:** nothing in this module imports tokio, hyper or diesel.

pub mod ari;
pub mod contact;
pub mod identifier;
pub mod order;
pub mod rate_limit;
pub mod revocation;
pub mod star;
pub mod validity;

use std::fmt;

use crate::error::Error;

/// Largest CSR accepted at finalize, DER (a request for 100 names of 253
/// octets with an ML-DSA-87 key is about 34 KiB). Larger is `badCSR`
/// before any parsing.
pub const MAX_CSR_BYTES: usize = 48 * 1024;

/// Largest certificate accepted in a revocation request, DER. Larger is
/// `malformed` before any parsing.
pub const MAX_CERTIFICATE_BYTES: usize = 48 * 1024;

/// Refuses a request by account `requester` for a resource (`what`, e.g.
/// "this order") owned by account `owner` (RFC 8555 §7.3: an account sees
/// and changes only its own resources).
pub fn require_owner(owner: &str, requester: &str, what: &str) -> Result<(), Error> {
    if owner == requester {
        Ok(())
    } else {
        Err(Error::Unauthorized(format!(
            "{what} belongs to another account"
        )))
    }
}

macro_rules! status_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant,
            )+
        }

        impl $name {
            /// The RFC 8555 spelling.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }

            /// Parses the RFC 8555 spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

status_enum!(
    /// Account status (RFC 8555 §7.1.6).
    AccountStatus { Valid => "valid", Deactivated => "deactivated", Revoked => "revoked" }
);
status_enum!(
    /// Order status (RFC 8555 §7.1.6).
    OrderStatus {
        Pending => "pending",
        Ready => "ready",
        Processing => "processing",
        Valid => "valid",
        Invalid => "invalid",
    }
);
status_enum!(
    /// Authorization status (RFC 8555 §7.1.6).
    AuthzStatus {
        Pending => "pending",
        Valid => "valid",
        Invalid => "invalid",
        Deactivated => "deactivated",
        Expired => "expired",
        Revoked => "revoked",
    }
);
status_enum!(
    /// Certificate status as this CA records it (revoked ones go on the CRL).
    CertificateStatus { Valid => "valid", Revoked => "revoked" }
);
status_enum!(
    /// Challenge status (RFC 8555 §7.1.6).
    ChallengeStatus {
        Pending => "pending",
        Processing => "processing",
        Valid => "valid",
        Invalid => "invalid",
    }
);
