//! The example production configs in `systemd/examples/` parse with the
//! real config types and agree with the units: the launcher is off, both
//! ends of each socket name the same path inside the directory tmpfiles.d
//! makes for it, and each daemon's files sit where its unit lets it write
//! (or, for keys, where only the signer can read). Each fact has one owner:
//! the frontend's file carries none of the signer's, and every URL the
//! signer puts in a leaf is one the frontend serves. The signer chapter's
//! TCP set-up parses too and opens the port the systemd drop-in allows.

use std::path::{Path, PathBuf};

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../systemd/examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn examples_parse_and_match_the_units() {
    let frontend = acme_frontend::config::Config::parse(&example("frontend.toml"), "frontend.toml")
        .expect("frontend.toml parses");
    let signer =
        ca_signer::config::Config::from_toml(&example("signer.toml")).expect("signer.toml parses");
    let validator = validator_worker::config::Config::parse(&example("validator.toml"))
        .expect("validator.toml parses");

    assert!(
        !frontend.launcher.enabled,
        "production runs without the launcher"
    );
    assert_eq!(
        frontend.run_as(),
        Some(("akamu-frontend".to_owned(), "akamu-frontend".to_owned()))
    );
    assert_eq!(frontend.signer_socket(), signer.socket_path);
    assert_eq!(Some(frontend.validator_socket()), validator.socket_path);
    assert_eq!(
        signer.socket_path,
        PathBuf::from("/run/akamu/signer/signer.sock")
    );
    assert_eq!(
        validator.socket_path,
        Some(PathBuf::from("/run/akamu/validator/validator.sock"))
    );
    // The socket directories are setgid akamu-frontend: group access is the
    // frontend's, nobody else gets any.
    assert_eq!(signer.socket_mode, 0o660);
    assert_eq!(validator.socket_mode, 0o660);

    // StateDirectory=akamu/frontend is the frontend's only writable place.
    assert_eq!(frontend.state_dir, PathBuf::from("/var/lib/akamu/frontend"));
    assert!(
        frontend
            .database_path()
            .starts_with("/var/lib/akamu/frontend")
    );
    // /etc/akamu/keys is the signer's alone (0700, InaccessiblePaths for the others).
    let key_file = signer.ca.key_file.clone().expect("key_file is set");
    assert!(key_file.starts_with("/etc/akamu/keys"));
    assert!(signer.ca.cert_file.starts_with("/etc/akamu/keys"));
    // …which the unit mounts read-only: the audit log must be in the
    // signer's StateDirectory=akamu/signer, where SELinux labels it
    // akamu_audit_t.
    assert_eq!(
        signer.audit_path(),
        PathBuf::from("/var/lib/akamu/signer/audit.log")
    );
    // The statement key outlives a reboot: not next to the socket in /run.
    assert_eq!(
        validator.statement_key_path(),
        PathBuf::from("/var/lib/akamu/validator/statement.key")
    );
    assert_eq!(validator.user.as_deref(), Some("akamu-validator"));
    assert!(!validator.allow_private_targets);
    assert_eq!(
        (
            validator.http_validation_port,
            validator.tls_alpn_validation_port
        ),
        (80, 443)
    );
}

/// The URLs the signer writes into every leaf (CRL distribution point, and
/// OCSP/caIssuers when set) are under the frontend's `base_url`, where the
/// frontend serves them: the CRL at the path of `crl_url`, learned from the
/// signer over the RPC. A CRL URL nobody serves would make every leaf fail
/// revocation checking.
#[test]
fn the_urls_in_every_leaf_are_served_by_the_frontend() {
    let frontend = acme_frontend::config::Config::parse(&example("frontend.toml"), "frontend.toml")
        .expect("frontend.toml parses (and carries none of the signer's sections)");
    let signer =
        ca_signer::config::Config::from_toml(&example("signer.toml")).expect("signer.toml parses");
    let crl = signer
        .ca
        .crl_url
        .as_deref()
        .expect("the example signer publishes a CRL");
    let under_base = |url: &str| {
        url.strip_prefix(&frontend.base_url)
            .is_some_and(|rest| rest.starts_with('/'))
    };
    assert!(
        under_base(crl),
        "signer.toml's crl_url {crl} is not under frontend.toml's base_url {}: no one would serve it",
        frontend.base_url
    );
    assert!(
        acme_frontend::crl::serving_path(crl).is_some(),
        "the frontend cannot derive a path from {crl}"
    );
    for (key, url) in [
        ("ocsp_url", &signer.ca.ocsp_url),
        ("ca_issuers_url", &signer.ca.ca_issuers_url),
    ] {
        if let Some(url) = url {
            panic!("signer.toml sets {key} = {url}, which the frontend does not serve");
        }
    }
}

/// The TOML blocks of the signer chapter's "on its own host" section, in
/// order: the signer's `[tcp]`, then the frontend's `[signer]`.
fn own_host_blocks() -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/src/signer.md");
    let text = std::fs::read_to_string(&path).expect("signer.md");
    let section = text
        .split("\n## ")
        .find(|s| s.starts_with("The signer on its own host"))
        .expect("the section on a signer on its own host");
    section
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .map(str::to_owned)
        .collect()
}

/// The documented TCP set-up parses with the real config types, the
/// front end's side points at the signer's port, and the systemd drop-in
/// opens that same port.
#[test]
fn the_documented_tcp_setup_parses_and_matches_the_drop_in() {
    let blocks = own_host_blocks();
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    let signer =
        ca_signer::config::Config::from_toml(&format!("{}\n{}", example("signer.toml"), blocks[0]))
            .expect("signer.toml with the documented [tcp]");
    let tcp = signer.tcp.clone().expect("[tcp]");
    assert!(
        signer.secret_files().contains(&tcp.key_file),
        "the TLS key is checked like the CA key"
    );
    let frontend = acme_frontend::config::Config::parse(&blocks[1], "signer.md")
        .expect("the documented frontend [signer]");
    let acme_frontend::config::SignerEndpoint::Tls { address, files } = frontend.signer_endpoint()
    else {
        panic!("the documented frontend does not reach the signer over TCP");
    };
    let port = tcp.listen_addr.port();
    assert!(
        address.ends_with(&format!(":{port}")),
        "{address} vs {port}"
    );
    assert_eq!(files.ca_file, tcp.client_ca_file, "one CA for the links");
    let drop_in = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../systemd/examples/signer-tcp.conf"),
    )
    .expect("signer-tcp.conf");
    assert!(
        drop_in
            .lines()
            .any(|l| l.trim() == format!("SocketBindAllow=tcp:{port}")),
        "signer-tcp.conf does not open port {port}"
    );
}

/// The remote-perspective example parses as a validator configuration with
/// `[remote_perspective]` and `[tcp]`, and listens on the port the SELinux
/// example labels (`akamu_perspective_port_t`, 4710).
#[test]
fn the_perspective_example_listens_with_mutual_tls() {
    let text = example("perspective.toml");
    let p = validator_worker::config::Config::parse(&text).expect("perspective.toml parses");
    let me = p.remote_perspective.expect("[remote_perspective]");
    let tcp = p.tcp.expect("[tcp]");
    assert_eq!(tcp.listen_addr.port(), 4710);
    assert!(
        text.contains("akamu_perspective_port_t -p tcp 4710"),
        "the SELinux step names the port"
    );
    assert!(
        text.contains(&format!("server_name = \"{}.ca.internal\"", me.name)),
        "the primary's entry is shown"
    );
    assert_eq!(tcp.client_names, ["primary.ca.internal"]);
    assert!(p.perspectives.is_empty(), "a perspective asks nobody");
}
