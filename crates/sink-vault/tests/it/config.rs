//! Configuration: TOML shape, defaults, validation, Debug.

use std::time::Duration;

use reqwest::Method;
use rotator_core::TokenSink;
use rotator_sink_vault::{validate_key, AuthConfig, Config, VaultSink};
use rotator_testkit::peers::openbao::OpenBao;
use serde_json::json;

use crate::support::{unique, write_new, TokenFile};

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

#[test]
fn aws_cert_and_userpass_parse_with_their_defaults() {
    let aws = parse(
        "address = \"https://v\"\nauth = { method = \"aws\", role = \"rotator\", server_id = \"vault.example.com\" }",
    )
    .unwrap();
    aws.validate().unwrap();
    assert_eq!(
        aws.auth,
        AuthConfig::Aws {
            role: Some("rotator".into()),
            region: None,
            sts_endpoint: None,
            server_id: Some("vault.example.com".into()),
            mount: "aws".into(),
        }
    );
    let cert = parse(
        "address = \"https://v\"\nauth = { method = \"cert\", cert_file = \"/c.pem\", key_file = \"/k.pem\", name = \"rotator\" }",
    )
    .unwrap();
    cert.validate().unwrap();
    assert_eq!(cert.auth.mount(), Some("cert"));
    let userpass = parse(
        "address = \"https://v\"\nauth = { method = \"userpass\", username = \"rotator\", password_file = \"/run/secrets/pw\" }",
    )
    .unwrap();
    userpass.validate().unwrap();
    assert_eq!(userpass.auth.mount(), Some("userpass"));
    // Secrets never stand in the file.
    for text in [
        "address = \"https://v\"\nauth = { method = \"userpass\", username = \"u\", password = \"pw\" }",
        "address = \"https://v\"\nauth = { method = \"aws\", secret_access_key = \"k\" }",
    ] {
        let err = parse(text).unwrap_err().to_string();
        assert!(err.contains("unknown"), "{text}: {err}");
    }
}

#[test]
fn the_new_auth_methods_name_the_key_and_the_fix() {
    let cases: Vec<(AuthConfig, &str, &str)> = vec![
        (
            AuthConfig::Userpass {
                username: "rotator".into(),
                password_env: None,
                password_file: None,
                mount: "userpass".into(),
            },
            "`auth.password_env`",
            "password is required",
        ),
        (
            AuthConfig::Userpass {
                username: "a/b".into(),
                password_env: Some("PW".into()),
                password_file: None,
                mount: "userpass".into(),
            },
            "`auth.username`",
            "without '/'",
        ),
        (
            AuthConfig::Cert {
                cert_file: "".into(),
                key_file: "/k".into(),
                name: None,
                mount: "cert".into(),
            },
            "`auth.cert_file`",
            "client certificate",
        ),
        (
            AuthConfig::Aws {
                role: None,
                region: Some("EU West".into()),
                sts_endpoint: None,
                server_id: None,
                mount: "aws".into(),
            },
            "`auth.region`",
            "not an AWS region",
        ),
        (
            AuthConfig::Aws {
                role: None,
                region: None,
                sts_endpoint: Some("sts.amazonaws.com".into()),
                server_id: None,
                mount: "aws".into(),
            },
            "`auth.sts_endpoint`",
            "not an STS endpoint URL",
        ),
    ];
    for (auth, key, fix) in cases {
        let err = Config::new("https://vault:8200", auth)
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(key) && err.contains(fix), "{key}: {err}");
    }
}

/// An environment of the given variables only.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

