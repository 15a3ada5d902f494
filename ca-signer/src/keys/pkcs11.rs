//! A CA key inside a PKCS#11 token, used through cryptoki.
//!
//! Signing happens in the token: the digest is computed here and the token
//! signs it with `CKM_ECDSA` (SoftHSM2 rejects `CKM_ECDSA_SHA256`; the raw
//! r‖s is converted to a DER `ECDSA-Sig-Value`), `CKM_RSA_PKCS` over a
//! DigestInfo, or `CKM_RSA_PKCS_PSS` over the digest.
//!
//! One session is reused behind a mutex; calls run on blocking threads. A
//! session that is gone (closed, logged out, module finalized) is reopened
//! and logged in again before the next signature; a failure during a
//! signature drops the session and fails that call only. The PIN comes from
//! `pin_file` and is never logged.
//!
//! The module is loaded once per process ([`module`]): PKCS#11 allows one
//! `C_Initialize` per process, and a ceremony and a key in the same process
//! must share it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::object::{Attribute, AttributeType, KeyType as CkKeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, SessionState, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcPoint};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;

use super::{KeyBackend, SignatureAlgorithm};
use crate::config::{HashAlg, Pkcs11Config};
use crate::error::Error;

/// The loaded module for `path`, initialized once per process.
pub fn module(path: &Path) -> Result<Pkcs11, Error> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut modules = lock(MODULES.get_or_init(Default::default));
    if let Some(m) = modules.get(path) {
        return Ok(m.clone());
    }
    let ctx = Pkcs11::new(path)?;
    initialize(&ctx)?;
    modules.insert(path.to_owned(), ctx.clone());
    Ok(ctx)
}

/// `C_Initialize`, treating "already initialized" as success.
fn initialize(ctx: &Pkcs11) -> Result<(), Error> {
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Locks a mutex, recovering the data if a holder panicked (the data is a
/// session or a cache; a panic cannot leave it half-updated).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads the PIN: the first line of `path`, without its line ending.
pub fn read_pin(path: &Path) -> Result<AuthPin, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    let pin = text.lines().next().unwrap_or_default().to_owned();
    if pin.is_empty() {
        return Err(Error::ConfigValue {
            field: "signer.key.pin_file",
            problem: format!("{} holds no PIN", path.display()),
        });
    }
    Ok(AuthPin::from(pin))
}

/// The slot of the token labelled `label`, or slot `id`.
pub fn find_slot(ctx: &Pkcs11, label: Option<&str>, id: Option<u64>) -> Result<Slot, Error> {
    // The module may have been finalized under us: initialize it again.
    initialize(ctx)?;
    for slot in ctx.get_slots_with_initialized_token()? {
        if id.is_some_and(|id| slot.id() == id) {
            return Ok(slot);
        }
        if let Some(label) = label
            && ctx.get_token_info(slot)?.label().trim_end() == label
        {
            return Ok(slot);
        }
    }
    Err(Error::TokenNotFound {
        what: "token",
        name: label.map_or_else(|| format!("slot {}", id.unwrap_or_default()), str::to_owned),
    })
}

/// Opens a session on `slot` and logs the user in. `rw` for ceremonies.
pub fn open_session(ctx: &Pkcs11, slot: Slot, pin: &AuthPin, rw: bool) -> Result<Session, Error> {
    let open = |ctx: &Pkcs11| {
        if rw {
            ctx.open_rw_session(slot)
        } else {
            ctx.open_ro_session(slot)
        }
    };
    let session = match open(ctx) {
        Err(CkError::Pkcs11(RvError::CryptokiNotInitialized, _)) => {
            // Someone finalized the module: initialize it again.
            initialize(ctx)?;
            open(ctx)?
        }
        other => other?,
    };
    match session.login(UserType::User, Some(pin)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(e) => Err(e.into()),
    }
}

/// How a key object is found: by label, id, or both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeySelector {
    /// `CKA_LABEL`.
    pub label: Option<String>,
    /// `CKA_ID`.
    pub id: Option<Vec<u8>>,
}

impl KeySelector {
    fn template(&self, class: ObjectClass) -> Vec<Attribute> {
        let mut t = vec![Attribute::Class(class)];
        if let Some(l) = &self.label {
            t.push(Attribute::Label(l.as_bytes().to_vec()));
        }
        if let Some(id) = &self.id {
            t.push(Attribute::Id(id.clone()));
        }
        t
    }

    fn describe(&self) -> String {
        match (&self.label, &self.id) {
            (Some(l), _) => format!("label {l:?}"),
            (None, Some(id)) => format!("id {}", hex::encode(id)),
            (None, None) => "(no label or id)".to_owned(),
        }
    }
}

