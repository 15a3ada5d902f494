//! The SELinux module in `selinux/`: it builds with `selinux-policy-dev`,
//! links into a private copy of the system's policy store (the system's own
//! store is never touched), labels the paths the systemd units use, and the
//! linked binary policy passes `selinux_checks.py` (setools): no frontend or
//! validator rule reads the CA key, the validator cannot read the database,
//! the signer has no network socket, nobody else writes the audit log.
//!
//! `planted_violations_are_caught` links a copy with one violating rule per
//! check and asserts that every check reports it.
//!
//! Needs (Debian): selinux-policy-dev, selinux-policy-default (for a policy
//! store to link against), semodule-utils, policycoreutils, setools.
//! `scripts/test.sh` installs them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

const DEVEL_MAKEFILE: &str = "/usr/share/selinux/devel/Makefile";
const PACKAGES: &str =
    "selinux-policy-dev selinux-policy-default semodule-utils policycoreutils setools";

fn selinux_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../selinux")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}; install {PACKAGES}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The policy store the system uses (`SELINUXTYPE` in /etc/selinux/config;
/// Debian's is `default`).
fn store_name() -> String {
    fs::read_to_string("/etc/selinux/config")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.trim().strip_prefix("SELINUXTYPE=").map(str::to_owned))
        })
        .unwrap_or_else(|| "default".to_owned())
}

/// A module linked into a private policy store.
struct Linked {
    root: TempDir,
    store: String,
}

impl Linked {
    /// Builds `akamu.pp` from `te` and the real `.if`/`.fc`, then links it
    /// into a copy of /var/lib/selinux and /etc/selinux with
    /// `semodule -p COPY -s STORE -n -i` (`-n`: do not load it).
    fn build(te: &str) -> Self {
        assert!(
            Path::new(DEVEL_MAKEFILE).exists(),
            "{DEVEL_MAKEFILE} is missing; install {PACKAGES}"
        );
        let store = store_name();
        assert!(
            Path::new("/var/lib/selinux").join(&store).exists(),
            "no policy store /var/lib/selinux/{store}; install {PACKAGES}"
        );
        let root = tempfile::tempdir().expect("tempdir");
        let src = root.path().join("src");
        fs::create_dir(&src).expect("mkdir src");
        fs::write(src.join("akamu.te"), te).expect("write te");
        for ext in ["if", "fc"] {
            let name = format!("akamu.{ext}");
            fs::copy(selinux_dir().join(&name), src.join(&name)).expect("copy module source");
        }
        run(Command::new("make")
            .args(["-f", DEVEL_MAKEFILE, "akamu.pp"])
            .current_dir(&src));

        for dir in ["var/lib", "etc"] {
            let to = root.path().join(dir);
            fs::create_dir_all(&to).expect("mkdir");
            run(Command::new("cp")
                .arg("-a")
                .arg(Path::new("/").join(dir).join("selinux"))
                .arg(&to));
        }
        run(Command::new("semodule")
            .arg("-p")
            .arg(root.path())
            .args(["-s", &store, "-n", "-i"])
            .arg(src.join("akamu.pp")));
        Self { root, store }
    }

    fn policy_dir(&self) -> PathBuf {
        self.root.path().join("etc/selinux").join(&self.store)
    }

    /// The linked kernel policy (`policy.NN`, highest version).
    fn policy_file(&self) -> PathBuf {
        let dir = self.policy_dir().join("policy");
        fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("policy."))
            })
            .max()
            .expect("semodule wrote no policy.NN")
    }

    /// Runs `selinux_checks.py`: its exit code and its findings.
    fn check(&self) -> (i32, String) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/selinux_checks.py");
        let out = Command::new(setools_python())
            .arg(script)
            .arg(self.policy_file())
            .output()
            .expect("running selinux_checks.py");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.trim().is_empty(), "selinux_checks.py: {stderr}");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The type the linked file contexts give `path`.
    fn label_of(&self, path: &str) -> String {
        let contexts = self.policy_dir().join("contexts/files/file_contexts");
        let out = run(Command::new("selabel_lookup")
            .args(["-b", "file", "-f"])
            .arg(contexts)
            .args(["-k", path]));
        let text = String::from_utf8_lossy(&out.stdout);
        text.trim()
            .rsplit(':')
            .nth(1)
            .unwrap_or_else(|| panic!("no context for {path}: {text}"))
            .to_owned()
    }
}

