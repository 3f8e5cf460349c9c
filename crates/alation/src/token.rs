//! The two token objects Alation returns.

use std::fmt;

use jiff::Timestamp;
use secrecy::SecretString;
use serde_json::{Map, Value};

/// A refresh token as Alation describes it. `Debug` never shows the token.
#[derive(Clone)]
pub struct RefreshToken {
    /// The user that owns it.
    pub user_id: i64,
    /// Its name in Alation.
    pub name: String,
    /// The token itself.
    pub refresh_token: SecretString,
    /// When it was created.
    pub created_at: Timestamp,
    /// When Alation stops accepting it. Trust this, never an assumed lifetime.
    pub token_expires_at: Timestamp,
    /// Alation's status for it.
    pub token_status: TokenStatus,
    /// When it was last used, if Alation says.
    pub last_used_at: Option<Timestamp>,
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshToken")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("refresh_token", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .field("token_expires_at", &self.token_expires_at)
            .field("token_status", &self.token_status)
            .field("last_used_at", &self.last_used_at)
            .finish()
    }
}

/// An API access token, sent as the `TOKEN` header to other Alation APIs. `Debug` never
/// shows the token.
#[derive(Clone)]
pub struct AccessToken {
    /// The user it acts as.
    pub user_id: i64,
    /// The token itself.
    pub api_access_token: SecretString,
    /// When it was minted.
    pub created_at: Timestamp,
    /// When Alation stops accepting it.
    pub token_expires_at: Timestamp,
    /// Alation's status for it.
    pub token_status: TokenStatus,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken")
            .field("user_id", &self.user_id)
            .field("api_access_token", &"[REDACTED]")
            .field("created_at", &self.created_at)
            .field("token_expires_at", &self.token_expires_at)
            .field("token_status", &self.token_status)
            .finish()
    }
}

/// A token's `token_status`. Alation has been seen sending both `ACTIVE` and `active`, so
/// parsing ignores case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenStatus {
    /// `ACTIVE`.
    Active,
    /// `EXPIRED`.
    Expired,
    /// `REVOKED`.
    Revoked,
    /// Anything else, as sent.
    Other(String),
}

impl TokenStatus {
    /// Parses Alation's status string, ignoring case.
    pub fn parse(text: &str) -> Self {
        if text.eq_ignore_ascii_case("active") {
            TokenStatus::Active
        } else if text.eq_ignore_ascii_case("expired") {
            TokenStatus::Expired
        } else if text.eq_ignore_ascii_case("revoked") {
            TokenStatus::Revoked
        } else {
            TokenStatus::Other(text.to_owned())
        }
    }
}

impl fmt::Display for TokenStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TokenStatus::Active => "ACTIVE",
            TokenStatus::Expired => "EXPIRED",
            TokenStatus::Revoked => "REVOKED",
            TokenStatus::Other(other) => other,
        })
    }
}

/// An OAuth 2.0 access token (a JWT) from `POST /oauth/v2/token/`. `Debug` never shows it.
#[derive(Clone)]
pub struct OAuthToken {
    /// The token, sent as `Authorization: Bearer <token>`.
    pub access_token: SecretString,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds it lives, as Alation said.
    pub expires_in: i64,
    /// When it was issued: the JWT's `iat` (Alation's clock) when it has one.
    pub issued_at: Timestamp,
    /// When it expires: the JWT's `exp` when it has one, else `issued_at + expires_in`.
    pub expires_at: Timestamp,
}

impl fmt::Debug for OAuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthToken")
            .field("access_token", &"[REDACTED]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("issued_at", &self.issued_at)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// What `POST /oauth/v2/introspect/` says of a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Introspection {
    /// Whether Alation accepts the token now.
    pub active: bool,
    /// When it expires, if active.
    pub expires_at: Option<Timestamp>,
    /// The client it was issued to, if active.
    pub client_id: Option<String>,
}

/// The `iat` and `exp` claims of a JWT, read without checking its signature (only Alation
/// can, and only its own clock matters here).
fn jwt_times(token: &str) -> Option<(Timestamp, Timestamp)> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let at = |claim: &str| Timestamp::from_second(claims.get(claim)?.as_i64()?).ok();
    Some((at("iat")?, at("exp")?))
}

/// An answer that may say whether its token is active.
pub(crate) trait TokenAnswer {
    /// The token's status, for answers about a token.
    fn status(&self) -> Option<&TokenStatus>;
}

impl TokenAnswer for RefreshToken {
    fn status(&self) -> Option<&TokenStatus> {
        Some(&self.token_status)
    }
}

impl TokenAnswer for AccessToken {
    fn status(&self) -> Option<&TokenStatus> {
        Some(&self.token_status)
    }
}

impl TokenAnswer for OAuthToken {
    fn status(&self) -> Option<&TokenStatus> {
        None
    }
}

impl TokenAnswer for Introspection {
    fn status(&self) -> Option<&TokenStatus> {
        None
    }
}

impl TokenAnswer for String {
    fn status(&self) -> Option<&TokenStatus> {
        None
    }
}

/// A field of a response object was missing or malformed. Names the field and the keys the
/// answer did have, never a value.
#[derive(Debug)]
pub(crate) struct FieldError {
    field: &'static str,
    expected: &'static str,
    seen: Vec<String>,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "field `{}` is missing or not {} (the answer has: {})",
            self.field,
            self.expected,
            if self.seen.is_empty() {
                "no fields".to_owned()
            } else {
                self.seen.join(", ")
            }
        )
    }
}

