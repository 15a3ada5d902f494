//! The operator's tools, run as an operator runs them: the built
//! `akamu-cli` (ceremonies, `admin`, `audit`) and the `openssl` CLI.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use super::procs::binary_path;

/// What a command printed and how it exited.
#[derive(Debug, Clone)]
pub(crate) struct Run {
    /// The command line, for failure messages.
    pub command: String,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Exit status 0.
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// Both streams, for matching text wherever the tool printed it.
    pub(crate) fn all_output(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// Panics with everything the command printed unless it succeeded.
    pub(crate) fn assert_success(&self) -> &Run {
        assert!(self.success(), "{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

fn run(mut cmd: Command) -> Run {
    let command = format!(
        "{} {}",
        cmd.get_program().to_string_lossy(),
        cmd.get_args()
            .map(OsStr::to_string_lossy)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{command}`: {e}"));
    Run {
        command,
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the built `akamu-cli` with `args` and extra environment `env`.
pub(crate) fn akamu_cli<S: AsRef<OsStr>>(args: &[S], env: &[(&str, &Path)]) -> Run {
    let mut cmd = Command::new(binary_path("akamu-cli"));
    cmd.args(args).env("NO_COLOR", "1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd)
}

/// Runs the `openssl` command-line tool with `args`.
pub(crate) fn openssl<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let mut cmd = Command::new("openssl");
    cmd.args(args);
    run(cmd)
}

/// Runs any program (softhsm2-util, pkilint) with `args` and `env`.
pub(crate) fn program<S: AsRef<OsStr>>(program: &Path, args: &[S], env: &[(&str, &Path)]) -> Run {
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd)
}
