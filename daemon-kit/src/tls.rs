//! The server side of the mutual-TLS transport: a TCP listener whose
//! connections pass a TLS 1.3 handshake that verifies the client's
//! certificate against the client CA, then the client-name allow-list
//! ([`ClientNames`]), then the version preamble, all under
//! [`deadline::CONNECT`]; [`crate::accept::Acceptor`] serves what passes.
//! The client side is `shared_proto::transport::connect_tls`.
//!
//! **Invariant:** a TCP peer reaches a service only after mutual TLS and the
//! allow-list; every refusal is logged with its reason ([`Refusal`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use shared_proto::deadline;
use shared_proto::peer::{ClientNames, Peer, TlsClient};
use shared_proto::tls::{self as proto_tls, TlsError};
use shared_proto::transport::{self, TransportError};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Most connections in their handshake at once, per listener; more are
/// closed at once (each may hold its slot for [`deadline::CONNECT`]).
pub const MAX_PENDING_HANDSHAKES: usize = 64;

/// A TLS stream over TCP, server side.
pub type TlsServerStream = tokio_rustls::server::TlsStream<TcpStream>;

/// The files of a mutual-TLS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFiles {
    /// The server's certificate chain (leaf first).
    pub cert_file: PathBuf,
    /// The server's private key.
    pub key_file: PathBuf,
    /// The CA certificate(s) client certificates must chain to.
    pub client_ca_file: PathBuf,
}

/// `[tcp]` of the signer and of a remote perspective: the mutual-TLS
/// listener, one shape and one check for both. A TCP peer is served only
/// after the TLS 1.3 handshake verified its certificate against
/// `client_ca_file` and one of the certificate's DNS names is in
/// `client_names`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpConfig {
    /// Address and port to listen on, e.g. `10.0.0.5:4701`. Required. A
    /// port of 1024 or more: the daemon binds it after dropping every
    /// capability.
    pub listen_addr: SocketAddr,
    /// The server's TLS certificate chain (PEM, leaf first). Required.
    pub cert_file: PathBuf,
    /// Its private key (PEM); readable by the daemon's user only. Required.
    pub key_file: PathBuf,
    /// The CA certificate(s) (PEM) the clients' certificates must chain
    /// to. Required; use a CA made for these links, not the ACME CA.
    pub client_ca_file: PathBuf,
    /// DNS names of the client certificates allowed to call (Boulder's
    /// `clientNames`): exact names, no wildcards. Required, non-empty.
    pub client_names: Vec<String>,
}

impl TcpConfig {
    /// Checks what serde cannot: the key (`tcp.<key>`) at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.client_names.is_empty() {
            return Err(("tcp.client_names", "must name at least one client".into()));
        }
        if let Some(name) = self.client_names.iter().find(|n| !is_client_name(n)) {
            return Err((
                "tcp.client_names",
                format!("{name:?} is not a DNS name (exact names only, no wildcards)"),
            ));
        }
        if self.listen_addr.port() == 0 {
            return Err(("tcp.listen_addr", "needs a port".into()));
        }
        Ok(())
    }

    /// The certificate files of the listener.
    pub fn files(&self) -> ServerFiles {
        ServerFiles {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            client_ca_file: self.client_ca_file.clone(),
        }
    }

    /// Reads the files and binds the listener.
    pub fn bind(&self) -> Result<TlsListener, SetupError> {
        TlsListener::bind(
            self.listen_addr,
            &self.files(),
            ClientNames::new(self.client_names.iter().cloned()),
        )
    }
}

/// Whether `name` is an exact DNS name fit for a client-name allow-list
/// (letters, digits, hyphens, dots; no wildcard, no empty label).
pub fn is_client_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Why the listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file or the TLS configuration is wrong.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Why a TCP connection was refused: the reason logged for it.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The client presented no certificate.
    #[error("no client certificate")]
    NoCertificate,
    /// The client's certificate does not chain to the client CA.
    #[error("client certificate from an unknown CA")]
    UnknownCa,
    /// The client's certificate chains to the client CA but is unusable
    /// (expired, not for client authentication, …).
    #[error("bad client certificate: {0}")]
    BadCertificate(rustls::CertificateError),
    /// The client's certificate is valid, but none of its DNS names is on
    /// the allow-list.
    #[error("client name not allowed (certificate names {names:?})")]
    NameNotAllowed {
        /// The certificate's DNS names.
        names: Vec<String>,
    },
    /// The handshake failed for another reason (a client that is not ours,
    /// a broken connection, the deadline).
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    /// The handshake took longer than [`deadline::CONNECT`].
    #[error("TLS handshake or preamble timed out")]
    Timeout,
    /// The preamble after the handshake failed.
    #[error("connection handshake failed: {0}")]
    Preamble(TransportError),
}

impl Refusal {
    fn from_handshake(e: std::io::Error) -> Self {
        match e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::NoCertificatesPresented) => Self::NoCertificate,
            Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
                Self::UnknownCa
            }
            Some(rustls::Error::InvalidCertificate(other)) => Self::BadCertificate(other.clone()),
            _ => Self::Handshake(e),
        }
    }
}

