//! Adapters to x509-cert's certificate builder.

use signature::Keypair;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SubjectPublicKeyInfoRef,
};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::name::Name;

#[cfg(doc)]
use crate::keys::KeyBackend;

/// Our [`BuilderProfile`]: subject, issuer and extensions fixed in advance.
pub(super) struct FixedProfile {
    pub(super) subject: Name,
    pub(super) issuer: Name,
    pub(super) extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}

/// Presents the issuer's public key and algorithm to x509-cert's builder,
/// which wants a `Keypair`; the private key stays behind [`KeyBackend`].
#[derive(Clone)]
pub(super) struct IssuerAdapter {
    pub(super) spki_der: Vec<u8>,
    pub(super) algorithm: AlgorithmIdentifierOwned,
}

/// The issuer's public key as the builder sees it.
#[derive(Clone)]
pub(super) struct IssuerPublicKey(Vec<u8>);

impl Keypair for IssuerAdapter {
    type VerifyingKey = IssuerPublicKey;

    fn verifying_key(&self) -> IssuerPublicKey {
        IssuerPublicKey(self.spki_der.clone())
    }
}

impl DynSignatureAlgorithmIdentifier for IssuerAdapter {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.algorithm.clone())
    }
}

impl EncodePublicKey for IssuerPublicKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.as_slice())?)
    }
}
