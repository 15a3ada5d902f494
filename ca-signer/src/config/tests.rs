//! Unit tests of configuration parsing and validation.

use super::*;
use crate::error::Error;

const MINIMAL: &str = r#"
    socket_path = "s.sock"
    allowed_uids = [1000]
    [ca]
    key_file = "ca.key"
    cert_file = "ca.crt"
"#;

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::from_toml(MINIMAL).expect("parse");
    assert_eq!(c.socket_mode, 0o600);
    assert_eq!(c.ca.key_type, KeyType::EcP256);
    assert_eq!(c.ca.hash_alg, HashAlg::Sha256);
    assert_eq!(c.ca.validity_days, 90);
    assert_eq!(c.ca.ca_validity_years, 10);
    assert_eq!(c.ca.common_name, "Akāmu CA");
    assert_eq!(c.ca.organization, "Akāmu");
    assert!(c.server_certificate.is_none());
}

#[test]
fn full_config_parses() {
    let c = Config::from_toml(
        r#"
        socket_path = "s.sock"
        socket_mode = 0o660
        allowed_uids = [1000, 1001]
        [ca]
        key_file = "ca.key"
        cert_file = "ca.crt"
        key_type = "rsa:3072"
        hash_alg = "sha384"
        validity_days = 30
        crl_url = "http://crl.example.org/ca.crl"
        ocsp_url = "http://ocsp.example.org"
        [server_certificate]
        names = ["localhost", "127.0.0.1"]
        cert_file = "server.crt"
        key_file = "server.key"
        "#,
    )
    .expect("parse");
    assert_eq!(c.socket_mode, 0o660);
    assert_eq!(c.ca.key_type, KeyType::Rsa(3072));
    assert_eq!(c.ca.hash_alg, HashAlg::Sha384);
    assert_eq!(c.server_certificate.map(|s| s.names.len()), Some(2));
}

#[test]
fn bad_configs_are_refused() {
    let unknown = format!("{MINIMAL}\nsurprise = 1\n");
    assert!(matches!(
        Config::from_toml(&unknown),
        Err(Error::ConfigSyntax { .. })
    ));
    let bad_type = MINIMAL.replace(
        "cert_file = \"ca.crt\"",
        "cert_file = \"ca.crt\"\nkey_type = \"dsa\"",
    );
    assert!(matches!(
        Config::from_toml(&bad_type),
        Err(Error::ConfigSyntax { .. })
    ));
    let no_uids = MINIMAL.replace("[1000]", "[]");
    assert!(matches!(
        Config::from_toml(&no_uids),
        Err(Error::ConfigValue {
            field: "allowed_uids",
            ..
        })
    ));
}

const TCP: &str = r#"
    [tcp]
    listen_addr = "127.0.0.1:4701"
    cert_file = "signer.crt"
    key_file = "signer.key"
    client_ca_file = "clients-ca.crt"
    client_names = ["frontend-1.ca.internal", "frontend-2.ca.internal"]
"#;

#[test]
fn tcp_section_parses_and_its_key_is_a_secret() {
    let c = Config::from_toml(&format!("{MINIMAL}{TCP}")).expect("parse");
    let tcp = c.tcp.as_ref().expect("[tcp]");
    assert_eq!(tcp.listen_addr, "127.0.0.1:4701".parse().expect("addr"));
    assert_eq!(tcp.client_names.len(), 2);
    assert!(c.secret_files().contains(&PathBuf::from("signer.key")));
    assert!(Config::from_toml(MINIMAL).expect("parse").tcp.is_none());
}

#[test]
fn bad_tcp_sections_are_refused() {
    let refused = |text: String, field: &str| match Config::from_toml(&text) {
        Err(Error::ConfigValue { field: f, problem }) => {
            assert_eq!(f, field, "{problem}");
            problem
        }
        other => panic!("{text}: {other:?}"),
    };
    let with = |from: &str, to: &str| format!("{MINIMAL}{}", TCP.replace(from, to));
    refused(
        with(
            "[\"frontend-1.ca.internal\", \"frontend-2.ca.internal\"]",
            "[]",
        ),
        "tcp.client_names",
    );
    for bad in ["*.ca.internal", "", "a..b", "fe 1.example", "fe_1.example"] {
        let problem = refused(
            with("\"frontend-2.ca.internal\"", &format!("{bad:?}")),
            "tcp.client_names",
        );
        assert!(problem.contains("no wildcards"), "{problem}");
    }
    refused(with("127.0.0.1:4701", "127.0.0.1:0"), "tcp.listen_addr");
    // Syntax: a missing required key, an unknown key, a bad address.
    for text in [
        with("client_ca_file = \"clients-ca.crt\"\n", ""),
        with("listen_addr", "listen_address"),
        with("127.0.0.1:4701", "signer.internal"),
        format!("{MINIMAL}{TCP}    surprise = true\n"),
    ] {
        assert!(
            matches!(Config::from_toml(&text), Err(Error::ConfigSyntax { .. })),
            "{text}"
        );
    }
}
