//! Tidy tests: the **Invariant:** lines of ARCHITECTURE.md, executed.
//!
//! Each `#[test]` checks one invariant over the files as they are on disk,
//! scanning directories (not lists of files) so that moved and new files are
//! covered. A failure names the offending `file:line` and the invariant.
//! Rust sources are searched as tokens after comments, doc comments and
//! string literals are blanked, so prose that mentions `tokio` is not a use.
//!
//! Run alone with `cargo test -p tidy --test tidy`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use tidy::files::{member_dirs, module_file_candidates, relative, walk, workspace_root};
use tidy::rust_source::{
    Token, blank_comments_and_literals, blank_test_items, find, find_identifiers, tokens,
};
use tidy::wire::{FingerprintFile, WireTrace, first_difference};
use tidy::{Violation, assert_none, cargo, markdown};

/// A Rust file's tokens, optionally without its `#[cfg(test)]` items, and the
/// out-of-line test modules it declares.
fn read_tokens(path: &Path, without_tests: bool) -> (Vec<Token>, Vec<PathBuf>) {
    let src = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let code = blank_comments_and_literals(&src);
    if !without_tests {
        return (tokens(&code), Vec::new());
    }
    let stripped = blank_test_items(&code);
    let test_files = stripped
        .test_modules
        .iter()
        .flat_map(|m| module_file_candidates(path, m))
        .collect();
    (tokens(&stripped.code), test_files)
}

/// The `.rs` files under `dir` (relative to the workspace root), which must
/// exist: a moved directory must be renamed here, not silently unchecked.
fn rust_files_under(root: &Path, dir: &str) -> Vec<PathBuf> {
    let path = root.join(dir);
    assert!(
        path.is_dir(),
        "{dir} does not exist any more: update the tidy test to the new location"
    );
    walk(&path, "rs", &[]).unwrap_or_else(|e| panic!("cannot walk {dir}: {e}"))
}

/// Identifier and path bans for one file.
fn banned_uses(
    root: &Path,
    path: &Path,
    tokens: &[Token],
    identifiers: &dyn Fn(&str) -> bool,
    sequences: &[&[&str]],
) -> Vec<Violation> {
    let rel = relative(root, path);
    let mut out: Vec<Violation> = find_identifiers(tokens, identifiers)
        .into_iter()
        .map(|(line, ident)| Violation {
            path: rel.clone(),
            line,
            found: format!("`{ident}`"),
        })
        .collect();
    for sequence in sequences {
        out.extend(find(tokens, sequence).into_iter().map(|line| Violation {
            path: rel.clone(),
            line,
            found: format!("`{}`", sequence.join("")),
        }));
    }
    out.sort();
    out.dedup();
    out
}

// ---------------------------------------------------------------------------
// 1. protocol/ is pure.

/// The frontend's protocol core.
const PROTOCOL_DIR: &str = "acme-frontend/src/protocol";

/// Crates the protocol core must not name.
const PROTOCOL_BANNED_CRATES: &[&str] = &["tokio", "hyper", "hyper_util", "diesel"];

/// Ways to read the clock (time comes in as an argument; the frontend reads
/// it through `acme_frontend::now`).
const CLOCK_READS: &[&[&str]] = &[
    &["SystemTime"],
    &["Instant", "::", "now"],
    &["OffsetDateTime", "::", "now_utc"],
    &["Utc", "::", "now"],
    &["Local", "::", "now"],
    &["crate", "::", "now"],
    &["acme_frontend", "::", "now"],
];

#[test]
fn protocol_core_imports_no_io_and_reads_no_clock() {
    let root = workspace_root();
    let mut violations = Vec::new();
    for path in rust_files_under(&root, PROTOCOL_DIR) {
        // Test modules too: the core's tables need neither a runtime nor a clock.
        let (toks, _) = read_tokens(&path, false);
        violations.extend(banned_uses(
            &root,
            &path,
            &toks,
            &|id| PROTOCOL_BANNED_CRATES.contains(&id),
            CLOCK_READS,
        ));
    }
    assert_none(
        "acme-frontend/src/protocol/ imports no tokio, hyper or diesel and never reads the clock \
         (plain functions over plain data; `now` is a parameter)",
        &violations,
    );
}

// ---------------------------------------------------------------------------
// 1b. Layering inside the frontend, and problems built in one place.

