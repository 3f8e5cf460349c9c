//! The HTTP client for the six token endpoints.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::header::{HeaderMap, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use url::Url;

use rotator_core::KeepRaw;

use crate::error::{is_retryable_status, AlationError};
use crate::token::{
    AccessToken, Fields, Introspection, OAuthToken, RefreshToken, TokenAnswer, TokenStatus,
};

/// Longest `detail` copied from an Alation error into our errors.
const MAX_DETAIL_CHARS: usize = 200;

/// Where and how to reach Alation.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The Alation instance, e.g. `https://alation.example.com` or, behind a path prefix,
    /// `https://host/alation/`. Must not hold credentials.
    pub base_url: Url,
    /// Limit for each request, from connecting to the last byte of the answer (default 30s).
    pub timeout: Duration,
    /// A PEM file of extra root certificates (a corporate CA), trusted besides the system's.
    pub ca_file: Option<PathBuf>,
    /// How transient failures are retried.
    pub retry: RetryConfig,
    /// Allow a plain `http://` base URL that is not a loopback address. Tokens would cross
    /// the network unencrypted: only for a trusted network in front of a TLS-terminating
    /// proxy, never across the internet.
    pub allow_insecure_http: bool,
    /// How an OAuth client application authenticates at `/oauth/v2/token/`.
    pub oauth_client_auth: OAuthClientAuth,
}

/// How an OAuth 2.0 client sends its id and secret.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthClientAuth {
    /// HTTP Basic authentication (`client_secret_basic`, the default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` form fields (`client_secret_post`).
    Form,
}

impl ClientConfig {
    /// Defaults for everything but the base URL.
    pub fn new(base_url: Url) -> Self {
        Self {
            base_url,
            timeout: Duration::from_secs(30),
            ca_file: None,
            retry: RetryConfig::default(),
            allow_insecure_http: false,
            oauth_client_auth: OAuthClientAuth::Basic,
        }
    }
}

/// The largest answer body read from Alation. A token answer is a few hundred bytes; a proxy
/// that streams more must not get the job killed for memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Whether `url` names this machine (127.0.0.0/8, ::1 or `localhost`).
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Retries of transient failures (connection errors, timeouts, 429, 502, 503, 504):
/// exponential backoff with jitter.
#[derive(Clone, Debug)]
pub struct RetryConfig {
    /// Attempts in total, the first included (default 5). 0 counts as 1.
    pub max_attempts: u32,
    /// Delay before the first retry (default 500ms); it doubles each time.
    pub initial_delay: Duration,
    /// Longest delay between attempts (default 30s).
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured; longer ones are cut to this (default 120s).
    pub max_retry_after: Duration,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// A client for Alation's token API. Cheap to clone (clones share connections).
#[derive(Clone, Debug)]
pub struct AlationClient {
    http: reqwest::Client,
    base_url: Url,
    timeout: Duration,
    retry: RetryConfig,
    oauth_client_auth: OAuthClientAuth,
}

/// How one attempt failed, before retries are decided.
#[derive(Debug)]
enum Failure {
    /// No connection was made (name resolution, refused, TLS handshake): the request never
    /// left.
    Connect(reqwest::Error),
    Timeout,
    /// The answer broke off after its status line.
    CutOff {
        status: Option<u16>,
    },
    RateLimited {
        retry_after: Option<Duration>,
    },
    Server {
        status: u16,
    },
    Final(AlationError),
}

impl Failure {
    fn is_retryable(&self) -> bool {
        match self {
            Failure::Connect(_)
            | Failure::Timeout
            | Failure::CutOff { .. }
            | Failure::RateLimited { .. } => true,
            Failure::Server { status } => is_retryable_status(*status),
            Failure::Final(_) => false,
        }
    }

    /// Whether the request provably never reached the server, so that even a request that
    /// must not be repeated (regeneration) may be sent again.
    fn never_sent(&self) -> bool {
        matches!(self, Failure::Connect(_))
    }

