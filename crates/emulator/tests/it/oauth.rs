//! OAuth 2.0 client credentials: registration, tokens by Basic or form authentication,
//! introspection, and the ordinary API accepting the JWT as a bearer token.

use std::time::Duration;

use alation_emulator::{endpoints, Emulator, Fault, FaultKind};
use base64::Engine as _;
use serde_json::Value;

use crate::*;

async fn token_request(
    emulator: &Emulator,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}oauth/v2/token/", emulator.base_url()))
        .form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    read(request.send().await.unwrap()).await
}

async fn user_with(emulator: &Emulator, header: (&str, String)) -> u16 {
    reqwest::Client::new()
        .get(format!("{}integration/v1/user/", emulator.base_url()))
        .header(header.0, header.1)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_client_gets_a_jwt_by_basic_or_form_authentication() {
    let emulator = start().await;
    let (id, secret) = emulator.register_oauth_client(Duration::from_secs(300));
    let (status, by_basic) = token_request(
        &emulator,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(status, 200, "{by_basic}");
    assert_eq!(by_basic["token_type"], "Bearer");
    assert_eq!(by_basic["expires_in"], 300);
    let jwt = by_basic["access_token"].as_str().unwrap().to_owned();
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a three-part JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["client_id"], id.as_str());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );

    let (status, by_form) = token_request(
        &emulator,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    assert_eq!(status, 200, "{by_form}");

    assert_eq!(
        user_with(&emulator, ("Authorization", format!("Bearer {jwt}"))).await,
        200
    );
    assert_eq!(user_with(&emulator, ("TOKEN", jwt.clone())).await, 200);
    assert!(emulator.bearer_token_is_active(&jwt));
    emulator.advance_clock(Duration::from_secs(301));
    assert!(
        !emulator.bearer_token_is_active(&jwt),
        "expired by the emulator's clock"
    );
    assert_eq!(
        user_with(&emulator, ("Authorization", format!("Bearer {jwt}"))).await,
        403
    );
    assert_eq!(emulator.calls(endpoints::OAUTH_TOKEN), 2);
}

#[tokio::test]
async fn wrong_secrets_and_grants_get_oauth_errors() {
    let emulator = start().await;
    let (id, secret) = emulator.register_oauth_client(Duration::from_secs(60));
    let (status, error) = token_request(
        &emulator,
        &[("grant_type", "client_credentials")],
        Some((&id, "wrong")),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert_eq!(error["code"], "401");
    let (status, error) = token_request(
        &emulator,
        &[("grant_type", "password")],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let (status, error) = token_request(&emulator, &[], Some((&id, &secret))).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_request"))
    );

    let old = secret;
    let new = emulator.rotate_oauth_secret(&id).unwrap();
    let (status, _) = token_request(
        &emulator,
        &[("grant_type", "client_credentials")],
        Some((&id, &old)),
    )
    .await;
    assert_eq!(status, 401, "a rotated secret stops working");
    let (status, ok) = token_request(
        &emulator,
        &[("grant_type", "client_credentials")],
        Some((&id, &new)),
    )
    .await;
    assert_eq!(status, 200);
    let jwt = ok["access_token"].as_str().unwrap().to_owned();
    assert!(emulator.revoke_oauth_client(&id));
    assert!(
        !emulator.bearer_token_is_active(&jwt),
        "a revoked client's tokens die"
    );
    let (status, _) = token_request(
        &emulator,
        &[("grant_type", "client_credentials")],
        Some((&id, &new)),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn introspection_tells_active_from_inactive_tokens() {
    let emulator = start().await;
    let (id, secret) = emulator.register_oauth_client(Duration::from_secs(60));
    let (_, ok) = token_request(
        &emulator,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    let jwt = ok["access_token"].as_str().unwrap().to_owned();
    let introspect = |token: String| {
        let (id, secret, emulator) = (id.clone(), secret.clone(), &emulator);
        async move {
            let response = reqwest::Client::new()
                .post(format!("{}oauth/v2/introspect/", emulator.base_url()))
                .basic_auth(id, Some(secret))
                .form(&[
                    ("token", token.as_str()),
                    ("token_type_hint", "access_token"),
                ])
                .send()
                .await
                .unwrap();
            read(response).await
        }
    };
    let (status, active) = introspect(jwt.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], id.as_str());
    let (_, forged) = introspect(format!("{jwt}x")).await;
    assert_eq!(forged, serde_json::json!({"active": false}));
    emulator.advance_clock(Duration::from_secs(61));
    let (_, expired) = introspect(jwt).await;
    assert_eq!(expired["active"], false);
}

#[tokio::test]
async fn faults_hit_the_oauth_endpoints_too() {
    let emulator = start().await;
    let (id, secret) = emulator.register_oauth_client(Duration::from_secs(60));
    emulator.inject(
        Fault::new(FaultKind::Status(503))
            .on(endpoints::OAUTH_TOKEN)
            .times(1),
    );
    let (status, _) = token_request(
        &emulator,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(status, 503);
}
