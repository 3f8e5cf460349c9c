//! The contract between the rotation engine and whatever issues access tokens.
//!
//! A [`TokenSource`] turns a [`Credential`] (what an integration keeps in its state location)
//! into short-lived access tokens. `rotator-alation` implements it twice: the refresh-token
//! flow of Alation's `/integration/v1/` endpoints, and OAuth 2.0 client credentials
//! (Alation Cloud service accounts). The engine only ever talks to this trait, so its tests can
//! use an in-memory source and no HTTP.
//!
//! Every promise the engine relies on is written on the methods below.

use std::fmt::{self, Debug};

use async_trait::async_trait;
use jiff::Timestamp;
use secrecy::SecretString;

/// What an integration keeps in its state location, and hands to its source.
///
/// `Debug` never shows a secret.
#[derive(Clone)]
#[non_exhaustive]
pub enum Credential {
    /// An Alation user's refresh token.
    RefreshToken {
        /// The refresh token.
        refresh_token: SecretString,
        /// The Alation user who owns it.
        user_id: i64,
    },
    /// An OAuth 2.0 client application (client credentials grant).
    OAuthClient {
        /// The client id (not a secret).
        client_id: String,
        /// The client secret.
        client_secret: SecretString,
    },
}

impl Credential {
    /// Which kind of credential this is.
    pub fn kind(&self) -> CredentialKind {
        match self {
            Credential::RefreshToken { .. } => CredentialKind::RefreshToken,
            Credential::OAuthClient { .. } => CredentialKind::OAuthClient,
        }
    }
}

impl Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::RefreshToken { user_id, .. } => f
                .debug_struct("RefreshToken")
                .field("refresh_token", &"[REDACTED]")
                .field("user_id", user_id)
                .finish(),
            Credential::OAuthClient { client_id, .. } => f
                .debug_struct("OAuthClient")
                .field("client_id", client_id)
                .field("client_secret", &"[REDACTED]")
                .finish(),
        }
    }
}

/// The kinds of [`Credential`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialKind {
    /// [`Credential::RefreshToken`].
    RefreshToken,
    /// [`Credential::OAuthClient`].
    OAuthClient,
}

impl CredentialKind {
    /// `refresh-token` or `oauth-client`, for messages, status and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            CredentialKind::RefreshToken => "refresh-token",
            CredentialKind::OAuthClient => "oauth-client",
        }
    }
}

/// What a source can do beyond issuing tokens and checking its credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceCapabilities {
    /// The kind of credential the source takes; any other kind is
    /// [`SourceError::Unsupported`].
    pub kind: CredentialKind,
    /// [`TokenSource::regenerate`] replaces the credential (refresh tokens).
    pub regenerate: bool,
    /// [`TokenSource::revoke`] revokes the access tokens issued from the credential.
    pub revoke: bool,
    /// [`TokenSource::validate_access`] tells whether an issued token is still accepted.
    pub validate_access: bool,
}

impl SourceCapabilities {
    /// Capabilities of a source of `kind` that can do nothing optional.
    pub fn new(kind: CredentialKind) -> Self {
        Self {
            kind,
            regenerate: false,
            revoke: false,
            validate_access: false,
        }
    }
}

/// An access token as the source issued it. `Debug` never shows the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct IssuedToken {
    /// The token.
    pub access_token: SecretString,
    /// The Alation user it acts as, where the source says.
    pub user_id: Option<i64>,
    /// When it was issued, by the source's clock.
    pub created_at: Timestamp,
    /// When the source stops accepting it. Trust this, never an assumed lifetime.
    pub expires_at: Timestamp,
    /// How to send it: `None` for Alation's `TOKEN` header, `Some("Bearer")` for
    /// `Authorization: Bearer`.
    pub token_type: Option<String>,
}

impl IssuedToken {
    /// A token sent in Alation's `TOKEN` header.
    pub fn new(
        access_token: SecretString,
        user_id: Option<i64>,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        Self {
            access_token,
            user_id,
            created_at,
            expires_at,
            token_type: None,
        }
    }

    /// Sets how the token is sent (`Bearer`).
    pub fn with_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = Some(token_type.into());
        self
    }
}

