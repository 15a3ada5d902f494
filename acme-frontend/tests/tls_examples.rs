//! The TLS chapter of the reference, example by example: each config loads
//! with our types as printed there (the paths need not exist to parse), a
//! key it does not have stays an error naming the key, and the values that
//! a parser cannot refuse are refused at startup with the reference's
//! messages.

use acme_frontend::config::{ClientAuthProfile, Config, ConfigError};

fn parse(text: &str) -> Config {
    Config::parse(text, "example").unwrap_or_else(|e| panic!("{e}\n---\n{text}"))
}

/// Mode 1 without its `[mtc]` table, which belongs to the transparency-log
/// chapter (the launcher passes it to the signer, which owns that log).
const MODE_1: &str = r#"
listen_addr = "127.0.0.1:8080"
base_url    = "https://acme.example.com"

[database]
path = "/var/lib/akamu/akamu.db"

[ca]
key_file  = "/etc/akamu/ca.key.pem"
cert_file = "/etc/akamu/ca.cert.pem"
"#;

const MODE_2: &str = r#"
listen_addr = "0.0.0.0:8443"
base_url    = "https://akamu.internal:8443"

[tls]
enabled     = true
cert_file   = "/etc/akamu/server.crt"
key_file    = "/etc/akamu/server.key"
server_name = "akamu.internal"
"#;

const MODE_3: &str = r#"
listen_addr = "0.0.0.0:8443"
base_url    = "https://acme.example.com:8443"

[tls]
enabled     = true
cert_file   = "/etc/akamu/server.crt"   # publicly-trusted chain, leaf first
key_file    = "/etc/akamu/server.key"   # unencrypted PKCS#8 or EC key
server_name = "acme.example.com"        # used only if cert/key are absent (bootstrap)
"#;

const MODE_4: &str = r#"
listen_addr = "0.0.0.0:8443"
base_url    = "https://akamu.internal:8443"

[tls]
enabled   = true
cert_file = "/etc/akamu/server.crt"
key_file  = "/etc/akamu/server.key"

[tls.client_auth]
required = true
ca_files = ["/etc/akamu/client-ca.crt"]
profile  = "rfc5280"
"#;

const MINIMAL: &str = r#"
[tls]
enabled   = true
cert_file = "/etc/akamu/server.crt"   # PEM chain: leaf cert first, then intermediates/CA
key_file  = "/etc/akamu/server.key"   # PEM private key (PKCS#8 or SEC1, unencrypted)
"#;

const FIELD_REFERENCE: &str = r#"
[tls]
# Whether to enable native TLS.  Default: false.
enabled = true

# PEM file with the server certificate chain (leaf first).
cert_file = "/etc/akamu/server.crt"

# PEM file with the server private key (unencrypted PKCS#8 or SEC1).
key_file = "/etc/akamu/server.key"

# TLS protocol versions to accept.  Default: ["TLSv1.2", "TLSv1.3"].
protocols = ["TLSv1.3"]

# Hostname placed in CN and SAN of the auto-generated server certificate.
# Only used when cert_file/key_file are both absent.  Default: "localhost".
server_name = "akamu.internal"

# Key algorithm for the auto-generated server certificate.
# Accepted values: "ec:P-256", "ec:P-384", "ec:P-521",
#                  "rsa:2048", "rsa:3072", "rsa:4096", "ed25519".
# Default: "ec:P-256".
bootstrap_key_type = "ec:P-256"
"#;

/// The mTLS field reference; the reference prints it on its own, after the
/// `[tls]` table it belongs to.
const CLIENT_AUTH_REFERENCE: &str = r#"
[tls.client_auth]
# Reject connections that present no client certificate.  Default: false.
required = true

# PEM files containing trusted root CA certificates.
# Each file may contain multiple PEM blocks.
ca_files = [
    "/etc/akamu/client-ca.crt",
]

# Validation profile: "webpki" (CAB Forum) or "rfc5280".  Default: "webpki".
profile = "webpki"

# Allow ML-DSA / composite post-quantum algorithms in client cert chains.
# Default: false.
allow_post_quantum = false

# Maximum certificate chain depth (leaf not counted).  Default: 8.
max_chain_depth = 8

# Minimum RSA modulus size in bits.  Default: 2048.
minimum_rsa_modulus = 2048
"#;

const ANNOTATED: &str = r#"
[server]
listen_addr = "0.0.0.0:8443"
base_url    = "https://akamu.internal:8443"

[tls]
enabled             = true
cert_file           = "/etc/akamu/server.crt"
key_file            = "/etc/akamu/server.key"
protocols           = ["TLSv1.3"]
server_name         = "akamu.internal"
bootstrap_key_type  = "ec:P-384"

[tls.client_auth]
required           = true
ca_files           = ["/etc/akamu/client-ca.crt", "/etc/akamu/sub-ca.crt"]
profile            = "rfc5280"
allow_post_quantum = true
max_chain_depth    = 5
minimum_rsa_modulus = 3072
"#;

