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

use std::path::{Path, PathBuf};

use const_oid::ObjectIdentifier;
use const_oid::db::rfc4519::{C, CN, L, O, OU, ST};
use const_oid::db::rfc5280::{ID_KP_CLIENT_AUTH, ID_KP_SERVER_AUTH};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use der::asn1::{PrintableStringRef, Utf8StringRef};
use der::{Any, Decode, Encode};
use openssl::nid::Nid;
use openssl::x509::X509;
use rand::RngCore;
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};

use crate::audit::{self, AuditLog, Operation};
use crate::ca::{self, Ca};
use crate::config::{HashAlg, KeyType};
use crate::error::Error;
use crate::files::{self, CERT_MODE, KEY_MODE};
use crate::keys::KeyBackend;
use crate::keys::file::FileKey;
use crate::keys::pkcs11::{self, KeySelector, Pkcs11Key};
use crate::tbs::{self, CABF_DOMAIN_VALIDATED, CaProfile};

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

fn refuse_overwrite(path: &Path, force: bool) -> Result<(), Error> {
    if !force && path.exists() {
        return Err(Error::ConfigValue {
            field: "--out",
            problem: format!("{} exists; pass --force to replace it", path.display()),
        });
    }
    Ok(())
}

fn describe(store: &KeyStore) -> String {
    match store {
        KeyStore::Token { token, label } => {
            format!("{label:?} on token {:?}", token.token_label)
        }
        KeyStore::File(path) => format!("file {}", path.display()),
    }
}

/// Opens a key that must already exist.
pub fn open_existing(store: &KeyStore, hash: HashAlg) -> Result<Box<dyn KeyBackend>, Error> {
    Ok(match store {
        KeyStore::Token { token, label } => {
            let (ctx, slot, pin) = token_parts(token)?;
            Box::new(Pkcs11Key::with_selector(
                ctx,
                slot,
                pin,
                KeySelector {
                    label: Some(label.clone()),
                    id: None,
                },
                hash,
                false,
            )?)
        }
        KeyStore::File(path) => Box::new(FileKey::load(path, hash)?),
    })
}

fn token_parts(token: &Token) -> Result<(cryptoki::context::Pkcs11, Slot, AuthPin), Error> {
    let ctx = pkcs11::module(&token.module)?;
    let slot = pkcs11::find_slot(&ctx, Some(&token.token_label), None)?;
    let pin = pkcs11::read_pin(&token.pin_file)?;
    Ok((ctx, slot, pin))
}

/// Generates a key in `store` and audits it.
fn generate(
    store: &KeyStore,
    key_type: KeyType,
    hash: HashAlg,
    force: bool,
    log: &AuditLog,
    now: i64,
    say: &mut dyn FnMut(&str),
) -> Result<Box<dyn KeyBackend>, Error> {
    let key: Box<dyn KeyBackend> = match store {
        KeyStore::File(path) => {
            refuse_overwrite(path, force)?;
            let key = FileKey::generate(key_type, hash)?;
            files::write_atomic(path, &key.to_pkcs8_pem()?, KEY_MODE)?;
            say(&format!(
                "generated {key_type} key in {} (mode 0600)",
                path.display()
            ));
            Box::new(key)
        }
        KeyStore::Token { token, label } => {
            let (ctx, slot, pin) = token_parts(token)?;
            let session = pkcs11::open_session(&ctx, slot, &pin, true)?;
            let existing = objects_labelled(&session, label)?;
            if !existing.is_empty() {
                if !force {
                    return Err(Error::ConfigValue {
                        field: "--key-label",
                        problem: format!(
                            "token {:?} already holds {} object(s) labelled {label:?}; \
                             pass --force to replace them",
                            token.token_label,
                            existing.len()
                        ),
                    });
                }
                for h in existing {
                    session.destroy_object(h)?;
                }
                say(&format!(
                    "destroyed the existing objects labelled {label:?} (--force)"
                ));
            }
            let id = generate_in_token(&session, label, key_type)?;
            drop(session);
            let key = Pkcs11Key::with_selector(
                ctx,
                slot,
                pin,
                KeySelector {
                    label: Some(label.clone()),
                    id: Some(id.clone()),
                },
                hash,
                false,
            )?;
            say(&format!(
                "generated {key_type} key pair {label:?} (id {}) in token {:?}: \
                 CKA_SENSITIVE=true CKA_EXTRACTABLE=false CKA_SIGN=true CKA_DECRYPT=false CKA_UNWRAP=false",
                hex::encode(&id),
                token.token_label
            ));
            Box::new(key)
        }
    };
    let spki_sha256 = hex::encode(openssl::sha::sha256(key.public_key_der()));
    log.append(
        Operation::Ceremony,
        audit::Entry {
            detail: Some(format!(
                "generated {key_type} key {}; spki_sha256={spki_sha256}",
                describe(store)
            )),
            ..audit::Entry::default()
        },
        now,
    )?;
    say(&format!("public key SPKI SHA-256: {spki_sha256}"));
    Ok(key)
}

