//! Every endpoint's success path.

use rotator_alation::{ExposeSecret, SecretString, TokenStatus};

use crate::*;

#[tokio::test]
async fn the_whole_token_lifecycle_works_against_the_emulator() {
    let (emulator, client) = start().await;
    let password = SecretString::from(ALICE_PASSWORD);

    let refresh = client
        .create_refresh_token("alice@example.com", &password, "tableau-prod")
        .await
        .unwrap();
    assert_eq!(refresh.user_id, ALICE);
    assert_eq!(refresh.name, "tableau-prod");
    assert_eq!(refresh.token_status, TokenStatus::Active);
    assert_eq!(refresh.last_used_at, None);
    assert_eq!(refresh.refresh_token.expose_secret().len(), 64);
    assert!(refresh.token_expires_at > refresh.created_at);

    let validated = client
        .validate_refresh_token(&refresh.refresh_token, ALICE)
        .await
        .unwrap();
    assert_eq!(validated.token_expires_at, refresh.token_expires_at);

    let access = client
        .create_access_token(&refresh.refresh_token, ALICE)
        .await
        .unwrap();
    assert_eq!(access.user_id, ALICE);
    assert_eq!(access.token_status, TokenStatus::Active);
    assert!(emulator.access_token_is_active(access.api_access_token.expose_secret()));

    // The minted token works on an ordinary Alation API.
    let status = reqwest::Client::new()
        .get(format!("{}integration/v1/user/", emulator.base_url()))
        .header("TOKEN", access.api_access_token.expose_secret())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let checked = client
        .validate_access_token(&access.api_access_token, ALICE)
        .await
        .unwrap();
    assert_eq!(checked.token_expires_at, access.token_expires_at);

    let detail = client
        .revoke_access_tokens(&refresh.refresh_token, ALICE)
        .await
        .unwrap();
    assert_eq!(
        detail,
        "Revoked active access tokens for refresh token tableau-prod"
    );
    assert!(!emulator.access_token_is_active(access.api_access_token.expose_secret()));

    let regenerated = client
        .regen_refresh_token(&refresh.refresh_token, ALICE, &|_| {})
        .await
        .unwrap();
    assert_ne!(
        regenerated.refresh_token.expose_secret(),
        refresh.refresh_token.expose_secret()
    );
    assert_eq!(regenerated.name, "tableau-prod");
    client
        .create_access_token(&regenerated.refresh_token, ALICE)
        .await
        .unwrap();
    let old = client
        .validate_refresh_token(&refresh.refresh_token, ALICE)
        .await
        .unwrap_err();
    assert!(old.is_token_expired_or_revoked(), "{old}");
}

#[tokio::test]
async fn base_url_gets_a_trailing_slash_so_a_path_prefix_is_kept() {
    let client = client_for("https://alation.example.com/alation".parse().unwrap());
    assert_eq!(
        client.base_url().as_str(),
        "https://alation.example.com/alation/"
    );
}
