//! Logging in: tokens from env and file, AppRole, re-login when Vault drops the token.

use rotator_core::{Precondition, SinkError, TokenSink, WriteOptions};
use rotator_sink_vault::{AuthConfig, VaultSink};
use rotator_testkit::peers::openbao::OpenBao;

use crate::support::{
    check_error, config, document, error_text, token_sink, unique, write_new, TokenFile,
};

fn approle_auth(mount: &str, role: &TokenFile, secret: &TokenFile) -> AuthConfig {
    AuthConfig::Approle {
        role_id_env: None,
        role_id_file: Some(role.path.clone()),
        secret_id_env: None,
        secret_id_file: Some(secret.path.clone()),
        mount: mount.to_owned(),
    }
}

#[tokio::test]
async fn token_from_an_environment_variable() {
    let bao = OpenBao::shared();
    let token = bao.create_token(&["root"], None).await;
    let var = unique("ROTATOR_IT_TOKEN").replace('-', "_").to_uppercase();
    std::env::set_var(&var, &token);
    let auth = AuthConfig::Token {
        token_env: Some(var.clone()),
        token_file: None,
    };
    let sink = VaultSink::new(config(bao, "secret", 2, auth)).unwrap();
    sink.check().await.unwrap();
    let key = unique("env");
    write_new(&sink, &key, "v").await;
    assert!(sink.read(&key).await.unwrap().unwrap().managed);

    let missing = unique("ROTATOR_IT_UNSET").replace('-', "_").to_uppercase();
    let auth = AuthConfig::Token {
        token_env: Some(missing.clone()),
        token_file: None,
    };
    let err = check_error(bao, auth).await;
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("environment variable {missing}")),
        "{err}"
    );
    std::env::remove_var(&var);
}

#[tokio::test]
async fn token_file_is_read_again_when_vault_refuses_the_cached_token() {
    let bao = OpenBao::shared();
    let first = bao.create_token(&["root"], None).await;
    let (sink, file) = token_sink(bao, "secret", 2, &first);
    let key = unique("file");
    write_new(&sink, &key, "v").await;

    // Vault Agent (say) rotates the token: the old one is revoked, the file rewritten.
    bao.revoke_token(&first).await;
    let second = bao.create_token(&["root"], None).await;
    file.replace(&second);
    assert!(sink.read(&key).await.unwrap().is_some());

    // Revoked without a replacement: a clear error that names the file, not the token.
    bao.revoke_token(&second).await;
    let err = sink.read(&key).await.unwrap_err();
    let text = error_text(&err);
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains("refused the token from auth.token_file"),
        "{text}"
    );
    assert!(!text.contains(&second) && !text.contains(&first), "{text}");
}

#[tokio::test]
async fn approle_logs_in_lazily_and_again_after_its_token_is_revoked() {
    let bao = OpenBao::shared();
    let policy = unique("rw");
    bao.put_policy(
        &policy,
        r#"path "secret/*" { capabilities = ["create", "read", "update"] }"#,
    )
    .await;
    let mount = unique("approle");
    let (role_id, secret_id) = bao.approle(&mount, "rotator", &[&policy], "1h").await;
    let (role, secret) = (TokenFile::new(&role_id), TokenFile::new(&secret_id));
    let sink = VaultSink::new(config(
        bao,
        "secret",
        2,
        approle_auth(&mount, &role, &secret),
    ))
    .unwrap();
    let key = unique("approle");
    let v1 = write_new(&sink, &key, "v").await;

    // The token expires (here: is revoked) mid-run; the next request logs in again.
    bao.revoke_logins(&mount).await;
    let v2 = sink
        .write(
            &key,
            &document("w"),
            &WriteOptions::new(Precondition::Version(v1)),
        )
        .await
        .unwrap();
    assert_eq!(sink.read(&key).await.unwrap().unwrap().version, v2);
    let debug = format!("{sink:?}");
    assert!(
        !debug.contains(&secret_id) && !debug.contains(&role_id),
        "{debug}"
    );
}