fn objects_labelled(session: &Session, label: &str) -> Result<Vec<ObjectHandle>, Error> {
    Ok(session.find_objects(&[Attribute::Label(label.as_bytes().to_vec())])?)
}

/// Generates a key pair in the token; returns its `CKA_ID` (a random 16 bytes
/// set on both halves).
fn generate_in_token(session: &Session, label: &str, key_type: KeyType) -> Result<Vec<u8>, Error> {
    let mut id = vec![0u8; 16];
    openssl::rand::rand_bytes(&mut id)?;
    let common = |private: bool| {
        vec![
            Attribute::Token(true),
            Attribute::Private(private),
            Attribute::Label(label.as_bytes().to_vec()),
            Attribute::Id(id.clone()),
        ]
    };
    let mut public = common(false);
    public.extend([
        Attribute::Verify(true),
        Attribute::Encrypt(false),
        Attribute::Wrap(false),
    ]);
    let mut private = common(true);
    private.extend([
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    let mechanism = match key_type {
        KeyType::EcP256 | KeyType::EcP384 | KeyType::EcP521 => {
            let nid = match key_type {
                KeyType::EcP256 => Nid::X9_62_PRIME256V1,
                KeyType::EcP384 => Nid::SECP384R1,
                _ => Nid::SECP521R1,
            };
            public.push(Attribute::EcParams(pkcs11::ec_params(nid)?));
            Mechanism::EccKeyPairGen
        }
        KeyType::Rsa(bits) => {
            public.push(Attribute::ModulusBits(u64::from(bits).into()));
            public.push(Attribute::PublicExponent(vec![0x01, 0x00, 0x01]));
            Mechanism::RsaPkcsKeyPairGen
        }
        KeyType::Ed25519 => {
            return Err(Error::UnsupportedCaKey(
                "ed25519 keys in a token (use ec:P-256, ec:P-384 or rsa:N)".to_owned(),
            ));
        }
    };
    session.generate_key_pair(&mechanism, &public, &private)?;
    Ok(id)
}

/// One object listed by [`show`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenObject {
    /// `private key`, `public key` or `certificate`.
    pub class: &'static str,
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`, hex.
    pub id: String,
    /// SHA-256 of the SubjectPublicKeyInfo, hex (keys with a public half).
    pub spki_sha256: Option<String>,
    /// `CKA_SENSITIVE` (private keys).
    pub sensitive: Option<bool>,
    /// `CKA_EXTRACTABLE` (private keys).
    pub extractable: Option<bool>,
}

/// Lists keys and certificates on the token.
pub fn show(token: &Token) -> Result<Vec<TokenObject>, Error> {
    let (ctx, slot, pin) = token_parts(token)?;
    let session = pkcs11::open_session(&ctx, slot, &pin, false)?;
    let mut out = Vec::new();
    for (class, name) in [
        (ObjectClass::PRIVATE_KEY, "private key"),
        (ObjectClass::PUBLIC_KEY, "public key"),
        (ObjectClass::CERTIFICATE, "certificate"),
    ] {
        for h in session.find_objects(&[Attribute::Class(class)])? {
            let attrs = session.get_attributes(
                h,
                &[
                    AttributeType::Label,
                    AttributeType::Id,
                    AttributeType::Sensitive,
                    AttributeType::Extractable,
                    AttributeType::Value,
                ],
            )?;
            let mut obj = TokenObject {
                class: name,
                label: String::new(),
                id: String::new(),
                spki_sha256: None,
                sensitive: None,
                extractable: None,
            };
            let mut value = None;
            let mut id_bytes = Vec::new();
            for a in attrs {
                match a {
                    Attribute::Label(l) => obj.label = String::from_utf8_lossy(&l).into_owned(),
                    Attribute::Id(id) => {
                        obj.id = hex::encode(&id);
                        id_bytes = id;
                    }
                    Attribute::Sensitive(b) if class == ObjectClass::PRIVATE_KEY => {
                        obj.sensitive = Some(b);
                    }
                    Attribute::Extractable(b) if class == ObjectClass::PRIVATE_KEY => {
                        obj.extractable = Some(b);
                    }
                    Attribute::Value(v) => value = Some(v),
                    _ => {}
                }
            }
            let spki = if class == ObjectClass::CERTIFICATE {
                value
                    .and_then(|v| X509::from_der(&v).ok())
                    .and_then(|c| c.public_key().ok().and_then(|k| k.public_key_to_der().ok()))
            } else {
                let public = if class == ObjectClass::PUBLIC_KEY {
                    Some(h)
                } else {
                    session
                        .find_objects(&[
                            Attribute::Class(ObjectClass::PUBLIC_KEY),
                            Attribute::Id(id_bytes),
                        ])?
                        .first()
                        .copied()
                };
                public.and_then(|p| pkcs11::public_key_spki(&session, p).ok())
            };
            obj.spki_sha256 = spki.map(|d| hex::encode(openssl::sha::sha256(&d)));
            out.push(obj);
        }
    }
    Ok(out)
}

/// Parses an RFC 4514 subject (`CN=…,O=…,C=…`; no escapes) into a Name.
/// RFC 4514 lists the most specific RDN first, so the encoded order is the
/// reverse. C is a PrintableString, everything else a UTF8String.
pub fn parse_subject(text: &str) -> Result<Name, Error> {
    let bad = |problem: String| Error::ConfigValue {
        field: "--subject",
        problem,
    };
    let mut rdns = Vec::new();
    for part in text.split(',') {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not KEY=VALUE")))?;
        let (key, value) = (key.trim(), value.trim());
        if value.is_empty() || value.chars().count() > 64 || value.contains('\\') {
            return Err(bad(format!(
                "{key}: value must have 1 to 64 characters, no escapes"
            )));
        }
        let oid: ObjectIdentifier = match key.to_ascii_uppercase().as_str() {
            "CN" => CN,
            "O" => O,
            "OU" => OU,
            "C" => C,
            "L" => L,
            "ST" => ST,
            other => {
                return Err(bad(format!(
                    "unsupported attribute {other} (CN, O, OU, C, L, ST)"
                )));
            }
        };
        let value = if oid == C {
            if value.len() != 2 || !value.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad("C must be two upper-case letters".to_owned()));
            }
            Any::encode_from(&PrintableStringRef::new(value)?)?
        } else {
            Any::encode_from(&Utf8StringRef::new(value)?)?
        };
        rdns.push(RelativeDistinguishedName::try_from(vec![
            AttributeTypeAndValue { oid, value },
        ])?);
    }
    if !rdns.iter().any(|r| r.as_ref().iter().any(|a| a.oid == CN)) {
        return Err(bad("a CN is required".to_owned()));
    }
    rdns.reverse();
    let mut seq = RdnSequence::default();
    for r in rdns {
        seq.push(r);
    }
    Ok(Name::hazmat_from_rdn_sequence(seq))
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