    fn into_error(self, url: &Url, attempts: u32, timeout: Duration) -> AlationError {
        let url = url.to_string();
        match self {
            Failure::Connect(source) => AlationError::Connect {
                url,
                attempts,
                source,
            },
            Failure::Timeout => AlationError::Timeout {
                url,
                attempts,
                timeout,
            },
            Failure::CutOff { status } => AlationError::CutOff {
                url,
                status,
                attempts,
            },
            Failure::RateLimited { .. } => AlationError::RateLimited { url, attempts },
            Failure::Server { status } => AlationError::ServerError {
                url,
                status,
                attempts,
            },
            Failure::Final(error) => error,
        }
    }
}

fn invalid_config(detail: String) -> AlationError {
    AlationError::InvalidConfig { detail }
}

impl AlationClient {
    /// Builds a client. Does not touch the network; reads `ca_file` if set.
    pub fn new(config: ClientConfig) -> Result<Self, AlationError> {
        let mut base_url = config.base_url;
        if !matches!(base_url.scheme(), "http" | "https") || base_url.cannot_be_a_base() {
            return Err(invalid_config(format!(
                "base_url {base_url} is not an http or https URL"
            )));
        }
        if base_url.scheme() == "http" && !config.allow_insecure_http && !is_loopback(&base_url) {
            return Err(invalid_config(format!(
                "base_url {base_url} is plain http:// to another machine, so tokens would cross \
                 the network unencrypted; use https://, or set `alation.allow_insecure_http = \
                 true` if a trusted network and a TLS-terminating proxy make that safe"
            )));
        }
        if !base_url.username().is_empty() || base_url.password().is_some() {
            // Say where the problem is without repeating the credential.
            let _ = base_url.set_username("");
            let _ = base_url.set_password(None);
            return Err(invalid_config(format!(
                "base_url {base_url} holds credentials; remove them from the URL"
            )));
        }
        // Without a trailing slash, joining would drop a path prefix such as `/alation`.
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }

        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            // A redirected POST turns into a GET without its body; report it instead.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("alation-rotator/", env!("CARGO_PKG_VERSION")));
        if let Some(path) = &config.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                invalid_config(format!("cannot read ca_file {}: {e}", path.display()))
            })?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|certificates| !certificates.is_empty())
                .ok_or_else(|| {
                    invalid_config(format!(
                        "ca_file {} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)",
                        path.display()
                    ))
                })?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|e| invalid_config(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base_url,
            timeout: config.timeout,
            retry: config.retry,
            oauth_client_auth: config.oauth_client_auth,
        })
    }

    /// The Alation base URL, always ending in `/`.
    pub fn base_url(&self) -> &Url {
        &self.base_url
    }

    /// `createRefreshToken`: a new refresh token from a username and password.
    pub async fn create_refresh_token(
        &self,
        username: &str,
        password: &SecretString,
        name: &str,
    ) -> Result<RefreshToken, AlationError> {
        let body = json!({
            "username": username,
            "password": password.expose_secret(),
            "name": name,
        });
        self.call("createRefreshToken", body, |f| f.refresh_token())
            .await
    }

    /// `validateRefreshToken`: the refresh token's details, if it is still alive.
    pub async fn validate_refresh_token(
        &self,
        refresh_token: &SecretString,
        user_id: i64,
    ) -> Result<RefreshToken, AlationError> {
        self.call(
            "validateRefreshToken",
            refresh_body(refresh_token, user_id),
            |f| f.refresh_token(),
        )
        .await
    }

    /// `regenRefreshToken`: replaces the refresh token with a new one. The old one stops
    /// working at once, so the answer must be stored before anything else.
    ///
    /// The request is sent again only when an attempt provably never reached the server
    /// ([`AlationError::never_sent`]); any other failure comes back at once
    /// ([`AlationError::is_ambiguous`]), since Alation may have replaced the token and a second
    /// request would carry a dead one. The raw body of a 2xx answer is passed to `keep_raw`
    /// before it is parsed.
    pub async fn regen_refresh_token(
        &self,
        refresh_token: &SecretString,
        user_id: i64,
        keep_raw: KeepRaw<'_>,
    ) -> Result<RefreshToken, AlationError> {
        self.call_with(
            "regenRefreshToken",
            RequestBody::Json(refresh_body(refresh_token, user_id)),
            |f| f.refresh_token(),
            Some(keep_raw),
        )
        .await
    }

    /// `createAPIAccessToken`: mints an API access token. Earlier ones stay valid.
    pub async fn create_access_token(
        &self,
        refresh_token: &SecretString,
        user_id: i64,
    ) -> Result<AccessToken, AlationError> {
        self.call(
            "createAPIAccessToken",
            refresh_body(refresh_token, user_id),
            |f| f.access_token(),
        )
        .await
    }

    /// `validateAPIAccessToken`: the access token's details, if it is still alive.
    pub async fn validate_access_token(
        &self,
        api_access_token: &SecretString,
        user_id: i64,
    ) -> Result<AccessToken, AlationError> {
        let body = json!({
            "api_access_token": api_access_token.expose_secret(),
            "user_id": user_id,
        });
        self.call("validateAPIAccessToken", body, |f| f.access_token())
            .await
    }

    /// `revokeAPIAccessTokens`: revokes every active access token of the refresh token.
    /// Returns Alation's `detail` message.
    pub async fn revoke_access_tokens(
        &self,
        refresh_token: &SecretString,
        user_id: i64,
    ) -> Result<String, AlationError> {
        self.call(
            "revokeAPIAccessTokens",
            refresh_body(refresh_token, user_id),
            |f| f.detail(),
        )
        .await
    }

    /// `POST /oauth/v2/token/` with `grant_type=client_credentials`: a new access token (a
    /// JWT) for an OAuth 2.0 client application.
    pub async fn oauth_token(
        &self,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Result<OAuthToken, AlationError> {
        let body = self.oauth_body(
            "oauth/v2/token/",
            vec![("grant_type", "client_credentials".to_owned())],
            client_id,
            client_secret,
        );
        self.call_with("oauthToken", body, |f| f.oauth_token(), None)
            .await
    }

    /// `POST /oauth/v2/introspect/`: whether Alation accepts an OAuth access token now.
    pub async fn introspect(
        &self,
        token: &SecretString,
        client_id: &str,
        client_secret: &SecretString,
    ) -> Result<Introspection, AlationError> {
        let body = self.oauth_body(
            "oauth/v2/introspect/",
            vec![
                ("token", token.expose_secret().to_owned()),
                ("token_type_hint", "access_token".to_owned()),
            ],
            client_id,
            client_secret,
        );
        self.call_with("oauthIntrospect", body, |f| f.introspection(), None)
            .await
    }

    fn oauth_body(
        &self,
        path: &'static str,
        mut form: Vec<(&'static str, String)>,
        client_id: &str,
        client_secret: &SecretString,
    ) -> RequestBody {
        let basic = match self.oauth_client_auth {
            OAuthClientAuth::Basic => Some((client_id.to_owned(), client_secret.clone())),
            OAuthClientAuth::Form => {
                form.push(("client_id", client_id.to_owned()));
                form.push(("client_secret", client_secret.expose_secret().to_owned()));
                None
            }
        };
        RequestBody::OAuth { path, form, basic }
    }

    /// POSTs `body` to the endpoint with retries and reads the answer with `read`.
    async fn call<T: TokenAnswer>(
        &self,
        endpoint: &'static str,
        body: Value,
        read: impl FnOnce(&Fields<'_>) -> Result<T, crate::token::FieldError>,
    ) -> Result<T, AlationError> {
        self.call_with(endpoint, RequestBody::Json(body), read, None)
            .await
    }

    /// [`AlationClient::call`]; with `keep_raw` (regeneration) the request is repeated only
    /// when it never left, and a 2xx body is handed over before it is parsed.
    async fn call_with<T: TokenAnswer>(
        &self,
        endpoint: &'static str,
        body: RequestBody,
        read: impl FnOnce(&Fields<'_>) -> Result<T, crate::token::FieldError>,
        keep_raw: Option<KeepRaw<'_>>,
    ) -> Result<T, AlationError> {
        let url = self
            .base_url
            .join(&body.path(endpoint))
            .expect("a relative path joins onto an http(s) base URL");
        let attempts = AtomicU32::new(0);
        let retry = &self.retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(retry.initial_delay)
            .with_max_delay(retry.max_delay)
            .with_max_times(retry.max_attempts.saturating_sub(1) as usize)
            .with_jitter();
        let repeatable = keep_raw.is_none();
        let (status, object) = (|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(endpoint, &url, &body, keep_raw).await
        })
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|failure| {
            if repeatable {
                failure.is_retryable()
            } else {
                failure.never_sent()
            }
        })
        .adjust(|failure, delay| {
            delay.map(|delay| match failure {
                Failure::RateLimited {
                    retry_after: Some(after),
                } => (*after).min(retry.max_retry_after),
                // Jitter may add up to the delay again; the cap is the operator's promise.
                _ => delay.min(retry.max_delay),
            })
        })
        .notify(|failure, delay| {
            let attempt = attempts.load(Ordering::Relaxed);
            match failure {
                Failure::Connect(error) => tracing::warn!(
                    endpoint, attempt, ?delay, %error,
                    "could not reach Alation; retrying"
                ),
                Failure::Timeout => tracing::warn!(
                    endpoint, attempt, ?delay, timeout = ?self.timeout,
                    "Alation did not answer in time; retrying"
                ),
                Failure::CutOff { status } => tracing::warn!(
                    endpoint,
                    attempt,
                    ?delay,
                    ?status,
                    "Alation's answer broke off; retrying"
                ),
                Failure::RateLimited { .. } => tracing::warn!(
                    endpoint,
                    attempt,
                    ?delay,
                    status = 429,
                    "Alation is rate-limiting; retrying"
                ),
                Failure::Server { status } => tracing::warn!(
                    endpoint,
                    attempt,
                    ?delay,
                    status,
                    "Alation or its proxy failed; retrying"
                ),
                Failure::Final(_) => {}
            }
        })
        .await
        .map_err(|failure| {
            failure.into_error(&url, attempts.load(Ordering::Relaxed), self.timeout)
        })?;
        let answer = read(&Fields(&object)).map_err(|e| AlationError::UnexpectedResponse {
            url: url.to_string(),
            status,
            reason: e.to_string(),
        })?;
        // A 2xx answer that calls the token anything but active means the token is dead.
        match answer.status() {
            Some(TokenStatus::Active) | None => Ok(answer),
            Some(other) => Err(AlationError::TokenExpiredOrRevoked {
                endpoint,
                detail: format!("Alation answered {status} but says the token is {other}"),
            }),
        }
    }

    /// One request: the JSON object of a 2xx answer, or why not.
    async fn attempt(
        &self,
        endpoint: &'static str,
        url: &Url,
        body: &RequestBody,
        keep_raw: Option<KeepRaw<'_>>,
    ) -> Result<(u16, Map<String, Value>), Failure> {
        let request = self.http.post(url.clone());
        let request = match body {
            RequestBody::Json(body) => request.json(body),
            RequestBody::OAuth { form, basic, .. } => {
                let request = request.form(form);
                match basic {
                    Some((id, secret)) => request.basic_auth(id, Some(secret.expose_secret())),
                    None => request,
                }
            }
        };
        let mut response = request.send().await.map_err(transport_failure)?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                        return Err(Failure::Final(AlationError::UnexpectedResponse {
                            url: url.to_string(),
                            status,
                            reason: format!(
                                "the answer is larger than {} KiB, which no token answer is",
                                MAX_BODY_BYTES / 1024
                            ),
                        }));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) if error.is_timeout() => return Err(Failure::Timeout),
                Err(_) => {
                    return Err(Failure::CutOff {
                        status: Some(status),
                    })
                }
            }
        }
        if let (Some(keep), 200..=299) = (keep_raw, status) {
            keep(&bytes);
        }
        classify(endpoint, url, status, &headers, &bytes)
    }
}

