//! No token or password ever shows in Debug or Display output.

use std::time::Duration;

use alation_emulator::{Fault, FaultKind};
use rotator_alation::{ExposeSecret, SecretString};

use crate::*;

#[tokio::test]
async fn tokens_never_appear_in_debug_or_display() {
    let (emulator, client) = start().await;
    let password = SecretString::from(ALICE_PASSWORD);
    let refresh = client
        .create_refresh_token("alice@example.com", &password, "rt")
        .await
        .unwrap();
    let access = client
        .create_access_token(&refresh.refresh_token, ALICE)
        .await
        .unwrap();
    let mut secrets = vec![
        ALICE_PASSWORD.to_owned(),
        refresh.refresh_token.expose_secret().to_owned(),
        access.api_access_token.expose_secret().to_owned(),
    ];
    let mut shown = vec![
        format!("{refresh:?}"),
        format!("{access:?}"),
        format!("{client:?}"),
    ];

    // Every kind of failure, each with the secrets in the request.
    let mut errors = Vec::new();
    errors.push(
        client
            .create_refresh_token(
                "alice@example.com",
                &SecretString::from("wrong-pw-123"),
                "x",
            )
            .await
            .unwrap_err(),
    );
    secrets.push("wrong-pw-123".to_owned());
    errors.push(
        client
            .validate_refresh_token(&refresh.refresh_token, BOB)
            .await
            .unwrap_err(),
    );
    for kind in [
        FaultKind::Status(500),
        FaultKind::Status(503),
        FaultKind::Status(403),
        FaultKind::Html { status: 200 },
        FaultKind::RateLimit {
            retry_after_secs: None,
        },
    ] {
        emulator.inject(Fault::new(kind));
        errors.push(
            client
                .create_access_token(&refresh.refresh_token, ALICE)
                .await
                .unwrap_err(),
        );
        emulator.clear_faults();
    }
    let regenerated = client
        .regen_refresh_token(&refresh.refresh_token, ALICE, &|_| {})
        .await
        .unwrap();
    secrets.push(regenerated.refresh_token.expose_secret().to_owned());
    shown.push(format!("{regenerated:?}"));
    errors.push(
        client
            .revoke_access_tokens(&refresh.refresh_token, ALICE)
            .await
            .unwrap_err(),
    );
    emulator.advance_clock(Duration::from_secs(2 * 24 * 3600));
    errors.push(
        client
            .validate_access_token(&access.api_access_token, ALICE)
            .await
            .unwrap_err(),
    );
    let offline = client_for(emulator.base_url());
    emulator.shutdown().await;
    errors.push(
        offline
            .create_access_token(&regenerated.refresh_token, ALICE)
            .await
            .unwrap_err(),
    );

    for err in &errors {
        shown.push(format!("{err}"));
        shown.push(format!("{err:?}"));
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            shown.push(format!("{cause} / {cause:?}"));
            source = cause.source();
        }
    }
    assert_eq!(errors.len(), 10);
    for text in &shown {
        for secret in &secrets {
            assert!(
                !text.contains(secret.as_str()),
                "a secret leaked into: {text}"
            );
        }
    }
}
