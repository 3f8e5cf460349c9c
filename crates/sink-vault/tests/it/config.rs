//! Configuration: TOML shape, defaults, validation, Debug.

use std::time::Duration;

use rotator_sink_vault::{validate_key, AuthConfig, Config, VaultSink};

fn parse(text: &str) -> Result<Config, toml::de::Error> {
    toml::from_str(text)
}

#[test]
fn the_design_brief_example_parses_with_defaults() {
    let config = parse(
        r#"
address = "https://vault.example.com:8200"
mount = "secret"
kv_version = 2
auth = { method = "approle", role_id_env = "VAULT_ROLE_ID", secret_id_file = "/run/secrets/secret-id" }
"#,
    )
    .unwrap();
    config.validate().unwrap();
    assert_eq!(config.timeout, Duration::from_secs(30));
    assert_eq!(config.namespace, None);
    assert_eq!(
        config.auth,
        AuthConfig::Approle {
            role_id_env: Some("VAULT_ROLE_ID".into()),
            role_id_file: None,
            secret_id_env: None,
            secret_id_file: Some("/run/secrets/secret-id".into()),
            mount: "approle".into(),
        }
    );
    let minimal =
        parse("address = \"http://127.0.0.1:8200\"\nauth = { method = \"token\" }").unwrap();
    minimal.validate().unwrap();
    assert_eq!((minimal.mount.as_str(), minimal.kv_version), ("secret", 2));
}

#[test]
fn every_auth_method_parses() {
    let k8s = parse("address = \"https://v\"\ntimeout = \"5s\"\nauth = { method = \"kubernetes\", role = \"rotator\" }").unwrap();
    k8s.validate().unwrap();
    assert_eq!(k8s.timeout, Duration::from_secs(5));
    assert_eq!(
        k8s.auth,
        AuthConfig::Kubernetes {
            role: "rotator".into(),
            jwt_file: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
            mount: "kubernetes".into(),
        }
    );
    let jwt = parse("address = \"https://v\"\nauth = { method = \"jwt\", jwt_env = \"CI_JOB_JWT\", mount = \"gitlab\" }").unwrap();
    jwt.validate().unwrap();
    let token = parse("address = \"https://v\"\nnamespace = \"team-a\"\nca_file = \"/etc/ca.pem\"\nauth = { method = \"token\", token_file = \"/t\" }").unwrap();
    token.validate().unwrap();
}

#[test]
fn unknown_keys_and_inline_secrets_are_errors() {
    for text in [
        "address = \"https://v\"\nauth = { method = \"token\" }\nmout = \"x\"",
        "address = \"https://v\"\nauth = { method = \"token\", token = \"s.inline\" }",
        "address = \"https://v\"\nauth = { method = \"approle\", role_id = \"r\", secret_id = \"s\" }",
        "address = \"https://v\"\nauth = { method = \"ldap\" }",
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("unknown"), "{text}: {err}");
    }
}

#[test]
fn validation_names_the_key_and_the_fix() {
    let ok = Config::new(
        "https://vault:8200",
        AuthConfig::Token {
            token_env: None,
            token_file: None,
        },
    );
    let cases: Vec<(Config, &str, &str)> = vec![
        (
            Config {
                address: Some("vault:8200".into()),
                ..ok.clone()
            },
            "`address`",
            "https://",
        ),
        (
            Config {
                address: Some("not a url".into()),
                ..ok.clone()
            },
            "`address`",
            "not a URL",
        ),
        (
            Config {
                address: Some("https://user:pw@vault".into()),
                ..ok.clone()
            },
            "`address`",
            "credentials",
        ),
        (
            Config {
                mount: "/secret/".into(),
                ..ok.clone()
            },
            "`mount`",
            "not a Vault path",
        ),
        (
            Config {
                kv_version: 3,
                ..ok.clone()
            },
            "`kv_version`",
            "expected 1 or 2",
        ),
        (
            Config {
                namespace: Some("a//b".into()),
                ..ok.clone()
            },
            "`namespace`",
            "not a Vault path",
        ),
        (
            Config {
                timeout: Duration::ZERO,
                ..ok.clone()
            },
            "`timeout`",
            "longer than zero",
        ),
        (
            Config {
                auth: AuthConfig::Token {
                    token_env: Some("A".into()),
                    token_file: Some("/t".into()),
                },
                ..ok.clone()
            },
            "`auth.token_env`",
            "not both",
        ),
        (
            Config {
                auth: AuthConfig::Approle {
                    role_id_env: Some("R".into()),
                    role_id_file: None,
                    secret_id_env: None,
                    secret_id_file: None,
                    mount: "approle".into(),
                },
                ..ok.clone()
            },
            "`auth.secret_id_env`",
            "secret_id is required",
        ),
        (
            Config {
                auth: AuthConfig::Kubernetes {
                    role: " ".into(),
                    jwt_file: "/t".into(),
                    mount: "kubernetes".into(),
                },
                ..ok.clone()
            },
            "`auth.role`",
            "service account",
        ),
        (
            Config {
                auth: AuthConfig::Jwt {
                    role: None,
                    jwt_env: None,
                    jwt_file: None,
                    mount: "jwt".into(),
                },
                ..ok.clone()
            },
            "`auth.jwt_env`",
            "JWT is required",
        ),
    ];
    for (config, key, fix) in cases {
        let err = config.validate().unwrap_err().to_string();
        assert!(err.starts_with(key) && err.contains(fix), "{key}: {err}");
        // new() validates too, without any network.
        assert!(VaultSink::new(config).is_err());
    }
}

#[test]
fn a_missing_or_empty_ca_file_fails_when_the_sink_is_built() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(
        "https://vault:8200",
        AuthConfig::Token {
            token_env: None,
            token_file: None,
        },
    );
    config.ca_file = Some(dir.path().join("missing.pem"));
    let err = VaultSink::new(config.clone()).unwrap_err().to_string();
    assert!(err.contains("cannot read ca_file"), "{err}");
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate").unwrap();
    config.ca_file = Some(empty);
    let err = VaultSink::new(config).unwrap_err().to_string();
    assert!(err.contains("holds no PEM certificate"), "{err}");
}

#[test]
fn keys_are_checked() {
    validate_key("alation/state/tableau-prod").unwrap();
    let err = validate_key("alation/../x").unwrap_err().to_string();
    assert!(err.contains("invalid key"), "{err}");
}

#[test]
fn debug_shows_references_not_secrets() {
    std::env::set_var("ROTATOR_IT_DEBUG_SECRET_ID", "debug-secret-id-value");
    let config = parse(
        "address = \"https://v\"\nauth = { method = \"approle\", role_id_file = \"/r\", secret_id_env = \"ROTATOR_IT_DEBUG_SECRET_ID\" }",
    )
    .unwrap();
    let sink = VaultSink::new(config.clone()).unwrap();
    let text = format!("{config:?} {sink:?}");
    assert!(
        text.contains("ROTATOR_IT_DEBUG_SECRET_ID") && text.contains("approle"),
        "{text}"
    );
    assert!(!text.contains("debug-secret-id-value"), "{text}");
}
