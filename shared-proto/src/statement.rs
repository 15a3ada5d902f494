//! Validation statements: what the validator signs after a successful probe
//! and the signer checks before it issues (DESIGN: "a signer that trusts no
//! caller"). A frontend can carry statements but cannot forge them, so it
//! cannot obtain a certificate for a name that was never validated.
//!
//! The signature is Ed25519 over [`DOMAIN`] followed by the statement's JSON
//! (serde_json of a struct is deterministic: fields in declaration order).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use openssl::pkey::{Id, PKey, Private};
use serde::{Deserialize, Serialize};

use crate::validator::ChallengeType;
use crate::{Identifier, IdentifierKind};

/// Domain separation for statement signatures.
pub const DOMAIN: &[u8] = b"akamu-validation-statement-v1\0";

/// How far a statement's `validated_at` may lie ahead of the verifier's
/// clock: the validator and the signer may run on hosts whose clocks
/// differ a little. Further ahead, the statement is refused.
pub const CLOCK_SKEW_SECS: i64 = 60;

/// The longest a statement is relied on by default, seconds: the
/// reference's authorization lifetime (one day). The validator caps the
/// statements it signs at its own maximum, and the signer refuses
/// statements older than its own; both default to this.
pub const DEFAULT_MAX_AGE_SECS: u32 = 86_400;

/// What the validator vouches for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Random id (hex), for the audit trail.
    pub id: String,
    /// The account the validation was for.
    pub account_uri: String,
    /// The identifier validated (with its `*.` label for wildcard
    /// authorizations).
    pub identifier: Identifier,
    /// How it was validated.
    pub challenge_type: ChallengeType,
    /// When (Unix seconds).
    pub validated_at: i64,
    /// Until when it may be relied on: the authorization's expiry, capped
    /// by the validator at `validated_at` plus its own maximum (see
    /// [`capped_expiry`]).
    pub expires: i64,
    /// RFC 9444: the validation also proves control of every name below
    /// `identifier` (set only for a DNS-based validation of a DNS name that
    /// is not a public suffix; see [`Statement::covers`]).
    #[serde(default)]
    pub covers_subdomains: bool,
    /// The CAA check behind this statement (RFC 8659; protocol version 8).
    /// `None` in statements signed before CAA was checked: the signer
    /// refuses them for DNS names, and the frontend has the validator
    /// re-check CAA (`recheck_caa`) to get a statement that has one.
    #[serde(default)]
    pub caa: Option<CaaCheck>,
    /// The remote network perspective that made this validation (BR
    /// §3.2.2.9; protocol version 20); `None` in a primary validator's
    /// statement. A perspective's statement is signed with the
    /// perspective's own key and travels in the primary's
    /// [`SignedStatement::corroborations`].
    #[serde(default)]
    pub perspective: Option<Perspective>,
}

/// A remote network perspective's name and RIR label, as it signs them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Perspective {
    /// The perspective's name (unique in a deployment), e.g. `"ap-1"`.
    pub name: String,
    /// The Regional Internet Registry whose service region it is in, e.g.
    /// `"APNIC"`.
    pub rir: String,
}

/// What the validator knows about CAA for a statement's identifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaaCheck {
    /// The relevant CAA record set permitted issuance to this CA, for this
    /// account and challenge type, when checked (Unix seconds).
    Checked {
        /// When the record set was looked up.
        at: i64,
    },
    /// The validator has no `caa_identities`: it checks no CAA (the
    /// reference's behaviour), and says so under its signature.
    NotConfigured,
    /// CAA does not apply to the identifier (an IP address, a .onion
    /// name).
    NotApplicable,
}

/// The JSON that is signed: the statement's fields in declaration order,
/// `covers_subdomains` left out when false and `caa` when absent, so that
/// statements signed before they existed still verify (the wire form,
/// bincode, always carries every field).
#[derive(Serialize)]
struct SigningView<'a> {
    id: &'a str,
    account_uri: &'a str,
    identifier: &'a Identifier,
    challenge_type: ChallengeType,
    validated_at: i64,
    expires: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    covers_subdomains: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    caa: Option<&'a CaaCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    perspective: Option<&'a Perspective>,
}