impl Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("access_token", &"[REDACTED]")
            .field("user_id", &self.user_id)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("token_type", &self.token_type)
            .finish()
    }
}

/// A refresh token as the source describes it: the answer of a regeneration, a creation or
/// a check. `Debug` never shows the token.
#[derive(Clone)]
#[non_exhaustive]
pub struct RefreshGrant {
    /// The refresh token.
    pub refresh_token: SecretString,
    /// The user who owns it.
    pub user_id: i64,
    /// Its name at the source.
    pub name: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When the source stops accepting it.
    pub expires_at: Timestamp,
}

impl RefreshGrant {
    /// A refresh token with these details.
    pub fn new(
        refresh_token: SecretString,
        user_id: i64,
        name: impl Into<String>,
        created_at: Timestamp,
        expires_at: Timestamp,
    ) -> Self {
        Self {
            refresh_token,
            user_id,
            name: name.into(),
            created_at,
            expires_at,
        }
    }

    /// The grant as a credential for the same source.
    pub fn credential(&self) -> Credential {
        Credential::RefreshToken {
            refresh_token: self.refresh_token.clone(),
            user_id: self.user_id,
        }
    }
}

impl Debug for RefreshGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshGrant")
            .field("refresh_token", &"[REDACTED]")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What a source says of a live credential ([`TokenSource::check`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CredentialStatus {
    /// When it expires, where the source says (refresh tokens).
    pub expires_at: Option<Timestamp>,
    /// When it was created, where the source says.
    pub created_at: Option<Timestamp>,
    /// The user it belongs to, where the source says.
    pub user_id: Option<i64>,
    /// Its name at the source, where the source says.
    pub name: Option<String>,
}

impl CredentialStatus {
    /// A status with these details.
    pub fn new(
        expires_at: Option<Timestamp>,
        created_at: Option<Timestamp>,
        user_id: Option<i64>,
    ) -> Self {
        Self {
            expires_at,
            created_at,
            user_id,
            name: None,
        }
    }
}

/// Why a source call failed. Messages name the cause and the fix and never hold a secret or
/// a response body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The credential is expired or was revoked (Alation's 401 `401000` "expired or revoked",
    /// or a 2xx answer whose `token_status` is not active). Nothing but a new credential helps.
    #[error("{detail}")]
    Expired {
        /// What the source said.
        detail: String,
    },
    /// The source does not know the credential: a wrong `user_id`, a token of another
    /// instance, OAuth `invalid_client`. Nothing but a fixed configuration or a new
    /// credential helps.
    #[error("{detail}")]
    Invalid {
        /// What the source said.
        detail: String,
    },
    /// The source refused the request for another reason (400, 403, `unsupported_grant_type`,
    /// a locked account). Not retried.
    #[error("{detail}")]
    Rejected {
        /// What the source said.
        detail: String,
    },
    /// The source does not offer this operation (e.g. a server without `regenRefreshToken`,
    /// or revocation for OAuth tokens).
    #[error("{detail}")]
    Unsupported {
        /// The operation, e.g. `regenerate`.
        operation: &'static str,
        /// What to do about it.
        detail: String,
    },
    /// The request provably never reached the source: name resolution failed, the connection
    /// was refused, or the TLS handshake failed, on every attempt. Nothing changed there, so
    /// the same call may be tried again.
    #[error("{detail}")]
    Unreachable {
        /// What could not be reached.
        detail: String,
    },
    /// The request may or may not have been carried out: a timeout, a reset connection, a 5xx
    /// or 429 answer, a body cut off. For [`TokenSource::regenerate`] this means the old
    /// credential may already be dead: ask [`TokenSource::check`] before trying again.
    #[error("{detail}")]
    Ambiguous {
        /// What happened.
        detail: String,
    },
    /// A 2xx answer that cannot be used (not JSON, an HTML page, a missing field). For
    /// [`TokenSource::regenerate`] the raw body was handed to the keeper before this error.
    #[error("{detail}")]
    BadAnswer {
        /// What is wrong, naming fields but never their values.
        detail: String,
    },
}

impl SourceError {
    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SourceError::Unreachable { .. } | SourceError::Ambiguous { .. }
        )
    }

    /// Whether the source says the credential itself is dead or unknown, so that only a
    /// person can fix it.
    pub fn is_credential_dead(&self) -> bool {
        matches!(
            self,
            SourceError::Expired { .. } | SourceError::Invalid { .. }
        )
    }

    fn unsupported(operation: &'static str) -> Self {
        SourceError::Unsupported {
            operation,
            detail: format!("this token source does not support {operation}"),
        }
    }
}

