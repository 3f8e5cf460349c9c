//! How many calls of each operation the sink makes, counted by a proxy in front of moto, for
//! the sequences the rotation engine runs. A new sink stands for a new process (a CronJob
//! run), which knows nothing yet. Any extra call fails these tests.

use std::collections::BTreeMap;

use rotator_core::{Precondition, TokenSink, Version, WriteOptions};
use rotator_sink_aws::{AwsSink, Config};

use crate::behaviour::{document, labelled, tags_of};
use crate::proxy::{counts, Proxy};
use crate::{moto, moto_config, raw_client, sink_with, unique_name};

/// A sink that talks to moto through a new counting proxy.
async fn counted(config: Config) -> (AwsSink, Proxy) {
    let proxy = Proxy::start(moto().addr, &[]).await;
    let sink = sink_with(Config {
        endpoint_url: Some(proxy.url.clone()),
        ..config
    })
    .await;
    (sink, proxy)
}

/// An access and a state document, as a first run leaves them.
async fn bootstrapped(config: &Config) -> (String, String) {
    let setup = sink_with(config.clone()).await;
    let access = unique_name("calls-access");
    let state = unique_name("calls-state");
    for key in [&access, &state] {
        setup
            .write(key, &document("first"), &labelled(Precondition::Absent))
            .await
            .unwrap();
    }
    (access, state)
}

/// What the engine does in `run --force` with both documents in this store: read the access
/// token, read the state, write the access token over the version read, read it back.
async fn forced_rotation(sink: &AwsSink, access: &str, state: &str, token: &str) -> Version {
    let current = sink.read(access).await.unwrap().unwrap();
    assert!(current.managed);
    sink.read(state).await.unwrap().unwrap();
    let version = sink
        .write(
            access,
            &document(token),
            &labelled(Precondition::Version(current.version)),
        )
        .await
        .unwrap();
    let back = sink.read(access).await.unwrap().unwrap();
    assert_eq!(
        (back.version, back.document),
        (version.clone(), document(token))
    );
    version
}

#[tokio::test]
async fn a_forced_rotation_makes_two_writes_and_three_reads() {
    let config = moto_config();
    let (access, state) = bootstrapped(&config).await;
    for run in ["second", "third"] {
        let (sink, proxy) = counted(config.clone()).await;
        forced_rotation(&sink, &access, &state, run).await;
        assert_eq!(
            proxy.counts(),
            counts(&[
                ("GetSecretValue", 3),
                ("PutSecretValue", 1),
                ("UpdateSecretVersionStage", 1),
            ]),
            "run {run}: no DescribeSecret and no TagResource once the secret has its tags"
        );
    }
}

#[tokio::test]
async fn nothing_to_do_makes_two_reads() {
    let config = moto_config();
    let (access, state) = bootstrapped(&config).await;
    let (sink, proxy) = counted(config).await;
    for key in [&access, &state] {
        assert!(sink.read(key).await.unwrap().unwrap().managed);
    }
    assert_eq!(proxy.counts(), counts(&[("GetSecretValue", 2)]));
}

#[tokio::test]
async fn a_first_write_is_one_create() {
    let (sink, proxy) = counted(moto_config()).await;
    let key = unique_name("calls-create");
    assert!(sink.read(&key).await.unwrap().is_none());
    let version = sink
        .write(&key, &document("one"), &labelled(Precondition::Absent))
        .await
        .unwrap();
    assert_eq!(sink.read(&key).await.unwrap().unwrap().version, version);
    assert_eq!(
        proxy.counts(),
        counts(&[("CreateSecret", 1), ("GetSecretValue", 2)])
    );
}

/// A tag added to the settings reaches existing secrets with one `TagResource`, once.
#[tokio::test]
async fn a_new_tag_setting_costs_one_tag_call_once() {
    let config = moto_config();
    let (access, state) = bootstrapped(&config).await;
    let tagged = Config {
        tags: BTreeMap::from([("cost-center".to_owned(), "42".to_owned())]),
        ..config
    };
    let (sink, proxy) = counted(tagged.clone()).await;
    forced_rotation(&sink, &access, &state, "tagged").await;
    assert_eq!(
        proxy.counts(),
        counts(&[
            ("GetSecretValue", 3),
            ("PutSecretValue", 1),
            ("TagResource", 1),
            ("UpdateSecretVersionStage", 1),
        ])
    );
    let tags = tags_of(&access).await;
    assert_eq!(tags.get("cost-center").map(String::as_str), Some("42"));
    assert_eq!(
        tags.get("managed-by").map(String::as_str),
        Some("alation-rotator")
    );

    let (sink, proxy) = counted(tagged).await;
    forced_rotation(&sink, &access, &state, "tagged-again").await;
    assert_eq!(proxy.counts().get("TagResource"), None);
}

/// A version someone else wrote (say `aws secretsmanager put-secret-value`) costs one
/// `DescribeSecret` to learn who owns the secret; the write then trusts it.
#[tokio::test]
async fn a_version_written_by_someone_else_costs_one_describe() {
    let config = moto_config();
    let (access, state) = bootstrapped(&config).await;
    raw_client()
        .await
        .put_secret_value()
        .secret_id(&access)
        .secret_string(String::from_utf8(document("by-hand").to_json_bytes()).unwrap())
        .send()
        .await
        .unwrap();
    let (sink, proxy) = counted(config).await;
    forced_rotation(&sink, &access, &state, "after-hand").await;
    assert_eq!(
        proxy.counts(),
        counts(&[
            ("DescribeSecret", 1),
            ("GetSecretValue", 3),
            ("PutSecretValue", 1),
            ("UpdateSecretVersionStage", 1),
        ])
    );
}

#[tokio::test]
async fn a_takeover_tags_once_then_writes_twice() {
    let key = unique_name("calls-takeover");
    raw_client()
        .await
        .create_secret()
        .name(&key)
        .secret_string(r#"{"api_access_token":"someone-elses"}"#)
        .send()
        .await
        .unwrap();
    let (sink, proxy) = counted(moto_config()).await;
    let before = sink.read(&key).await.unwrap().unwrap();
    assert!(!before.managed);
    let options = WriteOptions {
        takeover: true,
        ..labelled(Precondition::Version(before.version))
    };
    sink.write(&key, &document("mine"), &options).await.unwrap();
    assert_eq!(
        proxy.counts(),
        counts(&[
            ("DescribeSecret", 1),
            ("GetSecretValue", 1),
            ("PutSecretValue", 1),
            ("TagResource", 1),
            ("UpdateSecretVersionStage", 1),
        ])
    );
}