/// Frontend modules below the HTTP layer: background jobs, the operator
/// module, the CA's facts, the CRL cache, the store and the protocol core
/// never reach up into handlers or the HTTP layer.
const BELOW_HTTP: &[&str] = &[
    "acme-frontend/src/jobs.rs",
    "acme-frontend/src/jobs",
    "acme-frontend/src/admin.rs",
    "acme-frontend/src/ca.rs",
    "acme-frontend/src/crl.rs",
    "acme-frontend/src/store",
    "acme-frontend/src/protocol",
];

#[test]
fn jobs_operator_store_and_protocol_do_not_import_handlers() {
    let root = workspace_root();
    let mut violations = Vec::new();
    for below in BELOW_HTTP {
        let files = if below.ends_with(".rs") {
            let path = root.join(below);
            assert!(
                path.is_file(),
                "{below} does not exist any more: update the tidy test"
            );
            vec![path]
        } else {
            rust_files_under(&root, below)
        };
        for path in files {
            let (toks, _) = read_tokens(&path, true);
            violations.extend(banned_uses(
                &root,
                &path,
                &toks,
                &|_| false,
                &[&["crate", "::", "handlers"], &["crate", "::", "http"]],
            ));
        }
    }
    assert_none(
        "background jobs, the operator module, the CA facts, the CRL cache, the store and the \
         protocol core import no HTTP handler and nothing of the HTTP layer (shared RFC rules live \
         in protocol/)",
        &violations,
    );
}

#[test]
fn only_error_rs_builds_problem_documents() {
    let root = workspace_root();
    let mut violations = Vec::new();
    for path in rust_files_under(&root, "acme-frontend/src") {
        let rel = relative(&root, &path);
        if rel == "acme-frontend/src/error.rs" {
            continue;
        }
        let src = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        // The namespace of ACME error types, spelled out, means a problem
        // document written by hand.
        for (n, line) in src.lines().enumerate() {
            if line.contains("urn:ietf:params:acme:error") && !line.trim_start().starts_with("//") {
                violations.push(Violation {
                    path: rel.clone(),
                    line: n + 1,
                    found: "an ACME error type written out".to_owned(),
                });
            }
        }
        let (toks, _) = read_tokens(&path, true);
        violations.extend(banned_uses(
            &root,
            &path,
            &toks,
            &|_| false,
            &[&["Problem", "{"], &["Problem", "::", "acme"]],
        ));
    }
    assert_none(
        "acme-frontend's problem documents are built only in error.rs (From<&Error> for Problem)",
        &violations,
    );
}

// ---------------------------------------------------------------------------
// 2. Only store/ has SQL.

/// Where SQL may live. When the store becomes its own crate, this is the
/// one line to change.
const SQL_HOMES: &[&str] = &["acme-frontend/src/store/"];

/// Identifiers that mean SQL: the diesel crate (paths, `use`, derive
/// attributes), raw queries, and other SQL crates.
const SQL_IDENTIFIERS: &[&str] = &[
    "diesel",
    "diesel_migrations",
    "sql_query",
    "rusqlite",
    "sqlx",
    "libsqlite3_sys",
    "tokio_postgres",
];

/// Production files allowed SQL outside the store: none since issue 11 moved
/// the CLI's and the frontend's last queries into `store/`. The test fails
/// for an entry that no longer needs its exception, so this list only
/// shrinks.
const KNOWN_EXCEPTIONS: &[&str] = &[];

/// Directories of test code, exempt from the SQL ban: a package's
/// integration tests and benches, and the e2e package (`tests/`), which
/// tampers with a snapshot of the CA's database on purpose. `#[cfg(test)]`
/// items in production files are exempt too (unit tests may set up rows);
/// test-support crates (`test-kit`, `acme-bench`) are production code here.
const TEST_DIRS: &[&str] = &["tests", "benches"];

