//! The two [`TokenSource`]s Alation offers: an Alation user's refresh token
//! ([`RefreshTokenSource`]) and an OAuth 2.0 client application, an Alation Cloud service
//! account ([`ClientCredentialsSource`]).

use async_trait::async_trait;
use rotator_core::{
    Credential, CredentialKind, CredentialStatus, IssuedToken, KeepRaw, RefreshGrant,
    SourceCapabilities, SourceError, TokenSource,
};
use secrecy::SecretString;

use crate::client::AlationClient;
use crate::error::AlationError;
use crate::token::RefreshToken;

/// Maps a client error onto the source contract. `regeneration` says whether the call was
/// `regenRefreshToken`, where only a request that provably never left may count as
/// unreachable.
pub(crate) fn source_error(error: AlationError, regeneration: bool) -> SourceError {
    let detail = error.to_string();
    if error.is_token_dead() {
        return match error {
            AlationError::TokenInvalid { .. } | AlationError::OAuth { .. } => {
                SourceError::Invalid { detail }
            }
            _ => SourceError::Expired { detail },
        };
    }
    match error {
        AlationError::NotSupported { endpoint, .. } => SourceError::Unsupported {
            operation: endpoint,
            detail,
        },
        AlationError::Connect { .. } if !regeneration || error.never_sent() => {
            SourceError::Unreachable { detail }
        }
        error if error.is_bad_answer() => SourceError::BadAnswer { detail },
        error if error.is_ambiguous() => SourceError::Ambiguous { detail },
        _ => SourceError::Rejected { detail },
    }
}

fn refresh_parts(credential: &Credential) -> Result<(&SecretString, i64), SourceError> {
    match credential {
        Credential::RefreshToken {
            refresh_token,
            user_id,
        } => Ok((refresh_token, *user_id)),
        other => Err(SourceError::Unsupported {
            operation: "credential kind",
            detail: format!(
                "the refresh-token source was given a {} credential; set `refresh_token` (not \
                 `oauth_client`) on this integration, or the other way round",
                other.kind().name()
            ),
        }),
    }
}

fn grant(token: RefreshToken) -> RefreshGrant {
    RefreshGrant::new(
        token.refresh_token,
        token.user_id,
        token.name,
        token.created_at,
        token.token_expires_at,
    )
}

/// Alation's `/integration/v1/` refresh-token flow: issue mints an API access token,
/// regenerate replaces the refresh token, revoke revokes its access tokens.
#[derive(Clone, Debug)]
pub struct RefreshTokenSource {
    client: AlationClient,
}

impl RefreshTokenSource {
    /// A source calling Alation through `client`.
    pub fn new(client: AlationClient) -> Self {
        Self { client }
    }

    /// The client, for what the contract does not cover (`createRefreshToken`).
    pub fn client(&self) -> &AlationClient {
        &self.client
    }

    /// `createRefreshToken`: a new refresh token from a username and password (bootstrap).
    pub async fn create(
        &self,
        username: &str,
        password: &SecretString,
        name: &str,
    ) -> Result<RefreshGrant, SourceError> {
        self.client
            .create_refresh_token(username, password, name)
            .await
            .map(grant)
            .map_err(|e| source_error(e, false))
    }
}

#[async_trait]
impl TokenSource for RefreshTokenSource {
    fn base_url(&self) -> String {
        self.client.base_url().to_string()
    }

    fn capabilities(&self) -> SourceCapabilities {
        let mut capabilities = SourceCapabilities::new(CredentialKind::RefreshToken);
        capabilities.regenerate = true;
        capabilities.revoke = true;
        capabilities.validate_access = true;
        capabilities
    }

    async fn issue(&self, credential: &Credential) -> Result<IssuedToken, SourceError> {
        let (token, user_id) = refresh_parts(credential)?;
        let access = self
            .client
            .create_access_token(token, user_id)
            .await
            .map_err(|e| source_error(e, false))?;
        Ok(IssuedToken::new(
            access.api_access_token,
            Some(access.user_id),
            access.created_at,
            access.token_expires_at,
        ))
    }

