//! Private keys that sign JWS requests (clients and tests).

use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKey, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer};

use crate::jws::{ec_params, rsa_params};
use crate::{Alg, JoseError, Jwk, MlDsa, b64};

/// A private key and the JWS algorithm it signs with.
pub struct SigningKey {
    pkey: PKey<Private>,
    alg: Alg,
}

impl SigningKey {
    /// Generates a key for `alg` (RSA keys are 2048 bits; EdDSA is Ed25519).
    pub fn generate(alg: Alg) -> Result<Self, JoseError> {
        let pkey = match alg {
            Alg::Es256 => ec(Nid::X9_62_PRIME256V1)?,
            Alg::Es384 => ec(Nid::SECP384R1)?,
            Alg::Es512 => ec(Nid::SECP521R1)?,
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                PKey::from_rsa(Rsa::generate(2048)?)?
            }
            Alg::EdDsa => PKey::generate_ed25519()?,
            Alg::MlDsa44 => MlDsa::P44.generate()?,
            Alg::MlDsa65 => MlDsa::P65.generate()?,
            Alg::MlDsa87 => MlDsa::P87.generate()?,
        };
        Ok(Self { pkey, alg })
    }

    /// The same key signing with another algorithm its key type allows (an
    /// RSA key with `RS384`, `PS512`, …); anything else is
    /// [`JoseError::AlgKeyMismatch`].
    pub fn with_alg(self, alg: Alg) -> Result<Self, JoseError> {
        Jwk::from_key(&self.pkey)?.check_alg(alg)?;
        Ok(Self { alg, ..self })
    }

    /// Generates a key of `key_type` (`"ec:P-384".parse()?`, RSA of any
    /// listed size, Ed25519 or Ed448); the algorithm follows from the key.
    pub fn generate_key_type(key_type: crate::KeyType) -> Result<Self, JoseError> {
        Self::from_pkey(key_type.generate()?)
    }

    /// Wraps an existing key; the algorithm is inferred (RSA signs RS256,
    /// ML-DSA keys their parameter set's algorithm).
    pub fn from_pkey(pkey: PKey<Private>) -> Result<Self, JoseError> {
        if let Some(set) = MlDsa::of_key(&pkey) {
            return Ok(Self {
                pkey,
                alg: set.alg(),
            });
        }
        let alg = match pkey.id() {
            Id::RSA => Alg::Rs256,
            Id::ED25519 | Id::ED448 => Alg::EdDsa,
            Id::EC => match pkey.ec_key()?.group().curve_name() {
                Some(Nid::X9_62_PRIME256V1) => Alg::Es256,
                Some(Nid::SECP384R1) => Alg::Es384,
                Some(Nid::SECP521R1) => Alg::Es512,
                _ => return Err(JoseError::BadJwk("unsupported EC curve".into())),
            },
            _ => return Err(JoseError::BadJwk("unsupported key type".into())),
        };
        Ok(Self { pkey, alg })
    }

    /// Loads a PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, JoseError> {
        Self::from_pkey(PKey::private_key_from_pem(pem)?)
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<Vec<u8>, JoseError> {
        Ok(self.pkey.private_key_to_pem_pkcs8()?)
    }

    /// The algorithm this key signs with.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The openssl key.
    pub fn pkey(&self) -> &PKey<Private> {
        &self.pkey
    }

    /// The public JWK.
    pub fn public_jwk(&self) -> Result<Jwk, JoseError> {
        Jwk::from_key(&self.pkey)
    }

    /// The RFC 7638 thumbprint of the public JWK.
    pub fn thumbprint(&self) -> Result<String, JoseError> {
        Ok(self.public_jwk()?.thumbprint())
    }

    /// Signs `input` in the JOSE encoding for this key's algorithm.
    pub fn sign(&self, input: &[u8]) -> Result<Vec<u8>, JoseError> {
        match self.alg {
            Alg::Es256 | Alg::Es384 | Alg::Es512 => {
                let (digest, width) = ec_params(self.alg);
                let mut s = Signer::new(digest, &self.pkey)?;
                s.update(input)?;
                let der = s.sign_to_vec()?;
                let sig = EcdsaSig::from_der(&der)?;
                let mut out = sig.r().to_vec_padded(width as i32)?;
                out.extend(sig.s().to_vec_padded(width as i32)?);
                Ok(out)
            }
            Alg::Rs256 | Alg::Rs384 | Alg::Rs512 | Alg::Ps256 | Alg::Ps384 | Alg::Ps512 => {
                let (digest, pss) = rsa_params(self.alg);
                let mut s = Signer::new(digest, &self.pkey)?;
                if pss {
                    s.set_rsa_padding(Padding::PKCS1_PSS)?;
                    s.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
                    s.set_rsa_mgf1_md(digest)?;
                } else {
                    s.set_rsa_padding(Padding::PKCS1)?;
                }
                s.update(input)?;
                Ok(s.sign_to_vec()?)
            }
            // RFC 9964: pure ML-DSA, empty context (openssl's default),
            // hedged signing.
            Alg::EdDsa | Alg::MlDsa44 | Alg::MlDsa65 | Alg::MlDsa87 => {
                let mut s = Signer::new_without_digest(&self.pkey)?;
                Ok(s.sign_oneshot_to_vec(input)?)
            }
        }
    }

    /// Builds a flattened JWS: `protected` (a JSON object) gets `alg` added,
    /// `payload` is signed as given (empty for POST-as-GET).
    pub fn sign_flattened(
        &self,
        protected: serde_json::Value,
        payload: &[u8],
    ) -> Result<serde_json::Value, JoseError> {
        let serde_json::Value::Object(mut header) = protected else {
            return Err(JoseError::Json("protected header must be an object".into()));
        };
        header.insert("alg".into(), self.alg.as_str().into());
        let protected = b64(serde_json::Value::Object(header).to_string().as_bytes());
        let payload = b64(payload);
        let sig = self.sign(format!("{protected}.{payload}").as_bytes())?;
        Ok(serde_json::json!({
            "protected": protected,
            "payload": payload,
            "signature": b64(&sig),
        }))
    }
}

