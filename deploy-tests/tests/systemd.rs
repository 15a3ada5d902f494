//! The systemd units in `systemd/`: every unit passes `systemd-analyze
//! verify` without a word on stderr (it exits 0 even for unknown keys and bad
//! values), every service stays within its `systemd-analyze security`
//! exposure budget, and sysusers.d/tmpfiles.d create the users and
//! directories the units rely on. The `*_rejects_*` tests plant a typo and a
//! weakened unit to show the checks fail when they should.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// Each service, its binary, and its exposure budget
/// (`systemd-analyze security` overall exposure, 0.0 best … 10.0 worst).
const SERVICES: [(&str, &str, f64); 3] = [
    ("signer", "ca-signer", 1.0),
    ("validator", "validator-worker", 2.0),
    ("frontend", "acme-frontend", 2.0),
];

const TARGET: &str = "akamu.target";

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd")
}

fn unit_name(component: &str) -> String {
    format!("akamu-{component}.service")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e} (is systemd installed?)"))
}

/// Writes `text` as `dir/name` with `ExecStart=` pointing at `/bin/true`:
/// `verify` refuses a unit whose binary does not exist, and the real
/// binaries are installed only on a real host.
fn runnable_copy(dir: &Path, name: &str, text: &str) -> PathBuf {
    let text: String = text
        .lines()
        .map(|line| match line.strip_prefix("ExecStart=") {
            Some(cmd) => {
                let args = cmd.split_once(' ').map_or("", |(_, args)| args);
                format!("ExecStart=/bin/true {args}").trim_end().to_owned() + "\n"
            }
            None => format!("{line}\n"),
        })
        .collect();
    let path = dir.join(name);
    fs::write(&path, text).expect("write unit copy");
    path
}

/// All units copied into one directory, so that `verify` finds the units
/// they reference.
fn copies() -> (TempDir, Vec<PathBuf>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut paths = Vec::new();
    for name in SERVICES
        .iter()
        .map(|(c, _, _)| unit_name(c))
        .chain([TARGET.to_owned()])
    {
        paths.push(runnable_copy(
            dir.path(),
            &name,
            &read(&systemd_dir().join(&name)),
        ));
    }
    (dir, paths)
}

/// `systemd-analyze verify`: anything on stderr is a finding.
fn verify(unit: &Path) -> Result<(), String> {
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg("--man=no")
        .arg(unit)
        .current_dir(unit.parent().expect("unit has a directory")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stderr.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("{} ({}):\n{stderr}", unit.display(), out.status))
    }
}

