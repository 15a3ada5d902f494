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
    /// algorithms of `provider`. `allow_post_quantum = true` is refused:
    /// post-quantum client chains are not supported yet.
    pub fn load(auth: &ClientAuth, provider: &CryptoProvider) -> Result<Self, Error> {
        if auth.allow_post_quantum {
            return Err(Error::Startup(
                "[tls.client_auth] allow_post_quantum = true is not supported yet \
                 (post-quantum client certificates come with a later release); \
                 remove it or set it to false"
                    .into(),
            ));
        }
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
            algorithms: provider.signature_verification_algorithms,
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
}
