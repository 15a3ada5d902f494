//! Least privilege for the three daemons: switch from root to the
//! component's own user, keep only the capabilities asked for, set
//! `PR_SET_NO_NEW_PRIVS`, and refuse to run with secrets other users can read.
//!
//! Every step is verified after it is taken; a process that cannot drop what
//! it was asked to drop refuses to start.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use caps::{CapSet, Capability};
use nix::unistd::{Gid, Group, Uid, User};

/// Why privileges could not be dropped or a file is unsafe.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    /// The configured user does not exist.
    #[error("user {0:?} does not exist")]
    NoSuchUser(String),
    /// The configured group does not exist.
    #[error("group {0:?} does not exist")]
    NoSuchGroup(String),
    /// A system call failed.
    #[error("{step}: {source}")]
    Sys {
        /// What was being done.
        step: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A check after dropping found more privilege than allowed.
    #[error("privileges were not dropped: {0}")]
    StillPrivileged(String),
    /// A secret or database file is readable by others.
    #[error("{path}: mode {mode:04o} gives access to {who}; expected at most {max:04o}")]
    FileTooOpen {
        /// The file.
        path: String,
        /// Its mode bits.
        mode: u32,
        /// The most permissive mode allowed.
        max: u32,
        /// Who has access that should not.
        who: &'static str,
    },
}

fn sys<E: Into<std::io::Error>>(step: &'static str) -> impl FnOnce(E) -> PrivilegeError {
    move |e| PrivilegeError::Sys {
        step,
        source: e.into(),
    }
}

fn nix_sys(step: &'static str) -> impl FnOnce(nix::Error) -> PrivilegeError {
    move |e| PrivilegeError::Sys {
        step,
        source: std::io::Error::from(e),
    }
}

/// What a process keeps after start.
#[derive(Clone, Debug, Default)]
pub struct DropPlan {
    /// The user to become when started as root.
    pub user: String,
    /// The group to become when started as root.
    pub group: String,
    /// Capabilities to keep (empty for the signer and validator).
    pub keep: Vec<Capability>,
}

/// The plan for a process configured with an optional `user`/`group`: that
/// user (and group, defaulting to the user's name), or the current identity
/// when none is configured (development: no switch, capabilities still
/// dropped).
pub fn plan(user: Option<&str>, group: Option<&str>) -> DropPlan {
    match user {
        Some(u) => DropPlan {
            user: u.to_owned(),
            group: group.unwrap_or(u).to_owned(),
            keep: Vec::new(),
        },
        None => {
            let uid = Uid::effective();
            let gid = Gid::effective();
            DropPlan {
                user: User::from_uid(uid)
                    .ok()
                    .flatten()
                    .map_or_else(|| uid.to_string(), |u| u.name),
                group: Group::from_gid(gid)
                    .ok()
                    .flatten()
                    .map_or_else(|| gid.to_string(), |g| g.name),
                keep: Vec::new(),
            }
        }
    }
}

/// Who the process is after [`drop_privileges`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Real and effective uid.
    pub uid: u32,
    /// Real and effective gid.
    pub gid: u32,
}

