//! Edges a careful operator worries about: native rotation, retried writes, throttling,
//! oversized answers, plain http.

use std::sync::Arc;
use std::time::Duration;

use rotator_core::{Precondition, SinkError, TokenSink, WriteOptions};
use rotator_sink_aws::{AwsSink, Config, AWSCURRENT, MAX_RESPONSE_BYTES};

use crate::behaviour::{assert_clean, document, labelled, versions_of};
use crate::proxy::{Fault, Proxy};
use crate::{moto, moto_config, raw_client, sdk_config, sink_with, unique_name};

/// A sink on moto through a proxy with `faults`.
async fn through(faults: &[(&'static str, Fault)], config: Config) -> (AwsSink, Proxy) {
    let proxy = Proxy::start(moto().addr, faults).await;
    let sink = sink_with(Config {
        endpoint_url: Some(proxy.url.clone()),
        ..config
    })
    .await;
    (sink, proxy)
}

/// A managed secret with one version, written by the rotator.
async fn managed_secret(what: &str) -> (String, rotator_core::Version) {
    let key = unique_name(what);
    let version = sink_with(moto_config())
        .await
        .write(&key, &document("one"), &labelled(Precondition::Absent))
        .await
        .unwrap();
    (key, version)
}

#[tokio::test]
async fn a_secret_with_native_rotation_is_refused() {
    // A secret the rotator created, whose owner then turned on Secrets Manager rotation,
    // which wrote a version of its own. (Without a rotation Lambda, moto copies the value
    // into the new version only when not asked to rotate immediately.)
    let (key, _) = managed_secret("rotation").await;
    let raw = raw_client().await;
    raw.rotate_secret()
        .secret_id(&key)
        .rotation_rules(
            aws_sdk_secretsmanager::types::RotationRulesType::builder()
                .automatically_after_days(30)
                .build(),
        )
        .rotate_immediately(false)
        .send()
        .await
        .unwrap();
    let before = versions_of(&key).await;

    let sink = sink_with(moto_config()).await;
    let stored = sink.read(&key).await.unwrap().unwrap();
    for options in [
        labelled(Precondition::Version(stored.version.clone())),
        labelled(Precondition::Any),
        WriteOptions {
            takeover: true,
            ..labelled(Precondition::Any)
        },
    ] {
        let err = sink
            .write(&key, &document("three"), &options)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(!err.is_retryable() && !err.is_conflict(), "{text}");
        assert!(
            text.contains(&format!("{key:?}")),
            "names the secret: {text}"
        );
        assert!(text.contains("RotationEnabled"), "says why: {text}");
        assert!(
            text.contains(&format!(
                "aws secretsmanager cancel-rotate-secret --secret-id {key}"
            )),
            "says how to fix it: {text}"
        );
        assert_clean("the rotation error", &text);
    }
    assert_eq!(versions_of(&key).await, before, "nothing was written");
}

#[tokio::test]
async fn throttling_is_retried_with_the_same_request_token() {
    let (key, v1) = managed_secret("throttled").await;
    let (sink, proxy) = through(&[("PutSecretValue", Fault::Throttle(2))], moto_config()).await;
    let v2 = sink
        .write(&key, &document("two"), &labelled(Precondition::Version(v1)))
        .await
        .unwrap();
    let puts: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|call| call.operation == "PutSecretValue")
        .collect();
    assert_eq!(
        puts.len(),
        3,
        "two throttled attempts, then the one that passed"
    );
    assert!(
        puts.iter().all(|p| p.token.as_deref() == Some(v2.as_str())),
        "every attempt names the version that was written: {puts:?}"
    );
    let gaps: Vec<_> = puts.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(
        gaps.iter()
            .all(|gap| *gap >= std::time::Duration::from_millis(200)),
        "attempts are spaced by the backoff: {gaps:?}"
    );
    let versions = versions_of(&key).await;
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions[v2.as_str()].contains(&AWSCURRENT.to_owned()));
}

#[tokio::test]
async fn throttling_past_max_attempts_is_unavailable() {
    let (key, v1) = managed_secret("throttled-out").await;
    let (sink, proxy) = through(
        &[("PutSecretValue", Fault::Throttle(100))],
        Config {
            max_attempts: 2,
            ..moto_config()
        },
    )
    .await;
    let err = sink
        .write(&key, &document("two"), &labelled(Precondition::Version(v1)))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("throttled"), "{err}");
    assert_eq!(proxy.counts().get("PutSecretValue"), Some(&2));
}

/// Two runners that write the same document over the same version: their request tokens
/// differ, so AWS sees two writes and exactly one wins.
#[tokio::test]
async fn two_writers_of_the_same_document_do_not_both_win() {
    let (key, v1) = managed_secret("same-document").await;
    let first = sink_with(moto_config()).await;
    let second = sink_with(moto_config()).await;
    for sink in [&first, &second] {
        assert_eq!(sink.read(&key).await.unwrap().unwrap().version, v1);
    }
    let options = labelled(Precondition::Version(v1));
    let won = first
        .write(&key, &document("same"), &options)
        .await
        .unwrap();
    let lost = second
        .write(&key, &document("same"), &options)
        .await
        .unwrap_err();
    assert!(lost.is_conflict(), "{lost}");
    assert_eq!(first.read(&key).await.unwrap().unwrap().version, won);
}

