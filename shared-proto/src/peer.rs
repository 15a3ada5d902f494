//! `SO_PEERCRED` allow-lists: the one place where a server decides whether the
//! process on the other end of a Unix socket may talk to it.

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

#[cfg(test)]
mod tests {
    use super::*;

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
