//! Client certificates (`[tls.client_auth]`): a rustls
//! `ClientCertVerifier` on rustls-webpki's path building, with our two
//! additions checked on each candidate path webpki finds (so a refused path
//! lets webpki try another): at most `max_chain_depth` certificates above
//! the leaf, trust anchor included, and no RSA key below
//! `minimum_rsa_modulus` bits in the leaf or the intermediates (the anchors'
//! keys are checked once, when `ca_files` is loaded).
//!
//! Every refusal is logged as `client cert verification failed: <reason>`
//! (the reference's wording); a client with no certificate while one is
//! required is logged by the accept loop (`http::server`), since the
//! verifier never sees it.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use openssl::pkey::{Id, PKey};
use openssl::x509::X509;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, OtherError};
use webpki::{EndEntityCert, KeyUsage, VerifiedPath};

use crate::config::{ClientAuth, ClientAuthProfile};
use crate::error::Error;

/// id-kp-clientAuth (1.3.6.1.5.5.7.3.2), the OID's content octets.
const EKU_CLIENT_AUTH: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// Verifies client certificates against `[tls.client_auth]`.
pub struct Verifier {
    anchors: Vec<TrustAnchor<'static>>,
    subjects: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
    required: bool,
    profile: ClientAuthProfile,
    max_chain_depth: usize,
    minimum_rsa_modulus: u32,
}

impl Verifier {
    /// Loads the trust anchors of `auth.ca_files` and takes the signature
    /// algorithms of `provider`: all of them (ML-DSA-44/65/87 included, in
    /// certificate signatures and in the TLS 1.3 CertificateVerify) with
    /// `allow_post_quantum = true`, the classical ones otherwise.
    pub fn load(auth: &ClientAuth, provider: &CryptoProvider) -> Result<Self, Error> {
        let mut anchors = Vec::new();
        for file in &auth.ca_files {
            for der in super::read_certificates(file).map_err(|e| trust_store(file, e))? {
                check_anchor_key(&der, auth.minimum_rsa_modulus)
                    .map_err(|e| trust_store(file, Error::Startup(e)))?;
                let anchor = webpki::anchor_from_trusted_cert(&der)
                    .map_err(|e| trust_store(file, Error::Startup(format!("{e}"))))?;
                anchors.push(anchor.to_owned());
            }
        }
        // A trust anchor's subject is the Name's contents; the
        // CertificateRequest carries whole DER Names (OpenSSL clients refuse
        // the handshake otherwise).
        let subjects = anchors
            .iter()
            .map(|a| DistinguishedName::in_sequence(a.subject.as_ref()))
            .collect();
        Ok(Self {
            anchors,
            subjects,
            algorithms: if auth.allow_post_quantum {
                provider.signature_verification_algorithms
            } else {
                classical(provider.signature_verification_algorithms)
            },
            required: auth.required,
            profile: auth.profile,
            max_chain_depth: usize::try_from(auth.max_chain_depth).unwrap_or(usize::MAX),
            minimum_rsa_modulus: auth.minimum_rsa_modulus,
        })
    }