/// The one object of `class` matching `selector`.
pub fn find_one(
    session: &Session,
    selector: &KeySelector,
    class: ObjectClass,
) -> Result<ObjectHandle, Error> {
    let found = session.find_objects(&selector.template(class))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::TokenNotFound {
            what: if class == ObjectClass::PRIVATE_KEY {
                "private key"
            } else {
                "public key"
            },
            name: selector.describe(),
        }),
        _ => Err(Error::TokenNotFound {
            what: "unique key (several match)",
            name: selector.describe(),
        }),
    }
}

/// The SubjectPublicKeyInfo (DER) of the public key object `handle`.
pub fn public_key_spki(session: &Session, handle: ObjectHandle) -> Result<Vec<u8>, Error> {
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::EcParams,
            AttributeType::EcPoint,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
        ],
    )?;
    let mut key_type = None;
    let (mut params, mut point, mut n, mut e) = (None, None, None, None);
    for a in attrs {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(v) => params = Some(v),
            Attribute::EcPoint(v) => point = Some(v),
            Attribute::Modulus(v) => n = Some(v),
            Attribute::PublicExponent(v) => e = Some(v),
            _ => {}
        }
    }
    match (key_type, params, point, n, e) {
        (Some(t), Some(params), Some(point), _, _) if t == CkKeyType::EC => {
            let nid = curve_of_params(&params)?;
            let group = EcGroup::from_curve_name(nid)?;
            // CKA_EC_POINT is an OCTET STRING around the uncompressed point.
            let raw = match point.as_slice() {
                [0x04, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
                [0x04, 0x81, len, rest @ ..] if usize::from(*len) == rest.len() => rest,
                other => other,
            };
            let mut bn = BigNumContext::new()?;
            let point = EcPoint::from_bytes(&group, raw, &mut bn)?;
            let ec = EcKey::from_public_key(&group, &point)?;
            Ok(PKey::from_ec_key(ec)?.public_key_to_der()?)
        }
        (Some(t), _, _, Some(n), Some(e)) if t == CkKeyType::RSA => {
            let rsa =
                Rsa::from_public_components(BigNum::from_slice(&n)?, BigNum::from_slice(&e)?)?;
            Ok(PKey::from_rsa(rsa)?.public_key_to_der()?)
        }
        _ => Err(Error::UnsupportedCaKey(
            "token key is neither EC nor RSA with readable public parts".to_owned(),
        )),
    }
}

/// The curve of a DER `CKA_EC_PARAMS` (a named-curve OID).
fn curve_of_params(params: &[u8]) -> Result<Nid, Error> {
    for nid in [Nid::X9_62_PRIME256V1, Nid::SECP384R1, Nid::SECP521R1] {
        if ec_params(nid)? == params {
            return Ok(nid);
        }
    }
    Err(Error::UnsupportedCaKey(
        "EC key on a curve other than P-256, P-384, P-521".to_owned(),
    ))
}

/// `CKA_EC_PARAMS` for a named curve: the DER OID.
pub fn ec_params(nid: Nid) -> Result<Vec<u8>, Error> {
    use der::Encode;
    let oid = match nid {
        Nid::X9_62_PRIME256V1 => const_oid::db::rfc5912::SECP_256_R_1,
        Nid::SECP384R1 => const_oid::db::rfc5912::SECP_384_R_1,
        Nid::SECP521R1 => const_oid::db::rfc5912::SECP_521_R_1,
        _ => return Err(Error::UnsupportedCaKey(format!("curve {nid:?}"))),
    };
    Ok(oid.to_der()?)
}

/// The kind of token key, which picks the mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Ec,
    RsaPkcs1,
    RsaPss,
}

/// A live session with the key's handle in it.
struct Live {
    session: Session,
    key: ObjectHandle,
}

/// A private key in a PKCS#11 token.
pub struct Pkcs11Key {
    ctx: Pkcs11,
    slot: Slot,
    pin: AuthPin,
    selector: KeySelector,
    spki_der: Vec<u8>,
    algorithm: SignatureAlgorithm,
    kind: Kind,
    live: Mutex<Option<Live>>,
}

impl Pkcs11Key {
    /// Opens the key described by `config`, signing with `hash`.
    pub fn open(config: &Pkcs11Config, hash: HashAlg) -> Result<Self, Error> {
        let ctx = module(&config.module)?;
        let slot = find_slot(&ctx, config.token_label.as_deref(), config.slot)?;
        let pin = read_pin(&config.pin_file)?;
        let selector = KeySelector {
            label: config.key_label.clone(),
            id: match &config.key_id {
                Some(h) => Some(hex::decode(h).map_err(|_| Error::ConfigValue {
                    field: "signer.key.key_id",
                    problem: "must be hex".to_owned(),
                })?),
                None => None,
            },
        };
        Self::with_selector(ctx, slot, pin, selector, hash, config.rsa_pss)
    }

