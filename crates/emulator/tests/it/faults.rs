//! Injected faults: counted, per user, per endpoint, persistent.

use std::time::{Duration, Instant};

use alation_emulator::{endpoints, Emulator, EmulatorConfig, Fault, FaultKind, User};
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

/// A client that gives up before the answer: the emulator still does the work, as a Django or
/// gunicorn server would, so the old refresh token is dead and a new one exists.
#[tokio::test]
async fn work_that_reached_the_server_completes_when_the_client_hangs_up() {
    let emulator = start().await;
    let old = emulator.issue_refresh_token(ALICE, "rt");
    emulator.inject(
        Fault::new(FaultKind::Latency(Duration::from_millis(500)))
            .on(endpoints::REGEN_REFRESH_TOKEN)
            .times(1),
    );
    let result = reqwest::Client::new()
        .post(url(&emulator, endpoints::REGEN_REFRESH_TOKEN))
        .json(&json!({"refresh_token": old, "user_id": ALICE}))
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    settled(|| emulator.live_refresh_tokens(ALICE) != [old.clone()]).await;
    let live = emulator.live_refresh_tokens(ALICE);
    assert_eq!(live.len(), 1, "the regeneration completed");
    assert_ne!(live[0], old, "and replaced the old token");
}

/// Faults after the work: the token is replaced, whatever the client then sees.
#[tokio::test]
async fn commit_then_faults_replace_the_token_and_lose_the_answer() {
    for kind in [
        FaultKind::CommitThenStatus(502),
        FaultKind::CommitThenClose,
        FaultKind::CommitThenHang(Duration::from_millis(400)),
    ] {
        let emulator = start().await;
        let old = emulator.issue_refresh_token(ALICE, "rt");
        emulator.inject(
            Fault::new(kind.clone())
                .on(endpoints::REGEN_REFRESH_TOKEN)
                .times(1),
        );
        let answer = reqwest::Client::new()
            .post(url(&emulator, endpoints::REGEN_REFRESH_TOKEN))
            .json(&json!({"refresh_token": old, "user_id": ALICE}))
            .timeout(Duration::from_millis(200))
            .send()
            .await;
        let usable = match answer {
            Ok(response) if response.status().is_success() => {
                response.json::<serde_json::Value>().await.is_ok()
            }
            _ => false,
        };
        assert!(!usable, "{kind:?}: the client got no usable answer");
        settled(|| emulator.live_refresh_tokens(ALICE) != [old.clone()]).await;
        let live = emulator.live_refresh_tokens(ALICE);
        assert_eq!(live.len(), 1, "{kind:?}");
        assert_ne!(live[0], old, "{kind:?}: the old token is dead");
        assert_eq!(emulator.calls(endpoints::REGEN_REFRESH_TOKEN), 1);
    }
}

/// Answers the reference records and the emulator can play: a status in any spelling, a 2xx
/// without a field, and JSON labelled as HTML.
#[tokio::test]
async fn odd_but_documented_answers() {
    let emulator = Emulator::start(EmulatorConfig {
        users: vec![User::new(ALICE, "alice", "pw")],
        token_status: "active".into(),
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let token = emulator.issue_refresh_token(ALICE, "rt");
    let body = json!({"refresh_token": token, "user_id": ALICE});
    let (status, answer) =
        post_json(&emulator, endpoints::VALIDATE_REFRESH_TOKEN, body.clone()).await;
    assert_eq!(
        (status, answer["token_status"].as_str()),
        (200, Some("active"))
    );

    emulator.inject(Fault::new(FaultKind::TokenStatus("EXPIRED".into())).times(1));
    let (status, answer) =
        post_json(&emulator, endpoints::VALIDATE_REFRESH_TOKEN, body.clone()).await;
    assert_eq!(
        (status, answer["token_status"].as_str()),
        (200, Some("EXPIRED"))
    );

    emulator.inject(Fault::new(FaultKind::DropField("api_access_token".into())).times(1));
    let (status, answer) = post_json(&emulator, endpoints::CREATE_ACCESS_TOKEN, body.clone()).await;
    assert_eq!(status, 201);
    assert!(answer.get("api_access_token").is_none() && answer.get("user_id").is_some());

    emulator.inject(Fault::new(FaultKind::HtmlContentType).times(1));
    let response = reqwest::Client::new()
        .post(url(&emulator, endpoints::CREATE_ACCESS_TOKEN))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let answer: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert!(answer["api_access_token"].is_string());
}

/// Waits (at most five seconds) for work the emulator finishes after its client left.
async fn settled(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(
            Instant::now() < deadline,
            "the emulator never finished the work"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `quiescent` waits for a hung-up client's request to finish and for its connection to
/// close, and not for less: a live keep-alive connection counts as open.
#[tokio::test]
async fn quiescent_means_every_connection_read_to_its_end() {
    let emulator = start().await;
    let old = emulator.issue_refresh_token(ALICE, "rt");
    let client = reqwest::Client::new();
    let user = client
        .get(url(&emulator, endpoints::USER))
        .header("TOKEN", "no-such-token")
        .send()
        .await
        .unwrap();
    assert_eq!(user.status(), 403);
    assert_eq!(emulator.open_connections(), 1, "kept alive by the client");
    drop(client);

    emulator.inject(
        Fault::new(FaultKind::Latency(Duration::from_millis(300)))
            .on(endpoints::REGEN_REFRESH_TOKEN)
            .times(1),
    );
    let hung_up = reqwest::Client::new()
        .post(url(&emulator, endpoints::REGEN_REFRESH_TOKEN))
        .json(&json!({"refresh_token": old, "user_id": ALICE}))
        .timeout(Duration::from_millis(50))
        .send()
        .await;
    assert!(hung_up.unwrap_err().is_timeout());
    emulator.quiescent(Duration::from_secs(10)).await;
    assert_eq!(emulator.open_connections(), 0);
    let live = emulator.live_refresh_tokens(ALICE);
    assert!(
        live.len() == 1 && live[0] != old,
        "the hung-up regeneration had finished when quiescent returned"
    );
}