/// Receives the raw body of a 2xx regeneration answer before the source parses it, so that a
/// new refresh token survives an answer the parser rejects. It must write the bytes somewhere
/// durable and owner-only, and must not log them.
pub type KeepRaw<'a> = &'a (dyn Fn(&[u8]) + Send + Sync);

/// Something that issues access tokens from a [`Credential`].
///
/// Implementations are built offline from their configuration; the network is used only in
/// the methods. Every method takes the credential of the integration it acts for, so one
/// source serves many integrations.
#[async_trait]
pub trait TokenSource: Send + Sync + Debug {
    /// The instance tokens are valid for, e.g. `https://alation.example.com/`. Written into
    /// every access-token document as `base_url`; never contains a secret.
    fn base_url(&self) -> String;

    /// What this source can do.
    fn capabilities(&self) -> SourceCapabilities;

    /// Issues a new access token. Earlier tokens stay valid.
    ///
    /// Errors: [`SourceError::Expired`] or [`SourceError::Invalid`] when the credential is dead
    /// or unknown, [`SourceError::Unreachable`] or [`SourceError::Ambiguous`] when the source
    /// could not answer (after the source's own retries), [`SourceError::Rejected`],
    /// [`SourceError::BadAnswer`], and [`SourceError::Unsupported`] for a credential of
    /// another kind.
    async fn issue(&self, credential: &Credential) -> Result<IssuedToken, SourceError>;

    /// Checks that the credential is alive, without changing anything at the source.
    ///
    /// `Ok` means the source accepts it now. Errors as for [`TokenSource::issue`]; a dead
    /// credential is always [`SourceError::Expired`] or [`SourceError::Invalid`], never `Ok`.
    async fn check(&self, credential: &Credential) -> Result<CredentialStatus, SourceError>;

    /// Checks that an access token issued from `credential` is still accepted, when
    /// [`SourceCapabilities::validate_access`] is set.
    ///
    /// `Ok` means it is accepted now; a token that is not is [`SourceError::Expired`] or
    /// [`SourceError::Invalid`]. Sources without the capability return
    /// [`SourceError::Unsupported`].
    async fn validate_access(
        &self,
        credential: &Credential,
        access_token: &SecretString,
    ) -> Result<(), SourceError> {
        let _ = (credential, access_token);
        Err(SourceError::unsupported("validating access tokens"))
    }

    /// Replaces the credential with a new one, when [`SourceCapabilities::regenerate`] is set.
    /// The old credential stops working at once.
    ///
    /// The request is sent again only when the earlier attempt provably never left
    /// ([`SourceError::Unreachable`] conditions); any other failure is returned at once as
    /// [`SourceError::Ambiguous`], since the source may have replaced the credential and a
    /// second request would carry a dead one. The raw body of a 2xx answer is passed to
    /// `keep_raw` before it is parsed; if it then cannot be parsed the error is
    /// [`SourceError::BadAnswer`]. [`SourceError::Unsupported`] when the source does not
    /// offer regeneration (the old credential still works).
    async fn regenerate(
        &self,
        credential: &Credential,
        keep_raw: KeepRaw<'_>,
    ) -> Result<RefreshGrant, SourceError> {
        let _ = (credential, keep_raw);
        Err(SourceError::unsupported("regenerating the credential"))
    }

    /// Revokes every access token issued from the credential, when
    /// [`SourceCapabilities::revoke`] is set, and returns the source's message.
    /// [`SourceError::Unsupported`] otherwise.
    async fn revoke(&self, credential: &Credential) -> Result<String, SourceError> {
        let _ = credential;
        Err(SourceError::unsupported("revoking access tokens"))
    }
}
