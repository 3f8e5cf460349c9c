//! Logging in: tokens from env and file, AppRole, Kubernetes, JWT, userpass, TLS
//! certificates, AWS IAM; re-login when Vault drops the token.

use reqwest::Method;
use rotator_core::{Precondition, SinkError, TokenSink, WriteOptions};
use rotator_sink_vault::{AuthConfig, VaultSink};
use rotator_testkit::peers::moto::Moto;
use rotator_testkit::peers::openbao::OpenBao;
use serde_json::json;

use crate::proxy::{AwsLogin, CountingProxy};

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

/// A policy that lets a token write and read KV v2 secrets under `secret/<prefix>/`.
fn kv_policy(prefix: &str) -> String {
    format!(
        r#"
path "secret/data/{prefix}/*" {{ capabilities = ["create", "read", "update"] }}
path "secret/metadata/{prefix}/*" {{ capabilities = ["create", "read", "update"] }}
"#
    )
}

#[tokio::test]
async fn userpass_logs_in_with_its_password_and_a_wrong_one_is_refused_unquoted() {
    let bao = OpenBao::shared();
    let mount = unique("userpass");
    bao.enable_auth(&mount, "userpass").await;
    let prefix = unique("up");
    let policy = unique("userpass-policy");
    bao.put_policy(&policy, &kv_policy(&prefix)).await;
    let password = unique("userpass-password");
    bao.root(
        Method::POST,
        &format!("auth/{mount}/users/rotator"),
        Some(json!({ "password": password, "token_policies": [policy] })),
    )
    .await;
    let file = TokenFile::new(&password);
    let auth = AuthConfig::Userpass {
        username: "rotator".into(),
        password_env: None,
        password_file: Some(file.path.clone()),
        mount: mount.clone(),
    };
    let sink = VaultSink::new(config(bao, "secret", 2, auth)).unwrap();
    sink.check().await.unwrap();
    let key = format!("{prefix}/token");
    write_new(&sink, &key, "userpass-value").await;
    assert!(sink.read(&key).await.unwrap().unwrap().managed);

    let var = unique("ROTATOR_IT_PASSWORD")
        .replace('-', "_")
        .to_uppercase();
    let wrong = unique("wrong-password-value");
    std::env::set_var(&var, &wrong);
    let auth = AuthConfig::Userpass {
        username: "rotator".into(),
        password_env: Some(var.clone()),
        password_file: None,
        mount: mount.clone(),
    };
    let err = check_error(bao, auth).await;
    std::env::remove_var(&var);
    let text = error_text(&err);
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains(&format!(
            "refused the userpass login at auth/{mount}/login/rotator"
        )) && text.contains("check `auth.username` and the password"),
        "{text}"
    );
    assert!(
        !text.contains(&wrong) && !text.contains(&password),
        "{text}"
    );
}

/// A client CA, and a certificate for the rotator it signed.
struct ClientCert {
    ca_pem: String,
    cert: TokenFile,
    key: TokenFile,
}

fn client_cert(common_name: &str) -> ClientCert {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{common_name} CA"));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, &ca).unwrap();
    ClientCert {
        ca_pem: ca.pem(),
        cert: TokenFile::new(&cert.pem()),
        key: TokenFile::new(&key.serialize_pem()),
    }
}

#[tokio::test]
async fn cert_login_selects_the_named_role() {
    // A TLS-only OpenBao; two certificate roles trust the same client CA with different
    // policies, so which one the login gets shows that `name` reached Vault (vaultrs's own
    // cert login sends it as `cert_name`, which Vault ignores).
    let bao = OpenBao::start_tls();
    let mount = unique("cert");
    bao.enable_auth(&mount, "cert").await;
    let client = client_cert("alation-rotator");
    let mut prefixes = Vec::new();
    for role in ["role-a", "role-b"] {
        let prefix = unique(role);
        let policy = unique(role);
        bao.put_policy(&policy, &kv_policy(&prefix)).await;
        bao.root(
            Method::POST,
            &format!("auth/{mount}/certs/{role}"),
            Some(json!({ "certificate": client.ca_pem, "token_policies": [policy] })),
        )
        .await;
        prefixes.push(prefix);
    }
    let auth = |name: &str| AuthConfig::Cert {
        cert_file: client.cert.path.clone(),
        key_file: client.key.path.clone(),
        name: Some(name.to_owned()),
        mount: mount.clone(),
    };
    let ca_file = bao.ca_file.clone().unwrap();

    // role-b, trusting the server through ca_file.
    let mut cfg = config(&bao, "secret", 2, auth("role-b"));
    cfg.ca_file = Some(ca_file.clone());
    let sink = VaultSink::new(cfg).unwrap();
    sink.check().await.unwrap();
    write_new(&sink, &format!("{}/token", prefixes[1]), "cert-b").await;
    let err = sink
        .write(
            &format!("{}/token", prefixes[0]),
            &document("cert-a"),
            &WriteOptions::new(Precondition::Any),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{err}");

    // role-a, trusting the server through VAULT_CACERT.
    let mut cfg = config(&bao, "secret", 2, auth("role-a"));
    cfg.ca_file = None;
    let ca = ca_file.display().to_string();
    let resolved = cfg
        .resolve(|name| (name == "VAULT_CACERT").then(|| ca.clone()))
        .unwrap();
    let sink = VaultSink::new(resolved).unwrap();
    write_new(&sink, &format!("{}/token", prefixes[0]), "cert-a").await;
    let err = sink
        .write(
            &format!("{}/token", prefixes[1]),
            &document("cert-b"),
            &WriteOptions::new(Precondition::Any),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{err}");

    // A certificate no role trusts is refused, and the message says what to check.
    let stranger = client_cert("stranger");
    let mut cfg = config(
        &bao,
        "secret",
        2,
        AuthConfig::Cert {
            cert_file: stranger.cert.path.clone(),
            key_file: stranger.key.path.clone(),
            name: None,
            mount: mount.clone(),
        },
    );
    cfg.ca_file = Some(ca_file);
    let err = VaultSink::new(cfg).unwrap().check().await.unwrap_err();
    let text = error_text(&err);
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains(&format!("refused the cert login at auth/{mount}/login"))
            && text.contains("trusts the certificate in `auth.cert_file`"),
        "{text}"
    );

    // Key material that is not PEM is named, not quoted.
    let garbage = TokenFile::new("not-a-private-key-value");
    let err = VaultSink::new(config(
        &bao,
        "secret",
        2,
        AuthConfig::Cert {
            cert_file: client.cert.path.clone(),
            key_file: garbage.path.clone(),
            name: None,
            mount,
        },
    ))
    .unwrap_err();
    let text = error_text(&err);
    assert!(text.contains("must hold a PEM certificate"), "{text}");
    assert!(!text.contains("not-a-private-key-value"), "{text}");
}

/// Sends an IAM query-API action to moto, which routes it by the credential scope.
async fn moto_iam(moto: &Moto, params: &[(&str, &str)]) -> String {
    let answer = reqwest::Client::new()
        .post(format!("{}/", moto.url))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20300101/us-east-1/iam/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .form(params)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "moto IAM {params:?}");
    answer.text().await.unwrap()
}

