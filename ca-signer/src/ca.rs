//! The CA: load its key and certificate, or create them on first run.
//!
//! Rules (reference, "CA certificate profile"), file backend: both files
//! present → load them and check that they belong together; neither →
//! generate a key of `key_type` and a self-signed root; exactly one → refuse
//! to start. PKCS#11 backend: the certificate must exist (a ceremony made it);
//! the signer never generates token keys.
//!
//! The served chain is `cert_file` followed by `chain_file` (if any).

use std::path::Path;

use der::{Decode, Encode};
use openssl::x509::X509;
use x509_cert::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, SubjectKeyIdentifier};

use crate::config::{self, KeyConfig};
use crate::error::Error;
use crate::files::{self, CERT_MODE, KEY_MODE};
use crate::keys::KeyBackend;
use crate::keys::file::FileKey;
use crate::keys::pkcs11::Pkcs11Key;
use crate::tbs::{self, IssuerInfo};

/// Seconds in a Julian year, as the reference computes CA validity.
const SECS_PER_YEAR: i64 = 31_557_600;

/// The issuing CA: its key and certificate.
pub struct Ca {
    key: Box<dyn KeyBackend>,
    cert_der: Vec<u8>,
    cert_pem: String,
    extra_chain_pem: String,
    issuer: IssuerInfo,
    not_after: i64,
}

/// What [`load_or_create`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Both files existed and were loaded.
    Loaded,
    /// Neither existed: a new key and root were generated and written.
    Created,
}

/// Loads the CA with the file key `config.key_file` or creates it (see the
/// module docs). `now` is the current time in Unix seconds, used for a new
/// root's validity.
pub fn load_or_create(config: &config::Ca, now: i64) -> Result<(Ca, Origin), Error> {
    let key_file = config.key_file.clone().ok_or(Error::ConfigValue {
        field: "ca.key_file",
        problem: "required unless [signer.key] is set".to_owned(),
    })?;
    load_or_create_with(config, &KeyConfig::File { key_file }, now)
}

/// Loads the CA with the key `key`, or (file backend only) creates it.
pub fn load_or_create_with(
    config: &config::Ca,
    key: &KeyConfig,
    now: i64,
) -> Result<(Ca, Origin), Error> {
    let key_file = match key {
        KeyConfig::File { key_file } => key_file,
        KeyConfig::Pkcs11(p11) => {
            if !exists(&config.cert_file)? {
                return Err(Error::ConfigValue {
                    field: "ca.cert_file",
                    problem: format!(
                        "{} does not exist; with a PKCS#11 key the certificate comes from \
                         a ceremony (akamu-cli ceremony …)",
                        config.cert_file.display()
                    ),
                });
            }
            let key = Pkcs11Key::open(p11, config.hash_alg)?;
            let cert = read_cert(&config.cert_file)?;
            if cert.public_key()?.public_key_to_der()? != key.public_key_der() {
                return Err(Error::CaKeyMismatch {
                    key: p11.module.clone(),
                    cert: config.cert_file.clone(),
                });
            }
            let ca = Ca::new(Box::new(key), cert.to_der()?)?.with_chain_file(config)?;
            tracing::info!(
                target: "signer",
                module = %p11.module.display(),
                token = ?p11.token_label,
                key_label = ?p11.key_label,
                cert = %config.cert_file.display(),
                "loaded CA with a PKCS#11 key"
            );
            return Ok((ca, Origin::Loaded));
        }
    };
    let key_exists = exists(key_file)?;
    let cert_exists = exists(&config.cert_file)?;
    match (key_exists, cert_exists) {
        (true, true) => {
            let ca = load(config, key_file)?.with_chain_file(config)?;
            tracing::info!(
                target: "signer",
                key = %key_file.display(),
                cert = %config.cert_file.display(),
                "loaded CA"
            );
            Ok((ca, Origin::Loaded))
        }
        (false, false) => {
            let ca = create(config, key_file, now)?.with_chain_file(config)?;
            tracing::info!(
                target: "signer",
                key = %key_file.display(),
                cert = %config.cert_file.display(),
                key_type = %config.key_type,
                "generated a new CA key and self-signed certificate"
            );
            Ok((ca, Origin::Created))
        }
        (true, false) => Err(Error::CaIncomplete {
            present: key_file.clone(),
            missing: config.cert_file.clone(),
        }),
        (false, true) => Err(Error::CaIncomplete {
            present: config.cert_file.clone(),
            missing: key_file.clone(),
        }),
    }
}