/// Drops privileges as described in the module docs. Started as root, the
/// process becomes `drop.user:drop.group` with no supplementary groups;
/// started as another user it stays that user. Either way it ends with only
/// `drop.keep` in its permitted, effective and bounding sets, no ambient or
/// inheritable capabilities, and `no_new_privs` set.
pub fn drop_privileges(drop: &DropPlan) -> Result<Identity, PrivilegeError> {
    let keep: HashSet<Capability> = drop.keep.iter().copied().collect();
    let root = Uid::effective().is_root();
    if root {
        let user = User::from_name(&drop.user)
            .map_err(nix_sys("looking up the user"))?
            .ok_or_else(|| PrivilegeError::NoSuchUser(drop.user.clone()))?;
        let group = Group::from_name(&drop.group)
            .map_err(nix_sys("looking up the group"))?
            .ok_or_else(|| PrivilegeError::NoSuchGroup(drop.group.clone()))?;
        // The bounding set can only shrink while we hold CAP_SETPCAP (root).
        for cap in caps::all() {
            if !keep.contains(&cap) {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| PrivilegeError::StillPrivileged(format!("bounding set: {e}")))?;
            }
        }
        if !keep.is_empty() {
            nix::sys::prctl::set_keepcaps(true).map_err(nix_sys("PR_SET_KEEPCAPS"))?;
        }
        nix::unistd::setgroups(&[group.gid]).map_err(nix_sys("setgroups"))?;
        nix::unistd::setgid(group.gid).map_err(nix_sys("setgid"))?;
        nix::unistd::setuid(user.uid).map_err(nix_sys("setuid"))?;
        if !user.uid.is_root() && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
            return Err(PrivilegeError::StillPrivileged("could regain uid 0".into()));
        }
    }
    // Only call capset when something changes: a process that already has
    // exactly what it keeps (the normal case under systemd) needs no
    // capset, so the units can forbid that system call.
    let keep_set: caps::CapsHashSet = keep.iter().copied().collect();
    for set in [CapSet::Ambient, CapSet::Inheritable] {
        if !caps::read(None, set).map(|c| c.is_empty()).unwrap_or(false) {
            caps::clear(None, set)
                .map_err(|e| PrivilegeError::StillPrivileged(format!("{set:?} set: {e}")))?;
        }
    }
    for set in [CapSet::Effective, CapSet::Permitted] {
        if caps::read(None, set).ok().as_ref() != Some(&keep_set) {
            caps::set(None, set, &keep_set)
                .map_err(|e| PrivilegeError::StillPrivileged(format!("{set:?} set: {e}")))?;
        }
    }
    nix::sys::prctl::set_no_new_privs().map_err(nix_sys("PR_SET_NO_NEW_PRIVS"))?;
    verify(&keep)?;
    Ok(Identity {
        uid: Uid::effective().as_raw(),
        gid: Gid::effective().as_raw(),
    })
}

/// Drops one capability that was kept until it was used (the frontend's
/// `CAP_NET_BIND_SERVICE` after binding a low port).
pub fn drop_capability(cap: Capability) -> Result<(), PrivilegeError> {
    for set in [CapSet::Effective, CapSet::Permitted] {
        caps::drop(None, set, cap)
            .map_err(|e| PrivilegeError::StillPrivileged(format!("{cap}: {e}")))?;
    }
    if caps::has_cap(None, CapSet::Permitted, cap).unwrap_or(true) {
        return Err(PrivilegeError::StillPrivileged(format!(
            "{cap} still permitted"
        )));
    }
    Ok(())
}

fn verify(keep: &HashSet<Capability>) -> Result<(), PrivilegeError> {
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Ambient] {
        let have = caps::read(None, set)
            .map_err(|e| PrivilegeError::StillPrivileged(format!("reading {set:?}: {e}")))?;
        let extra: Vec<String> = have.difference(keep).map(|c| c.to_string()).collect();
        if !extra.is_empty() {
            return Err(PrivilegeError::StillPrivileged(format!(
                "{set:?} still holds {}",
                extra.join(", ")
            )));
        }
    }
    let nnp = nix::sys::prctl::get_no_new_privs().map_err(nix_sys("reading no_new_privs"))?;
    if !nnp {
        return Err(PrivilegeError::StillPrivileged(
            "no_new_privs is not set".into(),
        ));
    }
    Ok(())
}

/// Refuses a secret (key, PIN) or database file that group or others can
/// access: its mode must be within 0600.
pub fn check_private_file(path: &Path) -> Result<(), PrivilegeError> {
    let meta = std::fs::metadata(path).map_err(sys("reading file metadata"))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(PrivilegeError::FileTooOpen {
            path: path.display().to_string(),
            mode,
            max: 0o600,
            who: if mode & 0o007 != 0 {
                "all users"
            } else {
                "its group"
            },
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn open_files_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key.pem");
        std::fs::write(&path, b"secret").expect("write");
        for (mode, ok) in [
            (0o600, true),
            (0o400, true),
            (0o640, false),
            (0o644, false),
            (0o604, false),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            assert_eq!(check_private_file(&path).is_ok(), ok, "{mode:o}");
        }
        assert!(check_private_file(&dir.path().join("missing")).is_err());
    }
}