/// The overall exposure from the last line of `systemd-analyze security`,
/// "→ Overall exposure level for X: N.N …".
fn exposure(unit: &Path) -> Result<f64, String> {
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(unit)
        .current_dir(unit.parent().expect("unit has a directory")));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let score = last
        .split_once("Overall exposure level for ")
        .and_then(|(_, rest)| rest.split_once(": "))
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse::<f64>().ok());
    match score {
        Some(score) if out.status.success() => Ok(score),
        _ => Err(format!(
            "{}: no exposure level in the output ({}):\n{stdout}\n{}",
            unit.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

fn within_budget(unit: &Path, budget: f64) -> Result<f64, String> {
    let score = exposure(unit)?;
    if score <= budget {
        Ok(score)
    } else {
        Err(format!(
            "{}: exposure {score} is above the budget {budget}",
            unit.display()
        ))
    }
}

#[test]
fn every_unit_verifies_without_a_warning() {
    let (_dir, units) = copies();
    let failures: Vec<String> = units.iter().filter_map(|u| verify(u).err()).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_service_is_within_its_exposure_budget() {
    let (dir, _units) = copies();
    let mut failures = Vec::new();
    for (component, _, budget) in SERVICES {
        let unit = dir.path().join(unit_name(component));
        match within_budget(&unit, budget) {
            Ok(score) => eprintln!(
                "{}: exposure {score} (budget {budget})",
                unit_name(component)
            ),
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The documented HSM drop-in (`examples/signer-hsm.conf`) is valid and keeps
/// the signer within its budget.
#[test]
fn signer_with_the_hsm_drop_in_stays_within_budget() {
    let (dir, _units) = copies();
    let drop_ins = dir.path().join("akamu-signer.service.d");
    fs::create_dir(&drop_ins).expect("mkdir drop-in dir");
    fs::copy(
        systemd_dir().join("examples/signer-hsm.conf"),
        drop_ins.join("hsm.conf"),
    )
    .expect("copy drop-in");
    let unit = dir.path().join(unit_name("signer"));
    verify(&unit).expect("verify with the drop-in");
    let score = within_budget(&unit, 1.0).expect("within budget");
    eprintln!("akamu-signer.service with signer-hsm.conf: exposure {score}");
    // The drop-in is really read: it costs something.
    let (plain_dir, _) = copies();
    let plain = exposure(&plain_dir.path().join(unit_name("signer"))).expect("score");
    assert!(
        score > plain,
        "the drop-in was ignored ({score} vs {plain})"
    );
}

/// The documented TCP drop-in (`examples/signer-tcp.conf`) is valid, is
/// read, opens only the one port (SocketBindAllow=/SocketBindDeny=, the
/// unit's IPAddressDeny=any kept) and keeps the signer within the budget of
/// a daemon with a network, the validator's 2.0.
#[test]
fn signer_with_the_tcp_drop_in_opens_one_port() {
    let text = read(&systemd_dir().join("examples/signer-tcp.conf"));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    for expected in ["SocketBindAllow=tcp:4701", "SocketBindDeny=any"] {
        assert!(
            lines.contains(&expected),
            "signer-tcp.conf lacks {expected}"
        );
    }
    assert!(
        !lines.iter().any(|l| l.starts_with("IPAddressDeny=")),
        "the drop-in must not reset the unit's IPAddressDeny=any"
    );
    let (dir, _units) = copies();
    let drop_ins = dir.path().join("akamu-signer.service.d");
    fs::create_dir(&drop_ins).expect("mkdir drop-in dir");
    fs::copy(
        systemd_dir().join("examples/signer-tcp.conf"),
        drop_ins.join("tcp.conf"),
    )
    .expect("copy drop-in");
    let unit = dir.path().join(unit_name("signer"));
    verify(&unit).expect("verify with the drop-in");
    let score = within_budget(&unit, 2.0).expect("within budget");
    eprintln!("akamu-signer.service with signer-tcp.conf: exposure {score}");
    let (plain_dir, _) = copies();
    let plain = exposure(&plain_dir.path().join(unit_name("signer"))).expect("score");
    assert!(
        score > plain,
        "the drop-in was ignored ({score} vs {plain})"
    );
}

/// The units start the right binary with the right config as the right user.
#[test]
fn each_service_runs_its_binary_as_its_user() {
    for (component, binary, _) in SERVICES {
        let text = read(&systemd_dir().join(unit_name(component)));
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let exec = format!("ExecStart=/usr/bin/{binary} --config /etc/akamu/{component}.toml");
        for expected in [
            exec.as_str(),
            &format!("User=akamu-{component}"),
            &format!("Group=akamu-{component}"),
            &format!("StateDirectory=akamu/{component}"),
            "WantedBy=akamu.target",
        ] {
            assert!(
                lines.contains(&expected),
                "{} lacks the line {expected:?}",
                unit_name(component)
            );
        }
    }
}

#[test]
fn verify_rejects_a_typo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = read(&systemd_dir().join(unit_name("signer")))
        .replace("NoNewPrivileges=yes", "NoNewPrivilegs=yes");
    let unit = runnable_copy(dir.path(), &unit_name("signer"), &text);
    let err = verify(&unit).expect_err("a misspelt key must be reported");
    assert!(err.contains("NoNewPrivilegs"), "{err}");

    let text = read(&systemd_dir().join(unit_name("signer")))
        .replace("ProtectSystem=strict", "ProtectSystem=strickt");
    let unit = runnable_copy(dir.path(), &unit_name("signer"), &text);
    let err = verify(&unit).expect_err("a bad value must be reported");
    assert!(err.contains("strickt"), "{err}");
}

#[test]
fn budget_rejects_a_weakened_signer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let weakened: String = read(&systemd_dir().join(unit_name("signer")))
        .lines()
        .filter(|l| {
            ![
                "PrivateNetwork=",
                "RestrictAddressFamilies=",
                "IPAddressDeny=",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let unit = runnable_copy(dir.path(), &unit_name("signer"), &weakened);
    verify(&unit).expect("the weakened unit is still valid");
    let err = within_budget(&unit, 1.0).expect_err("a signer with network must exceed 1.0");
    assert!(err.contains("above the budget"), "{err}");

    // The baseline: a unit with no hardening at all.
    let bare = runnable_copy(
        dir.path(),
        "bare.service",
        "[Service]\nExecStart=/usr/bin/ca-signer\n",
    );
    let score = exposure(&bare).expect("score");
    assert!(score > 9.0, "an unhardened unit scored {score}");
}

/// sysusers.d creates the three users; tmpfiles.d creates the socket and key
/// directories with the owners and modes the units and the daemons expect.
#[test]
fn sysusers_and_tmpfiles_create_the_layout() {
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    for (sub, file) in [
        ("usr/lib/sysusers.d", "sysusers.d/akamu.conf"),
        ("usr/lib/tmpfiles.d", "tmpfiles.d/akamu.conf"),
    ] {
        fs::create_dir_all(r.join(sub)).expect("mkdir");
        fs::copy(systemd_dir().join(file), r.join(sub).join("akamu.conf")).expect("copy");
    }
    fs::create_dir_all(r.join("etc")).expect("mkdir etc");

    let out = run(Command::new("systemd-sysusers").arg(format!("--root={}", r.display())));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("Creating "))
        .collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-sysusers: {stderr}"
    );
    let passwd = read(&r.join("etc/passwd"));
    let id_of = |file: &str, name: &str| -> u32 {
        read(&r.join(file))
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&name)).then(|| f[2].parse().expect("numeric id"))
            })
            .unwrap_or_else(|| panic!("{name} missing from {file}"))
    };
    for component in ["frontend", "signer", "validator"] {
        assert!(passwd.contains(&format!("akamu-{component}:")), "{passwd}");
    }

    let is_root = run(Command::new("id").arg("-u")).stdout.starts_with(b"0\n");
    if !is_root {
        eprintln!("skipping the tmpfiles.d part: it chowns, which needs root");
        return;
    }
    let out = run(Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", r.display()))
        .arg("--create"));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-tmpfiles: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::MetadataExt;
    for (path, mode, user, group) in [
        ("run/akamu", 0o755, "root", "root"),
        ("run/akamu/signer", 0o2750, "akamu-signer", "akamu-frontend"),
        (
            "run/akamu/validator",
            0o2750,
            "akamu-validator",
            "akamu-frontend",
        ),
        ("etc/akamu/keys", 0o700, "akamu-signer", "akamu-signer"),
        ("etc/akamu/tls", 0o750, "root", "akamu-frontend"),
    ] {
        let meta = fs::metadata(r.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
        let uid = if user == "root" {
            0
        } else {
            id_of("etc/passwd", user)
        };
        let gid = if group == "root" {
            0
        } else {
            id_of("etc/group", group)
        };
        assert_eq!(meta.mode() & 0o7777, mode, "{path} mode");
        assert_eq!((meta.uid(), meta.gid()), (uid, gid), "{path} owner");
    }
}

/// A remote perspective listens on its `[tcp]` port with the unit as it
/// is: the validator's unit keeps IPv4/IPv6, restricts no `bind()` and
/// denies no address but link-local and multicast, so it needs no drop-in
/// (unlike the signer's, `examples/signer-tcp.conf`). Its resolver binds
/// random UDP ports, so a SocketBindDeny=any drop-in would break DNS.
#[test]
fn a_perspective_needs_no_drop_in_to_listen() {
    let text = read(&systemd_dir().join(unit_name("validator")));
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    assert!(
        lines.contains(&"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6"),
        "the validator unit lost IPv4/IPv6"
    );
    for forbidden in [
        "SocketBindDeny=",
        "SocketBindAllow=",
        "PrivateNetwork=yes",
        "IPAddressDeny=any",
    ] {
        assert!(
            !lines.iter().any(|l| l.starts_with(forbidden)),
            "akamu-validator.service has {forbidden}: a perspective's [tcp] port needs a drop-in now"
        );
    }
}
