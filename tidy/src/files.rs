//! The workspace on disk: its root, its members, and the files under a
//! directory. Walks skip `target*` and hidden directories, and results are
//! sorted so that failure messages are stable.

use std::io;
use std::path::{Path, PathBuf};

/// The workspace root: the parent of this package's directory.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map_or_else(|| manifest_dir.to_path_buf(), Path::to_path_buf)
}

/// `path` relative to `root`, with `/` separators (as in failure messages and
/// exception lists).
pub fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Every file under `dir` whose name ends with `.{ext}`, recursively, sorted.
/// Directories named `target…` or starting with `.` are skipped, as are
/// directories whose name is in `skip_dirs`.
pub fn walk(dir: &Path, ext: &str, skip_dirs: &[&str]) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let suffix = format!(".{ext}");
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_dir() {
                if !name.starts_with('.')
                    && !name.starts_with("target")
                    && !skip_dirs.contains(&name.as_str())
                {
                    stack.push(path);
                }
            } else if name.ends_with(&suffix) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The directories of the workspace members, read from the root
/// `Cargo.toml` (`members`; a trailing `/*` glob is expanded one level).
pub fn member_dirs(root: &Path) -> io::Result<Vec<PathBuf>> {
    let text = std::fs::read_to_string(root.join("Cargo.toml"))?;
    let manifest: toml::Table = text
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let members = manifest
        .get("workspace")
        .and_then(|w| w.get("members"))
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut dirs = Vec::new();
    for member in members.iter().filter_map(toml::Value::as_str) {
        if let Some(parent) = member.strip_suffix("/*") {
            for entry in std::fs::read_dir(root.join(parent))? {
                let entry = entry?;
                if entry.path().join("Cargo.toml").is_file() {
                    dirs.push(entry.path());
                }
            }
        } else {
            dirs.push(root.join(member));
        }
    }
    dirs.sort();
    Ok(dirs)
}

/// The candidate files of an out-of-line module `mod name;` declared in
/// `declaring` (`name.rs` or `name/mod.rs`, beside a `lib.rs`/`main.rs`/
/// `mod.rs`, else in the directory named after the declaring file).
pub fn module_file_candidates(declaring: &Path, name: &str) -> [PathBuf; 2] {
    let dir = declaring.parent().unwrap_or(Path::new(""));
    let stem = declaring
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = if matches!(stem.as_str(), "lib" | "main" | "mod") {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    [
        base.join(format!("{name}.rs")),
        base.join(name).join("mod.rs"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_files_follow_rust_rules() {
        let [a, b] = module_file_candidates(Path::new("x/src/lib.rs"), "tests");
        assert_eq!(a, Path::new("x/src/tests.rs"));
        assert_eq!(b, Path::new("x/src/tests/mod.rs"));
        let [a, _] = module_file_candidates(Path::new("x/src/store.rs"), "tests");
        assert_eq!(a, Path::new("x/src/store/tests.rs"));
    }

    #[test]
    fn relative_uses_slashes() {
        assert_eq!(
            relative(Path::new("/w"), Path::new("/w/a/src/b.rs")),
            "a/src/b.rs"
        );
    }

    #[test]
    fn the_root_has_this_package_as_a_member() {
        let root = workspace_root();
        let dirs = member_dirs(&root).expect("members");
        assert!(dirs.contains(&root.join("tidy")), "{dirs:?}");
    }
}