    /// Opens the key matching `selector` on `slot`.
    pub fn with_selector(
        ctx: Pkcs11,
        slot: Slot,
        pin: AuthPin,
        selector: KeySelector,
        hash: HashAlg,
        rsa_pss: bool,
    ) -> Result<Self, Error> {
        let session = open_session(&ctx, slot, &pin, false)?;
        let key = find_one(&session, &selector, ObjectClass::PRIVATE_KEY)?;
        // The public half: same label/id, or the CKA_ID of the private key.
        let id = session
            .get_attributes(key, &[AttributeType::Id])?
            .into_iter()
            .find_map(|a| match a {
                Attribute::Id(id) => Some(id),
                _ => None,
            });
        let public_selector = KeySelector {
            label: selector.label.clone(),
            id: selector.id.clone().or(id),
        };
        let public = find_one(&session, &public_selector, ObjectClass::PUBLIC_KEY)?;
        let spki_der = public_key_spki(&session, public)?;
        let pkey = PKey::public_key_from_der(&spki_der)?;
        let (kind, algorithm) = match (pkey.id(), hash, rsa_pss) {
            (openssl::pkey::Id::EC, HashAlg::Sha256, _) => {
                (Kind::Ec, SignatureAlgorithm::EcdsaSha256)
            }
            (openssl::pkey::Id::EC, HashAlg::Sha384, _) => {
                (Kind::Ec, SignatureAlgorithm::EcdsaSha384)
            }
            (openssl::pkey::Id::EC, HashAlg::Sha512, _) => {
                (Kind::Ec, SignatureAlgorithm::EcdsaSha512)
            }
            (openssl::pkey::Id::RSA, h, false) => (
                Kind::RsaPkcs1,
                match h {
                    HashAlg::Sha256 => SignatureAlgorithm::RsaSha256,
                    HashAlg::Sha384 => SignatureAlgorithm::RsaSha384,
                    HashAlg::Sha512 => SignatureAlgorithm::RsaSha512,
                },
            ),
            (openssl::pkey::Id::RSA, h, true) => (
                Kind::RsaPss,
                match h {
                    HashAlg::Sha256 => SignatureAlgorithm::RsaPssSha256,
                    HashAlg::Sha384 => SignatureAlgorithm::RsaPssSha384,
                    HashAlg::Sha512 => SignatureAlgorithm::RsaPssSha512,
                },
            ),
            (other, _, _) => return Err(Error::UnsupportedCaKey(format!("{other:?}"))),
        };
        if kind != Kind::Ec && pkey.bits() < 2048 {
            return Err(Error::UnsupportedCaKey(format!("RSA-{}", pkey.bits())));
        }
        Ok(Self {
            ctx,
            slot,
            pin,
            selector,
            spki_der,
            algorithm,
            kind,
            live: Mutex::new(Some(Live { session, key })),
        })
    }

    /// The module context (tests use it to simulate a token going away).
    pub fn context(&self) -> &Pkcs11 {
        &self.ctx
    }

    /// A usable session: the current one if it is still logged in, else a
    /// new one.
    fn ensure_live<'a>(&self, live: &'a mut Option<Live>) -> Result<&'a Live, Error> {
        let healthy = live.as_ref().is_some_and(|l| {
            l.session.get_session_info().is_ok_and(|info| {
                matches!(
                    info.session_state(),
                    SessionState::RoUser | SessionState::RwUser
                )
            })
        });
        if !healthy {
            if live.is_some() {
                tracing::warn!(target: "signer", slot = self.slot.id(), "PKCS#11 session lost; reopening");
            }
            *live = None;
            let session = open_session(&self.ctx, self.slot, &self.pin, false)?;
            let key = find_one(&session, &self.selector, ObjectClass::PRIVATE_KEY)?;
            *live = Some(Live { session, key });
        }
        // Set just above when it was not healthy.
        live.as_ref().ok_or(Error::Lint("PKCS#11 session missing"))
    }
}

