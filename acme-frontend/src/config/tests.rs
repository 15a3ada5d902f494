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

#[test]
fn caa_identities_belong_to_the_validator_without_the_launcher() {
    let key = "[server]\ncaa_identities = [\"acme.example.com\"]\n";
    let refused = Config::parse(&format!("[launcher]\nenabled = false\n{key}"), "t");
    assert!(
        matches!(&refused, Err(ConfigError::Invalid(d))
            if d.contains("caa_identities") && d.contains("validator's configuration")),
        "{refused:?}"
    );
    let c = Config::parse(key, "t").expect("the launcher's input for the validator");
    assert_eq!(c.server.caa_identities, ["acme.example.com"]);
    let v = crate::launcher::validator_config(&c, 1);
    assert!(v.contains("caa_identities = [\"acme.example.com\"]"), "{v}");
    assert_eq!(c.server.caa_recheck_hours, 8.0);
    for (text, hours) in [("0", 0.0), ("0.001", 0.001), ("24", 24.0)] {
        let c =
            Config::parse(&format!("[server]\ncaa_recheck_hours = {text}\n"), "t").expect("parse");
        assert_eq!(c.server.caa_recheck_hours, hours);
    }
    for bad in ["-1", "nan", "9000"] {
        assert!(Config::parse(&format!("[server]\ncaa_recheck_hours = {bad}\n"), "t").is_err());
    }
}

/// Keys of the reference's complete example that later issues bring, with
/// the issue that owns each: (`table`, `key`), where `key` is `None` for a
/// whole table. When an issue lands a key, this test fails until the key
/// leaves the list, so the list is always exactly what is missing.
const REFERENCE_KEYS_NOT_YET_SUPPORTED: &[(&str, Option<&str>, &str)] = &[];

