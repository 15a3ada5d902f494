//! Accounts (RFC 8555 §7.3): registration with optional External Account
//! Binding, lookup, state, contact updates, key rollover, deactivation.

use std::sync::Arc;

use akamu_jose::{Jwk, b64, hmac_sign};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::client::Signer;
use crate::transport::Response;
use crate::{AccountKey, AcmeClient, ClientError};

/// An account as the server last described it, with the key that controls
/// it.
#[derive(Clone, Debug)]
pub struct Account {
    /// The account URL (the `kid` of every later request).
    pub url: String,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// The contact URIs registered.
    pub contacts: Vec<String>,
    /// The account's orders-list URL, when the server gave one.
    pub orders: Option<String>,
    /// The account key.
    pub key: Arc<AccountKey>,
}

impl Account {
    /// `<token>.<thumbprint>` for this account's key (RFC 8555 §8.1).
    pub fn key_authorization(&self, token: &str) -> String {
        self.key.key_authorization(token)
    }

    pub(crate) fn signer(&self) -> Signer<'_> {
        Signer::Kid(&self.key, &self.url)
    }
}

/// What to register with [`AcmeClient::new_account`].
#[derive(Clone, Copy, Debug, Default)]
pub struct AccountOptions<'a> {
    /// Contact URIs (`mailto:…`).
    pub contacts: &'a [&'a str],
    /// Agree to the server's terms of service.
    pub agree_tos: bool,
    /// External Account Binding credentials, when the CA requires them.
    pub eab: Option<EabOptions<'a>>,
}

/// External Account Binding credentials (RFC 8555 §7.3.4).
#[derive(Clone, Copy)]
pub struct EabOptions<'a> {
    /// The key identifier the CA gave you.
    pub kid: &'a str,
    /// The raw HMAC key bytes (base64url-decode what the CA gave you).
    pub hmac_key: &'a [u8],
    /// `HS256`, `HS384` or `HS512`.
    pub alg: &'a str,
}

impl std::fmt::Debug for EabOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EabOptions")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// The account object's members we read.
#[derive(Deserialize)]
struct AccountBody {
    #[serde(default)]
    status: String,
    #[serde(default)]
    contact: Vec<String>,
    #[serde(default)]
    orders: Option<String>,
}

impl AcmeClient {
    /// Registers an account for `key` (RFC 8555 §7.3). If the key already
    /// has an account, the server returns it and so does this.
    pub async fn new_account(
        &self,
        key: Arc<AccountKey>,
        opts: &AccountOptions<'_>,
    ) -> Result<Account, ClientError> {
        let url = self.directory().new_account.clone();
        let mut payload = json!({
            "termsOfServiceAgreed": opts.agree_tos,
            "contact": opts.contacts,
        });
        if let Some(eab) = &opts.eab {
            payload["externalAccountBinding"] = eab_jws(eab, key.jwk(), &url)?;
        }
        let resp = self.post(&url, Signer::Jwk(&key), Some(&payload)).await?;
        account_from(resp, None, key)
    }

    /// Finds the account of `key` without creating one (RFC 8555 §7.3.1,
    /// `onlyReturnExisting`); `accountDoesNotExist` when there is none.
    pub async fn find_account(&self, key: Arc<AccountKey>) -> Result<Account, ClientError> {
        let url = self.directory().new_account.clone();
        let payload = json!({"onlyReturnExisting": true});
        let resp = self.post(&url, Signer::Jwk(&key), Some(&payload)).await?;
        account_from(resp, None, key)
    }

    /// The server's current view of `account` (POST-as-GET, RFC 8555 §7.3.2).
    pub async fn get_account(&self, account: &Account) -> Result<Account, ClientError> {
        let resp = self.post(&account.url, account.signer(), None).await?;
        account_from(resp, Some(&account.url), Arc::clone(&account.key))
    }

    /// Replaces the contact list (RFC 8555 §7.3.2); an empty slice clears it.
    pub async fn update_account(
        &self,
        account: &Account,
        contacts: &[&str],
    ) -> Result<Account, ClientError> {
        let payload = json!({ "contact": contacts });
        let resp = self
            .post(&account.url, account.signer(), Some(&payload))
            .await?;
        account_from(resp, Some(&account.url), Arc::clone(&account.key))
    }

    /// Rolls the account over to `new_key` (RFC 8555 §7.3.5). The returned
    /// account holds `new_key`; the old key is refused from now on.
    pub async fn key_change(
        &self,
        account: &Account,
        new_key: Arc<AccountKey>,
    ) -> Result<Account, ClientError> {
        let url = self.directory().key_change.clone();
        let inner = key_change_inner(account, &new_key, &url)?;
        self.post(&url, account.signer(), Some(&inner)).await?;
        let moved = Account {
            key: new_key,
            ..account.clone()
        };
        self.get_account(&moved).await
    }

    /// Deactivates the account (RFC 8555 §7.3.6). The server refuses every
    /// later request signed by its key.
    pub async fn deactivate_account(&self, account: &Account) -> Result<Account, ClientError> {
        let payload = json!({"status": "deactivated"});
        let resp = self
            .post(&account.url, account.signer(), Some(&payload))
            .await?;
        account_from(resp, Some(&account.url), Arc::clone(&account.key))
    }
}