fn refresh_body(refresh_token: &SecretString, user_id: i64) -> Value {
    json!({
        "refresh_token": refresh_token.expose_secret(),
        "user_id": user_id,
    })
}

/// Sorts a failure to get an answer. A connection that was never made (name resolution,
/// refused, TLS handshake, or a timeout while connecting) means the request never left;
/// anything later may have reached the server.
fn transport_failure(error: reqwest::Error) -> Failure {
    if error.is_connect() {
        Failure::Connect(error)
    } else if error.is_timeout() {
        Failure::Timeout
    } else {
        Failure::CutOff { status: None }
    }
}

/// Sorts an answer into success or a failure. Order matters: retryable statuses first (a
/// proxy's 503 page is still worth retrying), then missing endpoints, then HTML pages.
fn classify(
    endpoint: &'static str,
    url: &Url,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(u16, Map<String, Value>), Failure> {
    let unexpected = |reason: String| {
        Failure::Final(AlationError::UnexpectedResponse {
            url: url.to_string(),
            status,
            reason,
        })
    };
    if status == 429 {
        return Err(Failure::RateLimited {
            retry_after: retry_after(headers),
        });
    }
    if is_retryable_status(status) {
        return Err(Failure::Server { status });
    }
    // regenRefreshToken is missing from some Alation versions, whatever page they answer
    // with; elsewhere an HTML 404 means a wrong base_url and is reported as such.
    let json = serde_json::from_slice::<Value>(body).ok();
    let is_object = json.as_ref().is_some_and(Value::is_object);
    if matches!(status, 404 | 405)
        && (endpoint == "regenRefreshToken" || (!is_object && !is_html(headers, body)))
    {
        return Err(Failure::Final(AlationError::NotSupported {
            endpoint,
            status,
        }));
    }
    // JSON first: a good answer labelled text/html by a proxy is still a good answer.
    if !is_object && is_html(headers, body) {
        return Err(Failure::Final(AlationError::HtmlPage {
            url: url.to_string(),
            status,
        }));
    }
    match status {
        200..=299 => match json {
            Some(Value::Object(object)) => Ok((status, object)),
            Some(_) => Err(unexpected("the body is JSON but not an object".into())),
            None => Err(unexpected("the body is not JSON".into())),
        },
        400 | 401 | 403 if oauth_error(json.as_ref()).is_some() => {
            let (error, description) = oauth_error(json.as_ref()).unwrap_or_default();
            Err(Failure::Final(AlationError::OAuth {
                endpoint,
                status,
                error,
                description: truncate(&description),
            }))
        }
        400 | 401 | 403 => {
            let envelope = json.as_ref().and_then(Value::as_object);
            let detail = envelope
                .and_then(|e| e.get("detail"))
                .and_then(Value::as_str);
            let code = envelope.and_then(|e| e.get("code")).and_then(|code| {
                code.as_str()
                    .map(str::to_owned)
                    .or_else(|| code.as_i64().map(|n| n.to_string()))
            });
            let shown = detail.map_or_else(|| "no detail".to_owned(), truncate);
            let lower = detail.unwrap_or_default().to_ascii_lowercase();
            Err(Failure::Final(
                if status == 401 && code.as_deref() == Some("401000") {
                    if lower.contains("expired") || lower.contains("revoked") {
                        AlationError::TokenExpiredOrRevoked {
                            endpoint,
                            detail: shown,
                        }
                    } else if lower.contains("invalid") {
                        AlationError::TokenInvalid {
                            endpoint,
                            detail: shown,
                        }
                    } else {
                        AlationError::Rejected {
                            endpoint,
                            status,
                            detail: shown,
                        }
                    }
                } else {
                    AlationError::Rejected {
                        endpoint,
                        status,
                        detail: shown,
                    }
                },
            ))
        }
        500..=599 => Err(Failure::Server { status }),
        300..=399 => Err(unexpected(match redirect_target(url, headers) {
            Some(target) => {
                format!("it redirects to {target}; set base_url to where it points")
            }
            None => "it redirects without saying where".into(),
        })),
        _ => Err(unexpected(
            match json
                .as_ref()
                .and_then(|j| j.get("detail"))
                .and_then(Value::as_str)
            {
                Some(detail) => format!("unexpected status (Alation said: {})", truncate(detail)),
                None => "unexpected status".into(),
            },
        )),
    }
}

/// The `error` and `error_description` of an OAuth error answer.
fn oauth_error(json: Option<&Value>) -> Option<(String, String)> {
    let object = json?.as_object()?;
    let error = object.get("error")?.as_str()?.to_owned();
    let description = object
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    Some((error, description))
}

/// What a request carries.
enum RequestBody {
    /// A JSON body to `/integration/v1/<endpoint>/`.
    Json(Value),
    /// A form to an OAuth endpoint, with HTTP Basic client authentication or the client id
    /// and secret among the fields.
    OAuth {
        path: &'static str,
        form: Vec<(&'static str, String)>,
        basic: Option<(String, SecretString)>,
    },
}

impl RequestBody {
    fn path(&self, endpoint: &str) -> String {
        match self {
            RequestBody::Json(_) => format!("integration/v1/{endpoint}/"),
            RequestBody::OAuth { path, .. } => (*path).to_owned(),
        }
    }
}

fn truncate(detail: &str) -> String {
    match detail.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((end, _)) => format!("{}…", &detail[..end]),
        None => detail.to_owned(),
    }
}

fn is_html(headers: &HeaderMap, body: &[u8]) -> bool {
    let html_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    html_type || body.trim_ascii_start().starts_with(b"<")
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    let wait = jiff::Timestamp::now().duration_until(at);
    Some(Duration::try_from(wait).unwrap_or(Duration::ZERO))
}

/// Where a redirect points, without query or credentials (they may carry session data).
fn redirect_target(url: &Url, headers: &HeaderMap) -> Option<String> {
    let location = headers.get(LOCATION)?.to_str().ok()?;
    let mut target = url.join(location).ok()?;
    target.set_query(None);
    target.set_fragment(None);
    let _ = target.set_username("");
    let _ = target.set_password(None);
    Some(target.to_string())
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn url() -> Url {
        "https://alation.example.com/integration/v1/createAPIAccessToken/"
            .parse()
            .unwrap()
    }

    fn classify_json(status: u16, body: &str) -> Result<(u16, Map<String, Value>), Failure> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        classify(
            "createAPIAccessToken",
            &url(),
            status,
            &headers,
            body.as_bytes(),
        )
    }

    fn final_error(result: Result<(u16, Map<String, Value>), Failure>) -> AlationError {
        match result {
            Err(Failure::Final(error)) => error,
            other => panic!("expected a final error, got {other:?}"),
        }
    }

    #[test]
    fn bodies_are_never_echoed_only_a_truncated_detail() {
        for (status, body) in [
            (200, format!("token={SECRET}")),
            (200, format!("[\"{SECRET}\"]")),
            (400, format!("{{\"refresh_token\": \"{SECRET}\"}}")),
            (409, format!("{{\"token\": \"{SECRET}\"}}")),
            (418, format!("oops {SECRET}")),
        ] {
            let error = final_error(classify_json(status, &body));
            assert!(!error.to_string().contains(SECRET), "{error}");
            assert!(!format!("{error:?}").contains(SECRET), "{error:?}");
        }
        let long = "x".repeat(500);
        let error = final_error(classify_json(403, &format!("{{\"detail\": \"{long}\"}}")));
        match error {
            AlationError::Rejected { detail, .. } => assert_eq!(detail.chars().count(), 201),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_numeric_401000_code_is_still_a_token_error() {
        let error = final_error(classify_json(
            401,
            r#"{"detail": "Refresh token provided is expired or revoked.", "code": 401000}"#,
        ));
        assert!(error.is_token_expired_or_revoked(), "{error:?}");
        let error = final_error(classify_json(401, r#"{"detail": "Not allowed."}"#));
        assert!(
            matches!(error, AlationError::Rejected { status: 401, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_body_starting_with_a_tag_is_html_whatever_its_content_type() {
        let error = final_error(classify_json(200, "\n  <html><body>login</body></html>"));
        assert!(
            matches!(error, AlationError::HtmlPage { status: 200, .. }),
            "{error:?}"
        );
    }

    #[test]
    fn a_redirect_names_its_target_without_query_or_credentials() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LOCATION,
            HeaderValue::from_static("https://u:p@sso.example.com/login?session=abc#x"),
        );
        let error = final_error(classify("createAPIAccessToken", &url(), 302, &headers, b""));
        let message = error.to_string();
        assert!(
            message.contains("it redirects to https://sso.example.com/login;"),
            "{message}"
        );
        assert!(
            !message.contains("abc") && !message.contains("u:p"),
            "{message}"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), Some(Duration::ZERO));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&headers), None);
    }
}
