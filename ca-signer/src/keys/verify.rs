//! The CA's public key, decoded once when the CA is loaded, to check every
//! signature a [`super::KeyBackend`] returns before it leaves the signer.

use std::fmt;

use openssl::ec::EcKey;
use openssl::hash::MessageDigest;
use openssl::pkey::{Id, PKey, Public};
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Verifier};

use super::SignatureAlgorithm;
use crate::config::HashAlg;
use crate::error::Error;

/// The issuing CA's public key and the algorithm it signs with.
#[derive(Clone)]
pub struct CaPublicKey {
    spki_der: Vec<u8>,
    pkey: PKey<Public>,
    /// The EC key of an ECDSA issuer, for `ECDSA_do_verify`.
    ec: Option<EcKey<Public>>,
    algorithm: SignatureAlgorithm,
}

impl CaPublicKey {
    /// Decodes `spki_der`; refuses a key that cannot make `algorithm`'s
    /// signatures.
    pub fn new(spki_der: &[u8], algorithm: SignatureAlgorithm) -> Result<Self, Error> {
        let pkey = PKey::public_key_from_der(spki_der)?;
        let fits = match algorithm {
            SignatureAlgorithm::EcdsaSha256
            | SignatureAlgorithm::EcdsaSha384
            | SignatureAlgorithm::EcdsaSha512 => pkey.id() == Id::EC,
            SignatureAlgorithm::RsaSha256
            | SignatureAlgorithm::RsaSha384
            | SignatureAlgorithm::RsaSha512
            | SignatureAlgorithm::RsaPssSha256
            | SignatureAlgorithm::RsaPssSha384
            | SignatureAlgorithm::RsaPssSha512 => pkey.id() == Id::RSA,
            SignatureAlgorithm::Ed25519 => pkey.id() == Id::ED25519,
            SignatureAlgorithm::Ed448 => pkey.id() == Id::ED448,
            // Provider keys have no numeric id: compare the parameter set.
            SignatureAlgorithm::MlDsa44
            | SignatureAlgorithm::MlDsa65
            | SignatureAlgorithm::MlDsa87 => {
                akamu_jose::MlDsa::of_key(&pkey).map(SignatureAlgorithm::ml_dsa) == Some(algorithm)
            }
        };
        if !fits {
            return Err(Error::UnsupportedCaKey(format!(
                "a {:?} key cannot sign with {algorithm:?}",
                pkey.id()
            )));
        }
        let ec = match pkey.id() {
            Id::EC => Some(pkey.ec_key()?),
            _ => None,
        };
        Ok(Self {
            spki_der: spki_der.to_vec(),
            pkey,
            ec,
            algorithm,
        })
    }

    /// The key's SubjectPublicKeyInfo, DER, as given to [`CaPublicKey::new`].
    pub fn spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The algorithm the key signs with.
    pub fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    /// The openssl key.
    pub fn pkey(&self) -> &PKey<Public> {
        &self.pkey
    }

    /// Whether `signature` (the bytes of a signature BIT STRING, as
    /// [`super::KeyBackend::sign`] returns them) verifies over `message` with
    /// this key and algorithm, as openssl's `X509_verify` decides it: ECDSA
    /// as `ECDSA_verify` (strict DER `ECDSA-Sig-Value`, then
    /// `ECDSA_do_verify` of the digest), RSA PKCS#1 v1.5, RSASSA-PSS with
    /// MGF1 of the same digest and a salt of the digest's length, Ed25519.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<bool, Error> {
        let md = match self.algorithm.hash() {
            HashAlg::Sha256 => MessageDigest::sha256(),
            HashAlg::Sha384 => MessageDigest::sha384(),
            HashAlg::Sha512 => MessageDigest::sha512(),
        };
        match self.algorithm {
            SignatureAlgorithm::EcdsaSha256
            | SignatureAlgorithm::EcdsaSha384
            | SignatureAlgorithm::EcdsaSha512 => {
                let Some(ec) = &self.ec else {
                    return Ok(false);
                };
                let digest = openssl::hash::hash(md, message)?;
                Ok(akamu_pki::csr::ecdsa_verify_digest(ec, &digest, signature))
            }
            SignatureAlgorithm::Ed25519
            | SignatureAlgorithm::Ed448
            | SignatureAlgorithm::MlDsa44
            | SignatureAlgorithm::MlDsa65
            | SignatureAlgorithm::MlDsa87 => {
                let mut verifier = Verifier::new_without_digest(&self.pkey)?;
                Ok(verifier.verify_oneshot(signature, message).unwrap_or(false))
            }
            SignatureAlgorithm::RsaSha256
            | SignatureAlgorithm::RsaSha384
            | SignatureAlgorithm::RsaSha512 => {
                let mut verifier = Verifier::new(md, &self.pkey)?;
                verifier.set_rsa_padding(Padding::PKCS1)?;
                Ok(verifier.verify_oneshot(signature, message).unwrap_or(false))
            }
            SignatureAlgorithm::RsaPssSha256
            | SignatureAlgorithm::RsaPssSha384
            | SignatureAlgorithm::RsaPssSha512 => {
                let mut verifier = Verifier::new(md, &self.pkey)?;
                verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
                verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                verifier.set_rsa_mgf1_md(md)?;
                Ok(verifier.verify_oneshot(signature, message).unwrap_or(false))
            }
        }
    }
}

impl fmt::Debug for CaPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CaPublicKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyType;
    use crate::keys::KeyBackend;
    use crate::keys::file::FileKey;

    #[test]
    fn a_key_must_fit_its_algorithm() {
        let ec = FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key");
        let rsa = FileKey::generate(KeyType::Rsa(2048), HashAlg::Sha256).expect("key");
        assert!(CaPublicKey::new(ec.public_key_der(), SignatureAlgorithm::EcdsaSha256).is_ok());
        for (spki, algorithm) in [
            (ec.public_key_der(), SignatureAlgorithm::RsaSha256),
            (ec.public_key_der(), SignatureAlgorithm::Ed25519),
            (rsa.public_key_der(), SignatureAlgorithm::EcdsaSha256),
        ] {
            assert!(
                matches!(
                    CaPublicKey::new(spki, algorithm),
                    Err(Error::UnsupportedCaKey(_))
                ),
                "{algorithm:?}"
            );
        }
        assert!(CaPublicKey::new(b"junk", SignatureAlgorithm::EcdsaSha256).is_err());
    }

    #[test]
    fn ecdsa_signatures_must_be_strict_der() {
        let key = FileKey::generate(KeyType::EcP256, HashAlg::Sha256).expect("key");
        let public =
            CaPublicKey::new(key.public_key_der(), key.signature_algorithm()).expect("key");
        let sig = key.sign(b"message").expect("sign");
        assert!(public.verify(b"message", &sig).expect("verify"));
        assert!(!public.verify(b"other message", &sig).expect("verify"));
        let mut trailing = sig.clone();
        trailing.push(0);
        assert!(!public.verify(b"message", &trailing).expect("verify"));
        // The same SEQUENCE with a long-form length: BER, not DER.
        let mut ber = vec![0x30, 0x81];
        ber.extend_from_slice(&sig[1..]);
        assert!(!public.verify(b"message", &ber).expect("verify"));
    }
}