    /// The whole check of a presented chain; `Err` is the reason to log and
    /// the error rustls turns into an alert.
    fn verify(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), (String, CertificateError)> {
        let cert = EndEntityCert::try_from(end_entity).map_err(|e| {
            (
                format!("the certificate cannot be parsed ({e:?})"),
                CertificateError::BadEncoding,
            )
        })?;
        // webpki applies the EKU rule to every certificate of the path, and
        // CA certificates rarely carry an EKU: "if present" here, and the
        // webpki profile's "the leaf must carry clientAuth" below.
        let usage = KeyUsage::required_if_present(EKU_CLIENT_AUTH);
        let refused: RefCell<Option<String>> = RefCell::new(None);
        let policy = |path: &VerifiedPath<'_>| -> Result<(), webpki::Error> {
            match self.check_path(path) {
                Ok(()) => Ok(()),
                Err(reason) => {
                    *refused.borrow_mut() = Some(reason);
                    Err(webpki::Error::MaximumPathDepthExceeded)
                }
            }
        };
        let verified = cert.verify_for_usage(
            self.algorithms.all,
            &self.anchors,
            intermediates,
            now,
            usage,
            None,
            Some(&policy),
        );
        if let Err(e) = verified {
            return Err(match refused.borrow_mut().take() {
                Some(reason) => (
                    reason,
                    CertificateError::Other(OtherError(Arc::new(PolicyRefusal))),
                ),
                None => webpki_reason(&e),
            });
        }
        if self.profile == ClientAuthProfile::Webpki {
            webpki_profile(end_entity)?;
        }
        Ok(())
    }

    /// Our additions to webpki's checks, on one candidate path.
    fn check_path(&self, path: &VerifiedPath<'_>) -> Result<(), String> {
        let intermediates: Vec<_> = path.intermediate_certificates().collect();
        let depth = intermediates.len() + 1;
        if depth > self.max_chain_depth {
            return Err(format!(
                "the chain has {depth} certificates above the leaf, more than \
                 max_chain_depth = {}",
                self.max_chain_depth
            ));
        }
        let leaf = path.end_entity().subject_public_key_info();
        let keys = std::iter::once(("the leaf", leaf)).chain(
            intermediates
                .iter()
                .map(|c| ("an intermediate", c.subject_public_key_info())),
        );
        for (which, spki) in keys {
            if let Some(bits) = rsa_bits(spki.as_ref())
                && bits < self.minimum_rsa_modulus
            {
                return Err(format!(
                    "{which} has a {bits}-bit RSA key, below minimum_rsa_modulus = {}",
                    self.minimum_rsa_modulus
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("anchors", &self.anchors.len())
            .field("required", &self.required)
            .field("profile", &self.profile)
            .field("max_chain_depth", &self.max_chain_depth)
            .field("minimum_rsa_modulus", &self.minimum_rsa_modulus)
            .finish()
    }
}

impl ClientCertVerifier for Verifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        match self.verify(end_entity, intermediates, now) {
            Ok(()) => Ok(ClientCertVerified::assertion()),
            Err((reason, error)) => {
                tracing::warn!(
                    target: "frontend",
                    subject = %subject(end_entity),
                    "client cert verification failed: {reason}"
                );
                Err(rustls::Error::InvalidCertificate(error))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether `alg` is an ML-DSA algorithm identifier (RFC 9881).
fn is_ml_dsa(alg: &rustls::pki_types::AlgorithmIdentifier) -> bool {
    use rustls::pki_types::alg_id;
    [alg_id::ML_DSA_44, alg_id::ML_DSA_65, alg_id::ML_DSA_87].contains(alg)
}

/// `algorithms` without ML-DSA: what `allow_post_quantum = false` accepts.
/// rustls wants `'static` tables, so the filtered ones are made once per
/// process (the frontend has one provider) and kept.
fn classical(algorithms: WebPkiSupportedAlgorithms) -> WebPkiSupportedAlgorithms {
    use rustls::pki_types::SignatureVerificationAlgorithm as Alg;
    static CLASSICAL: std::sync::OnceLock<WebPkiSupportedAlgorithms> = std::sync::OnceLock::new();
    *CLASSICAL.get_or_init(|| {
        let keep = |a: &&'static dyn Alg| {
            !is_ml_dsa(&a.public_key_alg_id()) && !is_ml_dsa(&a.signature_alg_id())
        };
        let all: Vec<&'static dyn Alg> = algorithms.all.iter().copied().filter(keep).collect();
        let mapping: Vec<(rustls::SignatureScheme, &'static [&'static dyn Alg])> = algorithms
            .mapping
            .iter()
            .filter_map(|(scheme, algs)| {
                let kept: Vec<&'static dyn Alg> = algs.iter().copied().filter(keep).collect();
                (!kept.is_empty()).then(|| (*scheme, &*Box::leak(kept.into_boxed_slice())))
            })
            .collect();
        WebPkiSupportedAlgorithms {
            all: Box::leak(all.into_boxed_slice()),
            mapping: Box::leak(mapping.into_boxed_slice()),
        }
    })
}

/// The error rustls carries for a refusal of our own policy (depth, RSA
/// size, SAN); the reason itself is in the log line.
#[derive(Debug)]
struct PolicyRefusal;

impl fmt::Display for PolicyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("refused by [tls.client_auth]")
    }
}

impl std::error::Error for PolicyRefusal {}

/// The log reason and the rustls error for a webpki refusal.
fn webpki_reason(e: &webpki::Error) -> (String, CertificateError) {
    use webpki::Error as W;
    match e {
        W::CertExpired { .. } => (
            "the certificate has expired".into(),
            CertificateError::Expired,
        ),
        W::CertNotValidYet { .. } => (
            "the certificate is not valid yet".into(),
            CertificateError::NotValidYet,
        ),
        W::UnknownIssuer => (
            "unknown issuer: the chain does not lead to a CA of ca_files".into(),
            CertificateError::UnknownIssuer,
        ),
        W::RequiredEkuNotFoundContext(_) => (
            "the certificate is not for client authentication (extended key usage)".into(),
            CertificateError::InvalidPurpose,
        ),
        W::MaximumPathDepthExceeded => (
            "the chain is deeper than webpki follows (6 intermediates)".into(),
            CertificateError::UnknownIssuer,
        ),
        W::InvalidSignatureForPublicKey => (
            "a signature in the chain does not verify".into(),
            CertificateError::BadSignature,
        ),
        W::UnsupportedSignatureAlgorithmContext(_)
        | W::UnsupportedSignatureAlgorithmForPublicKeyContext(_) => (
            format!("a signature algorithm or key in the chain is not accepted ({e:?})"),
            CertificateError::BadSignature,
        ),
        other => (
            format!("{other:?}"),
            CertificateError::Other(OtherError(Arc::new(other.clone()))),
        ),
    }
}

/// The RSA modulus size of a SubjectPublicKeyInfo, if it is an RSA key.
fn rsa_bits(spki_der: &[u8]) -> Option<u32> {
    let key = PKey::public_key_from_der(spki_der).ok()?;
    (key.id() == Id::RSA).then(|| key.bits())
}

/// A configured CA with an RSA key below the minimum is refused at startup:
/// every chain ending there would be refused anyway.
fn check_anchor_key(der: &CertificateDer<'_>, minimum: u32) -> Result<(), String> {
    let cert = X509::from_der(der).map_err(|e| format!("not a certificate: {e}"))?;
    let key = cert
        .public_key()
        .map_err(|e| format!("unreadable public key: {e}"))?;
    if key.id() == Id::RSA && key.bits() < minimum {
        return Err(format!(
            "{} has a {}-bit RSA key, below minimum_rsa_modulus = {minimum}",
            name_of(&cert),
            key.bits()
        ));
    }
    Ok(())
}

fn trust_store(file: &Path, e: Error) -> Error {
    Error::Startup(format!(
        "build client-auth trust store: {}: {e}",
        file.display()
    ))
}

/// The leaf rules of `profile = "webpki"`: a clientAuth extended key
/// usage and a subjectAltName (`"rfc5280"` asks for neither).
fn webpki_profile(der: &CertificateDer<'_>) -> Result<(), (String, CertificateError)> {
    use openssl::x509::X509ExtendedKeyUsage;
    let Ok(cert) = X509::from_der(der) else {
        return Err((
            "the certificate cannot be parsed".into(),
            CertificateError::BadEncoding,
        ));
    };
    let client_auth = cert
        .extended_key_usage()
        .is_some_and(|eku| eku.contains(X509ExtendedKeyUsage::SSL_CLIENT));
    if !client_auth {
        return Err((
            "the certificate is not for client authentication (no clientAuth extended key \
             usage; profile \"webpki\")"
                .into(),
            CertificateError::InvalidPurpose,
        ));
    }
    if cert.subject_alt_names().is_none_or(|s| s.is_empty()) {
        return Err((
            "the certificate has no subjectAltName (profile \"webpki\"; \"rfc5280\" \
             does not ask for one)"
                .into(),
            CertificateError::Other(OtherError(Arc::new(PolicyRefusal))),
        ));
    }
    Ok(())
}

/// The subject of a certificate for the log (`?` when it cannot be read).
fn subject(der: &CertificateDer<'_>) -> String {
    X509::from_der(der).map_or_else(|_| "?".into(), |c| name_of(&c))
}

fn name_of(cert: &X509) -> String {
    cert.subject_name()
        .entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = String::from_utf8_lossy(e.data().as_slice());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(key: &PKey<openssl::pkey::Private>) -> String {
        let mut name = openssl::x509::X509NameBuilder::new().expect("name");
        name.append_entry_by_text("CN", "Client Root").expect("cn");
        let name = name.build();
        let mut b = X509::builder().expect("builder");
        b.set_version(2).expect("version");
        b.set_subject_name(&name).expect("subject");
        b.set_issuer_name(&name).expect("issuer");
        b.set_pubkey(key).expect("key");
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("t"))
            .expect("nb");
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).expect("t"))
            .expect("na");
        b.sign(key, openssl::hash::MessageDigest::sha256())
            .expect("sign");
        String::from_utf8(b.build().to_pem().expect("pem")).expect("utf-8")
    }

    fn auth(ca_files: Vec<std::path::PathBuf>, minimum_rsa_modulus: u32) -> ClientAuth {
        ClientAuth {
            required: true,
            ca_files,
            profile: ClientAuthProfile::Webpki,
            allow_post_quantum: false,
            max_chain_depth: 8,
            minimum_rsa_modulus,
        }
    }

    #[test]
    fn the_trust_store_refuses_missing_empty_and_weak_cas() {
        let dir = tempfile::tempdir().expect("tempdir");
        let provider = super::super::provider();
        let rsa = PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("rsa")).expect("key");
        let weak = dir.path().join("weak.pem");
        std::fs::write(&weak, self_signed(&rsa)).expect("write");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").expect("write");
        for (file, min, needle) in [
            (dir.path().join("missing.pem"), 2048, "missing.pem"),
            (empty, 2048, "contains no PEM blocks"),
            (
                weak.clone(),
                3072,
                "2048-bit RSA key, below minimum_rsa_modulus = 3072",
            ),
        ] {
            let err = Verifier::load(&auth(vec![file], min), &provider)
                .expect_err("refused")
                .to_string();
            assert!(err.starts_with("build client-auth trust store: "), "{err}");
            assert!(err.contains(needle), "{err}");
        }
        let verifier = Verifier::load(&auth(vec![weak], 2048), &provider).expect("loads");
        assert!(verifier.client_auth_mandatory());
        assert_eq!(verifier.root_hint_subjects().len(), 1);
    }

    /// An ML-DSA-65 client CA and an ML-DSA-44 client leaf (SAN, clientAuth).
    fn ml_dsa_chain() -> (String, CertificateDer<'static>) {
        use openssl::x509::extension::{
            BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
        };
        let name = |cn: &str| {
            let mut n = openssl::x509::X509NameBuilder::new().expect("name");
            n.append_entry_by_text("CN", cn).expect("cn");
            n.build()
        };
        let cert = |subject: &str,
                    key: &PKey<openssl::pkey::Private>,
                    issuer: Option<(&X509, &PKey<openssl::pkey::Private>)>| {
            let mut b = X509::builder().expect("builder");
            b.set_version(2).expect("version");
            let serial = openssl::bn::BigNum::from_u32(7).expect("bn");
            b.set_serial_number(&serial.to_asn1_integer().expect("serial"))
                .expect("serial");
            b.set_subject_name(&name(subject)).expect("subject");
            b.set_issuer_name(&name(issuer.map_or(subject, |_| "PQ Client CA")))
                .expect("issuer");
            b.set_pubkey(key).expect("key");
            b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).expect("t"))
                .expect("nb");
            b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(30).expect("t"))
                .expect("na");
            if issuer.is_none() {
                b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
                    .expect("bc");
                b.append_extension(
                    KeyUsage::new()
                        .critical()
                        .key_cert_sign()
                        .build()
                        .expect("ku"),
                )
                .expect("ku");
            } else {
                b.append_extension(ExtendedKeyUsage::new().client_auth().build().expect("eku"))
                    .expect("eku");
                let san = SubjectAlternativeName::new()
                    .dns("client.example.org")
                    .build(&b.x509v3_context(None, None))
                    .expect("san");
                b.append_extension(san).expect("san");
            }
            let signer = issuer.map_or(key, |(_, k)| k);
            b.sign(signer, openssl::hash::MessageDigest::null())
                .expect("sign");
            b.build()
        };
        let ca_key = akamu_jose::MlDsa::P65.generate().expect("key");
        let ca = cert("PQ Client CA", &ca_key, None);
        let leaf_key = akamu_jose::MlDsa::P44.generate().expect("key");
        let leaf = cert("client.example.org", &leaf_key, Some((&ca, &ca_key)));
        (
            String::from_utf8(ca.to_pem().expect("pem")).expect("utf-8"),
            CertificateDer::from(leaf.to_der().expect("der")),
        )
    }

    /// `allow_post_quantum`: an ML-DSA client chain is accepted only when
    /// it is true, and only then are the ML-DSA TLS signature schemes
    /// offered for the CertificateVerify.
    #[test]
    fn ml_dsa_client_chains_need_allow_post_quantum() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ca_pem, leaf) = ml_dsa_chain();
        let ca_file = dir.path().join("pq-ca.pem");
        std::fs::write(&ca_file, ca_pem).expect("write");
        let provider = super::super::provider();
        let now = UnixTime::now();
        let ml_dsa_schemes = [
            rustls::SignatureScheme::ML_DSA_44,
            rustls::SignatureScheme::ML_DSA_65,
            rustls::SignatureScheme::ML_DSA_87,
        ];

        let refusing = Verifier::load(&auth(vec![ca_file.clone()], 2048), &provider).expect("load");
        let (reason, _) = refusing.verify(&leaf, &[], now).expect_err("refused");
        assert!(reason.contains("signature algorithm"), "{reason}");
        let schemes = refusing.supported_verify_schemes();
        assert!(
            !schemes.iter().any(|s| ml_dsa_schemes.contains(s)),
            "{schemes:?}"
        );
        assert!(schemes.contains(&rustls::SignatureScheme::ECDSA_NISTP256_SHA256));

        let mut pq = auth(vec![ca_file], 2048);
        pq.allow_post_quantum = true;
        let accepting = Verifier::load(&pq, &provider).expect("load");
        accepting
            .verify(&leaf, &[], now)
            .unwrap_or_else(|(reason, _)| panic!("the ML-DSA chain is refused: {reason}"));
        let schemes = accepting.supported_verify_schemes();
        assert!(
            ml_dsa_schemes.iter().all(|s| schemes.contains(s)),
            "{schemes:?}"
        );
    }
}
