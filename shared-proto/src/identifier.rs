//! ACME identifiers (RFC 8555 §9.7.7, RFC 8738) as they cross process boundaries.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The type of an ACME identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IdentifierKind {
    /// A DNS name, possibly a wildcard (`*.example.org`).
    Dns,
    /// An IP address literal (RFC 8738).
    Ip,
}

impl IdentifierKind {
    /// The ACME JSON spelling (`"dns"`, `"ip"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Ip => "ip",
        }
    }

    /// Parses the ACME JSON spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "dns" => Some(Self::Dns),
            "ip" => Some(Self::Ip),
            _ => None,
        }
    }
}

/// One identifier: a type and a normalised value (lower-case DNS name without a
/// trailing dot, or an IP address in its canonical text form).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// `dns` or `ip`.
    pub kind: IdentifierKind,
    /// The normalised value.
    pub value: String,
}

impl Identifier {
    /// A DNS identifier, normalised to lower case without a trailing dot.
    pub fn dns(name: &str) -> Self {
        Self {
            kind: IdentifierKind::Dns,
            value: name.trim_end_matches('.').to_ascii_lowercase(),
        }
    }

    /// An IP identifier in canonical text form.
    pub fn ip(addr: IpAddr) -> Self {
        Self {
            kind: IdentifierKind::Ip,
            value: addr.to_string(),
        }
    }

    /// True for `*.`-prefixed DNS identifiers.
    pub fn is_wildcard(&self) -> bool {
        self.kind == IdentifierKind::Dns && self.value.starts_with("*.")
    }

    /// The DNS name without its wildcard label (RFC 8555 §7.1.3).
    pub fn base_name(&self) -> &str {
        self.value.strip_prefix("*.").unwrap_or(&self.value)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.as_str(), self.value)
    }
}

/// Whether `name` (a DNS name, any case, with or without a trailing dot or
/// a wildcard label) is under the `.onion` special-use domain (RFC 7686):
/// Tor hidden services, which DNS-based validation cannot prove control of
/// (RFC 9799 forbids dns-01 for them).
pub fn is_onion(name: &str) -> bool {
    let name = name.trim_end_matches('.');
    name.len() >= 6 && name[name.len() - 6..].eq_ignore_ascii_case(".onion")
        || name.eq_ignore_ascii_case("onion")
}

/// The hidden service's Ed25519 public key that a version 3 `.onion` name
/// encodes (RFC 9799 §2, Tor's rend-spec: the label before `.onion` is the
/// base32 of key ‖ checksum ‖ version 3, with checksum = the first two
/// bytes of SHA3-256(".onion checksum" ‖ key ‖ version)). `name` may
/// carry subdomain labels or a wildcard label; any case, trailing dot
/// allowed. `None` for a name that is not a valid v3 onion name (a v2
/// name, a bad checksum, another version, not `.onion` at all).
pub fn onion_v3_key(name: &str) -> Option<[u8; 32]> {
    let name = name.trim_end_matches('.').to_ascii_uppercase();
    let rest = name.strip_suffix(".ONION")?;
    let label = rest.rsplit('.').next()?;
    if label.len() != 56 {
        return None;
    }
    let bytes = data_encoding::BASE32_NOPAD.decode(label.as_bytes()).ok()?;
    let (key, tail) = bytes.split_at_checked(32)?;
    let (checksum, version) = tail.split_at_checked(2)?;
    if version != [3] {
        return None;
    }
    let mut hasher = openssl::hash::Hasher::new(openssl::hash::MessageDigest::sha3_256()).ok()?;
    hasher.update(b".onion checksum").ok()?;
    hasher.update(key).ok()?;
    hasher.update(version).ok()?;
    let digest = hasher.finish().ok()?;
    if digest.get(..2)? != checksum {
        return None;
    }
    key.try_into().ok()
}

