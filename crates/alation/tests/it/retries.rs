//! Transient failures are retried within the configured bounds.

use std::time::{Duration, Instant};

use alation_emulator::{Fault, FaultKind};
use rotator_alation::{AlationClient, AlationError, ClientConfig, SecretString};

use crate::*;

#[tokio::test]
async fn injected_503s_are_retried_until_success() {
    let (emulator, client) = start().await;
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    emulator.inject(
        Fault::new(FaultKind::Status(503))
            .on("createAPIAccessToken")
            .times(2),
    );
    client.create_access_token(&refresh, ALICE).await.unwrap();
    assert_eq!(emulator.calls("createAPIAccessToken"), 3);
}

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let (emulator, client) = start().await;
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    emulator.inject(
        Fault::new(FaultKind::RateLimit {
            retry_after_secs: Some(1),
        })
        .times(1),
    );
    let started = Instant::now();
    client
        .validate_refresh_token(&refresh, ALICE)
        .await
        .unwrap();
    // The server's word beats the 5ms backoff cap.
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(emulator.calls("validateRefreshToken"), 2);
}

#[tokio::test]
async fn retry_after_is_capped_by_max_retry_after() {
    let emulator = alation_emulator::Emulator::start(alation_emulator::EmulatorConfig {
        users: users(),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut config = ClientConfig::new(emulator.base_url());
    config.retry = fast_retry();
    config.retry.max_retry_after = Duration::from_millis(10);
    let client = AlationClient::new(config).unwrap();
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    emulator.inject(
        Fault::new(FaultKind::RateLimit {
            retry_after_secs: Some(3600),
        })
        .times(2),
    );
    let started = Instant::now();
    client.create_access_token(&refresh, ALICE).await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(emulator.calls("createAPIAccessToken"), 3);
}

#[tokio::test]
async fn persistent_rate_limiting_gives_up_after_max_attempts() {
    let (emulator, client) = start().await;
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    emulator.inject(Fault::new(FaultKind::RateLimit {
        retry_after_secs: None,
    }));
    let err = client
        .create_access_token(&refresh, ALICE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AlationError::RateLimited { attempts: 3, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(emulator.calls("createAPIAccessToken"), 3);
}

#[tokio::test]
async fn a_proxy_502_page_is_retried_then_reported_as_a_server_error() {
    let (emulator, client) = start().await;
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    emulator.inject(Fault::new(FaultKind::Html { status: 502 }));
    let err = client
        .create_access_token(&refresh, ALICE)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AlationError::ServerError {
                status: 502,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(emulator.calls("createAPIAccessToken"), 3);
}

#[tokio::test]
async fn connection_refused_gives_connect_after_every_attempt() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client_for(format!("http://127.0.0.1:{port}/alation").parse().unwrap());
    let err = client
        .create_access_token(&SecretString::from("x"), ALICE)
        .await
        .unwrap_err();
    match &err {
        AlationError::Connect { url, attempts, .. } => {
            assert_eq!(
                url,
                &format!("http://127.0.0.1:{port}/alation/integration/v1/createAPIAccessToken/")
            );
            assert_eq!(*attempts, 3);
        }
        other => panic!("expected Connect, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(err.to_string().starts_with(&format!(
        "could not connect to Alation at http://127.0.0.1:{port}/alation/integration/v1/createAPIAccessToken/ after 3 attempts: is base_url right and the server reachable?"
    )));
}

#[tokio::test]
async fn a_slow_server_times_out_after_every_attempt() {
    let emulator = alation_emulator::Emulator::start(alation_emulator::EmulatorConfig {
        users: users(),
        ..Default::default()
    })
    .await
    .unwrap();
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    emulator.inject(Fault::new(FaultKind::Latency(Duration::from_secs(30))));
    let mut config = ClientConfig::new(emulator.base_url());
    config.retry = fast_retry();
    config.retry.max_attempts = 2;
    config.timeout = Duration::from_millis(200);
    let client = AlationClient::new(config).unwrap();

    let err = client
        .validate_refresh_token(&refresh, ALICE)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AlationError::Timeout {
                attempts: 2,
                timeout,
                ..
            } if timeout == Duration::from_millis(200)
        ),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(emulator.calls("validateRefreshToken"), 2);
}
