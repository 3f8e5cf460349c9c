//! Injected faults: counted, per user, per endpoint, persistent.

use std::time::{Duration, Instant};

use alation_emulator::{Fault, FaultKind};
use serde_json::json;

use crate::*;

#[tokio::test]
async fn a_counted_fault_hits_that_many_requests_then_disappears() {
    let emulator = start().await;
    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    emulator.inject(
        Fault::new(FaultKind::Status(503))
            .on("createAPIAccessToken")
            .times(2),
    );
    let body = json!({"refresh_token": refresh, "user_id": ALICE});

    // Other endpoints are untouched.
    assert_eq!(
        post_json(&emulator, "validateRefreshToken", body.clone())
            .await
            .0,
        200
    );
    for _ in 0..2 {
        let (status, answer) = post_json(&emulator, "createAPIAccessToken", body.clone()).await;
        assert_eq!(
            (status, answer),
            (503, json!({"detail": "Service Unavailable"}))
        );
    }
    assert_eq!(
        post_json(&emulator, "createAPIAccessToken", body).await.0,
        201
    );
    assert_eq!(emulator.calls("createAPIAccessToken"), 3);
    assert_eq!(emulator.calls("validateRefreshToken"), 1);
}

#[tokio::test]
async fn a_user_fault_hits_only_that_user_including_by_username() {
    let emulator = start().await;
    emulator.inject(Fault::new(FaultKind::Status(500)).for_user(BOB));
    let alice = emulator.issue_refresh_token(ALICE, "rt");
    let bob = emulator.issue_refresh_token(BOB, "rt");
    assert_eq!(
        post_form(
            &emulator,
            "createAPIAccessToken",
            &[("refresh_token", &alice), ("user_id", "102")]
        )
        .await
        .0,
        201
    );
    assert_eq!(
        post_form(
            &emulator,
            "createAPIAccessToken",
            &[("refresh_token", &bob), ("user_id", "103")]
        )
        .await
        .0,
        500
    );
    let create = |username: &str| json!({"username": username, "password": "x", "name": "n"});
    assert_eq!(
        post_json(&emulator, "createRefreshToken", create("bob@example.com"))
            .await
            .0,
        500
    );
    assert_eq!(
        post_json(&emulator, "createRefreshToken", create("alice@example.com"))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn a_persistent_fault_stays_until_cleared() {
    let emulator = start().await;
    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    emulator.inject(Fault::new(FaultKind::RateLimit {
        retry_after_secs: Some(7),
    }));
    let body = json!({"refresh_token": refresh, "user_id": ALICE});
    for _ in 0..3 {
        let response = reqwest::Client::new()
            .post(url(&emulator, "validateRefreshToken"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "7");
    }
    // Faults without an endpoint spare the ordinary API.
    let access = {
        emulator.clear_faults();
        mint(&emulator, &refresh, ALICE).await
    };
    emulator.inject(Fault::new(FaultKind::Status(503)));
    assert_eq!(use_token(&emulator, &access).await, 200);
    emulator.clear_faults();
    assert_eq!(
        post_json(&emulator, "validateRefreshToken", body).await.0,
        200
    );
}

#[tokio::test]
async fn html_and_latency_faults() {
    let emulator = start().await;
    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    let body = json!({"refresh_token": refresh, "user_id": ALICE});
    emulator.inject(Fault::new(FaultKind::Html { status: 502 }).times(1));
    let response = reqwest::Client::new()
        .post(url(&emulator, "validateRefreshToken"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("502 Bad Gateway"));

    emulator.inject(Fault::new(FaultKind::Latency(Duration::from_millis(200))).times(1));
    let started = Instant::now();
    assert_eq!(
        post_json(&emulator, "validateRefreshToken", body).await.0,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(200));
}
