//! What can go wrong talking to Alation.

use std::time::Duration;

/// Why a call to Alation's token API failed.
///
/// Every message names the cause and the fix. No variant holds a token or a response body:
/// the only text taken from a response is Alation's own `detail` string from its JSON error
/// envelope, cut to 200 characters.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlationError {
    /// Alation does not know the token for this user (401, code 401000, "invalid").
    #[error(
        "{endpoint}: Alation does not know this {} for this user_id (Alation said: {detail}); \
         check the user_id and the stored token, or {}",
        token_noun(endpoint),
        expired_fix(endpoint)
    )]
    TokenInvalid {
        /// The endpoint called, e.g. `createAPIAccessToken`.
        endpoint: &'static str,
        /// Alation's `detail`.
        detail: String,
    },
    /// The token has expired or was revoked (401, code 401000, "expired or revoked").
    #[error(
        "{endpoint}: the {} is expired or revoked (Alation said: {detail}); {}",
        token_noun(endpoint),
        expired_fix(endpoint)
    )]
    TokenExpiredOrRevoked {
        /// The endpoint called.
        endpoint: &'static str,
        /// Alation's `detail`.
        detail: String,
    },
    /// Alation refused the request (400, 401 or 403 other than the token errors above): a bad
    /// password, a locked account, a wrong `user_id`. Never retried.
    #[error(
        "{endpoint}: Alation rejected the request with status {status} (Alation said: \
         {detail}); fix what it names (the username, password, user_id or token name) or check \
         that the account is not locked"
    )]
    Rejected {
        /// The endpoint called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// Alation's `detail`, or a note that it gave none.
        detail: String,
    },
    /// An OAuth 2.0 endpoint refused the request (`invalid_client`, `unsupported_grant_type`,
    /// `invalid_request`, ...).
    #[error(
        "{endpoint}: Alation refused the OAuth request with status {status}: {error} ({}); {}",
        if .description.is_empty() { "no description" } else { .description.as_str() },
        oauth_fix(error)
    )]
    OAuth {
        /// The endpoint called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code.
        error: String,
        /// The `error_description`, at most 200 characters.
        description: String,
    },
    /// The endpoint does not exist on this server (404 or 405).
    #[error(
        "this Alation does not offer {endpoint} (status {status}): if other calls work, keep \
         the current token and have a person bootstrap a new one before it expires; if none \
         do, check base_url"
    )]
    NotSupported {
        /// The endpoint called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
    },
    /// An HTML page came back instead of JSON: a wrong base URL, a proxy or a login page.
    #[error(
        "the server at {url} answered with an HTML page (status {status}): is base_url right?"
    )]
    HtmlPage {
        /// The endpoint URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// An answer this client cannot use: a body that is neither JSON nor HTML, missing fields,
    /// a redirect, an unexpected status.
    #[error(
        "unexpected answer from {url} (status {status}): {reason}; is base_url an Alation server?"
    )]
    UnexpectedResponse {
        /// The endpoint URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong (never quotes the body).
        reason: String,
    },
    /// Alation still answered 429 after every attempt.
    #[error(
        "Alation at {url} is still rate-limiting (status 429) after {attempts} attempts: run \
         less often or with a lower max_concurrency, then try again"
    )]
    RateLimited {
        /// The endpoint URL.
        url: String,
        /// Attempts made.
        attempts: u32,
    },
    /// A 5xx status: 500 at once (retrying cannot help), 502, 503 or 504 after every attempt.
    #[error(
        "the server at {url} failed with status {status} after {attempts} attempt(s): Alation \
         or a proxy in front of it is in trouble; check its health and try again later"
    )]
    ServerError {
        /// The endpoint URL.
        url: String,
        /// The last HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// No connection could be made (or it broke) on every attempt.
    #[error(
        "could not connect to Alation at {url} after {attempts} attempts: is base_url right and \
         the server reachable? (for certificate errors, set ca_file)"
    )]
    Connect {
        /// The endpoint URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The connection broke before a whole answer arrived (after the request was sent, so it
    /// may have been carried out).
    #[error(
        "the answer from Alation at {url} broke off{} after {attempts} attempt(s): the request \
         may have been carried out; check the network path (proxies, load balancers)",
        .status.map(|s| format!(" after status {s}")).unwrap_or_default()
    )]
    CutOff {
        /// The endpoint URL.
        url: String,
        /// The status line received, if any.
        status: Option<u16>,
        /// Attempts made.
        attempts: u32,
    },
    /// No answer within the timeout on every attempt.
    #[error(
        "Alation at {url} did not answer within {timeout:?} in {attempts} attempts: check the \
         server's health or raise timeout"
    )]
    Timeout {
        /// The endpoint URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// The per-request timeout.
        timeout: Duration,
    },
    /// The client configuration cannot work (e.g. an unreadable CA file).
    #[error("invalid Alation client configuration: {detail}")]
    InvalidConfig {
        /// What is wrong and where.
        detail: String,
    },
}

