//! Key ceremonies: a root and an issuing intermediate, with keys generated
//! inside a PKCS#11 token (or in files for labs). Driven by
//! `akamu-cli ceremony …`.
//!
//! Token keys are generated with `CKA_TOKEN`, `CKA_PRIVATE`,
//! `CKA_SENSITIVE=true`, `CKA_EXTRACTABLE=false`, `CKA_SIGN=true` and
//! explicitly `CKA_DECRYPT=false`, `CKA_UNWRAP=false` (SoftHSM2 leaves those
//! on otherwise). A step that would replace an existing key or file refuses
//! unless `force` is set. Every step reports what it did through `say` and
//! appends a `ceremony` record to the audit log.
//!
//! Files: `keys` generates and opens the ceremony's keys (file or token)
//! and lists a token's objects; `subject` parses subjects.

use std::path::{Path, PathBuf};

use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use der::{Decode, Encode};
use openssl::x509::X509;
use rand::RngCore;
use x509_cert::Certificate;

use crate::audit::{self, AuditLog, Operation};
use crate::ca::{self, Ca};
use crate::config::{HashAlg, KeyType};
use crate::error::Error;
use crate::files::{self, CERT_MODE};
use crate::keys::KeyBackend;
use crate::tbs::{self, CABF_DOMAIN_VALIDATED, CaProfile};

mod keys;
mod subject;

use keys::generate;
pub use keys::{TokenObject, open_existing, show};
pub use subject::parse_subject;

/// Seconds in a Julian year.
const SECS_PER_YEAR: i64 = 31_557_600;

/// A PKCS#11 token to run a ceremony on.
#[derive(Clone, Debug)]
pub struct Token {
    /// The module.
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// File holding the user PIN.
    pub pin_file: PathBuf,
}

/// Where a ceremony key lives.
#[derive(Clone, Debug)]
pub enum KeyStore {
    /// In a token, under `label`.
    Token {
        /// The token.
        token: Token,
        /// The key's `CKA_LABEL` (the `CKA_ID` is derived from its SPKI).
        label: String,
    },
    /// In a PEM file.
    File(PathBuf),
}

/// `ceremony init-root`.
#[derive(Clone, Debug)]
pub struct RootParams {
    /// Where to generate the root key.
    pub key: KeyStore,
    /// Key type (`ec:P-256`, `ec:P-384`, `rsa:3072`, …).
    pub key_type: KeyType,
    /// Digest for the signature.
    pub hash: HashAlg,
    /// Subject, RFC 4514 (`CN=Example Root,O=Example,C=US`).
    pub subject: String,
    /// Validity in years.
    pub validity_years: u32,
    /// BasicConstraints pathLenConstraint.
    pub path_len: Option<u8>,
    /// Where to write the certificate PEM.
    pub out: PathBuf,
    /// The audit log.
    pub audit_log: PathBuf,
    /// Replace an existing key or file.
    pub force: bool,
}

/// `ceremony issue-intermediate`.
#[derive(Clone, Debug)]
pub struct IntermediateParams {
    /// The root key (must already exist).
    pub root_key: KeyStore,
    /// The root certificate PEM.
    pub root_cert: PathBuf,
    /// Where to generate the intermediate key.
    pub key: KeyStore,
    /// Key type of the intermediate.
    pub key_type: KeyType,
    /// Digest for the root's signature.
    pub hash: HashAlg,
    /// Subject, RFC 4514.
    pub subject: String,
    /// Validity in years (cut at the root's notAfter).
    pub validity_years: u32,
    /// CRL distribution point of the root's CRL, if any.
    pub crl_url: Option<String>,
    /// URL of the root certificate, written as AIA caIssuers, if any.
    pub ca_issuers_url: Option<String>,
    /// Add the clientAuth EKU beside serverAuth.
    pub client_auth: bool,
    /// Where to write the certificate PEM.
    pub out: PathBuf,
    /// The audit log.
    pub audit_log: PathBuf,
    /// Replace an existing key or file.
    pub force: bool,
}

/// What a ceremony step produced.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its serial, hex.
    pub serial_hex: String,
    /// SHA-256 of its SubjectPublicKeyInfo, hex.
    pub spki_sha256: String,
    /// The audit log's head hash after the step.
    pub audit_head: String,
}