/// The interpreter setools' own `sesearch` runs with (a pyenv or venv
/// `python3` earlier in PATH may lack the setools module).
fn setools_python() -> PathBuf {
    let sesearch = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("sesearch"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("sesearch not found; install {PACKAGES}"));
    read(&sesearch)
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .map(|l| PathBuf::from(l.split_whitespace().next().unwrap_or("python3")))
        .unwrap_or_else(|| PathBuf::from("python3"))
}

#[test]
fn policy_keeps_each_domain_in_its_lane() {
    let linked = Linked::build(&read(&selinux_dir().join("akamu.te")));
    let (code, findings) = linked.check();
    assert_eq!(
        (code, findings.as_str()),
        (0, ""),
        "violations:\n{findings}"
    );

    // The paths the systemd units and the example configs use.
    for (path, label) in [
        ("/usr/bin/acme-frontend", "akamu_frontend_exec_t"),
        ("/usr/bin/ca-signer", "akamu_signer_exec_t"),
        ("/usr/bin/validator-worker", "akamu_validator_exec_t"),
        ("/etc/akamu/signer.toml", "akamu_conf_t"),
        ("/etc/akamu/keys/ca.key.pem", "akamu_key_t"),
        ("/etc/akamu/keys/pin", "akamu_key_t"),
        ("/etc/akamu/tls/server.key", "akamu_frontend_tls_t"),
        ("/var/lib/akamu/frontend/akamu.db", "akamu_db_t"),
        ("/var/lib/akamu/signer/crl_number", "akamu_signer_var_lib_t"),
        ("/var/lib/akamu/signer/audit.log", "akamu_audit_t"),
        (
            "/var/lib/akamu/validator/statement.key",
            "akamu_validator_var_lib_t",
        ),
        ("/run/akamu", "akamu_var_run_t"),
        ("/run/akamu/signer/signer.sock", "akamu_signer_var_run_t"),
        (
            "/run/akamu/validator/validator.sock",
            "akamu_validator_var_run_t",
        ),
    ] {
        assert_eq!(linked.label_of(path), label, "label of {path}");
    }
}

/// One planted mistake per check; each must be reported.
#[test]
fn planted_violations_are_caught() {
    let te = read(&selinux_dir().join("akamu.te"));
    let declared = "files_auth_file(akamu_audit_t)";
    assert!(te.contains(declared), "akamu.te no longer has {declared}");
    // The classic mistake: a plain file type is writable by every domain that
    // may write non-auth files (sysadm_t, and ftpd, smbd, nfsd behind booleans).
    let mut te = te.replace(declared, "files_type(akamu_audit_t)");
    let plants = [
        (
            "frontend-reads-key",
            "allow akamu_frontend_t akamu_key_t:file read;",
        ),
        (
            "validator-reads-key",
            "allow akamu_validator_t akamu_key_t:lnk_file read;",
        ),
        (
            "validator-reads-db",
            "allow akamu_validator_t akamu_db_t:file { open read };",
        ),
        (
            "signer-reads-db",
            "allow akamu_signer_t akamu_db_t:file map;",
        ),
        (
            "other-reads-statement-key",
            "allow akamu_frontend_t akamu_validator_var_lib_t:file read;",
        ),
        (
            "other-reads-tls-key",
            "allow akamu_validator_t akamu_frontend_tls_t:file read;",
        ),
        (
            "other-enters-signer",
            "allow akamu_frontend_t akamu_signer_t:process transition;",
        ),
        (
            "other-replaces-signer-socket",
            "allow akamu_validator_t akamu_signer_var_run_t:dir remove_name;",
        ),
        (
            "signer-network",
            "allow akamu_signer_t self:udp_socket create;",
        ),
        (
            "signer-connects",
            "allow akamu_signer_t akamu_signer_port_t:tcp_socket name_connect;",
        ),
        (
            "validator-binds",
            "allow akamu_validator_t akamu_signer_port_t:tcp_socket name_bind;",
        ),
        ("other-writes-audit", "# (files_type above)"),
    ];
    te.push_str("\n# Planted by deploy-tests: every line below breaks a rule.\n");
    for (_, rule) in plants {
        te.push_str(rule);
        te.push('\n');
    }
    let linked = Linked::build(&te);
    let (code, findings) = linked.check();
    assert_eq!(code, 1, "the checker must fail:\n{findings}");
    for (check, rule) in plants {
        assert!(
            findings
                .lines()
                .any(|l| l.starts_with(&format!("{check}: "))),
            "{check} did not catch `{rule}`:\n{findings}"
        );
    }
}