/// `example` without the lines of `skip` (a whole table when its key is
/// `None`).
fn without(example: &str, skip: &[(&str, Option<&str>)]) -> String {
    let mut table = String::new();
    let mut out = String::new();
    for line in example.lines() {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            table = h.to_owned();
        }
        let key = t.split('=').next().unwrap_or("").trim();
        let dropped = skip.iter().any(|(tab, k)| match k {
            None => table == *tab || table.starts_with(&format!("{tab}.")),
            Some(k) => table == *tab && key == *k,
        });
        if !dropped {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The reference's complete configuration example (Configuration Reference
/// chapter, copied verbatim into the docs) loads unchanged except for the
/// keys later issues own; each of those is still refused with an error
/// naming it.
#[test]
fn reference_complete_example_loads_but_for_keys_of_later_issues() {
    let example = include_str!("../../../docs/src/reference-complete-example.toml");
    let pending: Vec<(&str, Option<&str>)> = REFERENCE_KEYS_NOT_YET_SUPPORTED
        .iter()
        .map(|(t, k, _)| (*t, *k))
        .collect();
    let rest = without(example, &pending);
    if let Err(e) = Config::parse(&rest, "reference") {
        panic!("the reference's complete example without {pending:?} must load: {e}");
    }
    for (i, (table, key, owner)) in REFERENCE_KEYS_NOT_YET_SUPPORTED.iter().enumerate() {
        let mut others = pending.clone();
        others.remove(i);
        let text = without(example, &others);
        let name = key.unwrap_or(table);
        match Config::parse(&text, "reference") {
            Ok(_) => panic!(
                "{table}.{name} ({owner}) is accepted now: remove it from REFERENCE_KEYS_NOT_YET_SUPPORTED"
            ),
            Err(e) => assert!(
                e.to_string().contains(name) || format!("{e:?}").contains(name),
                "the error for {table}.{name} names it: {e}"
            ),
        }
    }
}

#[test]
fn rate_limits_trusted_proxies_and_identifier_caps_are_checked() {
    let c = Config::parse("", "t").expect("defaults");
    assert_eq!(c.server.max_identifiers_per_order, 100);
    assert!(c.server.trusted_proxies.is_empty());
    assert!(c.rate_limits.new_orders_per_account.is_none());
    let embedded = Config::load(None).expect("embedded default");
    assert!(
        crate::rate_limits::Policy::from_config(&embedded.rate_limits)
            .expect("policy")
            .is_empty(),
        "the embedded default sets no limit"
    );
    let ok = Config::parse(
        "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::1\"]\n\
         [rate_limits.new_orders_per_account]\ncount = 300\nperiod_secs = 10800\nburst = 300\n\
         [rate_limits.pending_orders_per_account]\ncount = 10\n\
         [[rate_limits.overrides]]\nlimit = \"new_orders_per_account\"\naccount = \"abc\"\n\
         count = 1\nperiod_secs = 1\nburst = 1\n",
        "t",
    )
    .expect("valid");
    assert_eq!(ok.trusted_proxies().expect("parsed").len(), 2);
    for (bad, needle) in [
        (
            "[server]\nmax_identifiers_per_order = 101",
            "max_identifiers_per_order",
        ),
        (
            "[server]\nmax_identifiers_per_order = 0",
            "max_identifiers_per_order",
        ),
        (
            "[server]\ntrusted_proxies = [\"proxy.example\"]",
            "trusted_proxies",
        ),
        (
            "[rate_limits.new_orders_per_account]\ncount = 0\nperiod_secs = 1\nburst = 1",
            "new_orders_per_account",
        ),
        (
            "[[rate_limits.overrides]]\nlimit = \"new_accounts_per_ip\"\naccount = \"a\"\ncount = 1\nperiod_secs = 1\nburst = 1",
            "give `ip`",
        ),
    ] {
        let refused = Config::parse(bad, "t");
        assert!(
            matches!(&refused, Err(ConfigError::Invalid(d)) if d.contains(needle)),
            "{bad}: {refused:?}"
        );
    }
    for unknown in [
        "[rate_limits.new_orders_per_account]\ncount = 1\nperiod_secs = 1\nburst = 1\nrate = 2",
        "[rate_limits.pending_orders_per_account]\ncount = 1\nburst = 1",
        "[rate_limits.new_orders]\ncount = 1",
    ] {
        assert!(
            matches!(Config::parse(unknown, "t"), Err(ConfigError::Parse { .. })),
            "{unknown}"
        );
    }
}

#[test]
fn a_signer_over_tcp_needs_its_tls_files_and_no_socket() {
    let off = "[launcher]\nenabled = false\n";
    let tls = "[signer]\naddress = \"signer.ca.internal:4701\"\nca_file = \"/etc/akamu/links-ca.pem\"\n\
               cert_file = \"/etc/akamu/fe.pem\"\nkey_file = \"/etc/akamu/fe.key\"\n\
               server_name = \"signer.ca.internal\"\n";
    let c = Config::parse(&format!("{off}{tls}"), "t").expect("a signer over TCP");
    match c.signer_endpoint() {
        SignerEndpoint::Tls { address, files } => {
            assert_eq!(address, "signer.ca.internal:4701");
            assert_eq!(files.server_name, "signer.ca.internal");
            assert_eq!(files.key_file, PathBuf::from("/etc/akamu/fe.key"));
        }
        other => panic!("{other:?}"),
    }
    let refused = |text: String, needle: &str| {
        let r = Config::parse(&text, "t");
        assert!(
            matches!(&r, Err(ConfigError::Invalid(d)) if d.contains(needle)),
            "{text}: {r:?}"
        );
    };
    refused(tls.to_owned(), "[launcher] enabled = false");
    refused(
        format!("{off}{tls}socket_path = \"/run/s.sock\"\n"),
        "exclusive",
    );
    for key in ["ca_file", "cert_file", "key_file", "server_name"] {
        let without: String = tls
            .lines()
            .filter(|l| !l.starts_with(key))
            .map(|l| format!("{l}\n"))
            .collect();
        refused(format!("{off}{without}"), &format!("needs {key}"));
        // A TLS key without the address is a mistake too.
        let alone: String = tls
            .lines()
            .filter(|l| l.starts_with('[') || l.starts_with(key))
            .map(|l| format!("{l}\n"))
            .collect();
        refused(format!("{off}{alone}"), "set [signer] address too");
    }
    for bad in ["signer.ca.internal", ":4701", "signer:0", "signer:http"] {
        refused(
            format!("{off}{}", tls.replace("signer.ca.internal:4701", bad)),
            "must be host:port",
        );
    }
    refused(
        format!(
            "{off}{}",
            tls.replace(
                "server_name = \"signer.ca.internal\"",
                "server_name = \"not a name\""
            )
        ),
        "not a DNS name",
    );
    assert_eq!(
        Config::parse(off, "t").expect("defaults").signer_endpoint(),
        SignerEndpoint::Unix(PathBuf::from("akamu-data/signer.sock"))
    );
}

#[test]
fn tcp_perspectives_pass_through_the_launcher() {
    let c = Config::parse(
        "[[validator.perspectives]]\nname = \"p1\"\nrir = \"ARIN\"\n\
         address = \"tcp:p1.ca.internal:4710\"\nserver_name = \"p1.ca.internal\"\n\
         public_key_file = \"/etc/akamu/p1.pub\"\n\
         [validator.perspective_client]\nca_file = \"/etc/akamu/links-ca.pem\"\n\
         cert_file = \"/etc/akamu/primary.crt\"\nkey_file = \"/etc/akamu/primary.key\"\n",
        "t",
    )
    .expect("parse");
    let v = crate::launcher::validator_config(&c, 1);
    let parsed: toml::Table = v.parse().expect("the validator's config is TOML");
    let p = &parsed["perspectives"][0];
    assert_eq!(
        p["address"].as_str(),
        Some("tcp:p1.ca.internal:4710"),
        "{v}"
    );
    assert_eq!(p["server_name"].as_str(), Some("p1.ca.internal"), "{v}");
    assert_eq!(
        parsed["perspective_client"]["cert_file"].as_str(),
        Some("/etc/akamu/primary.crt"),
        "{v}"
    );
    // A unix: perspective carries no server_name.
    let c = Config::parse(
        "[[validator.perspectives]]\nname = \"p1\"\nrir = \"ARIN\"\n\
         address = \"unix:/run/p1.sock\"\npublic_key_file = \"/p1.pub\"\n",
        "t",
    )
    .expect("parse");
    let v = crate::launcher::validator_config(&c, 1);
    assert!(
        !v.contains("server_name") && !v.contains("perspective_client"),
        "{v}"
    );
}

#[test]
fn the_database_is_a_sqlite_path_or_a_postgres_url_never_both() {
    let c = Config::parse("", "t").expect("defaults");
    assert!(matches!(c.database(), crate::store::Location::Sqlite(_)));
    let c = Config::parse(
        "[database]\nurl = \"postgres://akamu:pw-secret@db:5432/akamu\"\nmax_connections = 4",
        "t",
    )
    .expect("a url");
    match c.database() {
        crate::store::Location::Postgres(o) => {
            assert_eq!(o.url, "postgres://akamu:pw-secret@db:5432/akamu");
            assert_eq!(o.max_connections, 4);
            assert_eq!(o.timeout, std::time::Duration::from_secs(10));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !format!("{c:?}").contains("pw-secret"),
        "the configuration's Debug shows the password"
    );
    let both = Config::parse(
        "[database]\npath = \"a.db\"\nurl = \"postgres://db/akamu\"",
        "t",
    );
    assert!(
        matches!(&both, Err(ConfigError::Invalid(m)) if m.contains("both path") && m.contains("url")),
        "{both:?}"
    );
    let wrong = Config::parse("[database]\nurl = \"mysql://u:pw-secret@db/akamu\"", "t");
    assert!(
        matches!(&wrong, Err(ConfigError::Invalid(m)) if m.contains("postgres://") && !m.contains("pw-secret")),
        "{wrong:?}"
    );
    let empty = Config::parse("[database]\npath = \"\"", "t");
    assert!(
        matches!(&empty, Err(ConfigError::Invalid(m)) if m.contains("path is empty")),
        "{empty:?}"
    );
}