#[test]
fn the_environment_fills_what_the_store_block_leaves_out() {
    // A block with no address and no auth: VAULT_ADDR, VAULT_NAMESPACE, VAULT_CACERT and
    // VAULT_TOKEN, as for the vault CLI.
    let config = parse("mount = \"kv\"").unwrap();
    config.validate().unwrap();
    assert_eq!(
        config.auth,
        AuthConfig::Token {
            token_env: None,
            token_file: None
        }
    );
    let resolved = config
        .resolve(env(&[
            ("VAULT_ADDR", "https://vault.example.com:8200"),
            ("VAULT_NAMESPACE", "team-a/"),
            ("VAULT_CACERT", "/etc/ssl/corp.pem"),
        ]))
        .unwrap();
    assert_eq!(
        resolved.address.as_deref(),
        Some("https://vault.example.com:8200")
    );
    assert_eq!(resolved.namespace.as_deref(), Some("team-a"));
    assert_eq!(
        resolved.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ssl/corp.pem"))
    );

    // What the block says wins; `namespace = ""` is the root namespace.
    let config = parse(
        "address = \"https://vault.internal:8200\"\nnamespace = \"\"\nca_file = \"/etc/vault-ca.pem\"",
    )
    .unwrap();
    let resolved = config
        .resolve(env(&[
            ("VAULT_ADDR", "https://other:8200"),
            ("VAULT_NAMESPACE", "team-a"),
            ("VAULT_CACERT", "/elsewhere.pem"),
        ]))
        .unwrap();
    assert_eq!(
        resolved.address.as_deref(),
        Some("https://vault.internal:8200")
    );
    assert_eq!(resolved.namespace.as_deref(), Some(""));
    assert_eq!(
        resolved.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/vault-ca.pem"))
    );
    // Resolving again changes nothing.
    let again = resolved.resolve(env(&[])).unwrap();
    assert_eq!(format!("{again:?}"), format!("{resolved:?}"));
}

#[test]
fn settings_from_the_environment_are_checked_and_named() {
    let config = parse("auth = { method = \"token\" }").unwrap();
    let err = config.resolve(env(&[])).unwrap_err();
    assert_eq!(err.key, "address");
    assert!(
        err.message.contains("`address`") && err.message.contains("VAULT_ADDR"),
        "{err}"
    );
    let err = config
        .resolve(env(&[("VAULT_ADDR", "http://vault.example.com:8200")]))
        .unwrap_err();
    assert!(
        err.message
            .contains("(from the environment variable VAULT_ADDR) is plain http://"),
        "{err}"
    );
    assert!(err.message.contains("allow_insecure_http"), "{err}");
    let err = config
        .resolve(env(&[
            ("VAULT_ADDR", "https://vault:8200"),
            ("VAULT_NAMESPACE", "team a"),
        ]))
        .unwrap_err();
    assert_eq!(err.key, "namespace");
    assert!(err.message.contains("VAULT_NAMESPACE"), "{err}");
    // An address with credentials is refused without being quoted.
    let err = config
        .resolve(env(&[("VAULT_ADDR", "https://user:hunter2@vault:8200")]))
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn vault_addr_and_vault_namespace_point_a_block_without_them_at_the_server() {
    let bao = OpenBao::shared();
    let ns = unique("envns");
    bao.root(Method::POST, &format!("sys/namespaces/{ns}"), None)
        .await;
    bao.root(
        Method::POST,
        &format!("{ns}/sys/mounts/secret"),
        Some(json!({ "type": "kv", "options": { "version": "2" } })),
    )
    .await;
    let token = TokenFile::new(&bao.root_token);
    let config = parse(&format!(
        "auth = {{ method = \"token\", token_file = \"{}\" }}",
        token.path.display()
    ))
    .unwrap();
    let resolved = config
        .resolve(env(&[("VAULT_ADDR", &bao.addr), ("VAULT_NAMESPACE", &ns)]))
        .unwrap();
    let sink = VaultSink::new(resolved).unwrap();
    sink.check().await.unwrap();
    let key = unique("from-env");
    write_new(&sink, &key, "env-value").await;
    let data = bao
        .root(Method::GET, &format!("{ns}/secret/data/{key}"), None)
        .await;
    assert_eq!(data["data"]["data"]["api_access_token"], "env-value");
    assert!(sink.describe().contains(&format!("namespace {ns}")));
}