fn xml_field(xml: &str, name: &str) -> String {
    xml.split(&format!("<{name}>"))
        .nth(1)
        .and_then(|rest| rest.split(&format!("</{name}>")).next())
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
        .to_owned()
}

#[tokio::test]
async fn aws_login_signs_get_caller_identity_with_the_aws_chains_credentials() {
    // OpenBao ships no AWS auth method, so the proxy stands in for Vault's: it checks the
    // login as Vault's server does and sends the signed request to moto's STS, which
    // verifies the SigV4 signature against the IAM user's secret key (moto's access control
    // is on). The token it answers with is a real OpenBao token. The only test that sets
    // AWS_* variables in this process.
    let bao = OpenBao::shared();
    let moto = Moto::start();
    let user = unique("rotator");
    moto_iam(
        &moto,
        &[
            ("Action", "CreateUser"),
            ("UserName", &user),
            ("Version", "2010-05-08"),
        ],
    )
    .await;
    let key = moto_iam(
        &moto,
        &[
            ("Action", "CreateAccessKey"),
            ("UserName", &user),
            ("Version", "2010-05-08"),
        ],
    )
    .await;
    let (key_id, secret_key) = (
        xml_field(&key, "AccessKeyId"),
        xml_field(&key, "SecretAccessKey"),
    );
    let reset = reqwest::Client::new()
        .post(format!("{}/moto-api/reset-auth", moto.url))
        .body("0")
        .send()
        .await
        .unwrap();
    assert!(reset.status().is_success());

    let prefix = unique("aws");
    let policy = unique("aws-policy");
    bao.put_policy(&policy, &kv_policy(&prefix)).await;
    let proxy = CountingProxy::start_with(
        &bao.addr,
        &bao.root_token,
        Some(AwsLogin {
            mount: "aws".into(),
            role: "rotator".into(),
            sts_url: moto.url.clone(),
            bound_arn: format!("arn:aws:iam::123456789012:user/{user}"),
            server_id: "vault.test".into(),
            policies: vec![policy],
        }),
    )
    .await;
    for name in rotator_testkit::peers::moto::ENV_TO_REMOVE {
        std::env::remove_var(name);
    }
    std::env::set_var("AWS_ACCESS_KEY_ID", &key_id);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &secret_key);
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/dev/null");
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    let aws = |server_id: &str| AuthConfig::Aws {
        role: Some("rotator".into()),
        region: None,
        sts_endpoint: Some(moto.url.clone()),
        server_id: Some(server_id.to_owned()),
        mount: "aws".into(),
    };
    let mut cfg = config(bao, "secret", 2, aws("vault.test"));
    cfg.address = Some(proxy.url.clone());
    let sink = VaultSink::new(cfg.clone()).unwrap();
    sink.check().await.unwrap();
    write_new(&sink, &format!("{prefix}/token"), "aws-value").await;
    assert!(proxy.take().contains(&"POST auth/aws/login".to_owned()));

    // A server ID other than Vault's is refused by the stand-in, like by Vault.
    let mut other = cfg.clone();
    other.auth = aws("another-vault");
    let err = VaultSink::new(other).unwrap().check().await.unwrap_err();
    assert!(
        err.to_string()
            .contains("refused the aws login at auth/aws/login"),
        "{err}"
    );

    // A wrong secret key signs a request STS refuses.
    let wrong = unique("wrong-secret-access-key");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &wrong);
    let err = VaultSink::new(cfg).unwrap().check().await.unwrap_err();
    let text = error_text(&err);
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{text}");
    assert!(
        text.contains("refused the aws login at auth/aws/login")
            && text.contains("bound_iam_principal_arn"),
        "{text}"
    );
    assert!(
        !text.contains(&wrong) && !text.contains(&secret_key),
        "{text}"
    );

    // A real OpenBao without the AWS method: the login went to auth/aws/login and the
    // message says to enable the method there.
    let err = check_error(bao, aws("vault.test")).await;
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        std::env::remove_var(name);
    }
    assert!(
        err.to_string()
            .contains("aws auth method is enabled at auth/aws"),
        "{err}"
    );
}