#[test]
fn only_the_store_has_sql() {
    let root = workspace_root();
    let files = walk(&root, "rs", TEST_DIRS).expect("walk the workspace");
    let mut test_files = BTreeSet::new();
    let mut by_file: BTreeMap<String, Vec<Violation>> = BTreeMap::new();
    for path in &files {
        let rel = relative(&root, path);
        if SQL_HOMES.iter().any(|home| rel.starts_with(home)) {
            continue;
        }
        let (toks, tests) = read_tokens(path, true);
        test_files.extend(tests);
        let found = banned_uses(&root, path, &toks, &|id| SQL_IDENTIFIERS.contains(&id), &[]);
        if !found.is_empty() {
            by_file.insert(rel, found);
        }
    }
    // Out-of-line `#[cfg(test)] mod x;` files are test code.
    by_file.retain(|rel, _| !test_files.contains(&root.join(rel)));

    let mut violations = Vec::new();
    for (rel, found) in &by_file {
        if !KNOWN_EXCEPTIONS.contains(&rel.as_str()) {
            violations.extend(found.iter().cloned());
        }
    }
    for exception in KNOWN_EXCEPTIONS {
        if !by_file.contains_key(*exception) {
            violations.push(Violation {
                path: (*exception).to_owned(),
                line: 0,
                found: "has no SQL any more: remove it from KNOWN_EXCEPTIONS in tidy/tests/tidy.rs"
                    .to_owned(),
            });
        }
    }
    assert_none(
        &format!(
            "only {} has SQL (diesel, sql_query, other SQL crates) outside test code",
            SQL_HOMES.join(", ")
        ),
        &violations,
    );
}

// ---------------------------------------------------------------------------
// 3. The signer listens but never connects.

/// The signer's sources and its package.
const SIGNER_SRC: &str = "ca-signer/src";
/// The accept loop and the mutual-TLS server the signer links
/// (`daemon_kit::accept`, `daemon_kit::tls`).
const SIGNER_SERVER_SRC: &str = "daemon-kit/src";
/// The signer's package name.
const SIGNER_PACKAGE: &str = "ca-signer";

/// Ways to open a connection or resolve a name, and network clients: what
/// neither the signer nor the server code it links may name. Listening is
/// allowed (`[tcp]`: `TcpListener` in `daemon_kit::tls`, the accepted
/// `TcpStream`s), dialling is not: no `connect` of any kind (`TcpStream`,
/// `UnixStream`, `TcpSocket`, `transport::connect`, `connect_tls`; the
/// listener's `TcpSocket` only binds and listens), no outbound TLS
/// (`TlsConnector`, `ClientConfig`, `ClientTls`), no UDP, no resolver.
fn is_outbound_identifier(id: &str) -> bool {
    const EXACT: &[&str] = &[
        "connect",
        "connect_tls",
        "TlsConnector",
        "ClientConfig",
        "ClientTls",
        "ToSocketAddrs",
        "lookup_host",
        "socket2",
        "reqwest",
        "hyper",
        "hyper_util",
        "ureq",
        "isahc",
        "surf",
        "curl",
        "attohttpc",
        "instant_acme",
        "quinn",
        "tonic",
    ];
    id.starts_with("Udp")
        || id.starts_with("hickory")
        || id.starts_with("trust_dns")
        || EXACT.contains(&id)
}

/// In the signer's own sources, no TCP socket type at all: the listener and
/// its streams live in `daemon_kit::tls` (the signer's `[tcp]` section is
/// the struct `config::Tcp`, which is no socket).
fn is_signer_network_identifier(id: &str) -> bool {
    is_outbound_identifier(id) || ["TcpListener", "TcpStream", "TcpSocket"].contains(&id)
}

/// Crates that talk to the network as clients or servers of their own
/// (HTTP, DNS, QUIC, gRPC, WebSocket), and the public trust stores only a
/// client that dials the internet needs. `socket2` is banned only as a
/// direct dependency: tokio pulls it in for every user. rustls and
/// tokio-rustls are not here: the `[tcp]` listener is TLS over tokio's own
/// `TcpListener`.
fn is_network_crate(name: &str, direct: bool) -> bool {
    const NETWORK: &[&str] = &[
        "hyper",
        "hyper-util",
        "hyper-rustls",
        "reqwest",
        "ureq",
        "isahc",
        "surf",
        "curl",
        "attohttpc",
        "h2",
        "h3",
        "quinn",
        "tungstenite",
        "tokio-tungstenite",
        "tonic",
        "axum",
        "warp",
        "actix-web",
        "instant-acme",
        "webpki-roots",
        "rustls-native-certs",
        "rustls-platform-verifier",
    ];
    NETWORK.contains(&name)
        || name.starts_with("hickory-")
        || name.starts_with("trust-dns-")
        || (direct && name == "socket2")
}

