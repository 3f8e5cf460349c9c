//! Vault sealed, stopped or misconfigured; deleted versions; metadata; secrets never shown.

use reqwest::Method;
use rotator_core::{
    AccessTokenDocument, Precondition, SinkError, TokenSink, TokenSinkExt, WriteOptions,
};
use rotator_sink_vault::VaultSink;
use rotator_testkit::peers::openbao::OpenBao;
use secrecy::SecretString;
use serde_json::json;

use crate::support::{
    config, document, error_text, kv1_mount, token_sink, unique, write_new, TokenFile,
};

#[tokio::test]
async fn a_sealed_vault_is_unavailable_and_says_sealed() {
    let bao = OpenBao::start();
    let (sink, _t) = token_sink(&bao, "secret", 2, &bao.root_token);
    let key = unique("sealed");
    write_new(&sink, &key, "v").await;
    bao.seal().await;
    for err in [
        sink.read(&key).await.unwrap_err(),
        sink.write(&key, &document("w"), &WriteOptions::new(Precondition::Any))
            .await
            .unwrap_err(),
        sink.check().await.unwrap_err(),
    ] {
        assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
        assert!(err.is_retryable());
        assert!(
            err.to_string()
                .contains(&format!("Vault at {} is sealed", bao.addr)),
            "{err}"
        );
    }
}

#[tokio::test]
async fn a_stopped_vault_is_unavailable_and_names_the_address() {
    let bao = OpenBao::start();
    let (sink, _t) = token_sink(&bao, "secret", 2, &bao.root_token);
    let key = unique("stopped");
    write_new(&sink, &key, "v").await;
    bao.stop();
    // The first request may meet the connection the server closed, the next one finds
    // nothing listening; both name the address.
    for err in [
        sink.read(&key).await.unwrap_err(),
        sink.check().await.unwrap_err(),
    ] {
        assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("Vault at {}", bao.addr)),
            "{err}"
        );
    }
    let err = sink.read(&key).await.unwrap_err().to_string();
    assert!(
        err.contains(&format!("cannot connect to Vault at {}", bao.addr)),
        "{err}"
    );
    assert!(err.contains("check `address`"), "{err}");
}

