//! Options that weaken transport security, for tests and labs only.
//!
//! Nothing here is needed to use a private CA: trust its root with
//! [`crate::ClientBuilder::add_root_pem`] instead.

use std::sync::Arc;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::{AcmeClient, ClientBuilder, ClientError};

/// A [`ClientBuilder`] whose dangerous options are unlocked; from
/// [`ClientBuilder::dangerous`].
pub struct DangerousClientBuilder {
    pub(crate) inner: ClientBuilder,
}

impl DangerousClientBuilder {
    /// Accept `http://` directory and resource URLs (plain HTTP, no TLS):
    /// anyone on the path can read and alter every exchange.
    pub fn allow_plain_http(mut self) -> Self {
        self.inner.tls.allow_http = true;
        self
    }

    /// Accept any server certificate without verification.
    pub fn disable_certificate_verification(mut self) -> Self {
        self.inner.tls.no_verify = true;
        self
    }

    /// Back to the ordinary builder, keeping the options set here.
    pub fn finish(self) -> ClientBuilder {
        self.inner
    }

    /// Fetches the directory and returns the client.
    pub async fn build(self) -> Result<AcmeClient, ClientError> {
        self.inner.build().await
    }
}

/// A verifier that accepts every certificate but still checks handshake
/// signatures (so the TLS session itself is well-formed).
#[derive(Debug)]
pub(crate) struct NoVerifier(Arc<CryptoProvider>);

impl NoVerifier {
    pub(crate) fn new() -> Self {
        Self(Arc::new(rustls::crypto::ring::default_provider()))
    }
}

impl ServerCertVerifier for NoVerifier {
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
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
