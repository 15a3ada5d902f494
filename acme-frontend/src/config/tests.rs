//! Unit tests of the configuration: parsing, checks, the docs in step.

use super::*;

#[test]
fn embedded_default_parses() {
    let c = Config::load(None).expect("default");
    assert!(c.tls.enabled);
    assert_eq!(c.listen_addr.port(), 14000);
    assert_eq!(c.database_path(), PathBuf::from("akamu-data/akamu.db"));
    assert!(c.server.allow_private_targets);
}

#[test]
fn contract_example_parses_with_defaults() {
    let c = Config::parse(
        r#"
listen_addr = "127.0.0.1:14000"
base_url    = "https://localhost:14000"
state_dir   = "akamu-data"
[database]
path = "akamu-data/akamu.db"
[ca]
key_file      = "akamu-data/ca.key.pem"
cert_file     = "akamu-data/ca.cert.pem"
validity_days = 90
[tls]
enabled     = true
cert_file   = "akamu-data/server.crt"
key_file    = "akamu-data/server.key"
server_name = "localhost"
[server]
http_validation_port     = 80
tls_alpn_validation_port = 443
dns_resolver_addr        = "127.0.0.1:8053"
allow_private_targets    = false
"#,
        "test",
    )
    .expect("parses");
    assert_eq!(c.server.max_body_bytes, 65536);
    assert_eq!(
        c.server.dns_resolver_addr,
        Some("127.0.0.1:8053".parse().expect("addr"))
    );
    assert_eq!(c.signer_socket(), PathBuf::from("akamu-data/signer.sock"));
}

/// `docs/src/configuration.md` lists exactly the keys the code accepts.
#[test]
fn doc_lists_every_key() {
    use std::collections::BTreeSet;
    let doc = include_str!("../../../docs/src/configuration.md");
    let mut documented = BTreeSet::new();
    let mut section = String::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = h
                .trim_matches(|c| c == '`' || c == '[' || c == ']')
                .to_string();
            if section == "Top level" {
                section.clear();
            }
        } else if let Some(rest) = line.strip_prefix("| `") {
            let key = rest.split('`').next().unwrap_or_default();
            documented.insert(if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    let value = serde_json::to_value(Config::parse("", "t").expect("defaults")).expect("json");
    let mut actual = BTreeSet::new();
    for (k, v) in value.as_object().expect("object") {
        match v.as_object() {
            Some(table) => actual.extend(table.keys().map(|f| format!("{k}.{f}"))),
            None => {
                actual.insert(k.clone());
            }
        }
    }
    // Nested tables documented in their own section.
    let nested = Config::parse(
        "[tls]\nenabled = true\n[tls.client_auth]\nca_files = [\"ca.pem\"]\n",
        "t",
    )
    .expect("client_auth");
    let auth = serde_json::to_value(&nested.tls.client_auth).expect("json");
    for f in auth.as_object().expect("object").keys() {
        actual.insert(format!("tls.client_auth.{f}"));
    }
    assert_eq!(documented, actual);
}

#[test]
fn unknown_keys_and_bad_values_are_errors() {
    assert!(matches!(
        Config::parse("listen_adr = \"x\"", "t"),
        Err(ConfigError::Parse { .. })
    ));
    assert!(matches!(
        Config::parse("[ca]\nvalidity = 3", "t"),
        Err(ConfigError::Parse { .. })
    ));
    assert!(matches!(
        Config::parse("base_url = \"https://x/\"", "t"),
        Err(ConfigError::Invalid(_))
    ));
    assert!(matches!(
        Config::parse("[ca]\nvalidity_days = 0", "t"),
        Err(ConfigError::Invalid(_))
    ));
}

#[test]
fn retention_days_defaults_to_30_and_is_range_checked() {
    let c = Config::parse("", "t").expect("defaults");
    assert_eq!(c.server.retention_days, 30);
    for bad in ["0", "3651"] {
        let refused = Config::parse(&format!("[server]\nretention_days = {bad}"), "t");
        assert!(
            matches!(&refused, Err(ConfigError::Invalid(d)) if d.contains("retention_days")),
            "{bad}: {refused:?}"
        );
    }
    let c = Config::parse("[server]\nretention_days = 3650", "t").expect("in range");
    assert_eq!(c.server.retention_days, 3650);
}

#[test]
fn without_the_launcher_the_signers_sections_are_refused() {
    let off = "[launcher]\nenabled = false\n";
    for section in [
        "[ca]\ncrl_url = \"http://x/crl\"",
        "[signer.profiles.short]\nvalidity_hours = 24",
        "[signer.policy]\nmax_validity_days = 90",
    ] {
        let refused = Config::parse(&format!("{off}{section}\n"), "t");
        assert!(
            matches!(&refused, Err(ConfigError::Invalid(d)) if d.contains("signer's configuration")),
            "{section}: {refused:?}"
        );
        // With the launcher they are its input for the signer.
        assert!(
            Config::parse(&format!("{section}\n"), "t").is_ok(),
            "{section}"
        );
    }
    assert!(
        Config::parse(
            &format!("{off}[signer]\nsocket_path = \"/run/s.sock\"\n"),
            "t"
        )
        .is_ok()
    );
}