#[test]
fn mode_1_is_plain_http_with_the_proxys_base_url() {
    let c = parse(MODE_1);
    assert!(!c.tls.enabled);
    assert_eq!(c.listen_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(c.base_url, "https://acme.example.com");
    let with_mtc =
        format!("{MODE_1}\n[mtc]\nlog_path = \"/var/lib/akamu/mtc.log\"\nenabled = false\n");
    let c = parse(&with_mtc);
    assert!(!c.mtc.enabled);
    let alone = "[launcher]\nenabled = false\n[mtc]\nlog_path = \"/var/lib/akamu/mtc.log\"\n";
    let refused = Config::parse(alone, "t").expect_err("[mtc] is the signer's");
    assert!(refused.to_string().contains("[mtc]"), "{refused}");
}

#[test]
fn modes_2_3_and_minimal_enable_tls_with_defaults() {
    for text in [MODE_2, MODE_3, MINIMAL] {
        let c = parse(text);
        assert!(c.tls.enabled);
        assert_eq!(c.tls_cert_file().to_str(), Some("/etc/akamu/server.crt"));
        assert_eq!(c.tls_key_file().to_str(), Some("/etc/akamu/server.key"));
        assert_eq!(c.tls.protocols, ["TLSv1.2", "TLSv1.3"]);
        assert_eq!(c.tls.bootstrap_key_type.to_string(), "ec:P-256");
        assert!(c.tls.client_auth.is_none());
    }
    assert_eq!(parse(MODE_2).tls.server_name, "akamu.internal");
    assert_eq!(parse(MINIMAL).tls.server_name, "localhost");
}

#[test]
fn mode_4_and_the_field_references_parse() {
    let c = parse(MODE_4);
    let auth = c.tls.client_auth.expect("client_auth");
    assert!(auth.required);
    assert_eq!(auth.profile, ClientAuthProfile::Rfc5280);
    assert_eq!((auth.max_chain_depth, auth.minimum_rsa_modulus), (8, 2048));
    assert!(!auth.allow_post_quantum);

    let c = parse(&format!("{FIELD_REFERENCE}{CLIENT_AUTH_REFERENCE}"));
    assert_eq!(c.tls.protocols, ["TLSv1.3"]);
    let auth = c.tls.client_auth.expect("client_auth");
    assert_eq!(auth.profile, ClientAuthProfile::Webpki);
    assert_eq!(auth.ca_files.len(), 1);
}

/// The annotated example puts `listen_addr` and `base_url` in `[server]`;
/// it loads, with `allow_post_quantum = true` (ML-DSA client chains,
/// `tls::client_auth`); what stops its start here is only its files, which
/// this machine does not have.
#[test]
fn the_annotated_example_loads_with_post_quantum_client_auth() {
    let c = parse(ANNOTATED);
    assert_eq!(c.listen_addr.to_string(), "0.0.0.0:8443");
    assert_eq!(c.base_url, "https://akamu.internal:8443");
    assert_eq!(c.tls.bootstrap_key_type.to_string(), "ec:P-384");
    let auth = c.tls.client_auth.clone().expect("client_auth");
    assert_eq!((auth.max_chain_depth, auth.minimum_rsa_modulus), (5, 3072));
    assert!(auth.allow_post_quantum);
    let refused = acme_frontend::tls::server_config(&c.tls, &c.tls_cert_file(), &c.tls_key_file())
        .expect_err("the example's files are not on this machine");
    assert!(
        refused.to_string().contains("/etc/akamu/") && !refused.to_string().contains("post"),
        "{refused}"
    );
    // Both spellings at once is refused rather than guessed.
    let twice = format!("base_url = \"https://other:8443\"\n{ANNOTATED}");
    assert!(matches!(
        Config::parse(&twice, "t"),
        Err(ConfigError::Invalid(m)) if m.contains("base_url")
    ));
}

#[test]
fn bad_tls_values_are_refused_with_their_key() {
    let cases: &[(&str, &str)] = &[
        ("[tls]\nprotocols = [\"TLSv1.1\"]\n", "TLS versions: "),
        ("[tls]\nprotocols = []\n", "TLS versions: "),
        (
            "[tls]\nbootstrap_key_type = \"ed448\"\n",
            "bootstrap_key_type",
        ),
        ("[tls]\nbootstrap_key_type = \"dsa\"\n", "dsa"),
        ("[tls]\nciphers = [\"x\"]\n", "ciphers"),
        (
            "[tls]\nenabled = true\n[tls.client_auth]\nca_files = [\"a\"]\nverify_depth = 3\n",
            "verify_depth",
        ),
        (
            "[tls]\nenabled = true\n[tls.client_auth]\nca_files = [\"a\"]\nprofile = \"cabf\"\n",
            "cabf",
        ),
        (
            "[tls]\nenabled = true\n[tls.client_auth]\nrequired = true\n",
            "ca_files",
        ),
        (
            "[tls]\nenabled = true\n[tls.client_auth]\nca_files = [\"a\"]\nmax_chain_depth = 0\n",
            "max_chain_depth",
        ),
        (
            "[tls]\nenabled = true\n[tls.client_auth]\nca_files = [\"a\"]\nminimum_rsa_modulus = 1024\n",
            "minimum_rsa_modulus",
        ),
        ("[tls.client_auth]\nca_files = [\"a\"]\n", "enabled = true"),
    ];
    for (text, needle) in cases {
        let refused = Config::parse(text, "t").expect_err(text);
        assert!(
            refused.to_string().contains(needle),
            "{text}: {refused} (wanted {needle:?})"
        );
    }
}