/// A statement with the validator's Ed25519 signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedStatement {
    /// The statement.
    pub statement: Statement,
    /// Ed25519 signature over [`DOMAIN`] ‖ JSON(statement).
    pub signature: Vec<u8>,
    /// The remote perspectives' statements of the same validation (BR
    /// §3.2.2.9; protocol version 20), each signed with its perspective's
    /// key; empty without remote perspectives. Not covered by
    /// [`Self::signature`]: the signer verifies each with the key it trusts
    /// for that perspective, so whoever carries them can drop some but
    /// forge none.
    #[serde(default)]
    pub corroborations: Vec<Corroboration>,
}

/// A remote perspective's signed statement (its `perspective` set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Corroboration {
    /// The perspective's statement.
    pub statement: Statement,
    /// The perspective's Ed25519 signature over [`DOMAIN`] ‖
    /// JSON(statement).
    pub signature: Vec<u8>,
}

impl From<SignedStatement> for Corroboration {
    fn from(s: SignedStatement) -> Self {
        Self {
            statement: s.statement,
            signature: s.signature,
        }
    }
}

/// Why a statement key could not be used or a statement was refused.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// Key file I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The key is not an Ed25519 key or does not parse.
    #[error("{0}")]
    Key(String),
    /// The signature does not verify with the configured validator key.
    #[error("statement {0} has an invalid signature")]
    BadSignature(String),
}

impl Statement {
    /// The bytes that are signed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        let view = SigningView {
            id: &self.id,
            account_uri: &self.account_uri,
            identifier: &self.identifier,
            challenge_type: self.challenge_type,
            validated_at: self.validated_at,
            expires: self.expires,
            covers_subdomains: self.covers_subdomains,
            caa: self.caa.as_ref(),
            perspective: self.perspective.as_ref(),
        };
        // Serialising plain strings and integers cannot fail.
        out.extend(serde_json::to_vec(&view).unwrap_or_default());
        out
    }

    /// Whether, as of `now`, the CAA check behind this statement is recent
    /// enough for a verifier that relies on CAA checks at most
    /// `max_age_secs` old: checked no longer than that ago (and not later
    /// than `now` plus [`CLOCK_SKEW_SECS`]), or not required (the validator
    /// checks no CAA, or the identifier is an IP address). A statement
    /// without a CAA record is not.
    pub fn caa_is_fresh(&self, now: i64, max_age_secs: i64) -> bool {
        match self.caa {
            Some(CaaCheck::Checked { at }) => {
                at <= now.saturating_add(CLOCK_SKEW_SECS) && now.saturating_sub(at) <= max_age_secs
            }
            Some(CaaCheck::NotConfigured) => true,
            // IP addresses, and .onion names (RFC 9799: their CAA lives in
            // the hidden service's descriptor, not in the DNS).
            Some(CaaCheck::NotApplicable) => {
                self.identifier.kind == IdentifierKind::Ip
                    || crate::identifier::is_onion(&self.identifier.value)
            }
            None => false,
        }
    }

    /// When the CAA check behind this statement was made, if one was.
    pub fn caa_checked_at(&self) -> Option<i64> {
        match self.caa {
            Some(CaaCheck::Checked { at }) => Some(at),
            _ => None,
        }
    }

    /// Whether this statement, as of `now`, covers certificate name `san`
    /// for `account_uri`: same account, unexpired, and either the same
    /// identifier (a wildcard name needs a dns-01 validation of the
    /// wildcard identifier) or, when the statement says it covers
    /// subdomains (RFC 9444), a name below its DNS identifier. Subdomain
    /// coverage needs a validation by a DNS change (dns-01, dns-account-01:
    /// the Baseline Requirements let no other method we offer cover other
    /// names; [`ChallengeType::is_dns_change`]) of a name that is not
    /// a public suffix; the verifier checks both, whatever the validator
    /// said.
    pub fn covers(&self, san: &Identifier, account_uri: &str, now: i64) -> bool {
        if self.account_uri != account_uri || now >= self.expires {
            return false;
        }
        // RFC 9799: a `.onion` name only by onion-csr-01 (a wildcard
        // included: the service's key controls every name below its
        // address) or by http-01 / tls-alpn-01 reached through Tor (§4;
        // the validator has no other path to a hidden service, and never
        // resolves `.onion` in the DNS), never by a DNS method; and
        // onion-csr-01 proves nothing but that name.
        let onion = san.kind == IdentifierKind::Dns && crate::identifier::is_onion(&san.value);
        if onion || self.challenge_type == ChallengeType::OnionCsr01 {
            let by_tor = matches!(
                self.challenge_type,
                ChallengeType::Http01 | ChallengeType::TlsAlpn01
            ) && !san.is_wildcard();
            return onion
                && (self.challenge_type == ChallengeType::OnionCsr01 || by_tor)
                && self.identifier == *san;
        }
        if self.identifier == *san {
            return (!san.is_wildcard() || self.challenge_type.may_cover_wildcard())
                && (san.kind != IdentifierKind::Ip || !self.challenge_type.may_cover_wildcard());
        }
        self.covers_subdomains
            && self.challenge_type.is_dns_change()
            && self.identifier.kind == IdentifierKind::Dns
            && san.kind == IdentifierKind::Dns
            && !self.identifier.is_wildcard()
            && !crate::identifier::is_public_suffix(&self.identifier.value)
            && crate::identifier::is_below(&san.value, &self.identifier.value)
    }

    /// Whether, as of `now`, this statement is recent enough for a verifier
    /// that relies on statements at most `max_age_secs` old: validated no
    /// longer than that ago, and not later than `now` plus
    /// [`CLOCK_SKEW_SECS`]. The verifier decides this, whatever `expires`
    /// the statement carries.
    pub fn is_fresh(&self, now: i64, max_age_secs: i64) -> bool {
        self.validated_at <= now.saturating_add(CLOCK_SKEW_SECS)
            && now.saturating_sub(self.validated_at) <= max_age_secs
    }
}

