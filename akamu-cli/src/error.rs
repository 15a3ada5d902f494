//! The CLI's one error type and its exit codes.

use std::path::PathBuf;

use akamu_client::ClientError;

/// What can make a command fail.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The ACME library failed (the server said no, or the exchange broke).
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The command line is valid for clap but not for the command.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// A file exists but its content is unusable (not a key, not a PEM
    /// certificate).
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The `--dns-hook` script or the interactive prompt failed.
    #[error("DNS step failed: {0}")]
    Dns(String),
    /// The transparency log is not what its signed checkpoint says, forked,
    /// or lacks a certificate (`log verify`, `log prove`).
    #[error("transparency log: {0}")]
    LogBroken(String),
    /// The transparency log could not be reached or did not answer.
    #[error("transparency log unreachable: {0}")]
    Unreachable(String),
}

impl CliError {
    /// The process exit code: 1 ACME or server error, 2 usage error,
    /// 3 I/O error, 4 a broken, forked or incomplete transparency log, 5 a
    /// transparency log that cannot be reached.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::LogBroken(_) => 4,
            Self::Unreachable(_) => 5,
            Self::Client(ClientError::InvalidArgument(_)) | Self::Usage(_) => 2,
            Self::Client(ClientError::Io(_)) | Self::Io { .. } | Self::BadFile { .. } => 3,
            Self::Dns(_) => 3,
            Self::Client(_) => 1,
        }
    }

    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let acme = ClientError::Acme {
            acme_type: "urn:ietf:params:acme:error:unauthorized".into(),
            detail: String::new(),
            status: Some(403),
            subproblems: vec![],
        };
        assert_eq!(CliError::from(acme).exit_code(), 1);
        assert_eq!(CliError::from(ClientError::Http("x".into())).exit_code(), 1);
        assert_eq!(
            CliError::from(ClientError::InvalidArgument("7".into())).exit_code(),
            2
        );
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::LogBroken("fork".into()).exit_code(), 4);
        assert_eq!(CliError::Unreachable("down".into()).exit_code(), 5);
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        assert_eq!(CliError::io("/x", io).exit_code(), 3);
        assert_eq!(
            CliError::from(ClientError::Io("bind".into())).exit_code(),
            3
        );
    }
}
