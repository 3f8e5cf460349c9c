//! OAuth 2.0 client credentials against the emulator: Basic and form authentication, the
//! JWT's times, introspection, OAuth-shaped errors, and the ClientCredentialsSource.

use std::time::Duration;

use rotator_alation::{
    AlationClient, AlationError, ClientConfig, ClientCredentialsSource, ExposeSecret,
    OAuthClientAuth, SecretString,
};
use rotator_core::{Credential, SourceError, TokenSource};

use crate::*;

fn client(emulator: &alation_emulator::Emulator, auth: OAuthClientAuth) -> AlationClient {
    let mut config = ClientConfig::new(emulator.base_url());
    config.retry = fast_retry();
    config.oauth_client_auth = auth;
    AlationClient::new(config).unwrap()
}

#[tokio::test]
async fn a_token_by_basic_and_by_form_with_the_jwt_times() {
    let (emulator, _) = start().await;
    let (id, secret) = emulator.register_oauth_client(Duration::from_secs(300));
    let secret = SecretString::from(secret);
    for auth in [OAuthClientAuth::Basic, OAuthClientAuth::Form] {
        let token = client(&emulator, auth)
            .oauth_token(&id, &secret)
            .await
            .unwrap();
        assert_eq!(token.token_type, "Bearer");
        assert_eq!(token.expires_in, 300);
        assert_eq!(
            token.expires_at.duration_since(token.issued_at).as_secs(),
            300
        );
        assert!(emulator.bearer_token_is_active(token.access_token.expose_secret()));
        assert!(!format!("{token:?}").contains(token.access_token.expose_secret()));
    }
    // The times are Alation's: move its clock and the next token says so.
    emulator.advance_clock(Duration::from_secs(86_400));
    let later = client(&emulator, OAuthClientAuth::Basic)
        .oauth_token(&id, &secret)
        .await
        .unwrap();
    assert!(later.issued_at > jiff::Timestamp::now() + jiff::SignedDuration::from_hours(23));
}

#[tokio::test]
async fn a_rejected_secret_is_invalid_client_and_never_echoed() {
    let (emulator, _) = start().await;
    let (id, _) = emulator.register_oauth_client(Duration::from_secs(60));
    let wrong = SecretString::from("wrong-client-secret-value".to_owned());
    let error = client(&emulator, OAuthClientAuth::Basic)
        .oauth_token(&id, &wrong)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, AlationError::OAuth { error, status: 401, .. } if error == "invalid_client"),
        "{error:?}"
    );
    assert!(error.is_token_dead());
    let message = error.to_string();
    assert!(
        message.contains("invalid_client") && message.contains("rotated"),
        "{message}"
    );
    assert!(
        !message.contains("wrong-client-secret-value")
            && !format!("{error:?}").contains("wrong-client-secret-value")
    );
}

#[tokio::test]
async fn the_source_issues_bearer_tokens_and_validates_them_by_introspection() {
    let (emulator, _) = start().await;
    let (id, secret) = emulator.register_oauth_client(Duration::from_secs(120));
    let source = ClientCredentialsSource::new(client(&emulator, OAuthClientAuth::Basic));
    let credential = Credential::OAuthClient {
        client_id: id.clone(),
        client_secret: SecretString::from(secret),
    };
    let issued = source.issue(&credential).await.unwrap();
    assert_eq!(issued.token_type.as_deref(), Some("Bearer"));
    assert_eq!(issued.user_id, None);
    source.check(&credential).await.unwrap();
    source
        .validate_access(&credential, &issued.access_token)
        .await
        .unwrap();
    emulator.advance_clock(Duration::from_secs(121));
    let error = source
        .validate_access(&credential, &issued.access_token)
        .await
        .unwrap_err();
    assert!(error.is_credential_dead(), "{error:?}");
    assert!(matches!(
        source.revoke(&credential).await,
        Err(SourceError::Unsupported { .. })
    ));
    assert!(emulator.revoke_oauth_client(&id));
    let error = source.issue(&credential).await.unwrap_err();
    assert!(matches!(error, SourceError::Invalid { .. }), "{error:?}");
    let refresh = Credential::RefreshToken {
        refresh_token: SecretString::from("x".to_owned()),
        user_id: 1,
    };
    assert!(matches!(
        source.issue(&refresh).await,
        Err(SourceError::Unsupported { .. })
    ));
}