#[tokio::test]
async fn a_missing_mount_or_a_wrong_kv_version_is_named() {
    let bao = OpenBao::shared();
    let (sink, _t) = token_sink(bao, "no-such-mount", 2, &bao.root_token);
    let err = sink.read("alation/x").await.unwrap_err();
    assert!(matches!(err, SinkError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("no KV secrets engine is mounted at no-such-mount/"),
        "{err}"
    );

    let (sink, _t) = token_sink(bao, kv1_mount().await, 2, &bao.root_token);
    let err = sink
        .write(
            "alation/x",
            &document("v"),
            &WriteOptions::new(Precondition::Any),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("is version 1 but the store is configured with kv_version = 2"),
        "{err}"
    );
    let err = sink.check().await.unwrap_err();
    assert!(err.to_string().contains("set kv_version = 1"), "{err}");
}

#[tokio::test]
async fn deleted_or_destroyed_latest_versions_read_as_absent_and_can_be_written_again() {
    let bao = OpenBao::shared();
    let (sink, _t) = token_sink(bao, "secret", 2, &bao.root_token);
    let key = unique("deleted");
    let v1 = write_new(&sink, &key, "a").await;
    bao.root(Method::DELETE, &format!("secret/data/{key}"), None)
        .await;
    assert!(sink.read(&key).await.unwrap().is_none());
    let err = sink
        .write(
            &key,
            &document("b"),
            &WriteOptions::new(Precondition::Version(v1)),
        )
        .await
        .unwrap_err();
    assert!(err.is_conflict(), "{err}");
    let v2 = write_new(&sink, &key, "b").await;
    assert_eq!(v2.as_str(), "2");
    bao.root(
        Method::PUT,
        &format!("secret/destroy/{key}"),
        Some(json!({ "versions": [2] })),
    )
    .await;
    assert!(sink.read(&key).await.unwrap().is_none());
    let v3 = sink
        .write(&key, &document("c"), &WriteOptions::new(Precondition::Any))
        .await
        .unwrap();
    assert_eq!(sink.read(&key).await.unwrap().unwrap().version, v3);
}

#[tokio::test]
async fn custom_metadata_holds_the_marker_and_labels_and_keeps_other_keys() {
    let bao = OpenBao::shared();
    let (sink, _t) = token_sink(bao, "secret", 2, &bao.root_token);
    let key = format!("alation/{}", unique("labels"));
    let access = AccessTokenDocument::new(
        SecretString::from("labels-secret-value"),
        Some(102),
        "2030-01-01T00:00:00Z".parse().unwrap(),
        "2030-01-02T00:00:00Z".parse().unwrap(),
        "https://alation.example.com",
        "tableau-prod",
    );
    sink.write_as(&key, &access, Precondition::Absent, false)
        .await
        .unwrap();
    let path = format!("secret/metadata/{key}");
    let custom = bao.root(Method::GET, &path, None).await["data"]["custom_metadata"].clone();
    assert_eq!(
        custom,
        json!({
            "managed-by": "alation-rotator",
            "integration": "tableau-prod",
            "token-expires-at": "2030-01-02T00:00:00Z",
        })
    );
    // An operator's own key survives the next write.
    let mut with_owner = custom.as_object().unwrap().clone();
    with_owner.insert("owner".into(), "team-bi".into());
    bao.root(
        Method::POST,
        &path,
        Some(json!({ "custom_metadata": with_owner })),
    )
    .await;
    let mut later = access.clone();
    later.token_expires_at = "2030-01-03T00:00:00Z".parse().unwrap();
    let stored = sink
        .read_as::<AccessTokenDocument>(&key)
        .await
        .unwrap()
        .unwrap();
    sink.write_as(&key, &later, Precondition::Version(stored.version), false)
        .await
        .unwrap();
    // custom_metadata is written when the secret is created or adopted, not on every
    // write: the owner's key stays, and so do the labels of the first write.
    let custom = bao.root(Method::GET, &path, None).await["data"]["custom_metadata"].clone();
    assert_eq!(custom["owner"], "team-bi");
    assert_eq!(custom["managed-by"], "alation-rotator");
    assert_eq!(custom["token-expires-at"], "2030-01-02T00:00:00Z");
    // Consumers read plain fields.
    let data = bao
        .root(Method::GET, &format!("secret/data/{key}"), None)
        .await;
    assert_eq!(
        data["data"]["data"]["api_access_token"],
        "labels-secret-value"
    );
    assert_eq!(data["data"]["data"]["user_id"], 102);
}

#[tokio::test]
async fn no_secret_in_debug_or_errors_after_login() {
    let bao = OpenBao::shared();
    let token_value = unique("distinctive-token");
    let token = bao.create_token(&["default"], Some(&token_value)).await;
    assert_eq!(token, token_value);
    let file = TokenFile::new(&token);
    let cfg = config(bao, "secret", 2, file.auth());
    let sink = VaultSink::new(cfg.clone()).unwrap();
    // The default policy grants nothing under secret/: a permission error.
    let err = sink
        .write(
            "alation/x",
            &document("document-secret-value"),
            &WriteOptions::new(Precondition::Any),
        )
        .await
        .unwrap_err();
    let text = format!(
        "{}\n{sink:?}\n{cfg:?}\n{}",
        error_text(&err),
        sink.describe()
    );
    assert!(matches!(err, SinkError::Unauthorized { .. }), "{text}");
    assert!(!text.contains(&token_value), "{text}");
    assert!(!text.contains("document-secret-value"), "{text}");
    let err = sink.check().await.unwrap_err();
    assert!(
        err.to_string().contains("grants nothing under secret/"),
        "{err}"
    );
}

#[tokio::test]
async fn namespaces_are_sent_with_every_request() {
    let bao = OpenBao::shared();
    let ns = unique("team");
    bao.root(Method::POST, &format!("sys/namespaces/{ns}"), None)
        .await;
    bao.root(
        Method::POST,
        &format!("{ns}/sys/mounts/secret"),
        Some(json!({ "type": "kv", "options": { "version": "2" } })),
    )
    .await;
    let file = TokenFile::new(&bao.root_token);
    let mut cfg = config(bao, "secret", 2, file.auth());
    cfg.namespace = Some(ns.clone());
    let sink = VaultSink::new(cfg).unwrap();
    sink.check().await.unwrap();
    let key = unique("ns");
    write_new(&sink, &key, "ns-value").await;
    let data = bao
        .root(Method::GET, &format!("{ns}/secret/data/{key}"), None)
        .await;
    assert_eq!(data["data"]["data"]["api_access_token"], "ns-value");
    // Not in the root namespace.
    let (status, _) = bao
        .request_as(None, Method::GET, &format!("secret/data/{key}"), None)
        .await;
    assert_eq!(status, 404);
    assert!(sink.describe().contains(&format!("namespace {ns}")));
}
