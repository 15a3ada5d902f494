//! `AccountKey`: the private key that signs ACME requests (and, reused for
//! certificate keys, the key a CSR is made with).

use akamu_jose::{Jwk, KeyType, SigningKey};
use openssl::pkey::{PKey, Private};

use crate::ClientError;

/// An ACME account private key with its public JWK and RFC 7638 thumbprint.
///
/// Wraps `akamu_jose::SigningKey` (the reference wraps a synta
/// `BackendPrivateKey`; here the key is an openssl `PKey`).
pub struct AccountKey {
    signing: SigningKey,
    jwk: Jwk,
    thumbprint: String,
}

impl AccountKey {
    /// Generates a key: `ec:P-256`, `ec:P-384`, `ec:P-521`, `rsa:2048`,
    /// `rsa:3072`, `rsa:4096`, `ed25519`, `ed448`, `ml-dsa-44`, `ml-dsa-65`
    /// or `ml-dsa-87` (RFC 9964 `AKP` keys signing `ML-DSA-44/65/87`).
    /// RSA keys sign `RS256`; [`AccountKey::with_alg`] picks another.
    pub fn generate(key_type: &str) -> Result<Self, ClientError> {
        let kt: KeyType = key_type
            .parse()
            .map_err(|e: akamu_jose::UnknownKeyType| ClientError::InvalidArgument(e.to_string()))?;
        Self::generate_key_type(kt)
    }

    /// Generates a key of an already parsed [`KeyType`].
    pub fn generate_key_type(key_type: KeyType) -> Result<Self, ClientError> {
        Self::from_signing_key(SigningKey::generate_key_type(key_type)?)
    }

    /// The same key signing with `alg`, another JWS algorithm its type
    /// allows: `RS384`, `RS512`, `PS256`, `PS384` or `PS512` for an RSA key.
    /// An algorithm the key cannot sign is [`ClientError::InvalidArgument`].
    pub fn with_alg(self, alg: &str) -> Result<Self, ClientError> {
        let parsed = akamu_jose::Alg::parse(alg).ok_or_else(|| {
            ClientError::InvalidArgument(format!("unknown JWS algorithm {alg:?}"))
        })?;
        let signing = self
            .signing
            .with_alg(parsed)
            .map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        Self::from_signing_key(signing)
    }

    /// Loads a PEM private key (PKCS#8, SEC1 or PKCS#1).
    pub fn from_pem(pem: impl AsRef<[u8]>) -> Result<Self, ClientError> {
        let pkey = PKey::private_key_from_pem(pem.as_ref())
            .map_err(|e| ClientError::Crypto(format!("cannot read private key PEM: {e}")))?;
        Self::from_pkey(pkey)
    }

    /// Wraps an openssl private key.
    pub fn from_pkey(pkey: PKey<Private>) -> Result<Self, ClientError> {
        Self::from_signing_key(SigningKey::from_pkey(pkey)?)
    }

    fn from_signing_key(signing: SigningKey) -> Result<Self, ClientError> {
        let jwk = signing.public_jwk()?;
        let thumbprint = jwk.thumbprint();
        Ok(Self {
            signing,
            jwk,
            thumbprint,
        })
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, ClientError> {
        let pem = self.signing.to_pem()?;
        String::from_utf8(pem).map_err(|_| ClientError::Crypto("PEM is not UTF-8".into()))
    }

    /// base64url SHA-256 of the canonical public JWK (RFC 7638).
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// The key authorization for `token`: `<token>.<thumbprint>`
    /// (RFC 8555 §8.1).
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint)
    }

    /// The JWS algorithm this key signs with (`ES256`, `RS256`, `EdDSA`, …).
    pub fn alg(&self) -> &'static str {
        self.signing.alg().as_str()
    }

    /// The public JWK.
    pub fn jwk(&self) -> &Jwk {
        &self.jwk
    }

    /// The openssl private key (for [`crate::build_csr`]).
    pub fn private_key(&self) -> &PKey<Private> {
        self.signing.pkey()
    }

    /// The JOSE signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