/// Generates a root key and writes a self-signed root certificate.
pub fn init_root(
    p: &RootParams,
    now: i64,
    rng: &mut dyn RngCore,
    say: &mut dyn FnMut(&str),
) -> Result<Outcome, Error> {
    refuse_overwrite(&p.out, p.force)?;
    let subject = parse_subject(&p.subject)?;
    let (log, _) = AuditLog::open(&p.audit_log)?;
    let key = generate(&p.key, p.key_type, p.hash, p.force, &log, now, say)?;
    let issuer = tbs::self_issuer(&subject, key.as_ref())?;
    let profile = CaProfile {
        subject,
        path_len: p.path_len,
        ekus: Vec::new(),
        crl_url: None,
        policies: Vec::new(),
        ca_issuers_url: None,
    };
    let not_after = now.saturating_add(i64::from(p.validity_years) * SECS_PER_YEAR);
    let linted = tbs::build_ca(
        &profile,
        key.public_key_der(),
        &issuer,
        tbs::random_serial(rng)?,
        now,
        not_after,
    )?;
    finish(
        linted,
        key.as_ref(),
        &p.subject,
        "root certificate",
        &p.out,
        &log,
        now,
        say,
    )
}

/// Generates the issuing key and has the root sign an intermediate
/// certificate: pathLen 0, keyCertSign+cRLSign, EKU serverAuth (+clientAuth),
/// CRL DP if given, AKI = the root's SKI.
pub fn issue_intermediate(
    p: &IntermediateParams,
    now: i64,
    rng: &mut dyn RngCore,
    say: &mut dyn FnMut(&str),
) -> Result<Outcome, Error> {
    refuse_overwrite(&p.out, p.force)?;
    let subject = parse_subject(&p.subject)?;
    let root_pem = std::fs::read(&p.root_cert).map_err(|source| Error::Read {
        path: p.root_cert.clone(),
        source,
    })?;
    let root_x509 = X509::from_pem(&root_pem).map_err(|source| Error::Parse {
        path: p.root_cert.clone(),
        source,
    })?;
    let root_key = open_existing(&p.root_key, p.hash)?;
    let root = Ca::new(root_key, root_x509.to_der()?)?;
    say(&format!(
        "opened root key {} matching {}",
        describe(&p.root_key),
        p.root_cert.display()
    ));
    let (log, _) = AuditLog::open(&p.audit_log)?;
    let key = generate(&p.key, p.key_type, p.hash, p.force, &log, now, say)?;
    let mut ekus = vec![ID_KP_SERVER_AUTH];
    if p.client_auth {
        ekus.push(ID_KP_CLIENT_AUTH);
    }
    let profile = CaProfile {
        subject,
        path_len: Some(0),
        ekus,
        crl_url: p.crl_url.clone(),
        policies: vec![CABF_DOMAIN_VALIDATED],
        ca_issuers_url: p.ca_issuers_url.clone(),
    };
    let not_after = now
        .saturating_add(i64::from(p.validity_years) * SECS_PER_YEAR)
        .min(root.not_after());
    let linted = tbs::build_ca(
        &profile,
        key.public_key_der(),
        root.issuer(),
        tbs::random_serial(rng)?,
        now,
        not_after,
    )?;
    finish(
        linted,
        root.key(),
        &p.subject,
        "intermediate certificate",
        &p.out,
        &log,
        now,
        say,
    )
}

/// Signs, writes and audits a CA certificate.
#[allow(clippy::too_many_arguments)]
fn finish(
    linted: tbs::LintedTbs,
    signer: &dyn KeyBackend,
    subject: &str,
    what: &str,
    out: &Path,
    log: &AuditLog,
    now: i64,
    say: &mut dyn FnMut(&str),
) -> Result<Outcome, Error> {
    let tbs_der = linted.tbs_der().to_vec();
    let signed = linted.sign(signer)?;
    let cert_pem = ca::pem(&signed.der)?;
    let cert = Certificate::from_der(&signed.der)?;
    let spki_sha256 = hex::encode(openssl::sha::sha256(
        &cert.tbs_certificate().subject_public_key_info().to_der()?,
    ));
    let record = log.append(
        Operation::Ceremony,
        audit::Entry {
            serial: Some(signed.serial_hex.clone()),
            subject: Some(subject.to_owned()),
            tbs_der: Some(tbs_der),
            detail: Some(format!("signed {what}; spki_sha256={spki_sha256}")),
            ..audit::Entry::default()
        },
        now,
    )?;
    files::write_atomic(out, cert_pem.as_bytes(), CERT_MODE)?;
    say(&format!(
        "signed {what} serial {} for {subject:?}, written to {}",
        signed.serial_hex,
        out.display()
    ));
    say(&format!(
        "audit record {} appended to {}",
        record.seq,
        log.path().display()
    ));
    Ok(Outcome {
        cert_pem,
        serial_hex: signed.serial_hex,
        spki_sha256,
        audit_head: record.hash,
    })
}