/// What fixes an OAuth error.
fn oauth_fix(error: &str) -> &'static str {
    match error {
        "invalid_client" => {
            "the client id or secret was rejected: the secret may have been rotated or the \
             client application revoked in Alation; bootstrap the current secret"
        }
        "unsupported_grant_type" | "unauthorized_client" => {
            "this Alation does not offer client credentials to this client application; check \
             its settings in Alation's admin pages"
        }
        _ => "check the client application's settings in Alation",
    }
}

/// Which token the endpoint was given.
fn token_noun(endpoint: &str) -> &'static str {
    if endpoint == "validateAPIAccessToken" {
        "API access token"
    } else {
        "refresh token"
    }
}

/// What gets a working token again.
fn expired_fix(endpoint: &str) -> &'static str {
    if endpoint == "validateAPIAccessToken" {
        "mint a new one"
    } else {
        "bootstrap a new one"
    }
}

impl AlationError {
    /// Whether the same call may succeed later: connection failures, timeouts, rate limits
    /// and 502/503/504.
    pub fn is_retryable(&self) -> bool {
        match self {
            AlationError::Connect { .. }
            | AlationError::Timeout { .. }
            | AlationError::CutOff { .. }
            | AlationError::RateLimited { .. } => true,
            AlationError::ServerError { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }

    /// Whether Alation said the token is expired or revoked (a person must bootstrap a new
    /// refresh token). A 2xx answer whose `token_status` is not active counts too.
    pub fn is_token_expired_or_revoked(&self) -> bool {
        matches!(self, AlationError::TokenExpiredOrRevoked { .. })
    }

    /// Whether Alation refuses the credential: a token expired, revoked, or unknown for this
    /// user, or OAuth client credentials it does not accept (`invalid_client`).
    pub fn is_token_dead(&self) -> bool {
        match self {
            AlationError::TokenExpiredOrRevoked { .. } | AlationError::TokenInvalid { .. } => true,
            AlationError::OAuth { error, .. } => error == "invalid_client",
            _ => false,
        }
    }

    /// Whether the request provably never reached Alation (no connection could be made), so
    /// nothing changed there.
    pub fn never_sent(&self) -> bool {
        matches!(self, AlationError::Connect { .. })
    }

    /// Whether the request may or may not have been carried out: no answer in time, a broken
    /// answer, a 5xx or 429 (a proxy may answer those after the server acted).
    pub fn is_ambiguous(&self) -> bool {
        matches!(
            self,
            AlationError::Timeout { .. }
                | AlationError::CutOff { .. }
                | AlationError::RateLimited { .. }
                | AlationError::ServerError { .. }
        )
    }

    /// Whether Alation answered 2xx with something that cannot be used (not JSON, an HTML
    /// page, a missing field).
    pub fn is_bad_answer(&self) -> bool {
        matches!(
            self,
            AlationError::UnexpectedResponse {
                status: 200..=299,
                ..
            } | AlationError::HtmlPage {
                status: 200..=299,
                ..
            }
        )
    }
}

/// The 5xx statuses proxies give for a passing outage; 500 is a server bug and stays.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    matches!(status, 502..=504)
}
