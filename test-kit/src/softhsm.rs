//! SoftHSM2 tokens in a directory of their own, for tests and the bench's
//! `--ca-backend softhsm`.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 PKCS#11 module.
pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
/// The user PIN of every token made here.
pub const PIN: &str = "1234";
/// The security officer's PIN of every token made here.
pub const SO_PIN: &str = "5678";

/// A token initialised by [`init_token`].
#[derive(Clone, Debug)]
pub struct Token {
    /// The `softhsm2.conf` to pass as `SOFTHSM2_CONF` to every process that
    /// opens the module.
    pub conf: PathBuf,
    /// A file holding [`PIN`], mode 0600 (the signer refuses a PIN file
    /// others can read).
    pub pin_file: PathBuf,
}

/// Initialises a token labelled `label` in `dir` (created if needed): a
/// token directory, a `softhsm2.conf` pointing at it, `softhsm2-util
/// --init-token` with [`PIN`] and [`SO_PIN`], and a PIN file.
pub fn init_token(dir: &Path, label: &str) -> io::Result<Token> {
    if !Path::new(MODULE).exists() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{MODULE} is missing: install softhsm2 (scripts/test.sh does)"),
        ));
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )?;
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label])
        .args(["--pin", PIN, "--so-pin", SO_PIN])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("softhsm2-util (install softhsm2): {e}")))?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "softhsm2-util --init-token: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let pin_file = dir.join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n"))?;
    std::fs::set_permissions(&pin_file, std::fs::Permissions::from_mode(0o600))?;
    Ok(Token { conf, pin_file })
}
