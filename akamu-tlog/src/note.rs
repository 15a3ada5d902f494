//! C2SP `tlog-checkpoint` bodies and C2SP `signed-note` signatures with
//! Ed25519 (signature type 0x01).
//!
//! A checkpoint body is three lines: the log's origin, the tree size in
//! decimal, the root hash in standard base64. A signed note is the body,
//! an empty line, then one line per signature: `— <name> <base64(key ID ‖
//! signature)>`, where the key ID is the first four bytes of
//! SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key) and the signature is Ed25519
//! over the body's bytes. A verifier key is written
//! `<name>+<key ID in hex>+<base64(0x01 ‖ public key)>`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::pkey::{Id, PKey, Private, Public};
use openssl::sign::{Signer, Verifier};

use crate::merkle::Hash;

/// The Ed25519 signature type of signed notes.
const ALG_ED25519: u8 = 0x01;

/// Why a note, a key or a checkpoint is refused.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// A verifier key does not parse.
    #[error("bad verifier key: {0}")]
    BadKey(&'static str),
    /// The note is not well formed.
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// No signature by the verifier's key verifies.
    #[error("no valid signature by {0}")]
    Unverified(String),
    /// The checkpoint body does not parse.
    #[error("malformed checkpoint: {0}")]
    BadCheckpoint(&'static str),
    /// The checkpoint is for another log.
    #[error("checkpoint is for origin {found:?}, expected {expected:?}")]
    WrongOrigin {
        /// What the checkpoint says.
        found: String,
        /// What was expected.
        expected: String,
    },
    /// openssl failed.
    #[error("crypto: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// A checkpoint: which log, how many entries, which root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The tree size.
    pub size: u64,
    /// The root hash.
    pub root: Hash,
}

impl Checkpoint {
    /// The body text (three lines, each ending with `\n`).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a body (extension lines after the third are ignored, as the
    /// format allows).
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let bad = NoteError::BadCheckpoint;
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or(bad("origin"))?;
        let size = lines.next().ok_or(bad("size"))?;
        if size.is_empty() || (size.len() > 1 && size.starts_with('0')) {
            return Err(bad("size"));
        }
        if !size.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("size"));
        }
        let size: u64 = size.parse().map_err(|_| bad("size"))?;
        let root = B64
            .decode(lines.next().ok_or(bad("root"))?)
            .map_err(|_| bad("root"))?;
        let root: Hash = root.try_into().map_err(|_| bad("root is not 32 bytes"))?;
        if !body.ends_with('\n') {
            return Err(bad("no final newline"));
        }
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
        })
    }
}

/// Whether `name` can name a key: non-empty, no space, no `+`, printable.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '+')
}

fn key_id(name: &str, public: &[u8; 32]) -> [u8; 4] {
    let mut h = openssl::sha::Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update(&[ALG_ED25519]);
    h.update(public);
    let d = h.finish();
    [d[0], d[1], d[2], d[3]]
}

/// A log key: an Ed25519 private key and the name it signs as.
pub struct NoteSigner {
    name: String,
    key: PKey<Private>,
    public: [u8; 32],
}

impl NoteSigner {
    /// A signer for `key` (an Ed25519 private key) under `name`.
    pub fn new(name: &str, key: PKey<Private>) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey("name has a space, a '+' or nothing"));
        }
        if key.id() != Id::ED25519 {
            return Err(NoteError::BadKey("not an Ed25519 key"));
        }
        let public: [u8; 32] = key
            .raw_public_key()?
            .try_into()
            .map_err(|_| NoteError::BadKey("Ed25519 public key is not 32 bytes"))?;
        Ok(Self {
            name: name.to_owned(),
            key,
            public,
        })
    }

    /// The verifier key, `<name>+<id>+<base64(0x01 ‖ key)>`.
    pub fn verifier_key(&self) -> String {
        let mut k = vec![ALG_ED25519];
        k.extend_from_slice(&self.public);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(key_id(&self.name, &self.public)),
            B64.encode(k)
        )
    }

    /// Signs `body` (which must end with `\n`) and returns the signed note.
    pub fn sign(&self, body: &str) -> Result<String, NoteError> {
        if !body.ends_with('\n') {
            return Err(NoteError::Malformed("text must end with a newline"));
        }
        let mut s = Signer::new_without_digest(&self.key)?;
        let sig = s.sign_oneshot_to_vec(body.as_bytes())?;
        let mut blob = key_id(&self.name, &self.public).to_vec();
        blob.extend_from_slice(&sig);
        Ok(format!(
            "{body}\n\u{2014} {} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }
}

/// A note verifier key.
#[derive(Clone)]
pub struct NoteVerifier {
    name: String,
    id: [u8; 4],
    key: PKey<Public>,
}

impl std::fmt::Debug for NoteVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NoteVerifier({}+{})", self.name, hex::encode(self.id))
    }
}

