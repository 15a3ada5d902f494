//! A CA key in a PEM file, used through openssl.
//!
//! Loads PKCS#8, SEC1 (`EC PRIVATE KEY`) and PKCS#1 (`RSA PRIVATE KEY`) PEM;
//! writes PKCS#8. The key never leaves this struct except as PEM for the
//! file it came from.

use std::fmt;
use std::path::Path;

use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::Rsa;

use super::{KeyBackend, SignatureAlgorithm};
use crate::config::{HashAlg, KeyType};
use crate::error::Error;

/// A private key held in memory, loaded from or written to a PEM file.
pub struct FileKey {
    pkey: PKey<Private>,
    spki_der: Vec<u8>,
    algorithm: SignatureAlgorithm,
}

impl FileKey {
    /// Generates a new key of `key_type` that will sign with `hash`.
    pub fn generate(key_type: KeyType, hash: HashAlg) -> Result<Self, Error> {
        let pkey = generate_pkey(key_type)?;
        Self::from_pkey(pkey, hash)
    }

    /// Loads a PEM private key from `path`.
    pub fn load(path: &Path, hash: HashAlg) -> Result<Self, Error> {
        let pem = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        let pkey = PKey::private_key_from_pem(&pem).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source,
        })?;
        Self::from_pkey(pkey, hash)
    }

    /// Wraps an openssl key; refuses key types we cannot sign certificates with.
    pub fn from_pkey(pkey: PKey<Private>, hash: HashAlg) -> Result<Self, Error> {
        let ml_dsa = akamu_jose::MlDsa::of_key(&pkey);
        let algorithm = match pkey.id() {
            _ if let Some(set) = ml_dsa => SignatureAlgorithm::ml_dsa(set),
            Id::EC => match hash {
                HashAlg::Sha256 => SignatureAlgorithm::EcdsaSha256,
                HashAlg::Sha384 => SignatureAlgorithm::EcdsaSha384,
                HashAlg::Sha512 => SignatureAlgorithm::EcdsaSha512,
            },
            Id::RSA => {
                if pkey.bits() < 2048 {
                    return Err(Error::UnsupportedCaKey(format!("RSA-{}", pkey.bits())));
                }
                match hash {
                    HashAlg::Sha256 => SignatureAlgorithm::RsaSha256,
                    HashAlg::Sha384 => SignatureAlgorithm::RsaSha384,
                    HashAlg::Sha512 => SignatureAlgorithm::RsaSha512,
                }
            }
            Id::ED25519 => SignatureAlgorithm::Ed25519,
            Id::ED448 => SignatureAlgorithm::Ed448,
            other => return Err(Error::UnsupportedCaKey(format!("{other:?}"))),
        };
        let spki_der = pkey.public_key_to_der()?;
        Ok(Self {
            pkey,
            spki_der,
            algorithm,
        })
    }

    /// The key as PKCS#8 PEM, for writing to its file.
    pub fn to_pkcs8_pem(&self) -> Result<Vec<u8>, Error> {
        Ok(self.pkey.private_key_to_pem_pkcs8()?)
    }

    /// The openssl key, for comparisons with certificates.
    pub(crate) fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }
}

impl KeyBackend for FileKey {
    fn public_key_der(&self) -> &[u8] {
        &self.spki_der
    }

    fn signature_algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let digest = match self.algorithm.hash() {
            _ if self.algorithm.signs_message() => {
                let mut signer = openssl::sign::Signer::new_without_digest(&self.pkey)?;
                return Ok(signer.sign_oneshot_to_vec(message)?);
            }
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
            HashAlg::Sha512 => MessageDigest::sha512(),
        };
        // ECDSA: openssl returns the DER ECDSA-Sig-Value X.509 wants.
        // RSA: the default padding is PKCS#1 v1.5.
        let mut signer = openssl::sign::Signer::new(digest, &self.pkey)?;
        if matches!(
            self.algorithm,
            SignatureAlgorithm::RsaPssSha256
                | SignatureAlgorithm::RsaPssSha384
                | SignatureAlgorithm::RsaPssSha512
        ) {
            signer.set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)?;
            signer.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH)?;
            signer.set_rsa_mgf1_md(digest)?;
        }
        signer.update(message)?;
        Ok(signer.sign_to_vec()?)
    }
}