/// The expiry a validator puts in a statement validated at `validated_at`:
/// what the caller asked for (`requested`, the authorization's expiry), but
/// never more than `max_age_secs` after the validation. The caller cannot
/// make a statement last longer than the validator allows.
pub fn capped_expiry(validated_at: i64, requested: i64, max_age_secs: i64) -> i64 {
    requested.min(validated_at.saturating_add(max_age_secs))
}

/// The validator's signing key.
pub struct StatementKey {
    /// The key, loaded into ring (cheaper than OpenSSL's Ed25519 signing).
    pair: ring::signature::Ed25519KeyPair,
}

/// `key`'s ring key pair; built from the seed and checked against the
/// public key.
fn ring_pair(key: &PKey<Private>) -> Result<ring::signature::Ed25519KeyPair, StatementError> {
    let seed = key
        .raw_private_key()
        .map_err(|e| StatementError::Key(e.to_string()))?;
    let public = key
        .raw_public_key()
        .map_err(|e| StatementError::Key(e.to_string()))?;
    ring::signature::Ed25519KeyPair::from_seed_and_public_key(&seed, &public)
        .map_err(|e| StatementError::Key(format!("Ed25519 key: {e}")))
}

impl StatementKey {
    /// Loads the key at `path`, or generates one there (mode 0600) with its
    /// public half at `<path>.pub` when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, StatementError> {
        let io = |source| StatementError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read(path) {
            Ok(pem) => {
                let key = PKey::private_key_from_pem(&pem)
                    .map_err(|e| StatementError::Key(format!("{}: {e}", path.display())))?;
                if key.id() != Id::ED25519 {
                    return Err(StatementError::Key(format!(
                        "{} is not an Ed25519 key",
                        path.display()
                    )));
                }
                write_public(&key, &public_path(path))?;
                Ok(Self {
                    pair: ring_pair(&key)?,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key =
                    PKey::generate_ed25519().map_err(|e| StatementError::Key(e.to_string()))?;
                let pem = key
                    .private_key_to_pem_pkcs8()
                    .map_err(|e| StatementError::Key(e.to_string()))?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(io)?;
                f.write_all(&pem).map_err(io)?;
                f.sync_all().map_err(io)?;
                write_public(&key, &public_path(path))?;
                Ok(Self {
                    pair: ring_pair(&key)?,
                })
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Whether `signed` carries this key's signature (the validator checks
    /// a statement it is asked to re-check was its own).
    pub fn signed_this(&self, signed: &SignedStatement) -> bool {
        use ring::signature::KeyPair;
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::ED25519,
            self.pair.public_key().as_ref(),
        )
        .verify(&signed.statement.signing_bytes(), &signed.signature)
        .is_ok()
    }

    /// Signs a statement.
    pub fn sign(&self, statement: Statement) -> Result<SignedStatement, StatementError> {
        let signature = self.pair.sign(&statement.signing_bytes()).as_ref().to_vec();
        Ok(SignedStatement {
            statement,
            signature,
            corroborations: Vec::new(),
        })
    }
}

/// Writes the public half of `key` to `path` (PEM).
fn write_public(key: &PKey<Private>, path: &Path) -> Result<(), StatementError> {
    let pem = key
        .public_key_to_pem()
        .map_err(|e| StatementError::Key(e.to_string()))?;
    std::fs::write(path, pem).map_err(|source| StatementError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Where the public half of a statement key is written.
pub fn public_path(key_path: &Path) -> PathBuf {
    let mut p = key_path.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// The signer's view: the validator's public key.
pub struct StatementVerifier {
    /// The raw 32-byte Ed25519 public key (verified with ring, about half
    /// the cost of OpenSSL's Ed25519 verification).
    key: Vec<u8>,
}

impl StatementVerifier {
    /// Loads a PEM public key file.
    pub fn from_file(path: &Path) -> Result<Self, StatementError> {
        let pem = std::fs::read(path).map_err(|source| StatementError::Io {
            path: path.to_owned(),
            source,
        })?;
        let key = PKey::public_key_from_pem(&pem)
            .map_err(|e| StatementError::Key(format!("{}: {e}", path.display())))?;
        if key.id() != Id::ED25519 {
            return Err(StatementError::Key(format!(
                "{} is not an Ed25519 key",
                path.display()
            )));
        }
        let key = key
            .raw_public_key()
            .map_err(|e| StatementError::Key(format!("{}: {e}", path.display())))?;
        Ok(Self { key })
    }

    /// Verifies the signature and returns the statement.
    pub fn verify<'a>(&self, signed: &'a SignedStatement) -> Result<&'a Statement, StatementError> {
        let ok = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.key)
            .verify(&signed.statement.signing_bytes(), &signed.signature)
            .is_ok();
        if ok {
            Ok(&signed.statement)
        } else {
            Err(StatementError::BadSignature(signed.statement.id.clone()))
        }
    }

    /// Whether `c` carries this key's signature.
    pub fn verifies(&self, c: &Corroboration) -> bool {
        ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, &self.key)
            .verify(&c.statement.signing_bytes(), &c.signature)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(id: Identifier, ct: ChallengeType) -> Statement {
        Statement {
            id: "s1".into(),
            account_uri: "https://ca/acme/account/a".into(),
            identifier: id,
            challenge_type: ct,
            validated_at: 100,
            expires: 200,
            covers_subdomains: false,
            caa: Some(CaaCheck::Checked { at: 100 }),
            perspective: None,
        }
    }

    #[test]
    fn subdomain_coverage_needs_the_flag_dns01_and_a_registrable_name() {
        let acct = "https://ca/acme/account/a";
        let mut st = statement(Identifier::dns("example.org"), ChallengeType::Dns01);
        let sub = Identifier::dns("a.b.example.org");
        let wild = Identifier::dns("*.example.org");
        assert!(st.covers(&Identifier::dns("example.org"), acct, 150));
        assert!(!st.covers(&sub, acct, 150), "no flag, no subdomains");
        st.covers_subdomains = true;
        assert!(st.covers(&sub, acct, 150));
        assert!(st.covers(&wild, acct, 150));
        assert!(!st.covers(&Identifier::dns("badexample.org"), acct, 150));
        assert!(!st.covers(&sub, "https://ca/acme/account/b", 150));
        assert!(!st.covers(&sub, acct, 200), "expired");
        let mut http = st.clone();
        http.challenge_type = ChallengeType::Http01;
        assert!(!http.covers(&sub, acct, 150), "http-01 proves one name");
        let mut suffix = st.clone();
        suffix.identifier = Identifier::dns("co.uk");
        assert!(!suffix.covers(&Identifier::dns("example.co.uk"), acct, 150));
    }

    #[test]
    fn onion_names_by_onion_csr_01_or_through_tor() {
        let acct = "https://ca/acme/account/a";
        let name = "duckduckgogg42xjoc72x3sjasowoarfbgcmvfimaftt6twagswzczad.onion";
        let onion = Identifier::dns(name);
        let ok = statement(onion.clone(), ChallengeType::OnionCsr01);
        assert!(ok.covers(&onion, acct, 150));
        assert!(!ok.covers(&Identifier::dns("example.org"), acct, 150));
        assert!(!ok.covers(&Identifier::dns(&format!("www.{name}")), acct, 150));
        for ct in [
            ChallengeType::Dns01,
            ChallengeType::DnsAccount01,
            ChallengeType::DnsPersist01,
        ] {
            let mut st = statement(onion.clone(), ct);
            assert!(!st.covers(&onion, acct, 150), "{ct:?}");
            st.covers_subdomains = true;
            assert!(!st.covers(&onion, acct, 150), "{ct:?}");
        }
        // http-01 and tls-alpn-01 through Tor (RFC 9799 §4): the name
        // itself, not a wildcard of it nor a name below it.
        for ct in [ChallengeType::Http01, ChallengeType::TlsAlpn01] {
            let mut st = statement(onion.clone(), ct);
            assert!(st.covers(&onion, acct, 150), "{ct:?}");
            st.covers_subdomains = true;
            assert!(!st.covers(&Identifier::dns(&format!("www.{name}")), acct, 150));
            let wild = Identifier::dns(&format!("*.{name}"));
            let st = statement(wild.clone(), ct);
            assert!(!st.covers(&wild, acct, 150), "{ct:?}");
        }
        let mut parent = statement(Identifier::dns("onion.example.org"), ChallengeType::Dns01);
        parent.covers_subdomains = true;
        assert!(!parent.covers(&Identifier::dns("x.onion"), acct, 150));
    }

    #[test]
    fn statements_without_the_subdomain_member_keep_their_signature() {
        // A statement signed before `covers_subdomains` existed: its JSON
        // lacks the member, and the bytes signed then are the bytes now.
        let mut st = statement(Identifier::dns("a.example.org"), ChallengeType::Http01);
        st.caa = None;
        let old = concat!(
            r#"{"id":"s1","account_uri":"https://ca/acme/account/a","#,
            r#""identifier":{"kind":"Dns","value":"a.example.org"},"#,
            r#""challenge_type":"Http01","validated_at":100,"expires":200}"#
        );
        let mut expected = DOMAIN.to_vec();
        expected.extend(old.as_bytes());
        assert_eq!(st.signing_bytes(), expected);
        let parsed: Statement = serde_json::from_str(old).expect("parse");
        assert_eq!(parsed, st);
        let mut flagged = st.clone();
        flagged.covers_subdomains = true;
        assert_ne!(flagged.signing_bytes(), st.signing_bytes());
    }

    #[test]
    fn statements_signed_before_caa_existed_still_verify() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("statement.key");
        let key = StatementKey::load_or_create(&path).expect("create");
        let verifier = StatementVerifier::from_file(&public_path(&path)).expect("pub");
        let mut old = statement(Identifier::dns("a.example.org"), ChallengeType::Http01);
        old.caa = None;
        // What a version-7 validator signed: the JSON without `caa`.
        let v7 = r#"{"id":"s1","account_uri":"https://ca/acme/account/a","identifier":{"kind":"Dns","value":"a.example.org"},"challenge_type":"Http01","validated_at":100,"expires":200}"#;
        let mut bytes = DOMAIN.to_vec();
        bytes.extend(v7.as_bytes());
        assert_eq!(
            old.signing_bytes(),
            bytes,
            "the old signing bytes are unchanged"
        );
        let signed = key.sign(old.clone()).expect("sign");
        let stored = serde_json::to_string(&signed).expect("json");
        let reloaded: SignedStatement = serde_json::from_str(&stored).expect("parse");
        assert!(verifier.verify(&reloaded).is_ok());
        // And a CAA record is covered by the signature.
        let mut with = key
            .sign(statement(
                Identifier::dns("a.example.org"),
                ChallengeType::Http01,
            ))
            .expect("sign");
        assert!(verifier.verify(&with).is_ok());
        with.statement.caa = Some(CaaCheck::Checked { at: 150 });
        assert!(verifier.verify(&with).is_err(), "the CAA time is signed");
    }

    #[test]
    fn caa_freshness() {
        let mut s = statement(Identifier::dns("a.example.org"), ChallengeType::Http01);
        assert!(s.caa_is_fresh(150, 50));
        assert!(!s.caa_is_fresh(151, 50));
        assert!(!s.caa_is_fresh(100 - CLOCK_SKEW_SECS - 1, 50));
        s.caa = None;
        assert!(!s.caa_is_fresh(100, 50), "no CAA record is not fresh");
        s.caa = Some(CaaCheck::NotConfigured);
        assert!(s.caa_is_fresh(1_000_000, 50));
        s.caa = Some(CaaCheck::NotApplicable);
        assert!(!s.caa_is_fresh(100, 50), "only IP addresses are exempt");
        s.identifier = Identifier::ip("192.0.2.1".parse().expect("ip"));
        assert!(s.caa_is_fresh(100, 50));
    }

    #[test]
    fn signatures_are_plain_ed25519_that_openssl_accepts() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("statement.key");
        let key = StatementKey::load_or_create(&path).expect("create");
        let signed = key
            .sign(statement(
                Identifier::dns("a.example.org"),
                ChallengeType::Dns01,
            ))
            .expect("sign");
        let pem = std::fs::read(public_path(&path)).expect("pub");
        let public = PKey::public_key_from_pem(&pem).expect("pem");
        let mut verifier = openssl::sign::Verifier::new_without_digest(&public).expect("verifier");
        assert!(
            verifier
                .verify_oneshot(&signed.signature, &signed.statement.signing_bytes())
                .expect("verify")
        );
        let mut flipped = signed.signature.clone();
        flipped[10] ^= 1;
        let mut verifier = openssl::sign::Verifier::new_without_digest(&public).expect("verifier");
        assert!(
            !verifier
                .verify_oneshot(&flipped, &signed.statement.signing_bytes())
                .unwrap_or(false)
        );
        let ours = StatementVerifier::from_file(&public_path(&path)).expect("pub");
        let mut bad = signed.clone();
        bad.signature = flipped;
        assert!(ours.verify(&bad).is_err());
    }

    #[test]
    fn sign_verify_and_tamper() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("statement.key");
        let key = StatementKey::load_or_create(&path).expect("create");
        let again = StatementKey::load_or_create(&path).expect("load");
        let verifier = StatementVerifier::from_file(&public_path(&path)).expect("pub");
        let signed = key
            .sign(statement(
                Identifier::dns("a.example.org"),
                ChallengeType::Http01,
            ))
            .expect("sign");
        assert!(verifier.verify(&signed).is_ok());
        let signed2 = again
            .sign(statement(
                Identifier::dns("a.example.org"),
                ChallengeType::Http01,
            ))
            .expect("sign");
        assert!(
            verifier.verify(&signed2).is_ok(),
            "reloaded key is the same key"
        );
        let mut forged = signed.clone();
        forged.statement.identifier = Identifier::dns("evil.example.org");
        assert!(verifier.verify(&forged).is_err());
        let other = StatementKey::load_or_create(&dir.path().join("other.key")).expect("other");
        let foreign = other
            .sign(statement(
                Identifier::dns("a.example.org"),
                ChallengeType::Http01,
            ))
            .expect("sign");
        assert!(verifier.verify(&foreign).is_err());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn coverage_rules() {
        let acct = "https://ca/acme/account/a";
        let s = statement(Identifier::dns("a.example.org"), ChallengeType::Http01);
        assert!(s.covers(&Identifier::dns("a.example.org"), acct, 150));
        assert!(
            !s.covers(&Identifier::dns("a.example.org"), acct, 200),
            "expired"
        );
        assert!(!s.covers(
            &Identifier::dns("a.example.org"),
            "https://ca/acme/account/b",
            150
        ));
        assert!(!s.covers(&Identifier::dns("b.example.org"), acct, 150));
        let w = statement(Identifier::dns("*.example.org"), ChallengeType::Http01);
        assert!(
            !w.covers(&Identifier::dns("*.example.org"), acct, 150),
            "wildcard needs dns-01"
        );
        let w = statement(Identifier::dns("*.example.org"), ChallengeType::Dns01);
        assert!(w.covers(&Identifier::dns("*.example.org"), acct, 150));
    }

    #[test]
    fn freshness_is_the_verifiers_maximum_with_a_little_skew() {
        // validated_at = 100
        let s = statement(Identifier::dns("a.example.org"), ChallengeType::Http01);
        assert!(s.is_fresh(100, 50));
        assert!(s.is_fresh(150, 50), "exactly the maximum age");
        assert!(!s.is_fresh(151, 50), "older than the maximum");
        assert!(s.is_fresh(100 - CLOCK_SKEW_SECS, 50), "a little ahead");
        assert!(
            !s.is_fresh(100 - CLOCK_SKEW_SECS - 1, 50),
            "too far in the future"
        );
        assert_eq!(capped_expiry(100, 1_000, 50), 150);
        assert_eq!(capped_expiry(100, 120, 50), 120);
        assert_eq!(capped_expiry(i64::MAX - 1, i64::MAX, 50), i64::MAX);
    }
}