fn ec(nid: Nid) -> Result<PKey<Private>, JoseError> {
    let group = EcGroup::from_curve_name(nid)?;
    Ok(PKey::from_ec_key(EcKey::generate(&group)?)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlattenedJws;

    #[test]
    fn every_alg_signs_and_verifies() {
        let algs: Vec<Alg> = Alg::ALL.iter().filter_map(|n| Alg::parse(n)).collect();
        assert_eq!(algs.len(), Alg::ALL.len());
        for alg in algs {
            let key = SigningKey::generate(alg).expect("gen");
            let jws = key
                .sign_flattened(serde_json::json!({"nonce": "n", "url": "u"}), b"{}")
                .expect("sign");
            let jws: FlattenedJws = serde_json::from_value(jws).expect("parse");
            let header = jws.header().expect("header");
            assert_eq!(header.alg, alg.as_str());
            let jwk = key.public_jwk().expect("jwk");
            jwk.check_alg(alg).expect("alg fits");
            let public = jwk.to_public_key().expect("public");
            jws.verify(alg, &public).expect("verifies");

            let other = SigningKey::generate(alg).expect("gen");
            let other_pub = other
                .public_jwk()
                .expect("jwk")
                .to_public_key()
                .expect("pk");
            assert_eq!(jws.verify(alg, &other_pub), Err(JoseError::BadSignature));

            let mut tampered = jws.clone();
            tampered.payload = crate::b64(b"{\"x\":1}");
            assert_eq!(tampered.verify(alg, &public), Err(JoseError::BadSignature));
        }
    }

    #[test]
    fn pem_round_trip_keeps_alg() {
        for alg in [Alg::Es256, Alg::Es384, Alg::Rs256, Alg::EdDsa] {
            let key = SigningKey::generate(alg).expect("gen");
            let back = SigningKey::from_pem(&key.to_pem().expect("pem")).expect("load");
            assert_eq!(back.alg(), alg);
            assert_eq!(back.thumbprint().expect("t"), key.thumbprint().expect("t"));
        }
    }

    #[test]
    fn hmac_round_trip() {
        let mac = crate::hmac_sign("HS256", b"0123456789abcdef", b"input").expect("mac");
        assert!(crate::hmac_verify("HS256", b"0123456789abcdef", b"input", &mac).is_ok());
        assert!(crate::hmac_verify("HS256", b"0123456789abcdeX", b"input", &mac).is_err());
        assert!(crate::hmac_sign("HS1", b"k", b"i").is_err());
    }

    #[test]
    fn unknown_members_and_bad_base64_are_refused() {
        assert!(
            FlattenedJws::parse(br#"{"protected":"","payload":"","signature":"","header":{}}"#)
                .is_err()
        );
        let jws =
            FlattenedJws::parse(br#"{"protected":"e30=","payload":"","signature":""}"#).expect("p");
        assert_eq!(jws.header(), Err(JoseError::Base64));
    }
}
