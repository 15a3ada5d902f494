//! Reading `/proc`: the launcher's children (the signer and validator pids
//! change when they are restarted), process states, and listening Unix
//! sockets (a restarted child is ready when it serves its socket again).

/// `(pid, comm)` of the live processes whose parent is `parent`.
pub(crate) fn children_of(parent: i32) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Some((comm, state, ppid)) = proc_stat(pid) else {
            continue;
        };
        if ppid == parent && state != 'Z' {
            out.push((pid, comm));
        }
    }
    out.sort();
    out
}

/// `(comm, state, ppid)` from `/proc/PID/stat`.
pub(crate) fn proc_stat(pid: i32) -> Option<(String, char, i32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm is in parentheses and may itself contain spaces or parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_owned();
    let mut rest = stat.get(close + 2..)?.split(' ');
    let state = rest.next()?.chars().next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((comm, state, ppid))
}

/// True if `pid` holds a listening Unix socket that has a path.
pub(crate) fn listens_on_unix_socket(pid: i32) -> bool {
    const SO_ACCEPTCON: u32 = 0x0001_0000;
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return false;
    };
    let listening: Vec<&str> = table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let flags = u32::from_str_radix(cols.get(3)?, 16).ok()?;
            // Only named sockets: cols[7] is the path.
            cols.get(7)?;
            (flags & SO_ACCEPTCON != 0).then_some(*cols.get(6)?)
        })
        .collect();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path())
            .ok()
            .and_then(|target| {
                let target = target.to_string_lossy().into_owned();
                let inode = target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned();
                Some(listening.contains(&inode.as_str()))
            })
            .unwrap_or(false)
    })
}

/// True if `pid` is alive and runs one of the three Akāmu binaries.
pub(crate) fn is_our_binary(pid: i32) -> bool {
    match proc_stat(pid) {
        Some((comm, state, _)) => {
            state != 'Z'
                && ["acme-frontend", "ca-signer", "validator-work"]
                    .iter()
                    .any(|b| comm.starts_with(b))
        }
        None => false,
    }
}

#[cfg(test)]
mod unit {
    use std::process::Command;

    use super::*;

    #[test]
    fn proc_stat_reads_ourselves() {
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let (_, state, ppid) = proc_stat(me).expect("own stat");
        assert_ne!(state, 'Z');
        assert!(ppid > 0);
    }

    #[test]
    fn children_of_finds_a_spawned_child() {
        let mut child = Command::new("sleep")
            .arg("30")
            .spawn()
            .expect("spawn sleep");
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let pid = i32::try_from(child.id()).expect("pid fits");
        let kids = children_of(me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            kids.iter().any(|(p, c)| *p == pid && c == "sleep"),
            "{kids:?}"
        );
    }

    #[test]
    fn sees_a_listening_unix_socket() {
        let dir = tempfile::tempdir().expect("tempdir");
        let me = i32::try_from(std::process::id()).expect("pid fits");
        let _listener =
            std::os::unix::net::UnixListener::bind(dir.path().join("s.sock")).expect("bind");
        assert!(listens_on_unix_socket(me));
    }
}