#[test]
fn signer_listens_but_never_connects() {
    let root = workspace_root();
    let mut violations = Vec::new();
    // The signer's test modules too: nothing in the signer dials anything.
    // daemon-kit's unit tests are clients of its listener, so only its
    // production code is checked there.
    for (dir, banned, without_tests) in [
        (
            SIGNER_SRC,
            &is_signer_network_identifier as &dyn Fn(&str) -> bool,
            false,
        ),
        (SIGNER_SERVER_SRC, &is_outbound_identifier, true),
    ] {
        let files = rust_files_under(&root, dir);
        let mut test_files = BTreeSet::new();
        let mut found = Vec::new();
        for path in &files {
            let (toks, tests) = read_tokens(path, without_tests);
            test_files.extend(tests);
            found.push((path.clone(), toks));
        }
        for (path, toks) in found {
            if !test_files.contains(&path) {
                violations.extend(banned_uses(&root, &path, &toks, banned, &[]));
            }
        }
    }
    assert_none(
        "the signer listens (its Unix socket, and with [tcp] one TCP port through daemon_kit::tls) \
         but never connects: no connect, no outbound TLS, no UDP, no resolver, no network client \
         in ca-signer/src or daemon-kit/src; ca-signer/src names no TCP type itself",
        &violations,
    );
}

#[test]
fn the_outbound_ban_catches_what_it_should() {
    for id in [
        "connect",
        "connect_tls",
        "TlsConnector",
        "ClientTls",
        "UdpSocket",
        "lookup_host",
        "hickory_resolver",
        "reqwest",
    ] {
        assert!(is_outbound_identifier(id), "{id}");
    }
    for id in ["TcpListener", "TcpStream", "TlsAcceptor", "accept", "bind"] {
        assert!(!is_outbound_identifier(id), "{id}");
    }
    assert!(is_signer_network_identifier("TcpStream"));
    assert!(is_network_crate("webpki-roots", false));
    assert!(!is_network_crate("tokio-rustls", false));
    assert!(!is_network_crate("socket2", false) && is_network_crate("socket2", true));
}

#[test]
fn signer_has_no_network_client_dependency() {
    let root = workspace_root();
    let mut members = BTreeMap::new();
    let mut signer_manifest = None;
    for dir in member_dirs(&root).expect("workspace members") {
        let path = dir.join("Cargo.toml");
        let manifest = cargo::read_toml(&path).expect("member manifest");
        let name = cargo::package_name(&manifest).expect("package name");
        if name == SIGNER_PACKAGE {
            signer_manifest = Some((relative(&root, &path), manifest.clone()));
        }
        members.insert(name, manifest);
    }
    let (manifest_path, manifest) =
        signer_manifest.unwrap_or_else(|| panic!("no workspace member is named {SIGNER_PACKAGE}"));
    let mut violations: Vec<Violation> = cargo::runtime_dependencies(&manifest)
        .into_iter()
        .filter(|d| is_network_crate(d, true))
        .map(|d| Violation {
            path: manifest_path.clone(),
            line: 0,
            found: format!("depends on `{d}`"),
        })
        .collect();
    let lock = cargo::read_toml(&root.join("Cargo.lock")).expect("Cargo.lock");
    violations.extend(
        cargo::transitive_runtime_dependencies(&lock, &members, SIGNER_PACKAGE)
            .into_iter()
            .filter(|d| is_network_crate(d, false))
            .map(|d| Violation {
                path: "Cargo.lock".to_owned(),
                line: 0,
                found: format!(
                    "{SIGNER_PACKAGE} pulls in `{d}` (see `cargo tree -p {SIGNER_PACKAGE} -i {d} -e normal,build`)"
                ),
            }),
    );
    assert_none(
        "ca-signer has no network client or server framework (HTTP, DNS, QUIC, gRPC, WebSocket, \
         public trust stores) among its dependencies, direct or transitive (dev-dependencies \
         excepted); its TCP listener is tokio's, with rustls",
        &violations,
    );
}

// ---------------------------------------------------------------------------
// 4. Documentation links resolve.

/// Directories skipped when looking for Markdown (besides `target*` and
/// hidden ones).
const NOT_DOCS: &[&str] = &["node_modules", "book"];

