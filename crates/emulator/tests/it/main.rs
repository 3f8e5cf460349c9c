//! Integration tests of the emulator over real HTTP.

mod admin;
mod binary;
mod endpoints;
mod faults;
mod lifecycle;
mod oauth;

use alation_emulator::{Emulator, EmulatorConfig, User};
use serde_json::Value;

pub const ALICE: i64 = 102;
pub const BOB: i64 = 103;

pub fn users() -> Vec<User> {
    vec![
        User::new(ALICE, "alice@example.com", "alice-pw"),
        User::new(BOB, "bob@example.com", "bob-pw"),
    ]
}

pub async fn start() -> Emulator {
    start_with(EmulatorConfig {
        users: users(),
        ..EmulatorConfig::default()
    })
    .await
}

pub async fn start_with(config: EmulatorConfig) -> Emulator {
    Emulator::start(config).await.unwrap()
}

pub fn url(emulator: &Emulator, endpoint: &str) -> String {
    format!("{}integration/v1/{endpoint}/", emulator.base_url())
}

/// POSTs a JSON body; returns the status and the JSON answer (Null if not JSON).
pub async fn post_json(emulator: &Emulator, endpoint: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url(emulator, endpoint))
        .json(&body)
        .send()
        .await
        .unwrap();
    read(response).await
}

/// POSTs form fields; returns the status and the JSON answer (Null if not JSON).
pub async fn post_form(emulator: &Emulator, endpoint: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url(emulator, endpoint))
        .form(form)
        .send()
        .await
        .unwrap();
    read(response).await
}

pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap();
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// Mints an access token for the user from a refresh token; panics unless it works.
pub async fn mint(emulator: &Emulator, refresh_token: &str, user_id: i64) -> String {
    let (status, body) = post_json(
        emulator,
        "createAPIAccessToken",
        serde_json::json!({"refresh_token": refresh_token, "user_id": user_id}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["api_access_token"].as_str().unwrap().to_owned()
}

/// Calls the protected API with the token; returns the status.
pub async fn use_token(emulator: &Emulator, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}integration/v1/user/", emulator.base_url()))
        .header("TOKEN", access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}
