//! Alation's refusals map to the right errors and are never retried.

use std::time::Duration;

use alation_emulator::{EmulatorConfig, Fault, FaultKind};
use rotator_alation::{AlationError, SecretString};

use crate::*;

#[tokio::test]
async fn an_unknown_token_or_a_wrong_user_is_token_invalid_and_not_retried() {
    let (emulator, client) = start().await;
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));

    let err = client
        .create_access_token(&SecretString::from("0".repeat(64)), ALICE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AlationError::TokenInvalid { endpoint: "createAPIAccessToken", detail } if detail == "Refresh token provided is invalid."),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(!err.is_token_expired_or_revoked());
    assert_eq!(emulator.calls("createAPIAccessToken"), 1);

    let err = client
        .validate_refresh_token(&refresh, BOB)
        .await
        .unwrap_err();
    assert!(matches!(err, AlationError::TokenInvalid { .. }), "{err:?}");

    let err = client
        .validate_access_token(&SecretString::from("f".repeat(56)), ALICE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AlationError::TokenInvalid { endpoint: "validateAPIAccessToken", detail } if detail == "API Access Token provided is invalid."),
        "{err:?}"
    );
}

#[tokio::test]
async fn expired_or_revoked_tokens_say_so_and_are_not_retried() {
    let (emulator, client) = start().await;
    emulator.set_lifetimes(Duration::from_secs(10), Duration::from_secs(60));
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    let access = client.create_access_token(&refresh, ALICE).await.unwrap();

    emulator.advance_clock(Duration::from_secs(11));
    let err = client
        .validate_access_token(&access.api_access_token, ALICE)
        .await
        .unwrap_err();
    assert!(err.is_token_expired_or_revoked(), "{err:?}");
    assert!(
        err.to_string()
            .contains("API access token is expired or revoked"),
        "{err}"
    );

    emulator.advance_clock(Duration::from_secs(60));
    let err = client
        .create_access_token(&refresh, ALICE)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AlationError::TokenExpiredOrRevoked { endpoint: "createAPIAccessToken", detail } if detail == "Refresh token provided is expired or revoked."),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "createAPIAccessToken: the refresh token is expired or revoked (Alation said: Refresh \
         token provided is expired or revoked.); bootstrap a new one"
    );
    assert!(!err.is_retryable());
    assert_eq!(emulator.calls("createAPIAccessToken"), 2);

    let revoked = SecretString::from(emulator.issue_refresh_token(BOB, "rt"));
    emulator.revoke_refresh_tokens(BOB);
    let err = client
        .regen_refresh_token(&revoked, BOB, &|_| {})
        .await
        .unwrap_err();
    assert!(err.is_token_expired_or_revoked(), "{err:?}");
}

#[tokio::test]
async fn a_bad_password_is_rejected_once() {
    let (emulator, client) = start().await;
    let err = client
        .create_refresh_token("alice@example.com", &SecretString::from("wrong"), "rt")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, AlationError::Rejected { endpoint: "createRefreshToken", status: 401, detail } if detail == "Invalid username or password."),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(emulator.calls("createRefreshToken"), 1);
}

#[tokio::test]
async fn an_injected_401_is_not_retried() {
    let (emulator, client) = start().await;
    emulator.inject(Fault::new(FaultKind::Status(401)));
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    let err = client
        .create_access_token(&refresh, ALICE)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AlationError::Rejected { status: 401, .. }),
        "{err:?}"
    );
    assert_eq!(emulator.calls("createAPIAccessToken"), 1);
}

#[tokio::test]
async fn an_html_page_is_named_plainly_whatever_the_status() {
    let (emulator, client) = start().await;
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    for status in [200, 401] {
        emulator.inject(Fault::new(FaultKind::Html { status }).times(1));
        let err = client
            .create_access_token(&refresh, ALICE)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the server at {}integration/v1/createAPIAccessToken/ answered with an HTML \
                 page (status {status}): is base_url right?",
                emulator.base_url()
            )
        );
    }
    assert_eq!(emulator.calls("createAPIAccessToken"), 2);
}

#[tokio::test]
async fn a_500_is_not_retried() {
    let (emulator, client) = start().await;
    emulator.inject(Fault::new(FaultKind::Status(500)));
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    let err = client
        .validate_refresh_token(&refresh, ALICE)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AlationError::ServerError {
                status: 500,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert_eq!(emulator.calls("validateRefreshToken"), 1);
}

#[tokio::test]
async fn regen_on_an_alation_without_it_is_not_supported() {
    let (emulator, client) = start_with(EmulatorConfig {
        users: users(),
        regen_supported: false,
        ..EmulatorConfig::default()
    })
    .await;
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    let err = client
        .regen_refresh_token(&refresh, ALICE, &|_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AlationError::NotSupported {
                endpoint: "regenRefreshToken",
                status: 404
            }
        ),
        "{err:?}"
    );
    assert!(err
        .to_string()
        .starts_with("this Alation does not offer regenRefreshToken (status 404)"));
    assert_eq!(emulator.calls("regenRefreshToken"), 1);
    // The current token keeps working.
    client.create_access_token(&refresh, ALICE).await.unwrap();
}