impl std::fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountKey")
            .field("alg", &self.alg())
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use akamu_jose::{FlattenedJws, b64_decode};

    use super::*;

    #[test]
    fn every_key_type_generates_and_round_trips_pem() {
        for kt in KeyType::NAMES {
            let key = AccountKey::generate(kt).expect(kt);
            let pem = key.to_pem().expect("pem");
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{kt}");
            let back = AccountKey::from_pem(&pem).expect("load");
            assert_eq!(back.thumbprint(), key.thumbprint(), "{kt}");
            assert_eq!(back.alg(), key.alg(), "{kt}");
            assert_eq!(back.to_pem().expect("pem"), pem, "{kt}");
            assert_eq!(
                back.key_authorization("tok"),
                format!("tok.{}", key.thumbprint())
            );
        }
        assert_eq!(AccountKey::generate("ec:P-256").expect("k").alg(), "ES256");
        assert_eq!(AccountKey::generate("ec:P-521").expect("k").alg(), "ES512");
        assert_eq!(AccountKey::generate("ed448").expect("k").alg(), "EdDSA");
        assert_eq!(
            AccountKey::generate("ml-dsa-65").expect("k").alg(),
            "ML-DSA-65"
        );
        assert_eq!(
            AccountKey::generate("ml-dsa-44").expect("k").alg(),
            "ML-DSA-44"
        );
        assert_eq!(
            AccountKey::generate("ml-dsa-87").expect("k").alg(),
            "ML-DSA-87"
        );
        assert!(matches!(
            AccountKey::generate("ml-dsa-66"),
            Err(ClientError::InvalidArgument(_))
        ));
        let rsa = AccountKey::generate("rsa:2048").expect("rsa");
        let thumbprint = rsa.thumbprint().to_owned();
        let ps512 = rsa.with_alg("PS512").expect("PS512");
        assert_eq!(ps512.alg(), "PS512");
        assert_eq!(ps512.thumbprint(), thumbprint);
        assert!(matches!(
            AccountKey::generate("ec:P-256")
                .expect("k")
                .with_alg("RS384"),
            Err(ClientError::InvalidArgument(_))
        ));
        assert!(AccountKey::from_pem(b"not a key").is_err());
    }

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn rfc7638_thumbprint() {
        let jwk: Jwk = serde_json::from_str(
            r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#,
        )
        .expect("jwk");
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// JWS signatures from every key type verify with the openssl command
    /// line (ECDSA signatures converted from JOSE r‖s to DER first).
    /// Debian's `openssl` is 3.0, which has no ML-DSA: pyca/cryptography
    /// judges those (`tests/e2e/pq.rs`).
    #[test]
    fn jws_signatures_verify_with_openssl_cli() {
        let dir = tempfile::tempdir().expect("tempdir");
        for kt in KeyType::NAMES
            .into_iter()
            .filter(|kt| !kt.starts_with("ml-dsa"))
        {
            let key = AccountKey::generate(kt).expect(kt);
            let jws = key
                .signing_key()
                .sign_flattened(
                    serde_json::json!({"nonce": "n", "url": "https://x/"}),
                    b"{\"a\":1}",
                )
                .expect("sign");
            let jws: FlattenedJws = serde_json::from_value(jws).expect("jws");
            let input = jws.signing_input();
            let mut sig = b64_decode(&jws.signature).expect("sig");
            let pubkey = key.private_key().public_key_to_pem().expect("pub");
            let tag = kt.replace(':', "_");
            let (pub_path, in_path, sig_path) = (
                dir.path().join(format!("{tag}.pub")),
                dir.path().join(format!("{tag}.in")),
                dir.path().join(format!("{tag}.sig")),
            );
            std::fs::write(&pub_path, pubkey).expect("w");
            std::fs::write(&in_path, &input).expect("w");
            let mut cmd = Command::new("openssl");
            cmd.arg("pkeyutl")
                .arg("-verify")
                .arg("-pubin")
                .arg("-inkey")
                .arg(&pub_path);
            match key.alg() {
                "EdDSA" => {
                    cmd.arg("-rawin");
                }
                alg => {
                    let digest = match alg {
                        "ES384" => "sha384",
                        "ES512" => "sha512",
                        _ => "sha256",
                    };
                    if alg.starts_with("ES") {
                        sig = raw_to_der(&sig);
                    }
                    cmd.arg("-rawin").arg("-digest").arg(digest);
                }
            }
            std::fs::write(&sig_path, &sig).expect("w");
            cmd.arg("-in").arg(&in_path).arg("-sigfile").arg(&sig_path);
            let out = cmd.output().expect("run openssl");
            assert!(
                out.status.success(),
                "{kt}: openssl refused the signature: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    fn raw_to_der(raw: &[u8]) -> Vec<u8> {
        let half = raw.len() / 2;
        let r = openssl::bn::BigNum::from_slice(&raw[..half]).expect("r");
        let s = openssl::bn::BigNum::from_slice(&raw[half..]).expect("s");
        openssl::ecdsa::EcdsaSig::from_private_components(r, s)
            .expect("sig")
            .to_der()
            .expect("der")
    }
}