#[tokio::test]
async fn a_wrong_secret_id_is_unauthorized_and_not_echoed() {
    let bao = OpenBao::shared();
    let mount = unique("approle");
    let (role_id, _) = bao.approle(&mount, "rotator", &["default"], "1h").await;
    let wrong = "00000000-wrong-secret-id-value";
    let (role, secret) = (TokenFile::new(&role_id), TokenFile::new(wrong));
    let sink = VaultSink::new(config(
        bao,
        "secret",
        2,
        approle_auth(&mount, &role, &secret),
    ))
    .unwrap();
    let err = sink.read("alation/x").await.unwrap_err();
    let text = error_text(&err);
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains(&format!("refused the approle login at auth/{mount}/login")),
        "{text}"
    );
    assert!(!text.contains(wrong) && !text.contains(&role_id), "{text}");

    // A mount without AppRole says so.
    let auth = approle_auth("no-such-approle", &role, &secret);
    let err = check_error(bao, auth).await;
    assert!(
        err.to_string()
            .contains("that the approle auth method is enabled at auth/no-such-approle"),
        "{err}"
    );
}

#[tokio::test]
async fn kubernetes_login_reads_the_jwt_file_and_posts_to_its_mount() {
    // No Kubernetes API here: a Kubernetes auth method that cannot verify the token refuses
    // it, which shows the request reached auth/<mount>/login with role and JWT.
    let bao = OpenBao::shared();
    let mount = unique("k8s");
    bao.enable_auth(&mount, "kubernetes").await;
    bao.root(
        reqwest::Method::POST,
        &format!("auth/{mount}/config"),
        Some(serde_json::json!({
            "kubernetes_host": "https://127.0.0.1:1",
            "disable_local_ca_jwt": true,
            // Any CA will do: the login fails before the API server is contacted or when
            // it cannot be reached. (A public root, ISRG Root X2.)
            "kubernetes_ca_cert": include_str!("public-ca.pem"),
        })),
    )
    .await;
    bao.root(
        reqwest::Method::POST,
        &format!("auth/{mount}/role/rotator"),
        Some(serde_json::json!({
            "bound_service_account_names": ["alation-rotator"],
            "bound_service_account_namespaces": ["jobs"],
            "token_policies": ["default"],
        })),
    )
    .await;
    let jwt = TokenFile::new("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.not-a-real-signature");
    let auth = AuthConfig::Kubernetes {
        role: "rotator".into(),
        jwt_file: jwt.path.clone(),
        mount: mount.clone(),
    };
    let err = check_error(bao, auth).await;
    let text = error_text(&err);
    assert!(text.contains(&format!("auth/{mount}/login")), "{text}");
    assert!(!text.contains("not-a-real-signature"), "{text}");

    // A missing service-account token file is named.
    let auth = AuthConfig::Kubernetes {
        role: "rotator".into(),
        jwt_file: "/nonexistent/token".into(),
        mount,
    };
    let err = check_error(bao, auth).await;
    assert!(
        err.to_string()
            .contains("cannot read auth.jwt_file /nonexistent/token"),
        "{err}"
    );
}

#[tokio::test]
async fn jwt_login_reads_the_jwt_from_the_environment_and_posts_to_its_mount() {
    // A JWT method that trusts one public key (whose private key was thrown away): a JWT
    // not signed by it is refused, which shows the request reached auth/<mount>/login.
    let bao = OpenBao::shared();
    let mount = unique("jwt");
    bao.enable_auth(&mount, "jwt").await;
    bao.root(
        reqwest::Method::POST,
        &format!("auth/{mount}/config"),
        Some(serde_json::json!({
            "jwt_validation_pubkeys": [include_str!("jwt-public-key.pem")],
        })),
    )
    .await;
    bao.root(
        reqwest::Method::POST,
        &format!("auth/{mount}/role/rotator"),
        Some(serde_json::json!({
            "role_type": "jwt",
            "user_claim": "sub",
            "bound_audiences": ["alation-rotator"],
            "token_policies": ["default"],
        })),
    )
    .await;
    let var = unique("ROTATOR_IT_JWT").replace('-', "_").to_uppercase();
    let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4IiwiYXVkIjoiYWxhdGlvbi1yb3RhdG9yIn0.bm90LXNpZ25lZA";
    std::env::set_var(&var, jwt);
    let auth = AuthConfig::Jwt {
        role: Some("rotator".into()),
        jwt_env: Some(var.clone()),
        jwt_file: None,
        mount: mount.clone(),
    };
    let err = check_error(bao, auth).await;
    std::env::remove_var(&var);
    let text = error_text(&err);
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains(&format!("refused the jwt login at auth/{mount}/login")),
        "{text}"
    );
    assert!(
        !text.contains(jwt) && !text.contains("bm90LXNpZ25lZA"),
        "{text}"
    );
}
