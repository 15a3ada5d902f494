//! Peer allow-lists: the one place where a server decides whether the
//! process on the other end may talk to it. On a Unix socket that is the
//! peer's uid (`SO_PEERCRED`, [`AllowList`]); on TCP with mutual TLS it is a
//! DNS name of the client certificate the handshake verified
//! ([`ClientNames`], like Boulder's gRPC `clientNames`).

use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;

/// Credentials of the connected peer, read from the kernel (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerCred {
    /// Effective uid of the peer when it connected.
    pub uid: u32,
    /// Effective gid of the peer when it connected.
    pub gid: u32,
    /// Process id of the peer, when the kernel reports one.
    pub pid: Option<i32>,
}

/// Reads the peer's credentials from a connected Unix stream.
pub fn peer_cred(stream: &UnixStream) -> std::io::Result<PeerCred> {
    let cred = stream.peer_cred()?;
    Ok(PeerCred {
        uid: cred.uid(),
        gid: cred.gid(),
        pid: cred.pid(),
    })
}

/// Which uids may connect to a socket. An empty list allows nobody: a server
/// must be configured with at least one uid (in development, the launcher's own).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowList {
    uids: Vec<u32>,
}

impl AllowList {
    /// An allow-list of exactly these uids.
    pub fn new(uids: impl IntoIterator<Item = u32>) -> Self {
        Self {
            uids: uids.into_iter().collect(),
        }
    }

    /// Whether `peer` may use the service.
    pub fn permits(&self, peer: &PeerCred) -> bool {
        self.uids.contains(&peer.uid)
    }

    /// The uids on the list.
    pub fn uids(&self) -> &[u32] {
        &self.uids
    }
}

/// Who is on the other end of an admitted connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peer {
    /// A process on the same host, over the Unix socket.
    Unix(PeerCred),
    /// A client over TCP whose certificate the mutual-TLS handshake verified.
    Tls(TlsClient),
}

/// A client admitted over TCP with mutual TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsClient {
    /// The certificate's DNS name that is on the server's [`ClientNames`].
    pub name: String,
    /// The client's address.
    pub addr: std::net::SocketAddr,
}

impl Peer {
    /// The peer's uid, for a Unix peer.
    pub fn uid(&self) -> Option<u32> {
        match self {
            Self::Unix(cred) => Some(cred.uid),
            Self::Tls(_) => None,
        }
    }

    /// The admitted client name, for a TLS peer.
    pub fn client_name(&self) -> Option<&str> {
        match self {
            Self::Unix(_) => None,
            Self::Tls(client) => Some(&client.name),
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(cred) => write!(f, "uid {}", cred.uid),
            Self::Tls(client) => write!(f, "tls client {} ({})", client.name, client.addr),
        }
    }
}

/// Which client-certificate names may connect over TCP with mutual TLS. A
/// name matches a certificate DNS name exactly (ASCII case aside, no
/// wildcard expansion: a certificate for `*.example.org` matches only the
/// listed name `*.example.org`, which configurations refuse). An empty list
/// allows nobody.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientNames {
    names: Vec<String>,
}

impl ClientNames {
    /// An allow-list of exactly these names.
    pub fn new(names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            names: names
                .into_iter()
                .map(|n| n.into().to_ascii_lowercase())
                .collect(),
        }
    }

    /// The first of the certificate's DNS names that is on the list, if any.
    pub fn admit<'a>(&self, dns_names: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        dns_names
            .into_iter()
            .find(|presented| self.names.iter().any(|n| n.eq_ignore_ascii_case(presented)))
    }

    /// The names on the list.
    pub fn names(&self) -> &[String] {
        &self.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_match_exactly_ignoring_ascii_case() {
        let list = ClientNames::new(["frontend-1.ca.internal", "Frontend-2.CA.internal"]);
        assert_eq!(
            list.admit(["other.example", "frontend-1.ca.internal"]),
            Some("frontend-1.ca.internal")
        );
        assert_eq!(
            list.admit(["FRONTEND-2.ca.internal"]),
            Some("FRONTEND-2.ca.internal")
        );
        // No suffix, prefix or wildcard matching.
        assert_eq!(list.admit(["x.frontend-1.ca.internal"]), None);
        assert_eq!(list.admit(["frontend-1.ca.internal.evil"]), None);
        assert_eq!(list.admit(["*.ca.internal"]), None);
        assert_eq!(list.admit(["frontend-1"]), None);
        assert_eq!(list.admit([]), None);
        assert_eq!(
            ClientNames::default().admit(["frontend-1.ca.internal"]),
            None
        );
        let wildcard = ClientNames::new(["*.ca.internal"]);
        assert_eq!(wildcard.admit(["frontend-1.ca.internal"]), None);
    }

    #[test]
    fn peers_name_themselves() {
        let unix = Peer::Unix(PeerCred {
            uid: 7,
            gid: 7,
            pid: None,
        });
        assert_eq!(unix.to_string(), "uid 7");
        assert_eq!((unix.uid(), unix.client_name()), (Some(7), None));
        let tls = Peer::Tls(TlsClient {
            name: "fe.ca.internal".into(),
            addr: "127.0.0.1:4000".parse().expect("addr"),
        });
        assert_eq!(
            tls.to_string(),
            "tls client fe.ca.internal (127.0.0.1:4000)"
        );
        assert_eq!(
            (tls.uid(), tls.client_name()),
            (None, Some("fe.ca.internal"))
        );
    }

    #[test]
    fn empty_list_permits_nobody() {
        let peer = PeerCred {
            uid: 0,
            gid: 0,
            pid: None,
        };
        assert!(!AllowList::default().permits(&peer));
        assert!(AllowList::new([0]).permits(&peer));
        assert!(!AllowList::new([1000]).permits(&peer));
    }
}