fn account_from(
    resp: Response,
    known_url: Option<&str>,
    key: Arc<AccountKey>,
) -> Result<Account, ClientError> {
    let url = match (resp.location(), known_url) {
        (Some(u), _) => u,
        (None, Some(u)) => u.to_owned(),
        (None, None) => {
            return Err(ClientError::Http(
                "the account response has no Location header".into(),
            ));
        }
    };
    let body: AccountBody = if resp.body.is_empty() {
        AccountBody {
            status: "valid".into(),
            contact: Vec::new(),
            orders: None,
        }
    } else {
        resp.json("account")?
    };
    Ok(Account {
        url,
        status: body.status,
        contacts: body.contact,
        orders: body.orders,
        key,
    })
}

/// The `externalAccountBinding` JWS (RFC 8555 §7.3.4): the account's public
/// JWK signed with the CA-issued HMAC key.
pub(crate) fn eab_jws(eab: &EabOptions<'_>, jwk: &Jwk, url: &str) -> Result<Value, ClientError> {
    if !matches!(eab.alg, "HS256" | "HS384" | "HS512") {
        return Err(ClientError::InvalidArgument(format!(
            "EAB algorithm {:?}: use HS256, HS384 or HS512",
            eab.alg
        )));
    }
    if eab.hmac_key.is_empty() {
        return Err(ClientError::InvalidArgument("empty EAB HMAC key".into()));
    }
    let protected = b64(json!({"alg": eab.alg, "kid": eab.kid, "url": url})
        .to_string()
        .as_bytes());
    let payload = b64(jwk.to_json().to_string().as_bytes());
    let mac = hmac_sign(
        eab.alg,
        eab.hmac_key,
        format!("{protected}.{payload}").as_bytes(),
    )?;
    Ok(json!({"protected": protected, "payload": payload, "signature": b64(&mac)}))
}

/// The inner JWS of a key change: signed by the new key, `jwk` header, no
/// nonce, payload `{account, oldKey}`.
fn key_change_inner(
    account: &Account,
    new_key: &AccountKey,
    url: &str,
) -> Result<Value, ClientError> {
    let protected = json!({"jwk": new_key.jwk().to_json(), "url": url});
    let payload = json!({"account": account.url, "oldKey": account.key.jwk().to_json()});
    Ok(new_key
        .signing_key()
        .sign_flattened(protected, payload.to_string().as_bytes())?)
}

#[cfg(test)]
mod tests {
    use akamu_jose::{FlattenedJws, b64_decode, hmac_verify};

    use super::*;

    #[test]
    fn eab_jws_is_an_hmac_over_the_account_jwk() {
        let key = AccountKey::generate("ec:P-256").expect("key");
        let hmac_key = b"0123456789abcdef0123456789abcdef";
        for alg in ["HS256", "HS384", "HS512"] {
            let eab = EabOptions {
                kid: "kid-1",
                hmac_key,
                alg,
            };
            let v = eab_jws(&eab, key.jwk(), "https://ca/acme/new-account").expect("eab");
            let jws: FlattenedJws = serde_json::from_value(v).expect("flattened");
            let header: Value =
                serde_json::from_slice(&b64_decode(&jws.protected).expect("b64")).expect("json");
            assert_eq!(header["alg"], alg);
            assert_eq!(header["kid"], "kid-1");
            assert_eq!(header["url"], "https://ca/acme/new-account");
            assert!(header.get("nonce").is_none(), "EAB has no nonce");
            assert!(header.get("jwk").is_none());
            let payload: Value =
                serde_json::from_slice(&jws.payload_bytes().expect("payload")).expect("json");
            assert_eq!(payload, key.jwk().to_json());
            let mac = b64_decode(&jws.signature).expect("sig");
            assert_eq!(
                mac.len(),
                match alg {
                    "HS256" => 32,
                    "HS384" => 48,
                    _ => 64,
                }
            );
            hmac_verify(alg, hmac_key, &jws.signing_input(), &mac).expect("mac verifies");
            assert!(
                hmac_verify(alg, b"another key, sixteen+", &jws.signing_input(), &mac).is_err()
            );
        }
        let bad = EabOptions {
            kid: "k",
            hmac_key,
            alg: "RS256",
        };
        assert!(matches!(
            eab_jws(&bad, key.jwk(), "u"),
            Err(ClientError::InvalidArgument(_))
        ));
    }

    #[test]
    fn key_change_inner_jws_is_signed_by_the_new_key() {
        let old = Arc::new(AccountKey::generate("ec:P-256").expect("k"));
        let new = AccountKey::generate("ed25519").expect("k");
        let account = Account {
            url: "https://ca/acme/account/1".into(),
            status: "valid".into(),
            contacts: vec![],
            orders: None,
            key: old.clone(),
        };
        let v = key_change_inner(&account, &new, "https://ca/acme/key-change").expect("inner");
        let jws: FlattenedJws = serde_json::from_value(v).expect("jws");
        let header = jws.header().expect("header");
        assert_eq!(header.alg, "EdDSA");
        assert!(header.nonce.is_none());
        assert_eq!(header.url.as_deref(), Some("https://ca/acme/key-change"));
        let public = new.jwk().to_public_key().expect("pk");
        jws.verify(akamu_jose::Alg::EdDsa, &public)
            .expect("verifies");
        let payload: Value = serde_json::from_slice(&jws.payload_bytes().expect("p")).expect("j");
        assert_eq!(payload["account"], "https://ca/acme/account/1");
        assert_eq!(payload["oldKey"], old.jwk().to_json());
    }
}