impl KeyBackend for Pkcs11Key {
    fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let (digest, digest_info_prefix, hash_mech, mgf): (Vec<u8>, &[u8], _, _) =
            match self.algorithm.hash() {
                HashAlg::Sha256 => (
                    openssl::sha::sha256(message).to_vec(),
                    &DIGEST_INFO_SHA256,
                    MechanismType::SHA256,
                    PkcsMgfType::MGF1_SHA256,
                ),
                HashAlg::Sha384 => (
                    openssl::sha::sha384(message).to_vec(),
                    &DIGEST_INFO_SHA384,
                    MechanismType::SHA384,
                    PkcsMgfType::MGF1_SHA384,
                ),
                HashAlg::Sha512 => (
                    openssl::sha::sha512(message).to_vec(),
                    &DIGEST_INFO_SHA512,
                    MechanismType::SHA512,
                    PkcsMgfType::MGF1_SHA512,
                ),
            };
        let mut guard = lock(&self.live);
        let live = self.ensure_live(&mut guard)?;
        let result = match self.kind {
            Kind::Ec => live.session.sign(&Mechanism::Ecdsa, live.key, &digest),
            Kind::RsaPkcs1 => {
                let mut info = digest_info_prefix.to_vec();
                info.extend_from_slice(&digest);
                live.session.sign(&Mechanism::RsaPkcs, live.key, &info)
            }
            Kind::RsaPss => {
                let params = PkcsPssParams {
                    hash_alg: hash_mech,
                    mgf,
                    s_len: (digest.len() as u64).into(),
                };
                live.session
                    .sign(&Mechanism::RsaPkcsPss(params), live.key, &digest)
            }
        };
        let raw = match result {
            Ok(sig) => sig,
            Err(e) => {
                // Drop the session: the next call starts from a fresh one.
                *guard = None;
                return Err(e.into());
            }
        };
        drop(guard);
        match self.kind {
            Kind::Ec => raw_to_der(&raw),
            Kind::RsaPkcs1 | Kind::RsaPss => Ok(raw),
        }
    }
}

impl fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the PIN.
        f.debug_struct("Pkcs11Key")
            .field("slot", &self.slot.id())
            .field("selector", &self.selector)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Converts a PKCS#11 ECDSA signature (r‖s, each half the length) into a DER
/// `ECDSA-Sig-Value`.
pub fn raw_to_der(raw: &[u8]) -> Result<Vec<u8>, Error> {
    if raw.is_empty() || !raw.len().is_multiple_of(2) {
        return Err(Error::Lint(
            "ECDSA signature from the token has an odd length",
        ));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let sig = EcdsaSig::from_private_components(BigNum::from_slice(r)?, BigNum::from_slice(s)?)?;
    Ok(sig.to_der()?)
}

/// DER DigestInfo prefixes (RFC 8017 §9.2, note 1).
const DIGEST_INFO_SHA256: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
const DIGEST_INFO_SHA384: [u8; 19] = [
    0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05,
    0x00, 0x04, 0x30,
];
const DIGEST_INFO_SHA512: [u8; 19] = [
    0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05,
    0x00, 0x04, 0x40,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_signature_becomes_der() {
        let mut raw = vec![0u8; 64];
        raw[31] = 1;
        raw[63] = 2;
        let der = raw_to_der(&raw).expect("der");
        let sig = EcdsaSig::from_der(&der).expect("parse");
        assert_eq!(sig.r().to_dec_str().expect("r").to_string(), "1");
        assert_eq!(sig.s().to_dec_str().expect("s").to_string(), "2");
        assert!(raw_to_der(&[1, 2, 3]).is_err());
    }

    #[test]
    fn digest_info_prefixes_match_openssl() {
        // openssl's PKCS#1 v1.5 block decrypted with the public key ends with
        // the DigestInfo: check our prefixes against it.
        let rsa = Rsa::generate(2048).expect("rsa");
        let pkey = PKey::from_rsa(rsa.clone()).expect("pkey");
        for (md, prefix, len) in [
            (
                openssl::hash::MessageDigest::sha256(),
                &DIGEST_INFO_SHA256,
                32,
            ),
            (
                openssl::hash::MessageDigest::sha384(),
                &DIGEST_INFO_SHA384,
                48,
            ),
            (
                openssl::hash::MessageDigest::sha512(),
                &DIGEST_INFO_SHA512,
                64,
            ),
        ] {
            let mut s = openssl::sign::Signer::new(md, &pkey).expect("signer");
            s.update(b"m").expect("update");
            let sig = s.sign_to_vec().expect("sign");
            let mut out = vec![0u8; 256];
            let n = rsa
                .public_decrypt(&sig, &mut out, openssl::rsa::Padding::PKCS1)
                .expect("decrypt");
            assert_eq!(&out[..n - len], prefix.as_slice());
        }
    }

    #[test]
    fn ec_params_round_trip() {
        for nid in [Nid::X9_62_PRIME256V1, Nid::SECP384R1] {
            assert_eq!(
                curve_of_params(&ec_params(nid).expect("p")).expect("c"),
                nid
            );
        }
    }
}