pub(super) fn refuse_overwrite(path: &Path, force: bool) -> Result<(), Error> {
    if !force && path.exists() {
        return Err(Error::ConfigValue {
            field: "--out",
            problem: format!("{} exists; pass --force to replace it", path.display()),
        });
    }
    Ok(())
}

pub(super) fn describe(store: &KeyStore) -> String {
    match store {
        KeyStore::Token { token, label } => {
            format!("{label:?} on token {:?}", token.token_label)
        }
        KeyStore::File(path) => format!("file {}", path.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_parsing() {
        let n = parse_subject("CN=Example Root,O=Example,C=US").expect("parse");
        assert_eq!(n.to_string(), "CN=Example Root,O=Example,C=US");
        for bad in ["O=Example", "CN=", "CN=a,XX=b", "CN=a,C=usa", "nonsense"] {
            assert!(parse_subject(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_ceremony_builds_a_verifiable_hierarchy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let now = crate::unix_now();
        let mut said = Vec::new();
        let root = RootParams {
            key: KeyStore::File(d.join("root.key")),
            key_type: KeyType::EcP384,
            hash: HashAlg::Sha384,
            subject: "CN=Example Root,O=Example,C=US".to_owned(),
            validity_years: 20,
            path_len: Some(1),
            out: d.join("root.pem"),
            audit_log: d.join("audit.log"),
            force: false,
        };
        init_root(&root, now, &mut rand::rng(), &mut |s| {
            said.push(s.to_owned())
        })
        .expect("root");
        assert!(
            init_root(&root, now, &mut rand::rng(), &mut |_| {}).is_err(),
            "no overwrite"
        );
        let inter = IntermediateParams {
            root_key: KeyStore::File(d.join("root.key")),
            root_cert: d.join("root.pem"),
            key: KeyStore::File(d.join("issuing.key")),
            key_type: KeyType::EcP256,
            hash: HashAlg::Sha384,
            subject: "CN=Example Issuing CA,O=Example,C=US".to_owned(),
            validity_years: 5,
            crl_url: Some("http://crl.example.org/root.crl".to_owned()),
            ca_issuers_url: None,
            client_auth: false,
            out: d.join("intermediate.pem"),
            audit_log: d.join("audit.log"),
            force: false,
        };
        let out = issue_intermediate(&inter, now, &mut rand::rng(), &mut |s| {
            said.push(s.to_owned())
        })
        .expect("intermediate");
        assert!(
            said.iter()
                .any(|s| s.contains("signed intermediate certificate"))
        );
        let root_cert = X509::from_pem(&std::fs::read(d.join("root.pem")).expect("r")).expect("p");
        let inter_cert = X509::from_pem(out.cert_pem.as_bytes()).expect("pem");
        assert!(
            inter_cert
                .verify(&root_cert.public_key().expect("pk"))
                .expect("verify")
        );
        assert_eq!(
            inter_cert.authority_key_id().expect("aki").as_slice(),
            root_cert.subject_key_id().expect("ski").as_slice()
        );
        let text = String::from_utf8(inter_cert.to_text().expect("text")).expect("utf8");
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
        assert!(text.contains("TLS Web Server Authentication"), "{text}");
        assert!(
            text.contains("URI:http://crl.example.org/root.crl"),
            "{text}"
        );
        let (records, head) = audit::read_verified(&d.join("audit.log")).expect("audit");
        assert_eq!(records.len(), 4, "2 keys + 2 certificates");
        assert_eq!(head, out.audit_head);
    }
}
