//! The ceremony's keys: generated in a file or a PKCS#11 token (and
//! audited), opened again, and a token's objects listed.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use openssl::nid::Nid;
use openssl::x509::X509;

use super::{KeyStore, Token, describe, refuse_overwrite};
use crate::audit::{self, AuditLog, Operation};
use crate::config::{HashAlg, KeyType};
use crate::error::Error;
use crate::files::{self, KEY_MODE};
use crate::keys::KeyBackend;
use crate::keys::file::FileKey;
use crate::keys::pkcs11::{self, KeySelector, Pkcs11Key};

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
pub(super) fn generate(
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
        KeyType::Ed25519 | KeyType::Ed448 | KeyType::MlDsa(_) => {
            // PKCS#11 3.2's CKM_ML_DSA is not offered by SoftHSM2 (see
            // docs/src/cryptography.md): ML-DSA CA keys use the file backend.
            return Err(Error::UnsupportedCaKey(format!(
                "{key_type} keys in a token (use ec:P-256, ec:P-384 or rsa:N)"
            )));
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