/// rustls constructors that take the process-default crypto provider. The
/// workspace compiles two providers (ring, and aws-lc-rs for the frontend's
/// listener), and with no default installed these panic.
const IMPLICIT_PROVIDER: &[&[&str]] = &[
    &["ClientConfig", "::", "builder", "("],
    &["ServerConfig", "::", "builder", "("],
    &["WebPkiServerVerifier", "::", "builder", "("],
    &["WebPkiClientVerifier", "::", "builder", "("],
    &["CryptoProvider", "::", "get_default"],
];

#[test]
fn every_rustls_config_names_its_provider() {
    let root = workspace_root();
    let mut violations = Vec::new();
    // Every member, tests and benches included: a test that panics on a
    // missing default provider is as broken as a daemon.
    for dir in member_dirs(&root).expect("workspace members") {
        for path in walk(&dir, "rs", &["target"]).expect("walk member") {
            let (toks, _) = read_tokens(&path, false);
            violations.extend(banned_uses(
                &root,
                &path,
                &toks,
                &|_| false,
                IMPLICIT_PROVIDER,
            ));
        }
    }
    assert_none(
        "every rustls configuration names its crypto provider (`builder_with_provider`): \
         two providers are compiled in and there is no process default",
        &violations,
    );
}

#[test]
fn relative_doc_links_resolve() {
    let root = workspace_root();
    // Every Markdown file of the repository: ARCHITECTURE.md, README.md,
    // docs/**, and whatever is added later.
    let files = walk(&root, "md", NOT_DOCS).expect("walk the workspace");
    assert!(
        files.iter().any(|f| f.ends_with("ARCHITECTURE.md")),
        "no ARCHITECTURE.md found under {}",
        root.display()
    );
    let mut anchor_cache: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    let mut anchors_of = |path: &Path| -> Vec<String> {
        anchor_cache
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                std::fs::read_to_string(path)
                    .map(|md| markdown::anchors(&md))
                    .unwrap_or_default()
            })
            .clone()
    };
    let mut violations = Vec::new();
    for file in &files {
        let md = std::fs::read_to_string(file).expect("read Markdown");
        let rel = relative(&root, file);
        for link in markdown::links(&md) {
            if markdown::is_external(&link.target) {
                continue;
            }
            let (path_part, fragment) = match link.target.split_once('#') {
                Some((p, f)) => (p, Some(f)),
                None => (link.target.as_str(), None),
            };
            let path_part = path_part.replace("%20", " ");
            let target = if path_part.is_empty() {
                file.clone()
            } else if let Some(from_root) = path_part.strip_prefix('/') {
                root.join(from_root)
            } else {
                file.parent().unwrap_or(&root).join(&path_part)
            };
            if !target.exists() {
                violations.push(Violation {
                    path: rel.clone(),
                    line: link.line,
                    found: format!("`{}`: no such file", link.target),
                });
                continue;
            }
            let Some(fragment) = fragment.filter(|f| !f.is_empty()) else {
                continue;
            };
            if target.extension().is_some_and(|e| e == "md")
                && !anchors_of(&target).iter().any(|a| a == fragment)
            {
                violations.push(Violation {
                    path: rel.clone(),
                    line: link.line,
                    found: format!(
                        "`{}`: no heading with anchor `#{fragment}` in {}",
                        link.target,
                        relative(&root, &target)
                    ),
                });
            }
        }
    }
    assert_none(
        "every relative link in the repository's Markdown resolves to a file, and every `#anchor` \
         into a Markdown file to one of its headings (GitHub slugs)",
        &violations,
    );
}

// ---------------------------------------------------------------------------
// 5. Every module says what it is.

#[test]
fn every_module_starts_with_a_doc_header() {
    let root = workspace_root();
    let mut violations = Vec::new();
    // The `src/` of every workspace member, so that crates split off later
    // are covered without editing this test.
    for dir in member_dirs(&root).expect("workspace members") {
        let src = dir.join("src");
        if !src.is_dir() {
            continue;
        }
        for path in walk(&src, "rs", &[]).expect("walk src") {
            let text = std::fs::read_to_string(&path).expect("read source");
            let first = text.lines().find(|l| !l.trim().is_empty());
            let header = first.is_some_and(|l| {
                let l = l.trim_start();
                l.starts_with("//!") || l.starts_with("/*!")
            });
            if !header {
                violations.push(Violation {
                    path: relative(&root, &path),
                    line: 1,
                    found: "the file does not start with a `//!` comment".to_owned(),
                });
            }
        }
    }
    assert_none(
        "every module file starts with a `//!` header saying what the module is for",
        &violations,
    );
}

