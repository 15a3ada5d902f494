//! The `READY` line: the one line a daemon prints to stdout once its socket
//! listens, `READY {"service":"<name>","socket":"<path>","pid":<pid>}`. The
//! launcher and the test harnesses wait for it.

use std::io::{self, Write};
use std::path::Path;

use crate::Daemon;

/// The `READY` line of `daemon` listening on `socket` in process `pid`.
pub fn line(daemon: Daemon, socket: &Path, pid: u32) -> String {
    let socket = serde_json::Value::String(socket.to_string_lossy().into_owned());
    let service = daemon.name();
    format!(r#"READY {{"service":"{service}","socket":{socket},"pid":{pid}}}"#)
}

/// Prints this process's `READY` line to stdout and flushes it.
pub fn print(daemon: Daemon, socket: &Path) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{}", line(daemon, socket, std::process::id()))?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_line_is_exact_json() {
        let l = line(
            Daemon::Validator,
            Path::new("akamu-data/validator.sock"),
            42,
        );
        assert_eq!(
            l,
            r#"READY {"service":"validator","socket":"akamu-data/validator.sock","pid":42}"#
        );
        let json: serde_json::Value =
            serde_json::from_str(l.strip_prefix("READY ").expect("prefix")).expect("json");
        assert_eq!(json["pid"], 42);
        assert_eq!(
            line(Daemon::Signer, Path::new("/run/akamu/signer.sock"), 7),
            r#"READY {"service":"signer","socket":"/run/akamu/signer.sock","pid":7}"#
        );
    }

    #[test]
    fn odd_socket_paths_stay_valid_json() {
        let l = line(Daemon::Signer, Path::new("/tmp/a \"b\"\\c.sock"), 1);
        let json: serde_json::Value =
            serde_json::from_str(l.strip_prefix("READY ").expect("prefix")).expect("json");
        assert_eq!(json["socket"], "/tmp/a \"b\"\\c.sock");
        assert!(!l.contains('\n'));
    }
}
