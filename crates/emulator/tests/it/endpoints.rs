//! Shapes and status codes of each endpoint, with JSON and form bodies.

use serde_json::{json, Value};

use crate::*;

fn is_alation_time(value: &Value) -> bool {
    // e.g. 2023-05-19T15:06:35.830643Z
    let text = value.as_str().unwrap_or_default();
    text.len() == 27
        && text.ends_with('Z')
        && text.as_bytes()[19] == b'.'
        && text.parse::<jiff::Timestamp>().is_ok()
}

fn is_hex(value: &Value, len: usize) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn time(value: &Value) -> jiff::Timestamp {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn create_refresh_token_json_and_form_answer_201_with_the_seen_shape() {
    let emulator = start().await;
    let (status, json_body) = post_json(
        &emulator,
        "createRefreshToken",
        json!({"username": "alice@example.com", "password": "alice-pw", "name": "rt"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, form_body) = post_form(
        &emulator,
        "createRefreshToken",
        &[
            ("username", "alice@example.com"),
            ("password", "alice-pw"),
            ("name", "rt2"),
        ],
    )
    .await;
    assert_eq!(status, 201);

    for body in [&json_body, &form_body] {
        assert_eq!(
            keys(body),
            [
                "created_at",
                "last_used_at",
                "name",
                "refresh_token",
                "token_expires_at",
                "token_status",
                "user_id"
            ]
        );
        assert_eq!(body["user_id"], ALICE);
        assert_eq!(body["token_status"], "ACTIVE");
        assert_eq!(body["last_used_at"], Value::Null);
        assert!(is_hex(&body["refresh_token"], 64), "{body}");
        assert!(is_alation_time(&body["created_at"]), "{body}");
        assert!(is_alation_time(&body["token_expires_at"]), "{body}");
        let lifetime = time(&body["created_at"]).duration_until(time(&body["token_expires_at"]));
        assert_eq!(lifetime, jiff::SignedDuration::from_hours(60 * 24));
    }
    assert_eq!(json_body["name"], "rt");
    assert_eq!(form_body["name"], "rt2");
}

#[tokio::test]
async fn access_token_endpoints_answer_with_the_seen_shapes() {
    let emulator = start().await;
    let refresh = emulator.issue_refresh_token(ALICE, "rt");

    // Forms carry user_id as a string.
    let (status, created) = post_form(
        &emulator,
        "createAPIAccessToken",
        &[("refresh_token", &refresh), ("user_id", "102")],
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(
        keys(&created),
        [
            "api_access_token",
            "created_at",
            "token_expires_at",
            "token_status",
            "user_id"
        ]
    );
    assert!(is_hex(&created["api_access_token"], 56), "{created}");
    assert!(is_alation_time(&created["created_at"]));
    assert!(is_alation_time(&created["token_expires_at"]));
    assert_eq!(created["token_status"], "ACTIVE");
    let lifetime = time(&created["created_at"]).duration_until(time(&created["token_expires_at"]));
    assert_eq!(lifetime, jiff::SignedDuration::from_hours(24));

    let token = created["api_access_token"].as_str().unwrap();
    let (status, validated) = post_json(
        &emulator,
        "validateAPIAccessToken",
        json!({"api_access_token": token, "user_id": ALICE}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(validated, created);

    let (status, body) = post_form(
        &emulator,
        "validateAPIAccessToken",
        &[("api_access_token", token), ("user_id", "102")],
    )
    .await;
    assert_eq!((status, &body), (200, &created));
}

#[tokio::test]
async fn validate_refresh_token_answers_200_and_records_last_use() {
    let emulator = start().await;
    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    let (status, body) = post_json(
        &emulator,
        "validateRefreshToken",
        json!({"refresh_token": refresh, "user_id": ALICE}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["refresh_token"], refresh.as_str());
    assert_eq!(body["name"], "rt");
    assert_eq!(body["last_used_at"], Value::Null);

    mint(&emulator, &refresh, ALICE).await;
    let (_, body) = post_form(
        &emulator,
        "validateRefreshToken",
        &[("refresh_token", &refresh), ("user_id", "102")],
    )
    .await;
    assert!(is_alation_time(&body["last_used_at"]), "{body}");
}

#[tokio::test]
async fn revoke_answers_200_naming_the_token_and_kills_every_access_token() {
    let emulator = start().await;
    let refresh = emulator.issue_refresh_token(ALICE, "tableau-prod");
    let first = mint(&emulator, &refresh, ALICE).await;
    let second = mint(&emulator, &refresh, ALICE).await;
    // Minting does not revoke earlier tokens.
    assert!(emulator.access_token_is_active(&first));
    assert_eq!(use_token(&emulator, &first).await, 200);

    let (status, body) = post_json(
        &emulator,
        "revokeAPIAccessTokens",
        json!({"refresh_token": refresh, "user_id": ALICE}),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"detail": "Revoked active access tokens for refresh token tableau-prod"})
    );
    for token in [&first, &second] {
        assert!(!emulator.access_token_is_active(token));
        assert_eq!(use_token(&emulator, token).await, 403);
        let (status, body) = post_json(
            &emulator,
            "validateAPIAccessToken",
            json!({"api_access_token": token, "user_id": ALICE}),
        )
        .await;
        assert_eq!(status, 401);
        assert_eq!(
            body,
            json!({"detail": "API Access Token provided is expired or revoked.", "code": "401000"})
        );
    }
    // The refresh token itself lives on.
    mint(&emulator, &refresh, ALICE).await;
}

#[tokio::test]
async fn bad_credentials_unknown_tokens_and_wrong_users_answer_401() {
    let emulator = start().await;
    let (status, body) = post_json(
        &emulator,
        "createRefreshToken",
        json!({"username": "alice@example.com", "password": "wrong", "name": "rt"}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"detail": "Invalid username or password.", "code": "401001"})
    );

    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    let invalid = json!({"detail": "Refresh token provided is invalid.", "code": "401000"});
    for (token, user_id) in [("0".repeat(64), ALICE), (refresh.clone(), BOB)] {
        for endpoint in [
            "validateRefreshToken",
            "regenRefreshToken",
            "createAPIAccessToken",
            "revokeAPIAccessTokens",
        ] {
            let (status, body) = post_json(
                &emulator,
                endpoint,
                json!({"refresh_token": token, "user_id": user_id}),
            )
            .await;
            assert_eq!((status, &body), (401, &invalid), "{endpoint}");
        }
    }
    let access = mint(&emulator, &refresh, ALICE).await;
    let (status, body) = post_json(
        &emulator,
        "validateAPIAccessToken",
        json!({"api_access_token": access, "user_id": BOB}),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({"detail": "API Access Token provided is invalid.", "code": "401000"})
    );
}

#[tokio::test]
async fn missing_fields_answer_400_and_unknown_paths_an_html_404() {
    let emulator = start().await;
    let (status, body) =
        post_json(&emulator, "createAPIAccessToken", json!({"user_id": ALICE})).await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "refresh_token field is required");

    let (status, body) =
        post_form(&emulator, "validateRefreshToken", &[("refresh_token", "x")]).await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "user_id field is required");

    let (status, body) = post_form(
        &emulator,
        "createRefreshToken",
        &[("username", "alice@example.com"), ("password", "alice-pw")],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["detail"], "name field is required");

    let response = reqwest::Client::new()
        .post(format!(
            "{}api/v1/createAPIAccessToken/",
            emulator.base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
}

#[tokio::test]
async fn duplicate_live_refresh_token_names_are_refused() {
    let emulator = start().await;
    let body = json!({"username": "alice@example.com", "password": "alice-pw", "name": "rt"});
    assert_eq!(
        post_json(&emulator, "createRefreshToken", body.clone())
            .await
            .0,
        201
    );
    let (status, answer) = post_json(&emulator, "createRefreshToken", body.clone()).await;
    assert_eq!(status, 400);
    assert!(answer["detail"]
        .as_str()
        .unwrap()
        .contains("already exists"));
    // Once the old one is revoked, the name is free again.
    emulator.revoke_refresh_tokens(ALICE);
    assert_eq!(
        post_json(&emulator, "createRefreshToken", body).await.0,
        201
    );
}

#[tokio::test]
async fn protected_api_needs_a_live_access_token() {
    let emulator = start().await;
    let refresh = emulator.issue_refresh_token(ALICE, "rt");
    let access = mint(&emulator, &refresh, ALICE).await;

    let response = reqwest::Client::new()
        .get(format!("{}integration/v1/user/", emulator.base_url()))
        .header("TOKEN", &access)
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, 200);
    assert_eq!(body[0]["id"], ALICE);

    let response = reqwest::Client::new()
        .get(format!("{}integration/v1/user/", emulator.base_url()))
        .send()
        .await
        .unwrap();
    let (status, body) = read(response).await;
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"detail": "Authentication credentials were not provided or are invalid."})
    );
    // A refresh token is not an access token.
    assert_eq!(use_token(&emulator, &refresh).await, 403);
    assert_eq!(emulator.calls("user"), 3);
}