impl Ca {
    /// Wraps a key and its certificate (DER), checking that they belong
    /// together and that the certificate is a CA certificate.
    pub fn new(key: Box<dyn KeyBackend>, cert_der: Vec<u8>) -> Result<Self, Error> {
        let cert = Certificate::from_der(&cert_der)?;
        let tbs = cert.tbs_certificate();
        if tbs.subject_public_key_info().to_der()? != key.public_key_der() {
            return Err(Error::Lint("CA certificate and key differ"));
        }
        let extensions = tbs.extensions().map(Vec::as_slice).unwrap_or_default();
        let is_ca = tbs::find::<BasicConstraints>(extensions)?.is_some_and(|(_, bc)| bc.ca);
        if !is_ca {
            return Err(Error::UnsupportedCaKey(
                "the CA certificate does not have basicConstraints cA=TRUE".to_owned(),
            ));
        }
        let key_id = match tbs::find::<SubjectKeyIdentifier>(extensions)? {
            Some((_, ski)) => ski.0.as_bytes().to_vec(),
            None => tbs::key_id(tbs.subject_public_key_info()),
        };
        let not_after = i64::try_from(tbs.validity().not_after.to_unix_duration().as_secs())
            .map_err(|_| Error::Lint("CA notAfter out of range"))?;
        let issuer = IssuerInfo::new(
            tbs.subject().clone(),
            key.public_key_der().to_vec(),
            key_id,
            key.signature_algorithm(),
        )?;
        let cert_pem = pem(&cert_der)?;
        Ok(Self {
            key,
            cert_der,
            cert_pem,
            extra_chain_pem: String::new(),
            issuer,
            not_after,
        })
    }

    /// Appends the certificates of `config.chain_file` (if set) to the
    /// served chain.
    pub fn with_chain_file(mut self, config: &config::Ca) -> Result<Self, Error> {
        let Some(path) = &config.chain_file else {
            return Ok(self);
        };
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let certs = X509::stack_from_pem(&bytes).map_err(|source| Error::Parse {
            path: path.clone(),
            source,
        })?;
        if certs.is_empty() {
            return Err(Error::ConfigValue {
                field: "ca.chain_file",
                problem: format!("{} holds no certificate", path.display()),
            });
        }
        let mut pem_text = String::new();
        for c in certs {
            pem_text.push_str(&pem(&c.to_der()?)?);
        }
        self.extra_chain_pem = pem_text;
        Ok(self)
    }

    /// The chain served after each leaf: the issuing CA, then `chain_file`.
    pub fn chain_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.extra_chain_pem)
    }

    /// The CA key.
    pub fn key(&self) -> &dyn KeyBackend {
        self.key.as_ref()
    }

    /// What leaves need to know about their issuer.
    pub fn issuer(&self) -> &IssuerInfo {
        &self.issuer
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate's `notAfter`, Unix seconds.
    pub fn not_after(&self) -> i64 {
        self.not_after
    }
}