/// Typed access to a response object, with errors that never quote values (a mistyped
/// field could hold a token).
pub(crate) struct Fields<'a>(pub(crate) &'a Map<String, Value>);

impl Fields<'_> {
    fn error(&self, field: &'static str, expected: &'static str) -> FieldError {
        let mut seen: Vec<String> = self
            .0
            .keys()
            .map(|k| k.chars().take(40).collect())
            .collect();
        seen.truncate(20);
        FieldError {
            field,
            expected,
            seen,
        }
    }

    fn string(&self, field: &'static str) -> Result<&str, FieldError> {
        self.0
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| self.error(field, "a string"))
    }

    fn secret(&self, field: &'static str) -> Result<SecretString, FieldError> {
        match self.string(field)? {
            "" => Err(self.error(field, "a non-empty string")),
            token => Ok(SecretString::from(token)),
        }
    }

    fn user_id(&self) -> Result<i64, FieldError> {
        self.0
            .get("user_id")
            .and_then(|v| {
                v.as_i64()
                    .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            })
            .ok_or_else(|| self.error("user_id", "an integer"))
    }

    fn timestamp(&self, field: &'static str) -> Result<Timestamp, FieldError> {
        self.0
            .get(field)
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| self.error(field, "an RFC 3339 timestamp"))
    }

    fn optional_timestamp(&self, field: &'static str) -> Result<Option<Timestamp>, FieldError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(_) => self.timestamp(field).map(Some),
        }
    }

    /// A 2xx answer means the token works, so a missing status reads as active.
    fn status(&self) -> Result<TokenStatus, FieldError> {
        match self.0.get("token_status") {
            None | Some(Value::Null) => Ok(TokenStatus::Active),
            Some(_) => self.string("token_status").map(TokenStatus::parse),
        }
    }

    pub(crate) fn refresh_token(&self) -> Result<RefreshToken, FieldError> {
        Ok(RefreshToken {
            user_id: self.user_id()?,
            name: self.string("name")?.to_owned(),
            refresh_token: self.secret("refresh_token")?,
            created_at: self.timestamp("created_at")?,
            token_expires_at: self.timestamp("token_expires_at")?,
            token_status: self.status()?,
            last_used_at: self.optional_timestamp("last_used_at")?,
        })
    }

    pub(crate) fn access_token(&self) -> Result<AccessToken, FieldError> {
        Ok(AccessToken {
            user_id: self.user_id()?,
            api_access_token: self.secret("api_access_token")?,
            created_at: self.timestamp("created_at")?,
            token_expires_at: self.timestamp("token_expires_at")?,
            token_status: self.status()?,
        })
    }

    pub(crate) fn detail(&self) -> Result<String, FieldError> {
        self.string("detail").map(str::to_owned)
    }

    pub(crate) fn oauth_token(&self) -> Result<OAuthToken, FieldError> {
        let access_token = self.secret("access_token")?;
        let expires_in = self
            .0
            .get("expires_in")
            .and_then(|v| v.as_i64().or_else(|| v.as_str()?.parse().ok()))
            .ok_or_else(|| self.error("expires_in", "a number of seconds"))?;
        let (issued_at, expires_at) =
            jwt_times(secrecy::ExposeSecret::expose_secret(&access_token)).unwrap_or_else(|| {
                let now = Timestamp::now();
                let later = now
                    .checked_add(jiff::SignedDuration::from_secs(expires_in))
                    .unwrap_or(now);
                (now, later)
            });
        Ok(OAuthToken {
            access_token,
            token_type: self.string("token_type").unwrap_or("Bearer").to_owned(),
            expires_in,
            issued_at,
            expires_at,
        })
    }

    pub(crate) fn introspection(&self) -> Result<Introspection, FieldError> {
        let active = self
            .0
            .get("active")
            .and_then(Value::as_bool)
            .ok_or_else(|| self.error("active", "a boolean"))?;
        Ok(Introspection {
            active,
            expires_at: self
                .0
                .get("exp")
                .and_then(Value::as_i64)
                .and_then(|exp| Timestamp::from_second(exp).ok()),
            client_id: self
                .0
                .get("client_id")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_parses_case_insensitively() {
        assert_eq!(TokenStatus::parse("ACTIVE"), TokenStatus::Active);
        assert_eq!(TokenStatus::parse("active"), TokenStatus::Active);
        assert_eq!(TokenStatus::parse("Expired"), TokenStatus::Expired);
        assert_eq!(TokenStatus::parse("revoked"), TokenStatus::Revoked);
        assert_eq!(
            TokenStatus::parse("SUSPENDED"),
            TokenStatus::Other("SUSPENDED".into())
        );
    }

    #[test]
    fn vendor_guide_sample_parses_and_errors_never_quote_values() {
        let sample = serde_json::json!({
            "refresh_token": "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b",
            "user_id": 102,
            "created_at": "2021-12-31T01:04:47.035Z",
            "name": "TableauRefreshToken",
            "token_expires_at": "2021-12-31T03:04:47.035+02:00",
            "token_status": "active"
        });
        let token = Fields(sample.as_object().unwrap()).refresh_token().unwrap();
        assert_eq!(token.user_id, 102);
        assert_eq!(token.token_status, TokenStatus::Active);
        assert_eq!(token.last_used_at, None);
        assert_eq!(
            token.token_expires_at,
            "2021-12-31T01:04:47.035Z".parse().unwrap()
        );

        let mistyped = serde_json::json!({"user_id": "s3cr3t-token-value"});
        let err = Fields(mistyped.as_object().unwrap())
            .access_token()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "field `user_id` is missing or not an integer (the answer has: user_id)"
        );
    }
}
