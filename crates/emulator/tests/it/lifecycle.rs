//! Expiry by the emulator's clock, revocation and regeneration.

use std::time::Duration;

use alation_emulator::EmulatorConfig;
use serde_json::json;

use crate::*;

fn expired_refresh() -> serde_json::Value {
    json!({"detail": "Refresh token provided is expired or revoked.", "code": "401000"})
}

#[tokio::test]
async fn tokens_expire_when_the_clock_passes_their_lifetime() {
    let emulator = start().await;
    emulator.set_lifetimes(Duration::from_secs(10), Duration::from_secs(60));
    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    let access = mint(&emulator, &refresh, ALICE).await;
    assert_eq!(use_token(&emulator, &access).await, 200);

    emulator.advance_clock(Duration::from_secs(11));
    assert!(!emulator.access_token_is_active(&access));
    assert_eq!(use_token(&emulator, &access).await, 403);
    let (status, body) = post_json(
        &emulator,
        "validateAPIAccessToken",
        json!({"api_access_token": access, "user_id": ALICE}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["detail"],
        "API Access Token provided is expired or revoked."
    );

    // The refresh token still works and mints tokens that work.
    let fresh = mint(&emulator, &refresh, ALICE).await;
    assert_eq!(use_token(&emulator, &fresh).await, 200);

    emulator.advance_clock(Duration::from_secs(50));
    for endpoint in [
        "validateRefreshToken",
        "createAPIAccessToken",
        "regenRefreshToken",
    ] {
        let (status, body) = post_json(
            &emulator,
            endpoint,
            json!({"refresh_token": refresh, "user_id": ALICE}),
        )
        .await;
        assert_eq!((status, body), (401, expired_refresh()), "{endpoint}");
    }
}

#[tokio::test]
async fn access_tokens_never_outlive_their_refresh_token() {
    let emulator = start().await;
    emulator.set_lifetimes(Duration::from_secs(3600), Duration::from_secs(60));
    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    let (_, refresh_body) = post_json(
        &emulator,
        "validateRefreshToken",
        json!({"refresh_token": refresh, "user_id": ALICE}),
    )
    .await;
    let (_, access_body) = post_json(
        &emulator,
        "createAPIAccessToken",
        json!({"refresh_token": refresh, "user_id": ALICE}),
    )
    .await;
    assert_eq!(
        access_body["token_expires_at"],
        refresh_body["token_expires_at"]
    );
}

#[tokio::test]
async fn now_follows_the_advanced_clock() {
    let emulator = start().await;
    let before = emulator.now();
    emulator.advance_clock(Duration::from_secs(25 * 3600));
    let gap = before.duration_until(emulator.now());
    assert!(gap >= jiff::SignedDuration::from_hours(25), "{gap:?}");
}

#[tokio::test]
async fn regen_returns_a_new_token_and_the_old_one_dies_at_once() {
    let emulator = start().await;
    let old = emulator.issue_refresh_token(ALICE, "tableau-prod");
    let old_access = mint(&emulator, &old, ALICE).await;
    emulator.advance_clock(Duration::from_secs(3600));

    let (status, body) = post_form(
        &emulator,
        "regenRefreshToken",
        &[("refresh_token", &old), ("user_id", "102")],
    )
    .await;
    assert_eq!(status, 200);
    let new = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(body["name"], "tableau-prod");
    assert_eq!(body["user_id"], ALICE);
    assert_eq!(body["token_status"], "ACTIVE");
    let created: jiff::Timestamp = body["created_at"].as_str().unwrap().parse().unwrap();
    let expires: jiff::Timestamp = body["token_expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        created.duration_until(expires),
        jiff::SignedDuration::from_hours(60 * 24)
    );

    let (status, body) = post_json(
        &emulator,
        "validateRefreshToken",
        json!({"refresh_token": old, "user_id": ALICE}),
    )
    .await;
    assert_eq!((status, body), (401, expired_refresh()));
    // Least convenient guess: access tokens of the old refresh token die with it.
    assert!(!emulator.access_token_is_active(&old_access));
    let fresh = mint(&emulator, &new, ALICE).await;
    assert_eq!(use_token(&emulator, &fresh).await, 200);
}

#[tokio::test]
async fn without_regen_the_endpoint_is_an_html_404() {
    let emulator = start_with(EmulatorConfig {
        users: users(),
        regen_supported: false,
        ..EmulatorConfig::default()
    })
    .await;
    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    let response = reqwest::Client::new()
        .post(url(&emulator, "regenRefreshToken"))
        .json(&json!({"refresh_token": refresh, "user_id": ALICE}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(emulator.calls("regenRefreshToken"), 1);
    // The token was not touched.
    mint(&emulator, &refresh, ALICE).await;
}

#[tokio::test]
async fn admin_revocation_and_expiry_hit_only_that_user() {
    let emulator = start().await;
    let alice = emulator.issue_refresh_token(ALICE, "rt");
    let bob = emulator.issue_refresh_token(BOB, "rt");
    let alice_access = mint(&emulator, &alice, ALICE).await;
    let bob_access = mint(&emulator, &bob, BOB).await;

    emulator.revoke_access_tokens(ALICE);
    assert!(!emulator.access_token_is_active(&alice_access));
    assert!(emulator.access_token_is_active(&bob_access));
    let alice_access = mint(&emulator, &alice, ALICE).await;

    emulator.revoke_refresh_tokens(ALICE);
    assert!(!emulator.access_token_is_active(&alice_access));
    let (status, body) = post_json(
        &emulator,
        "createAPIAccessToken",
        json!({"refresh_token": alice, "user_id": ALICE}),
    )
    .await;
    assert_eq!((status, body), (401, expired_refresh()));

    emulator.expire_tokens(BOB);
    assert!(!emulator.access_token_is_active(&bob_access));
    let (status, body) = post_json(
        &emulator,
        "validateRefreshToken",
        json!({"refresh_token": bob, "user_id": BOB}),
    )
    .await;
    assert_eq!((status, body), (401, expired_refresh()));
}