/// Whether `name` is a syntactically valid DNS name for a certificate: LDH
/// labels of 1–63 octets, at least two labels, at most 253 octets, a leading
/// `*.` allowed only as the whole first label.
pub fn is_valid_dns_name(name: &str) -> bool {
    let base = name.strip_prefix("*.").unwrap_or(name);
    if base.is_empty() || name.len() > 253 {
        return false;
    }
    let labels: Vec<&str> = base.split('.').collect();
    if labels.len() < 2 {
        return false;
    }
    labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    }) && labels
        .last()
        .is_some_and(|tld| !tld.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` (a DNS name without a wildcard label, normalised) is a
/// public suffix by the Public Suffix List (the `psl` crate's copy, ICANN
/// and private sections, with the list's default rule: an unlisted
/// top-level label counts as a suffix). Nobody can prove control of a
/// whole suffix for its subdomains (RFC 9444 §8: `com`, `co.uk`,
/// `github.io`).
pub fn is_public_suffix(name: &str) -> bool {
    psl::suffix_str(name).is_some_and(|s| s.eq_ignore_ascii_case(name))
}

/// Whether DNS name `name` (possibly a wildcard) lies strictly below
/// `ancestor` on label boundaries: `a.b.example.org` and `*.example.org`
/// are below `example.org`; `example.org` itself and `badexample.org` are
/// not. Both are expected normalised (lower case, no trailing dot).
pub fn is_below(name: &str, ancestor: &str) -> bool {
    let base = name.strip_prefix("*.").unwrap_or(name);
    if name.starts_with("*.") && base == ancestor {
        return true;
    }
    base.len() > ancestor.len() + 1
        && base.ends_with(ancestor)
        && base.as_bytes()[base.len() - ancestor.len() - 1] == b'.'
        && !ancestor.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subdomains_and_public_suffixes() {
        assert!(is_below("a.example.org", "example.org"));
        assert!(is_below("a.b.example.org", "example.org"));
        assert!(is_below("*.example.org", "example.org"));
        assert!(is_below("*.a.example.org", "example.org"));
        assert!(!is_below("example.org", "example.org"));
        assert!(!is_below("badexample.org", "example.org"));
        assert!(!is_below("example.org", "a.example.org"));
        assert!(!is_below("a.example.org", ""));
        for suffix in ["com", "co.uk", "github.io", "org", "internal"] {
            assert!(is_public_suffix(suffix), "{suffix}");
        }
        for name in [
            "example.com",
            "example.co.uk",
            "a.github.io",
            "corp.internal",
        ] {
            assert!(!is_public_suffix(name), "{name}");
        }
    }

    #[test]
    fn onion_v3_addresses() {
        let ddg = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";
        let key = onion_v3_key(ddg).expect("a v3 address");
        assert_eq!(onion_v3_key(&ddg.to_ascii_uppercase()), Some(key));
        assert_eq!(onion_v3_key(&format!("www.{ddg}.")), Some(key));
        assert_eq!(onion_v3_key(&format!("*.{ddg}")), Some(key));
        // A changed character breaks the checksum; v2 names (16
        // characters) and non-onion names have no key.
        let bad = ddg.replacen("duck", "dack", 1);
        assert_eq!(onion_v3_key(&bad), None);
        assert_eq!(onion_v3_key("duskgytldkxiuqc6.onion"), None);
        assert_eq!(onion_v3_key("example.org"), None);
    }

    #[test]
    fn onion_names() {
        for onion in ["x.onion", "A.B.ONION", "x.onion.", "*.x.onion", "onion"] {
            assert!(is_onion(onion), "{onion}");
        }
        for other in [
            "onion.example",
            "xonion",
            "x.onions",
            "example.org",
            "",
            ".",
        ] {
            assert!(!is_onion(other), "{other}");
        }
    }

    #[test]
    fn dns_name_rules() {
        for ok in [
            "example.org",
            "a-b.example.org",
            "*.example.org",
            "xn--bcher-kva.example",
        ] {
            assert!(is_valid_dns_name(ok), "{ok}");
        }
        for bad in [
            "",
            "localhost",
            "*.org.*",
            "a..b",
            "-a.example",
            "a-.example",
            "ex ample.org",
            "*example.org",
            "a.*.example.org",
            "1.2.3.4",
            "under_score.example",
        ] {
            assert!(!is_valid_dns_name(bad), "{bad}");
        }
    }

    #[test]
    fn normalises_dns() {
        assert_eq!(Identifier::dns("WWW.Example.ORG.").value, "www.example.org");
        assert!(Identifier::dns("*.example.org").is_wildcard());
        assert_eq!(Identifier::dns("*.example.org").base_name(), "example.org");
    }
}
