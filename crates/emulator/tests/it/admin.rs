//! The admin HTTP interface mirrors the library methods.

use serde_json::json;

use crate::*;

async fn admin(
    emulator: &alation_emulator::Emulator,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request =
        reqwest::Client::new().request(method, format!("{}admin/{path}", emulator.base_url()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    read(request.send().await.unwrap()).await
}

#[tokio::test]
async fn admin_http_interface_drives_the_emulator() {
    use reqwest::Method;
    let emulator = start().await;

    let (status, body) = admin(
        &emulator,
        Method::POST,
        "users/102/refresh-tokens",
        Some(json!({"name": "sso"})),
    )
    .await;
    assert_eq!(status, 201);
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        admin(
            &emulator,
            Method::POST,
            "users/999/refresh-tokens",
            Some(json!({"name": "x"}))
        )
        .await
        .0,
        404
    );

    // Faults.
    let fault = json!({"endpoint": "createAPIAccessToken", "times": 1, "kind": {"rate_limit": {"retry_after_secs": 1}}});
    assert_eq!(
        admin(&emulator, Method::POST, "faults", Some(fault))
            .await
            .0,
        204
    );
    let mint_body = json!({"refresh_token": refresh, "user_id": ALICE});
    assert_eq!(
        post_json(&emulator, "createAPIAccessToken", mint_body.clone())
            .await
            .0,
        429
    );
    let persistent = json!({"user_id": ALICE, "kind": {"latency": "1ms"}});
    assert_eq!(
        admin(&emulator, Method::POST, "faults", Some(persistent))
            .await
            .0,
        204
    );
    let html = json!({"kind": {"html": {"status": 503}}});
    assert_eq!(
        admin(&emulator, Method::POST, "faults", Some(html)).await.0,
        204
    );
    // Every matching fault applies: Alice's request waits, then gets the proxy page too.
    assert_eq!(
        post_json(&emulator, "createAPIAccessToken", mint_body.clone())
            .await
            .0,
        503
    );
    assert_eq!(
        post_json(
            &emulator,
            "validateRefreshToken",
            json!({"refresh_token": refresh, "user_id": BOB})
        )
        .await
        .0,
        503
    );
    assert_eq!(
        admin(&emulator, Method::DELETE, "faults", None).await.0,
        204
    );
    let status_fault = json!({"kind": {"status": 504}, "times": 1});
    assert_eq!(
        admin(&emulator, Method::POST, "faults", Some(status_fault))
            .await
            .0,
        204
    );
    assert_eq!(
        post_json(&emulator, "createAPIAccessToken", mint_body.clone())
            .await
            .0,
        504
    );

    // A fault after the work: the token is minted, then the answer is a 502.
    let after = json!({"endpoint": "createAPIAccessToken", "times": 1, "kind": {"commit_then_status": 502}});
    assert_eq!(
        admin(&emulator, Method::POST, "faults", Some(after))
            .await
            .0,
        204
    );
    assert_eq!(
        post_json(&emulator, "createAPIAccessToken", mint_body.clone())
            .await
            .0,
        502
    );
    let spelled = json!({"times": 1, "kind": {"token_status": "REVOKED"}});
    assert_eq!(
        admin(&emulator, Method::POST, "faults", Some(spelled))
            .await
            .0,
        204
    );
    let (status, body) = post_json(
        &emulator,
        "validateRefreshToken",
        json!({"refresh_token": refresh, "user_id": ALICE}),
    )
    .await;
    assert_eq!(
        (status, body["token_status"].as_str()),
        (200, Some("REVOKED"))
    );

    // Calls.
    let (status, calls) = admin(&emulator, Method::GET, "calls", None).await;
    assert_eq!(status, 200);
    assert_eq!(calls["createAPIAccessToken"], 4);
    assert_eq!(calls["validateRefreshToken"], 2);

    // Lifetimes and clock.
    let lifetimes = json!({"access": "10s", "refresh": "60s"});
    assert_eq!(
        admin(&emulator, Method::POST, "lifetimes", Some(lifetimes))
            .await
            .0,
        204
    );
    let access = mint(&emulator, &refresh, ALICE).await;
    let (status, clock) = admin(
        &emulator,
        Method::POST,
        "clock",
        Some(json!({"advance": "11s"})),
    )
    .await;
    assert_eq!(status, 200);
    assert!(clock["now"].as_str().unwrap().ends_with('Z'));
    assert!(!emulator.access_token_is_active(&access));

    // Revocation and expiry.
    let access = mint(&emulator, &refresh, ALICE).await;
    assert_eq!(
        admin(
            &emulator,
            Method::POST,
            "users/102/revoke-access-tokens",
            None
        )
        .await
        .0,
        204
    );
    assert!(!emulator.access_token_is_active(&access));
    let access = mint(&emulator, &refresh, ALICE).await;
    assert_eq!(
        admin(&emulator, Method::POST, "users/102/expire", None)
            .await
            .0,
        204
    );
    assert!(!emulator.access_token_is_active(&access));
    assert_eq!(
        post_json(&emulator, "createAPIAccessToken", mint_body)
            .await
            .0,
        401
    );

    let (_, body) = admin(
        &emulator,
        Method::POST,
        "users/103/refresh-tokens",
        Some(json!({"name": "b"})),
    )
    .await;
    let bob = body["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        admin(
            &emulator,
            Method::POST,
            "users/103/revoke-refresh-tokens",
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        post_json(
            &emulator,
            "validateRefreshToken",
            json!({"refresh_token": bob, "user_id": BOB})
        )
        .await
        .0,
        401
    );
    assert_eq!(
        admin(&emulator, Method::POST, "users/999/expire", None)
            .await
            .0,
        404
    );
}