impl NoteVerifier {
    /// Parses `<name>+<id>+<base64(0x01 ‖ key)>`; the id must match.
    pub fn parse(vkey: &str) -> Result<Self, NoteError> {
        let vkey = vkey.trim();
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey("expected name+id+key"));
        };
        if !valid_name(name) {
            return Err(NoteError::BadKey("bad name"));
        }
        let id: [u8; 4] = hex::decode(id)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or(NoteError::BadKey("id is not 8 hex digits"))?;
        let key = B64
            .decode(key)
            .map_err(|_| NoteError::BadKey("key is not base64"))?;
        let Some((&ALG_ED25519, public)) = key.split_first() else {
            return Err(NoteError::BadKey("not an Ed25519 (type 0x01) key"));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::BadKey("Ed25519 key is not 32 bytes"))?;
        if key_id(name, &public) != id {
            return Err(NoteError::BadKey("id does not match the name and key"));
        }
        let key = PKey::public_key_from_raw_bytes(&public, Id::ED25519)?;
        Ok(Self {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Checks `note` and returns its text (the body) when a signature line
    /// by this key verifies. Lines by other keys are ignored.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let malformed = NoteError::Malformed;
        if note.len() > 1 << 20 {
            return Err(malformed("note too long"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(malformed("control characters"));
        }
        let split = note.rfind("\n\n").ok_or(malformed("no signature block"))?;
        let (body, sigs) = (&note[..=split], &note[split + 2..]);
        if !sigs.ends_with('\n') {
            return Err(malformed("signature block must end with a newline"));
        }
        for line in sigs.lines() {
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or(malformed("signature line must start with an em dash"))?;
            let (name, sig) = rest
                .split_once(' ')
                .ok_or(malformed("signature line needs a name and a signature"))?;
            let sig = B64
                .decode(sig)
                .map_err(|_| malformed("signature is not base64"))?;
            if name != self.name || sig.len() < 4 || sig[..4] != self.id {
                continue;
            }
            let mut v = Verifier::new_without_digest(&self.key)?;
            if v.verify_oneshot(&sig[4..], body.as_bytes())
                .unwrap_or(false)
            {
                return Ok(body);
            }
            return Err(NoteError::Unverified(self.name.clone()));
        }
        Err(NoteError::Unverified(self.name.clone()))
    }

    /// Opens a signed checkpoint and parses it; its origin must be the
    /// key's name (the log names its key after itself).
    pub fn open_checkpoint(&self, note: &str) -> Result<Checkpoint, NoteError> {
        let cp = Checkpoint::parse(self.open(note)?)?;
        if cp.origin != self.name {
            return Err(NoteError::WrongOrigin {
                found: cp.origin,
                expected: self.name.clone(),
            });
        }
        Ok(cp)
    }
}

/// A new Ed25519 key.
pub fn generate_key() -> Result<PKey<Private>, NoteError> {
    Ok(PKey::generate_ed25519()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> NoteSigner {
        NoteSigner::new("example.com/log", generate_key().expect("key")).expect("signer")
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_only() {
        let s = signer();
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 7,
            root: [3; 32],
        };
        let note = s.sign(&cp.body()).expect("sign");
        assert!(note.starts_with("example.com/log\n7\nAwMD"), "{note}");
        assert!(note.contains("\n\n\u{2014} example.com/log "), "{note}");
        let v = NoteVerifier::parse(&s.verifier_key()).expect("vkey");
        assert_eq!(v.open_checkpoint(&note).expect("opens"), cp);

        let other = NoteVerifier::parse(&signer().verifier_key()).expect("other");
        assert!(matches!(other.open(&note), Err(NoteError::Unverified(_))));
        let tampered = note.replacen("\n7\n", "\n8\n", 1);
        assert!(matches!(v.open(&tampered), Err(NoteError::Unverified(_))));
    }

    #[test]
    fn verifier_keys_are_checked() {
        let s = signer();
        let vk = s.verifier_key();
        let (name, rest) = vk.split_once('+').expect("plus");
        assert_eq!(name, "example.com/log");
        assert_eq!(rest.len(), 8 + 1 + 44);
        let wrong_id = format!("{name}+00000000{}", &rest[8..]);
        assert!(NoteVerifier::parse(&wrong_id).is_err());
        assert!(NoteVerifier::parse("a+b").is_err());
        assert!(NoteSigner::new("a b", generate_key().expect("key")).is_err());
    }

    #[test]
    fn checkpoint_bodies_parse_strictly() {
        assert!(Checkpoint::parse("o\n01\nAAAA\n").is_err());
        assert!(Checkpoint::parse("o\n1\nAAAA\n").is_err());
        let root = B64.encode([0u8; 32]);
        let cp = Checkpoint::parse(&format!("o\n0\n{root}\n")).expect("empty log");
        assert_eq!(cp.size, 0);
        assert!(Checkpoint::parse(&format!("o\n0\n{root}")).is_err());
    }
}