// ---------------------------------------------------------------------------
// 6. Wire types change only with a protocol-version bump.

/// The checked-in fingerprint, relative to the workspace root.
const FINGERPRINT_FILE: &str = "shared-proto/wire-fingerprint.txt";
/// The environment variable that rewrites it.
const UPDATE_VAR: &str = "AKAMU_UPDATE_FINGERPRINT";
/// The command that rewrites it.
const UPDATE_COMMAND: &str = "AKAMU_UPDATE_FINGERPRINT=1 cargo test -p tidy --test tidy";

/// The protocol version both ends send in the preamble.
const PROTOCOL_VERSION: u16 = shared_proto::PROTOCOL_VERSION;

/// Traces every type that crosses a process boundary: the one place to edit
/// when a wire type is added, renamed or retired.
///
/// tarpc's request enums carry the method order and arguments. Its response
/// enums wrap each method's `Result<T, E>`, which serde-reflection cannot
/// trace twice in one registry, so `responses!` traces them per method and
/// fails to compile when a method is missing from its list. Every enum is
/// listed on its own (serde-reflection finds all variants only of the type
/// it traces); the test names one that is missing.
fn wire_types(t: &mut WireTrace) {
    use shared_proto::metrics::{HeapFigures, Histogram, ProcessFigures};
    use shared_proto::signer::{
        CaInfo, CrlRequest, IssueRequest, IssuedCertificate, LogRead, LogReadError, ProfileInfo,
        RevokedEntry, SignedCrl, SignerError, SignerMetrics, SignerRpcRequest, SignerRpcResponse,
        StarTerms,
    };
    use shared_proto::statement::{
        CaaCheck, Corroboration, Perspective, SignedStatement, Statement,
    };
    use shared_proto::validator::{
        ChallengeType, PersistAccount, PersistForm, PersistHash, ProbeCount, ProblemKind,
        ValidateRequest, ValidationProblem, ValidationRecord, ValidatorInfo, ValidatorMetrics,
        ValidatorRpcRequest, ValidatorRpcResponse,
    };
    use shared_proto::{Identifier, IdentifierKind};

    macro_rules! responses {
        ($enum:ident { $($variant:ident),+ $(,)? }) => {{
            // Exhaustive: a new RPC method does not compile until it is listed.
            let _listed = |r: &$enum| match r { $($enum::$variant(_))|+ => () };
            $( t.variant(concat!(stringify!($enum), "::", stringify!($variant)), $enum::$variant); )+
        }};
    }

    // SignerRpc.
    t.ty::<SignerRpcRequest>();
    responses!(SignerRpcResponse {
        IssueCertificate,
        CaInfo,
        GenerateCrl,
        Metrics,
        LogRead
    });
    t.ty::<IssueRequest>();
    t.ty::<IssuedCertificate>();
    t.ty::<CaInfo>();
    t.ty::<ProfileInfo>();
    t.ty::<CrlRequest>();
    t.ty::<RevokedEntry>();
    t.ty::<SignedCrl>();
    t.ty::<SignerError>();
    t.ty::<SignerMetrics>();
    t.ty::<shared_proto::signer::LogFigures>();
    t.ty::<StarTerms>();
    t.ty::<LogRead>();
    t.ty::<LogReadError>();

    // ValidatorRpc.
    t.ty::<ValidatorRpcRequest>();
    responses!(ValidatorRpcResponse {
        ValidateChallenge,
        Metrics,
        ValidatorInfo,
        RecheckCaa,
        CaaForSubdomain
    });
    t.ty::<ValidateRequest>();
    t.ty::<ChallengeType>();
    t.ty::<ValidationRecord>();
    t.ty::<ValidationProblem>();
    t.ty::<ProblemKind>();
    t.ty::<ValidatorMetrics>();
    t.ty::<ProbeCount>();
    t.ty::<ValidatorInfo>();
    t.ty::<PersistForm>();
    t.ty::<PersistAccount>();
    t.ty::<PersistHash>();

    // Figures of the metrics RPCs.
    t.ty::<Histogram>();
    t.ty::<ProcessFigures>();
    t.ty::<HeapFigures>();

    // Validation statements (their JSON is what the validator signs).
    t.ty::<Statement>();
    t.ty::<SignedStatement>();
    t.ty::<CaaCheck>();
    t.ty::<Perspective>();
    t.ty::<Corroboration>();

    t.ty::<Identifier>();
    t.ty::<IdentifierKind>();
    t.ty::<std::net::IpAddr>();
}