/// A bound TCP listener with its TLS configuration and client allow-list,
/// not yet serving (give it to [`crate::accept::Acceptor`]).
pub struct TlsListener {
    pub(crate) listener: TcpListener,
    acceptor: TlsAcceptor,
    names: ClientNames,
    pending: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener")
            .field("addr", &self.listener.local_addr().ok())
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

/// The server configuration: TLS 1.3 only, aws-lc-rs, a client certificate
/// required and verified against `client_ca_file`.
pub fn server_config(files: &ServerFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = proto_tls::provider();
    let roots = proto_tls::load_roots(&files.client_ca_file)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let certs = proto_tls::load_certs(&files.cert_file)?;
    let key = proto_tls::load_key(&files.key_file)?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(proto_tls::VERSIONS)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

impl TlsListener {
    /// Reads the files and binds `addr`. Must be called inside a tokio
    /// runtime.
    pub fn bind(
        addr: SocketAddr,
        files: &ServerFiles,
        names: ClientNames,
    ) -> Result<Self, SetupError> {
        let config = server_config(files)?;
        // SO_REUSEADDR, as servers do: a restarted daemon binds its port at
        // once even while the connections it closed sit in TIME_WAIT.
        let listener = (|| {
            let socket = if addr.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(1024)
        })()
        .map_err(|source| SetupError::Bind { addr, source })?;
        Ok(Self {
            listener,
            acceptor: TlsAcceptor::from(config),
            names,
            pending: Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES)),
        })
    }

    /// The address bound (the port chosen, when asked for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The names on the allow-list.
    pub fn names(&self) -> &ClientNames {
        &self.names
    }

    /// A handshake slot, or `None` when [`MAX_PENDING_HANDSHAKES`]
    /// connections are in theirs already.
    pub(crate) fn handshake_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.pending).try_acquire_owned().ok()
    }

    /// Runs the handshake of one accepted connection: TLS (client
    /// certificate verified), allow-list, preamble, under
    /// [`deadline::CONNECT`].
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        addr: SocketAddr,
    ) -> Result<(TlsServerStream, Peer), Refusal> {
        tokio::time::timeout(deadline::CONNECT, async {
            let _ = tcp.set_nodelay(true);
            let mut stream = self
                .acceptor
                .accept(tcp)
                .await
                .map_err(Refusal::from_handshake)?;
            let names = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(proto_tls::dns_names)
                .unwrap_or_default();
            let admitted = self
                .names
                .admit(names.iter().map(String::as_str))
                .map(str::to_owned);
            match transport::server_preamble(&mut stream, admitted.is_some()).await {
                Ok(()) => {}
                Err(TransportError::Refused) => return Err(Refusal::NameNotAllowed { names }),
                Err(e) => return Err(Refusal::Preamble(e)),
            }
            let name = admitted.ok_or(Refusal::NameNotAllowed { names })?;
            Ok((stream, Peer::Tls(TlsClient { name, addr })))
        })
        .await
        .map_err(|_| Refusal::Timeout)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CA, a server certificate from it, written under `dir`.
    fn files(dir: &std::path::Path) -> ServerFiles {
        let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca_key = rcgen::KeyPair::generate().expect("key");
        let ca_pem = ca.self_signed(&ca_key).expect("ca").pem();
        let issuer = rcgen::Issuer::new(ca, ca_key);
        let leaf = rcgen::CertificateParams::new(vec!["signer.test".to_owned()]).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = leaf.signed_by(&key, &issuer).expect("leaf");
        let write = |name: &str, text: &str| {
            let path = dir.join(name);
            std::fs::write(&path, text).expect("write");
            path
        };
        ServerFiles {
            cert_file: write("server.crt", &cert.pem()),
            key_file: write("server.key", &key.serialize_pem()),
            client_ca_file: write("ca.pem", &ca_pem),
        }
    }

    #[tokio::test]
    async fn handshakes_are_capped_and_a_silent_peer_times_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        let listener = TlsListener::bind(
            "127.0.0.1:0".parse().expect("addr"),
            &files(dir.path()),
            ClientNames::new(["frontend.test"]),
        )
        .expect("bind");
        let slots: Vec<_> = (0..MAX_PENDING_HANDSHAKES)
            .map(|_| listener.handshake_slot().expect("a free slot"))
            .collect();
        assert!(listener.handshake_slot().is_none(), "the cap holds");
        drop(slots);
        assert!(listener.handshake_slot().is_some(), "slots come back");

        // A peer that connects and says nothing is dropped at the deadline.
        let addr = listener.local_addr().expect("addr");
        let _silent = TcpStream::connect(addr).await.expect("connect");
        let (tcp, peer) = listener.listener.accept().await.expect("accept");
        let started = tokio::time::Instant::now();
        let refused = listener.handshake(tcp, peer).await;
        assert!(matches!(refused, Err(Refusal::Timeout)), "{refused:?}");
        assert!(started.elapsed() >= deadline::CONNECT);
    }

    #[test]
    fn unreadable_files_are_reported_with_their_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut f = files(dir.path());
        f.client_ca_file = dir.path().join("missing.pem");
        let err = server_config(&f).expect_err("missing CA file");
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let mut f = files(dir.path());
        std::fs::write(&f.key_file, "not a key").expect("write");
        f.key_file = f.key_file.clone();
        assert!(server_config(&f).is_err());
    }
}
