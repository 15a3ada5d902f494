//! TLS client settings that skip certificate-chain validation.
//!
//! Both uses are deliberate and follow the ecosystem: a tls-alpn-01
//! certificate is self-signed by the applicant (RFC 8737 §3: its content is
//! checked, not its chain), and an http-01 redirect to https is fetched without
//! checking the certificate, as Let's Encrypt does, because the key
//! authorization in the body is what proves control. Handshake signatures are
//! still verified with the provider's algorithms, so the peer must hold the key
//! of the certificate it presents.
//!
//! The key is taken from the certificate with x509-cert, not webpki: webpki
//! refuses to parse certificates with unknown critical extensions, and the
//! RFC 8737 certificate has one (id-pe-acmeIdentifier).

use std::sync::Arc;

use der::{Decode, Encode};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, PeerMisbehaved, SignatureScheme,
};
use x509_cert::Certificate;
use x509_cert::spki::SubjectPublicKeyInfoOwned;

/// A verifier that accepts any server certificate but checks handshake
/// signatures against the certificate's key.
#[derive(Debug)]
pub struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl AcceptAnyCertificate {
    /// A verifier using `provider`'s signature algorithms.
    pub fn new(provider: &CryptoProvider) -> Self {
        Self {
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = subject_public_key_info(cert)?;
        let Some((_, candidates)) = self
            .algorithms
            .mapping
            .iter()
            .find(|(s, _)| *s == dss.scheme)
        else {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        };
        // TLS 1.2 schemes do not pin the key type: try every algorithm whose
        // public-key algorithm identifier is the certificate's.
        let alg_id = algorithm_id_contents(&spki)?;
        let key = spki.subject_public_key.raw_bytes();
        for alg in candidates.iter() {
            if alg.public_key_alg_id().as_ref() != alg_id.as_slice() {
                continue;
            }
            return alg
                .verify_signature(key, message, dss.signature())
                .map(|()| HandshakeSignatureValid::assertion())
                .map_err(|_| CertificateError::BadSignature.into());
        }
        Err(CertificateError::BadSignature.into())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let spki = subject_public_key_info(cert)?;
        let der = spki
            .to_der()
            .map_err(|_| rustls::Error::from(CertificateError::BadEncoding))?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(der),
            dss,
            &self.algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The certificate's subjectPublicKeyInfo.
fn subject_public_key_info(
    cert: &CertificateDer<'_>,
) -> Result<SubjectPublicKeyInfoOwned, rustls::Error> {
    Certificate::from_der(cert.as_ref())
        .map(|c| c.tbs_certificate().subject_public_key_info().clone())
        .map_err(|_| CertificateError::BadEncoding.into())
}

/// The DER contents (without the SEQUENCE header) of the key's
/// AlgorithmIdentifier, the form `SignatureVerificationAlgorithm` reports.
fn algorithm_id_contents(spki: &SubjectPublicKeyInfoOwned) -> Result<Vec<u8>, rustls::Error> {
    let bad = |_| rustls::Error::from(CertificateError::BadEncoding);
    let mut out = spki.algorithm.oid.to_der().map_err(bad)?;
    if let Some(params) = &spki.algorithm.parameters {
        out.extend(params.to_der().map_err(bad)?);
    }
    Ok(out)
}

/// A TLS 1.2/1.3 client on the `ring` provider that offers exactly `alpn`
/// and accepts any certificate (see [`AcceptAnyCertificate`]).
pub fn client_config(alpn: &[u8]) -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyCertificate::new(&provider));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}