/// The wire encoding itself: tarpc's envelope (`ClientMessage`, `Response`,
/// `Context`) cannot be traced (its deadline has a hand-written serde impl),
/// so the resolved tarpc and bincode release series stand for it.
fn envelope(root: &Path) -> String {
    let lock = cargo::read_toml(&root.join("Cargo.lock")).expect("Cargo.lock");
    let mut out = String::new();
    let packages = lock
        .get("package")
        .and_then(toml::Value::as_array)
        .cloned()
        .unwrap_or_default();
    for name in ["tarpc", "bincode"] {
        let mut versions: Vec<String> = packages
            .iter()
            .filter(|p| p.get("name").and_then(toml::Value::as_str) == Some(name))
            .filter_map(|p| p.get("version").and_then(toml::Value::as_str))
            .map(|v| v.split('.').take(2).collect::<Vec<_>>().join("."))
            .collect();
        versions.sort();
        versions.dedup();
        out.push_str(&format!("envelope: {name} {}\n", versions.join(" ")));
    }
    out
}

#[test]
fn wire_types_change_only_with_a_protocol_version_bump() {
    let root = workspace_root();
    let mut trace = WireTrace::new();
    wire_types(&mut trace);
    let rendered = trace.render().unwrap_or_else(|e| panic!("{e}"));
    let formats = format!("{}\n{}", envelope(&root), rendered);
    let current = FingerprintFile::new(u32::from(PROTOCOL_VERSION), formats);
    let path = root.join(FINGERPRINT_FILE);
    let recorded_text = std::fs::read_to_string(&path).unwrap_or_default();
    let recorded = FingerprintFile::parse(&recorded_text);
    let update = std::env::var_os(UPDATE_VAR).is_some();

    let same_version = recorded
        .as_ref()
        .is_some_and(|r| r.protocol_version == current.protocol_version);
    let same_types = recorded
        .as_ref()
        .is_some_and(|r| r.sha256 == current.sha256);
    let diff = recorded
        .as_ref()
        .and_then(|r| first_difference(&r.formats, &current.formats))
        .unwrap_or_else(|| "the recorded formats were edited by hand".to_owned());

    if let Some(r) = &recorded {
        assert!(
            r.protocol_version <= current.protocol_version,
            "{FINGERPRINT_FILE}: shared_proto::PROTOCOL_VERSION went back from {} to {}",
            r.protocol_version,
            current.protocol_version
        );
    }
    if recorded.is_some() && same_version && !same_types {
        panic!(
            "{FINGERPRINT_FILE}: wire types changed ({diff}): bump shared_proto::PROTOCOL_VERSION \
             (now {PROTOCOL_VERSION}) and run `{UPDATE_COMMAND}` to record it \
             (invariant: any change of a wire type bumps PROTOCOL_VERSION)"
        );
    }
    let expected_text = current.to_text(UPDATE_COMMAND);
    if expected_text == recorded_text {
        return;
    }
    if update {
        std::fs::write(&path, &expected_text)
            .unwrap_or_else(|e| panic!("cannot write {FINGERPRINT_FILE}: {e}"));
        return;
    }
    match recorded {
        None => panic!(
            "{FINGERPRINT_FILE} is missing or unreadable: run `{UPDATE_COMMAND}` to record the \
             wire fingerprint"
        ),
        Some(r) if !same_version => panic!(
            "{FINGERPRINT_FILE} records PROTOCOL_VERSION={} but shared_proto::PROTOCOL_VERSION is \
             {PROTOCOL_VERSION}: run `{UPDATE_COMMAND}` to record the new wire types",
            r.protocol_version
        ),
        Some(_) => panic!(
            "{FINGERPRINT_FILE} is out of date ({diff}): run `{UPDATE_COMMAND}` to rewrite it"
        ),
    }
}
