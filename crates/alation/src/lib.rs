//! Client for Alation's token API: refresh tokens and API access tokens.
//!
//! [`AlationClient`] calls the six endpoints under `/integration/v1/` (create, validate and
//! regenerate refresh tokens; create and validate API access tokens; revoke a refresh token's
//! access tokens) and turns every answer into a typed token or an [`AlationError`] whose
//! message names the cause and the fix.
//!
//! - Transient failures (connection errors, timeouts, 429 with `Retry-After`, 502, 503, 504)
//!   are retried with capped, jittered exponential backoff ([`RetryConfig`]); 4xx answers and
//!   500 never are.
//! - Tokens are [`SecretString`]s: no `Debug`, `Display` or error shows one, and errors never
//!   repeat a response body, only Alation's `detail` string (at most 200 characters).
//! - An HTML page instead of JSON (a wrong base URL, a proxy, a login page) is reported as
//!   such.
//! - TLS is rustls with the system's roots plus an optional CA file; plain HTTP only when the
//!   URL says `http://`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rotator_alation::AlationError> {
//! use rotator_alation::{AlationClient, ClientConfig, ExposeSecret, SecretString};
//!
//! let base_url = "https://alation.example.com".parse().expect("a valid URL");
//! let client = AlationClient::new(ClientConfig::new(base_url))?;
//! let refresh_token = SecretString::from(std::env::var("REFRESH_TOKEN").unwrap_or_default());
//! let access = client.create_access_token(&refresh_token, 102).await?;
//! println!("valid until {}", access.token_expires_at);
//! # let _ = access.api_access_token.expose_secret();
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod client;
mod error;
mod source;
mod token;

pub use client::{
    is_loopback, AlationClient, ClientConfig, OAuthClientAuth, RetryConfig, MAX_BODY_BYTES,
};
pub use error::AlationError;
pub use secrecy::{ExposeSecret, SecretString};
pub use source::{ClientCredentialsSource, RefreshTokenSource};
pub use token::{AccessToken, Introspection, OAuthToken, RefreshToken, TokenStatus};