fn read_cert(path: &Path) -> Result<X509, Error> {
    let pem = std::fs::read(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    X509::from_pem(&pem).map_err(|source| Error::Parse {
        path: path.to_owned(),
        source,
    })
}

fn load(config: &config::Ca, key_file: &Path) -> Result<Ca, Error> {
    let key = FileKey::load(key_file, config.hash_alg)?;
    let cert = read_cert(&config.cert_file)?;
    if !cert.public_key()?.public_eq(key.pkey()) {
        return Err(Error::CaKeyMismatch {
            key: key_file.to_owned(),
            cert: config.cert_file.clone(),
        });
    }
    Ca::new(Box::new(key), cert.to_der()?)
}

fn create(config: &config::Ca, key_file: &Path, now: i64) -> Result<Ca, Error> {
    let key = FileKey::generate(config.key_type, config.hash_alg)?;
    let not_after = now.saturating_add(i64::from(config.ca_validity_years) * SECS_PER_YEAR);
    let tbs = tbs::build_root(
        &config.common_name,
        &config.organization,
        &key,
        1,
        now,
        not_after,
    )?;
    let cert = tbs.sign(&key)?;
    // Key first: a crash between the two writes leaves a key without a
    // certificate, which the next start refuses loudly instead of silently
    // replacing.
    files::write_atomic(key_file, &key.to_pkcs8_pem()?, KEY_MODE)?;
    files::write_atomic(&config.cert_file, pem(&cert.der)?.as_bytes(), CERT_MODE)?;
    Ca::new(Box::new(key), cert.der)
}

/// PEM of a DER certificate.
pub fn pem(der: &[u8]) -> Result<String, Error> {
    // Encoding only: no need to parse the certificate we just built (that
    // parse was a measurable share of the signer's CPU per certificate).
    let b64 = openssl::base64::encode_block(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 60);
    out.push_str("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        // base64 output is ASCII.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    Ok(out)
}

fn exists(path: &Path) -> Result<bool, Error> {
    path.try_exists().map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn pem_matches_openssl() {
        let key = openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .expect("group"),
            )
            .expect("key"),
        )
        .expect("pkey");
        let mut b = X509::builder().expect("builder");
        b.set_pubkey(&key).expect("pubkey");
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .expect("sign");
        let cert = b.build();
        let ours = pem(&cert.to_der().expect("der")).expect("pem");
        assert_eq!(
            ours.as_bytes(),
            cert.to_pem().expect("openssl pem").as_slice()
        );
    }

    use std::os::unix::fs::PermissionsExt;

    use openssl::nid::Nid;
    use openssl::stack::Stack;
    use openssl::x509::store::X509StoreBuilder;
    use openssl::x509::{X509StoreContext, X509VerifyResult};

    use super::*;
    use crate::config::{HashAlg, KeyType};

    const NOW: i64 = 1_800_000_000;

    fn ca_config(dir: &Path, key_type: KeyType) -> config::Ca {
        config::Ca {
            key_file: Some(dir.join("ca/ca.key.pem")),
            cert_file: dir.join("ca/ca.cert.pem"),
            chain_file: None,
            crl_validity_hours: 24,
            key_type,
            hash_alg: HashAlg::Sha256,
            validity_days: 90,
            ca_validity_years: 10,
            common_name: "Akāmu Test CA".to_owned(),
            organization: "Akāmu".to_owned(),
            crl_url: None,
            ocsp_url: None,
            ca_issuers_url: None,
        }
    }

    fn key_file(cfg: &config::Ca) -> &Path {
        cfg.key_file.as_deref().expect("key file")
    }

    fn self_verifies(cert: &X509) -> bool {
        let mut store = X509StoreBuilder::new().expect("store");
        store.add_cert(cert.clone()).expect("add");
        // The fixed NOW is in the future; check at that time.
        let mut param = openssl::x509::verify::X509VerifyParam::new().expect("param");
        param.set_time(NOW + 60);
        store.set_param(&param).expect("set param");
        let store = store.build();
        let mut ctx = X509StoreContext::new().expect("ctx");
        let chain = Stack::new().expect("stack");
        ctx.init(&store, cert, &chain, |c| {
            let ok = c.verify_cert()?;
            assert_eq!(c.error(), X509VerifyResult::OK, "{}", c.error());
            Ok(ok)
        })
        .expect("verify")
    }

    #[test]
    fn creates_then_loads_the_same_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = ca_config(dir.path(), KeyType::EcP256);
        let (created, origin) = load_or_create(&cfg, NOW).expect("create");
        assert_eq!(origin, Origin::Created);

        let key_mode = std::fs::metadata(key_file(&cfg))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        let cert_mode = std::fs::metadata(&cfg.cert_file)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!((key_mode, cert_mode), (0o600, 0o644));

        let cert = X509::from_pem(&std::fs::read(&cfg.cert_file).expect("read")).expect("pem");
        assert!(
            cert.verify(&cert.public_key().expect("pk"))
                .expect("verify"),
            "self-signed"
        );
        assert!(self_verifies(&cert));
        assert_eq!(
            cert.serial_number()
                .to_bn()
                .expect("bn")
                .to_dec_str()
                .expect("dec")
                .to_string(),
            "1"
        );
        let cn = cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next()
            .expect("cn");
        assert_eq!(cn.data().to_string().expect("utf8"), "Akāmu Test CA");
        let o = cert
            .subject_name()
            .entries_by_nid(Nid::ORGANIZATIONNAME)
            .next()
            .expect("o");
        assert_eq!(o.data().to_string().expect("utf8"), "Akāmu");
        let ski = cert.subject_key_id().expect("ski").as_slice().to_vec();
        assert_eq!(
            cert.authority_key_id().expect("aki").as_slice(),
            ski.as_slice()
        );
        let bits = cert
            .public_key()
            .expect("pk")
            .public_key_to_der()
            .expect("der");
        let spki = spki::SubjectPublicKeyInfoOwned::from_der(&bits).expect("spki");
        assert_eq!(ski, tbs::key_id(&spki));
        assert_eq!(ski, created.issuer().key_id);

        let text = String::from_utf8(cert.to_text().expect("text")).expect("utf8");
        assert!(
            text.contains("X509v3 Basic Constraints: critical\n                CA:TRUE"),
            "{text}"
        );
        assert!(
            text.contains("X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"),
            "{text}"
        );
        let validity = cert.not_before().diff(cert.not_after()).expect("diff");
        assert_eq!(
            i64::from(validity.days) * 86_400 + i64::from(validity.secs),
            10 * SECS_PER_YEAR
        );

        let (loaded, origin) = load_or_create(&cfg, NOW + 5).expect("load");
        assert_eq!(origin, Origin::Loaded);
        assert_eq!(loaded.cert_der(), created.cert_der());
        assert_eq!(
            loaded.key().public_key_der(),
            created.key().public_key_der()
        );
        assert_eq!(loaded.issuer().key_id, created.issuer().key_id);
        assert_eq!(loaded.not_after(), NOW + 10 * SECS_PER_YEAR);
    }

    #[test]
    fn exactly_one_file_is_refused_naming_the_missing_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = ca_config(dir.path(), KeyType::EcP256);
        load_or_create(&cfg, NOW).expect("create");

        let cert = std::fs::read(&cfg.cert_file).expect("read");
        std::fs::remove_file(&cfg.cert_file).expect("rm");
        let err = load_or_create(&cfg, NOW).err().expect("must refuse");
        let msg = err.to_string();
        assert!(matches!(err, Error::CaIncomplete { .. }), "{msg}");
        assert!(
            msg.contains(&format!("{} is missing", cfg.cert_file.display())),
            "{msg}"
        );

        std::fs::write(&cfg.cert_file, cert).expect("restore");
        std::fs::remove_file(key_file(&cfg)).expect("rm");
        let msg = load_or_create(&cfg, NOW)
            .err()
            .expect("must refuse")
            .to_string();
        assert!(
            msg.contains(&format!("{} is missing", key_file(&cfg).display())),
            "{msg}"
        );
        // Nothing was generated behind our back.
        assert!(!key_file(&cfg).exists());
    }

    #[test]
    fn mismatched_key_and_cert_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = ca_config(&dir.path().join("a"), KeyType::EcP256);
        let b = ca_config(&dir.path().join("b"), KeyType::EcP256);
        load_or_create(&a, NOW).expect("a");
        load_or_create(&b, NOW).expect("b");
        std::fs::copy(key_file(&b), key_file(&a)).expect("swap key");
        let err = load_or_create(&a, NOW).err().expect("must refuse");
        assert!(matches!(err, Error::CaKeyMismatch { .. }), "{err}");
    }

    #[test]
    fn garbage_key_file_is_a_parse_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = ca_config(dir.path(), KeyType::EcP256);
        load_or_create(&cfg, NOW).expect("create");
        std::fs::write(key_file(&cfg), b"not a key").expect("write");
        assert!(matches!(
            load_or_create(&cfg, NOW),
            Err(Error::Parse { .. })
        ));
    }
}