/// The answer to the stage move is lost after moto applied it; the retry finds AWSCURRENT
/// already on the new version, which is success, not a conflict.
#[tokio::test]
async fn a_lost_answer_to_the_stage_move_is_success() {
    let (key, v1) = managed_secret("lost-move").await;
    let (sink, proxy) = through(
        &[("UpdateSecretVersionStage", Fault::DropResponse(1))],
        moto_config(),
    )
    .await;
    let v2 = sink
        .write(
            &key,
            &document("two"),
            &labelled(Precondition::Version(v1.clone())),
        )
        .await
        .unwrap();
    assert_eq!(proxy.counts().get("UpdateSecretVersionStage"), Some(&2));
    let versions = versions_of(&key).await;
    assert_eq!(versions.len(), 2, "{versions:?}");
    assert!(versions[v2.as_str()].contains(&AWSCURRENT.to_owned()));
    assert_eq!(
        sink.read(&key).await.unwrap().unwrap().document,
        document("two")
    );
}

#[tokio::test]
async fn an_oversized_answer_is_refused_without_retries() {
    for fault in [Fault::HugeBody, Fault::HugeChunkedBody] {
        let (sink, proxy) = through(&[("GetSecretValue", fault)], moto_config()).await;
        let err = sink.read(&unique_name("huge")).await.unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("larger than {MAX_RESPONSE_BYTES} bytes")),
            "{fault:?}: {text}"
        );
        assert!(!err.is_retryable(), "{fault:?}: {text}");
        assert_eq!(
            proxy.counts().get("GetSecretValue"),
            Some(&1),
            "{fault:?}: not retried"
        );
    }
}

#[tokio::test]
async fn plain_http_is_refused_off_loopback() {
    let remote = "http://192.0.2.10:4566";
    let err = AwsSink::with_sdk_config(
        Config {
            endpoint_url: Some(remote.into()),
            ..moto_config()
        },
        &sdk_config().await,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, SinkError::Other { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("endpoint_url") && text.contains("allow_insecure_http = true"),
        "{text}"
    );

    // The same endpoint from the environment (AWS_ENDPOINT_URL) is held to the same rule.
    let from_env = sdk_config()
        .await
        .into_builder()
        .endpoint_url(remote)
        .build();
    let err = AwsSink::with_sdk_config(
        Config {
            endpoint_url: None,
            ..moto_config()
        },
        &from_env,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("AWS_ENDPOINT_URL"), "{err}");

    // Opting in works, and moto on 127.0.0.1 needs no opt-in (every other test).
    AwsSink::with_sdk_config(
        Config {
            endpoint_url: Some(remote.into()),
            allow_insecure_http: true,
            ..moto_config()
        },
        &sdk_config().await,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_call_that_hangs_ends_at_the_timeout_without_retries() {
    let (sink, proxy) = through(
        &[("GetSecretValue", Fault::Hang)],
        Config {
            timeout: Duration::from_secs(1),
            ..moto_config()
        },
    )
    .await;
    let started = std::time::Instant::now();
    let err = sink.read(&unique_name("hang")).await.unwrap_err();
    let took = started.elapsed();
    assert!(err.is_retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("did not finish within the store's `timeout` (1s)"),
        "{err}"
    );
    assert!(took < Duration::from_secs(5), "gave up after {took:?}");
    assert_eq!(proxy.counts().get("GetSecretValue"), Some(&1));
}

/// Waiting for the write limit is not AWS being slow: it does not count against `timeout`.
#[tokio::test]
async fn waiting_for_the_write_limit_is_not_a_timeout() {
    let sink = Arc::new(
        sink_with(Config {
            // A region of its own: the limit is per region, and this one is tiny.
            region: Some("ca-central-1".into()),
            max_writes_per_second: 2,
            timeout: Duration::from_secs(1),
            ..moto_config()
        })
        .await,
    );
    let mut keys = Vec::new();
    for _ in 0..4 {
        let key = unique_name("queued");
        let version = sink
            .write(&key, &document("one"), &labelled(Precondition::Absent))
            .await
            .unwrap();
        keys.push((key, version));
    }
    let started = std::time::Instant::now();
    let writes: Vec<_> = keys
        .into_iter()
        .map(|(key, version)| {
            let sink = sink.clone();
            tokio::spawn(async move {
                sink.write(
                    &key,
                    &document("two"),
                    &labelled(Precondition::Version(version)),
                )
                .await
            })
        })
        .collect();
    for write in writes {
        write.await.unwrap().unwrap();
    }
    // 8 calls at 2 per window of 1.1 s: the last ones waited three windows.
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(3300), "{took:?}");
}