impl fmt::Debug for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("FileKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// Generates an openssl private key of `key_type`.
pub fn generate_pkey(key_type: KeyType) -> Result<PKey<Private>, Error> {
    let ec = |nid| -> Result<PKey<Private>, Error> {
        let group = EcGroup::from_curve_name(nid)?;
        Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
    };
    match key_type {
        KeyType::EcP256 => ec(Nid::X9_62_PRIME256V1),
        KeyType::EcP384 => ec(Nid::SECP384R1),
        KeyType::EcP521 => ec(Nid::SECP521R1),
        KeyType::Rsa(bits) => Ok(PKey::from_rsa(Rsa::generate(bits)?)?),
        KeyType::Ed25519 => Ok(PKey::generate_ed25519()?),
        KeyType::Ed448 => Ok(PKey::generate_ed448()?),
        KeyType::MlDsa(set) => set
            .generate()
            .map_err(|e| Error::UnsupportedCaKey(format!("{key_type}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_for_every_key_type() {
        for kt in [
            KeyType::EcP256,
            KeyType::EcP384,
            KeyType::Rsa(2048),
            KeyType::Ed25519,
            KeyType::Ed448,
            KeyType::MlDsa(akamu_jose::MlDsa::P44),
            KeyType::MlDsa(akamu_jose::MlDsa::P65),
            KeyType::MlDsa(akamu_jose::MlDsa::P87),
        ] {
            let key = FileKey::generate(kt, HashAlg::Sha384).expect("generate");
            let sig = key.sign(b"message").expect("sign");
            let public = PKey::public_key_from_der(key.public_key_der()).expect("spki");
            let checker =
                super::super::CaPublicKey::new(key.public_key_der(), key.signature_algorithm())
                    .expect("the CA public key fits its algorithm");
            assert!(checker.verify(b"message", &sig).expect("verify"), "{kt}");
            assert!(!checker.verify(b"messagE", &sig).expect("verify"), "{kt}");
            let ok = match key.signature_algorithm() {
                alg if alg.signs_message() => {
                    let mut v = openssl::sign::Verifier::new_without_digest(&public).expect("v");
                    v.verify_oneshot(&sig, b"message").expect("verify")
                }
                _ => {
                    let mut v =
                        openssl::sign::Verifier::new(MessageDigest::sha384(), &public).expect("v");
                    v.update(b"message").expect("update");
                    v.verify(&sig).expect("verify")
                }
            };
            assert!(ok, "{kt}");
        }
    }

    #[test]
    fn loads_sec1_and_pkcs1_pem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ec = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("g"))
            .expect("ec");
        let sec1 = dir.path().join("sec1.pem");
        std::fs::write(&sec1, ec.private_key_to_pem().expect("pem")).expect("write");
        assert!(
            String::from_utf8_lossy(&std::fs::read(&sec1).expect("read"))
                .contains("EC PRIVATE KEY")
        );
        let k = FileKey::load(&sec1, HashAlg::Sha256).expect("load sec1");
        assert_eq!(k.signature_algorithm(), SignatureAlgorithm::EcdsaSha256);

        let rsa = Rsa::generate(2048).expect("rsa");
        let pkcs1 = dir.path().join("pkcs1.pem");
        std::fs::write(&pkcs1, rsa.private_key_to_pem().expect("pem")).expect("write");
        let k = FileKey::load(&pkcs1, HashAlg::Sha512).expect("load pkcs1");
        assert_eq!(k.signature_algorithm(), SignatureAlgorithm::RsaSha512);
        assert!(format!("{k:?}").contains("RsaSha512"));
    }
}