    async fn check(&self, credential: &Credential) -> Result<CredentialStatus, SourceError> {
        let (token, user_id) = refresh_parts(credential)?;
        let found = self
            .client
            .validate_refresh_token(token, user_id)
            .await
            .map_err(|e| source_error(e, false))?;
        let mut status = CredentialStatus::new(
            Some(found.token_expires_at),
            Some(found.created_at),
            Some(found.user_id),
        );
        status.name = Some(found.name);
        Ok(status)
    }

    async fn validate_access(
        &self,
        credential: &Credential,
        access_token: &SecretString,
    ) -> Result<(), SourceError> {
        let (_, user_id) = refresh_parts(credential)?;
        self.client
            .validate_access_token(access_token, user_id)
            .await
            .map(|_| ())
            .map_err(|e| source_error(e, false))
    }

    async fn regenerate(
        &self,
        credential: &Credential,
        keep_raw: KeepRaw<'_>,
    ) -> Result<RefreshGrant, SourceError> {
        let (token, user_id) = refresh_parts(credential)?;
        self.client
            .regen_refresh_token(token, user_id, keep_raw)
            .await
            .map(grant)
            .map_err(|e| source_error(e, true))
    }

    async fn revoke(&self, credential: &Credential) -> Result<String, SourceError> {
        let (token, user_id) = refresh_parts(credential)?;
        self.client
            .revoke_access_tokens(token, user_id)
            .await
            .map_err(|e| source_error(e, false))
    }
}

fn client_parts(credential: &Credential) -> Result<(&str, &SecretString), SourceError> {
    match credential {
        Credential::OAuthClient {
            client_id,
            client_secret,
        } => Ok((client_id, client_secret)),
        other => Err(SourceError::Unsupported {
            operation: "credential kind",
            detail: format!(
                "the OAuth client-credentials source was given a {} credential; set \
                 `oauth_client` (not `refresh_token`) on this integration, or the other way round",
                other.kind().name()
            ),
        }),
    }
}

/// OAuth 2.0 client credentials (`POST /oauth/v2/token/`): issue trades the client id and
/// secret for a JWT sent as `Authorization: Bearer`; validation asks
/// `/oauth/v2/introspect/`. There is no refresh token to regenerate, and Alation offers no
/// revocation of issued tokens: they die at their expiry, or when the client application is
/// revoked.
#[derive(Clone, Debug)]
pub struct ClientCredentialsSource {
    client: AlationClient,
}

impl ClientCredentialsSource {
    /// A source calling Alation through `client`.
    pub fn new(client: AlationClient) -> Self {
        Self { client }
    }
}

#[async_trait]
impl TokenSource for ClientCredentialsSource {
    fn base_url(&self) -> String {
        self.client.base_url().to_string()
    }

    fn capabilities(&self) -> SourceCapabilities {
        let mut capabilities = SourceCapabilities::new(CredentialKind::OAuthClient);
        capabilities.validate_access = true;
        capabilities
    }

    async fn issue(&self, credential: &Credential) -> Result<IssuedToken, SourceError> {
        let (id, secret) = client_parts(credential)?;
        let token = self
            .client
            .oauth_token(id, secret)
            .await
            .map_err(|e| source_error(e, false))?;
        Ok(
            IssuedToken::new(token.access_token, None, token.issued_at, token.expires_at)
                .with_token_type(token.token_type),
        )
    }

    /// Client credentials can only be checked by asking for a token; the token is dropped.
    async fn check(&self, credential: &Credential) -> Result<CredentialStatus, SourceError> {
        self.issue(credential)
            .await
            .map(|_| CredentialStatus::default())
    }

    async fn validate_access(
        &self,
        credential: &Credential,
        access_token: &SecretString,
    ) -> Result<(), SourceError> {
        let (id, secret) = client_parts(credential)?;
        let seen = self
            .client
            .introspect(access_token, id, secret)
            .await
            .map_err(|e| source_error(e, false))?;
        if seen.active {
            Ok(())
        } else {
            Err(SourceError::Expired {
                detail: "Alation's introspection says the token is no longer active".into(),
            })
        }
    }
}
