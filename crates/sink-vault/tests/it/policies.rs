//! The policies published in docs/stores/vault.md, enforced by a real OpenBao server.

use reqwest::Method;
use rotator_core::{Precondition, SinkError, TokenSink, WriteOptions};
use rotator_sink_vault::{AuthConfig, VaultSink};
use rotator_testkit::peers::openbao::OpenBao;

use crate::support::{config, document, error_text, token_sink, unique, write_new, TokenFile};

const DOCS: &str = include_str!("../../../../docs/stores/vault.md");

/// The HCL block that follows `<!-- policy: NAME -->` in the docs.
fn docs_policy(name: &str) -> &'static str {
    let marker = format!("<!-- policy: {name} -->");
    let after = &DOCS[DOCS
        .find(&marker)
        .unwrap_or_else(|| panic!("{marker} not in vault.md"))..];
    let start = after.find("```hcl\n").expect("hcl block after the marker") + "```hcl\n".len();
    let end = after[start..].find("```").expect("end of the hcl block");
    &after[start..start + end]
}

/// A sink that logs in with AppRole at a fresh mount, with `policies`.
async fn approle_sink(
    bao: &OpenBao,
    policies: &[&str],
) -> (VaultSink, TokenFile, TokenFile, String) {
    let mount = unique("approle");
    let (role_id, secret_id) = bao.approle(&mount, "rotator", policies, "1h").await;
    let (role_file, secret_file) = (TokenFile::new(&role_id), TokenFile::new(&secret_id));
    let auth = AuthConfig::Approle {
        role_id_env: None,
        role_id_file: Some(role_file.path.clone()),
        secret_id_env: None,
        secret_id_file: Some(secret_file.path.clone()),
        mount: mount.clone(),
    };
    let sink = VaultSink::new(config(bao, "secret", 2, auth)).unwrap();
    (sink, role_file, secret_file, mount)
}

#[tokio::test]
async fn approle_with_the_documented_rotator_policy_rotates() {
    let bao = OpenBao::shared();
    let policy = unique("rotator");
    bao.put_policy(&policy, docs_policy("rotator")).await;
    let (sink, _r, _s, _mount) = approle_sink(bao, &[&policy]).await;

    sink.check().await.unwrap();
    let access = format!("alation/{}", unique("it"));
    let state = format!("alation/state/{}", unique("it"));
    for key in [&access, &state] {
        let v1 = write_new(&sink, key, "first-value").await;
        let v2 = sink
            .write(
                key,
                &document("second-value"),
                &WriteOptions::new(Precondition::Version(v1)),
            )
            .await
            .unwrap();
        let stored = sink.read(key).await.unwrap().unwrap();
        assert_eq!(stored.version, v2);
        assert!(stored.managed);
        assert_eq!(stored.document, document("second-value"));
        let previous = sink.read_previous(key).await.unwrap().unwrap();
        assert_eq!(previous.document, document("first-value"));
    }

    // Outside alation/ the policy grants nothing.
    let err = sink
        .write(
            "elsewhere/x",
            &document("v"),
            &WriteOptions::new(Precondition::Any),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{err}");
}

#[tokio::test]
async fn a_policy_that_denies_write_gives_a_clear_error_and_writes_nothing() {
    let bao = OpenBao::shared();
    let policy = unique("read-only");
    bao.put_policy(
        &policy,
        r#"
path "secret/data/alation/*" { capabilities = ["read"] }
path "secret/metadata/alation/*" { capabilities = ["read"] }
"#,
    )
    .await;
    let (sink, _r, secret_file, _mount) = approle_sink(bao, &[&policy]).await;
    let secret_id = std::fs::read_to_string(&secret_file.path).unwrap();
    let key = format!("alation/{}", unique("denied"));

    let err = sink
        .write(
            &key,
            &document("never-written-value"),
            &WriteOptions::new(Precondition::Any),
        )
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{text}");
    assert!(text.contains("permission denied"), "{text}");
    assert!(text.contains(r#"["create", "update"]"#), "{text}");
    assert!(
        text.contains(&format!("secret/metadata/{key}"))
            || text.contains(&format!("secret/data/{key}")),
        "{text}"
    );
    assert!(text.contains(r#"grant ["read"] there"#), "{text}");
    let all = error_text(&err);
    assert!(
        !all.contains("never-written-value") && !all.contains(secret_id.trim()),
        "{all}"
    );

    // Nothing at all was written: no data, no metadata.
    for path in [
        format!("secret/data/{key}"),
        format!("secret/metadata/{key}"),
    ] {
        let (status, _) = bao.request_as(None, Method::GET, &path, None).await;
        assert_eq!(status, 404, "{path} exists after a refused write");
    }
}

#[tokio::test]
async fn the_documented_consumer_policy_reads_the_access_token_but_not_the_refresh_token() {
    let bao = OpenBao::shared();
    // The key names of the docs' example.
    let (rotator, _token) = token_sink(bao, "secret", 2, &bao.root_token);
    for key in ["alation/tableau-prod", "alation/state/tableau-prod"] {
        rotator
            .write(
                key,
                &document("consumer-test"),
                &WriteOptions::new(Precondition::Any),
            )
            .await
            .unwrap();
    }
    let policy = unique("consumer");
    bao.put_policy(&policy, docs_policy("consumer")).await;
    let consumer = bao.create_token(&[&policy], None).await;

    // Enforced by OpenBao on the raw API, as `vault kv get` would call it...
    let (status, body) = bao
        .request_as(
            Some(&consumer),
            Method::GET,
            "secret/data/alation/tableau-prod",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["data"]["api_access_token"], "consumer-test");
    let (status, _) = bao
        .request_as(
            Some(&consumer),
            Method::GET,
            "secret/data/alation/state/tableau-prod",
            None,
        )
        .await;
    assert_eq!(
        status, 403,
        "the consumer policy must not reach the refresh token"
    );

    // ...and through the sink, with a clear error.
    let (sink, _t) = token_sink(bao, "secret", 2, &consumer);
    assert!(sink.read("alation/tableau-prod").await.unwrap().is_some());
    let err = sink.read("alation/state/tableau-prod").await.unwrap_err();
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(r#"["read"] on secret/data/alation/state/tableau-prod"#),
        "{err}"
    );
}
