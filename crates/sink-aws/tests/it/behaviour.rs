//! AWS-specific behaviours: create and update paths, stages, tags, KMS, ownership, request
//! tokens, deletion, errors and secrecy.

use std::collections::BTreeMap;
use std::time::Duration;

use rotator_core::{Document, Precondition, SinkError, TokenSink, WriteOptions};
use rotator_sink_aws::{Config, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use serde_json::{json, Value};

use crate::proxy::{Fault, Proxy};
use crate::{moto, moto_config, raw_client, sink_with, unique_name};

pub const SECRET_MARK: &str = "aws-behaviour-secret-";

pub fn document(token: &str) -> Document {
    let Value::Object(fields) = json!({
        "api_access_token": format!("{SECRET_MARK}{token}"),
        "user_id": 102,
        "token_expires_at": "2030-01-02T03:04:05Z",
        "created_at": "2030-01-01T03:04:05Z",
        "base_url": "https://alation.example.com",
        "integration": "tableau-prod",
    }) else {
        unreachable!()
    };
    Document::new(fields)
}

pub fn labelled(precondition: Precondition) -> WriteOptions {
    WriteOptions {
        labels: BTreeMap::from([
            ("integration".to_owned(), "tableau-prod".to_owned()),
            (
                "token-expires-at".to_owned(),
                "2030-01-02T03:04:05Z".to_owned(),
            ),
        ]),
        ..WriteOptions::new(precondition)
    }
}

pub async fn tags_of(key: &str) -> BTreeMap<String, String> {
    let out = raw_client()
        .await
        .describe_secret()
        .secret_id(key)
        .send()
        .await
        .unwrap();
    out.tags()
        .iter()
        .map(|t| {
            (
                t.key().unwrap().to_owned(),
                t.value().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// `VersionId -> stages`, from `ListSecretVersionIds` (deprecated versions included).
pub async fn versions_of(key: &str) -> BTreeMap<String, Vec<String>> {
    let out = raw_client()
        .await
        .list_secret_version_ids()
        .secret_id(key)
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    out.versions()
        .iter()
        .map(|v| {
            (
                v.version_id().unwrap().to_owned(),
                v.version_stages().to_vec(),
            )
        })
        .collect()
}

pub fn sorted(stages: &[String]) -> Vec<String> {
    let mut stages = stages.to_vec();
    stages.sort();
    stages
}

pub fn assert_clean(what: &str, text: &str) {
    assert!(
        !text.contains(SECRET_MARK),
        "{what} shows a secret value: {text}"
    );
}

#[tokio::test]
async fn create_path_sets_kms_key_description_and_tags() {
    let kms = aws_sdk_kms::Client::new(&moto().sdk_config().await);
    let key_id = kms
        .create_key()
        .description("alation-rotator test key")
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    let sink = sink_with(Config {
        kms_key_id: Some(key_id.clone()),
        description: Some("Tableau's Alation token".into()),
        tags: BTreeMap::from([("team".into(), "data platform".into())]),
        ..moto_config()
    })
    .await;
    let key = unique_name("create");
    let version = sink
        .write(&key, &document("create"), &labelled(Precondition::Absent))
        .await
        .unwrap();

    let described = raw_client()
        .await
        .describe_secret()
        .secret_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(described.kms_key_id(), Some(key_id.as_str()));
    assert_eq!(described.description(), Some("Tableau's Alation token"));
    let tags = tags_of(&key).await;
    assert_eq!(
        tags.get("managed-by").map(String::as_str),
        Some("alation-rotator")
    );
    assert_eq!(tags.get("team").map(String::as_str), Some("data platform"));
    assert_eq!(
        tags.get("integration").map(String::as_str),
        Some("tableau-prod")
    );
    assert_eq!(
        tags.get("token-expires-at"),
        None,
        "the expiry changes with every write, so it is not kept as a tag"
    );

    let versions = versions_of(&key).await;
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[version.as_str()], vec![AWSCURRENT.to_owned()]);
    let stored = sink.read(&key).await.unwrap().unwrap();
    assert_eq!(stored.version, version);
    assert!(stored.managed);
    assert_eq!(stored.document, document("create"));
}

#[tokio::test]
async fn update_path_makes_the_new_version_current_and_the_old_previous() {
    let sink = sink_with(moto_config()).await;
    let key = unique_name("update");
    let v1 = sink
        .write(&key, &document("one"), &labelled(Precondition::Any))
        .await
        .unwrap();
    let v2 = sink
        .write(
            &key,
            &document("two"),
            &labelled(Precondition::Version(v1.clone())),
        )
        .await
        .unwrap();
    let v3 = sink
        .write(&key, &document("three"), &labelled(Precondition::Any))
        .await
        .unwrap();
    assert!(v1 != v2 && v2 != v3);

    let versions = versions_of(&key).await;
    assert_eq!(versions.len(), 3, "{versions:?}");
    // AWSPENDING stays with the current version (the next write moves it, which saves a
    // call), so it is never on a version consumers cannot see.
    assert_eq!(
        sorted(&versions[v3.as_str()]),
        vec![AWSCURRENT.to_owned(), AWSPENDING.to_owned()],
        "{versions:?}"
    );
    assert_eq!(
        versions[v2.as_str()],
        vec![AWSPREVIOUS.to_owned()],
        "{versions:?}"
    );
    assert!(versions[v1.as_str()].is_empty(), "{versions:?}");

    // What a consumer that cached the old token does: ask for AWSPREVIOUS.
    let previous = raw_client()
        .await
        .get_secret_value()
        .secret_id(&key)
        .version_stage(AWSPREVIOUS)
        .send()
        .await
        .unwrap();
    let previous = Document::from_slice(previous.secret_string().unwrap().as_bytes()).unwrap();
    assert_eq!(previous, document("two"));
    let stored = sink.read_previous(&key).await.unwrap().unwrap();
    assert_eq!((stored.document, stored.version), (document("two"), v2));
    assert_eq!(sink.read(&key).await.unwrap().unwrap().version, v3);
}

#[tokio::test]
async fn unmanaged_secret_is_refused_then_taken_over() {
    let sink = sink_with(moto_config()).await;
    let raw = raw_client().await;
    let key = unique_name("foreign");
    raw.create_secret()
        .name(&key)
        .secret_string(r#"{"api_access_token":"someone-elses"}"#)
        .tags(
            aws_sdk_secretsmanager::types::Tag::builder()
                .key("owner")
                .value("bob")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let before = sink.read(&key).await.unwrap().unwrap();
    assert!(!before.managed);

    let err = sink
        .write(&key, &document("mine"), &labelled(Precondition::Any))
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Unmanaged { .. }), "{err}");
    assert!(err.to_string().contains("takeover = true"), "{err}");
    let after = sink.read(&key).await.unwrap().unwrap();
    assert_eq!(
        (after.version, after.document),
        (before.version.clone(), before.document)
    );
    assert!(!tags_of(&key).await.contains_key("managed-by"));

    let options = WriteOptions {
        takeover: true,
        ..labelled(Precondition::Version(before.version))
    };
    let version = sink.write(&key, &document("mine"), &options).await.unwrap();
    let stored = sink.read(&key).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, stored.document),
        (version, document("mine"))
    );
    assert!(stored.managed);
    let tags = tags_of(&key).await;
    assert_eq!(
        tags.get("managed-by").map(String::as_str),
        Some("alation-rotator")
    );
    assert_eq!(
        tags.get("owner").map(String::as_str),
        Some("bob"),
        "user tags are kept"
    );
}

/// What the sink's retries rely on: AWS stores one version per `ClientRequestToken`, so a
/// request sent twice with the same token and document creates one version.
#[tokio::test]
async fn same_request_token_twice_stores_one_version() {
    let sink = sink_with(moto_config()).await;
    let raw = raw_client().await;
    let key = unique_name("token");
    sink.write(&key, &document("one"), &labelled(Precondition::Absent))
        .await
        .unwrap();
    let text = String::from_utf8(document("two").to_json_bytes()).unwrap();
    let token = "alation-rotator-0123abcd-0123456789abcdef0123456789abcdef";
    for _ in 0..2 {
        let out = raw
            .put_secret_value()
            .secret_id(&key)
            .secret_string(&text)
            .client_request_token(token)
            .send()
            .await
            .unwrap();
        assert_eq!(out.version_id(), Some(token));
    }
    assert_eq!(versions_of(&key).await.len(), 2);
}

/// The sink retries a put whose response was lost after moto applied it, with the same
/// token: one new version.
#[tokio::test]
async fn retried_put_after_a_lost_response_leaves_one_new_version() {
    for (name, staged) in [("retry-any", false), ("retry-cas", true)] {
        let key = unique_name(name);
        let setup = sink_with(moto_config()).await;
        let v1 = setup
            .write(&key, &document("one"), &labelled(Precondition::Any))
            .await
            .unwrap();

        let proxy = Proxy::start(moto().addr, &[("PutSecretValue", Fault::DropResponse(1))]).await;
        let sink = sink_with(Config {
            endpoint_url: Some(proxy.url.clone()),
            ..moto_config()
        })
        .await;
        let precondition = if staged {
            Precondition::Version(v1.clone())
        } else {
            Precondition::Any
        };
        let v2 = sink
            .write(&key, &document("two"), &labelled(precondition))
            .await
            .unwrap();
        let puts: Vec<_> = proxy
            .seen()
            .into_iter()
            .filter(|call| call.operation == "PutSecretValue")
            .collect();
        assert_eq!(puts.len(), 2, "{name}: the lost put was sent again");
        assert_eq!(
            puts[0].token, puts[1].token,
            "{name}: the retry carries the same ClientRequestToken"
        );
        assert_eq!(puts[0].token.as_deref(), Some(v2.as_str()), "{name}");

        let versions = versions_of(&key).await;
        assert_eq!(
            versions.len(),
            2,
            "{name}: a retried put created another version: {versions:?}"
        );
        assert!(
            versions[v2.as_str()].contains(&AWSCURRENT.to_owned()),
            "{name}: {versions:?}"
        );
        assert_eq!(
            versions[v1.as_str()],
            vec![AWSPREVIOUS.to_owned()],
            "{name}: {versions:?}"
        );
        assert_eq!(
            setup.read(&key).await.unwrap().unwrap().document,
            document("two")
        );
    }
}

#[tokio::test]
async fn secret_scheduled_for_deletion_is_a_clear_error() {
    let sink = sink_with(moto_config()).await;
    let key = unique_name("deleted");
    let v1 = sink
        .write(&key, &document("one"), &labelled(Precondition::Any))
        .await
        .unwrap();
    raw_client()
        .await
        .delete_secret()
        .secret_id(&key)
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    // A new process, which knows nothing of the secret yet. (One that wrote `v1` moments
    // ago trusts that and sends PutSecretValue, which AWS refuses for a deleted secret;
    // moto accepts it, so that path cannot be shown here.)
    let sink = sink_with(moto_config()).await;
    let write = sink
        .write(&key, &document("two"), &labelled(Precondition::Version(v1)))
        .await
        .unwrap_err();
    let read = sink.read(&key).await.unwrap_err();
    for err in [write, read] {
        let text = err.to_string();
        assert!(text.contains("scheduled for deletion"), "{text}");
        assert!(
            text.contains(&format!(
                "aws secretsmanager restore-secret --secret-id {key}"
            )),
            "{text}"
        );
        assert_clean("the deletion error", &text);
    }
}

#[tokio::test]
async fn assumes_role_arn_through_sts() {
    // moto switches to the role's account, so the secret is invisible to the base identity.
    let sink = sink_with(Config {
        role_arn: Some("arn:aws:iam::111122223333:role/alation-rotator".into()),
        sts_endpoint_url: Some(moto().endpoint().to_owned()),
        external_id: Some("rotator-external-id".into()),
        ..moto_config()
    })
    .await;
    let key = unique_name("assumed");
    let version = sink
        .write(&key, &document("role"), &labelled(Precondition::Absent))
        .await
        .unwrap();
    assert_eq!(sink.read(&key).await.unwrap().unwrap().version, version);
    let base = raw_client()
        .await
        .describe_secret()
        .secret_id(&key)
        .send()
        .await;
    assert!(
        base.is_err(),
        "the secret should live in the assumed role's account"
    );
    assert!(sink
        .describe()
        .contains("as arn:aws:iam::111122223333:role/alation-rotator"));
}

#[tokio::test]
async fn check_succeeds_on_moto_and_names_an_unreachable_endpoint() {
    sink_with(moto_config()).await.check().await.unwrap();

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let sink = sink_with(Config {
        endpoint_url: Some(url.clone()),
        max_attempts: 1,
        timeout: Duration::from_secs(5),
        ..moto_config()
    })
    .await;
    for err in [
        sink.check().await.unwrap_err(),
        sink.read("alation/x").await.unwrap_err(),
    ] {
        assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
        assert!(err.is_retryable());
        assert!(err.to_string().contains(&url), "{err}");
    }
}

#[tokio::test]
async fn non_json_secret_is_an_invalid_document_without_its_contents() {
    let sink = sink_with(moto_config()).await;
    let key = unique_name("not-json");
    raw_client()
        .await
        .create_secret()
        .name(&key)
        .secret_string(format!("{SECRET_MARK}plain-text-token"))
        .send()
        .await
        .unwrap();
    let err = sink.read(&key).await.unwrap_err();
    assert!(matches!(err, SinkError::InvalidDocument { .. }), "{err}");
    assert_clean("the InvalidDocument error", &format!("{err} {err:?}"));
}

#[tokio::test]
async fn invalid_names_are_refused_before_any_call() {
    let sink = sink_with(moto_config()).await;
    for key in ["has space", "alation/tableau-abc123", ""] {
        let err = sink
            .write(key, &document("x"), &labelled(Precondition::Any))
            .await
            .unwrap_err();
        assert!(
            matches!(err, SinkError::InvalidKey { .. }),
            "{key:?}: {err}"
        );
        assert!(matches!(
            sink.read(key).await,
            Err(SinkError::InvalidKey { .. })
        ));
    }
}

#[tokio::test]
async fn no_secret_in_debug_of_config_sink_or_errors() {
    let config = Config {
        role_arn: Some("arn:aws:iam::123456789012:role/rotator".into()),
        external_id: Some(format!("{SECRET_MARK}external")),
        sts_endpoint_url: Some(moto().endpoint().to_owned()),
        ..moto_config()
    };
    assert_clean("Debug of Config", &format!("{config:?}"));
    let sink = sink_with(config).await;
    assert_clean("Debug of AwsSink", &format!("{sink:?}"));
    assert_clean("describe()", &sink.describe());

    let plain = sink_with(moto_config()).await;
    let key = unique_name("secrecy");
    let v1 = plain
        .write(&key, &document("one"), &labelled(Precondition::Any))
        .await
        .unwrap();
    plain
        .write(&key, &document("two"), &labelled(Precondition::Any))
        .await
        .unwrap();
    let conflict = plain
        .write(
            &key,
            &document("three"),
            &labelled(Precondition::Version(v1)),
        )
        .await
        .unwrap_err();
    assert!(conflict.is_conflict(), "{conflict}");
    let mut text = format!("{conflict} {conflict:?}");
    let mut source = std::error::Error::source(&conflict);
    while let Some(cause) = source {
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    assert_clean("the conflict error", &text);
    assert_clean(
        "Debug of a read",
        &format!("{:?}", plain.read(&key).await.unwrap()),
    );
}
