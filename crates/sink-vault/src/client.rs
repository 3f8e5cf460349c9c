//! A small Vault HTTP client: TLS, namespace, login, token caching and error mapping.
//!
//! Nothing here ever puts a secret or a response body into an error or a log line: Vault's
//! error strings are only matched against known phrases (sealed, check-and-set), never copied.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use rotator_core::SinkError;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use crate::config::{AuthConfig, Config, DEFAULT_TOKEN_ENV};

/// A Vault answer that was not a transport failure, a 403, a 5xx or a 429 (those become
/// errors in [`Client::send`]).
pub(crate) struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    /// Whether one of Vault's error strings contains `needle`. Used to classify, never to
    /// build messages.
    pub fn error_mentions(&self, needle: &str) -> bool {
        self.body
            .get("errors")
            .and_then(Value::as_array)
            .is_some_and(|errors| {
                errors
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|e| e.contains(needle))
            })
    }

    /// Whether Vault said the path has no handler (the mount does not exist).
    pub fn no_route(&self) -> bool {
        self.status == StatusCode::NOT_FOUND && self.error_mentions("no handler for route")
    }
}

struct CachedToken {
    token: SecretString,
    /// When to log in again before using the token (a little before its TTL ends).
    renew_at: Option<Instant>,
}

pub(crate) struct Client {
    http: reqwest::Client,
    /// `address` with `/v1/` appended.
    base: String,
    address: String,
    namespace: Option<String>,
    timeout: Duration,
    auth: AuthConfig,
    token: Mutex<Option<CachedToken>>,
}

impl Client {
    pub fn new(config: &Config) -> Result<Self, SinkError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("alation-rotator/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // Standby nodes redirect to the active node; never follow a downgrade to
                // plain HTTP, which would send the token in clear text.
                let downgrade = attempt.url().scheme() == "http"
                    && attempt.previous().iter().any(|u| u.scheme() == "https");
                if downgrade || attempt.previous().len() >= 3 {
                    attempt.stop()
                } else {
                    attempt.follow()
                }
            }));
        if let Some(ca_file) = &config.ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| SinkError::Other {
                detail: format!(
                    "cannot read ca_file {}: {e}; give the path of a readable PEM file",
                    ca_file.display()
                ),
                source: None,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| SinkError::Other {
                    detail: format!(
                        "ca_file {} holds no PEM certificate (expected \
                         -----BEGIN CERTIFICATE----- blocks)",
                        ca_file.display()
                    ),
                    source: None,
                })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(|e| SinkError::Other {
            detail: "cannot build the HTTP client for Vault".to_owned(),
            source: Some(e.into()),
        })?;
        Ok(Self {
            http,
            base: format!("{}/v1/", config.address.trim_end_matches('/')),
            address: config.address.clone(),
            namespace: config.namespace.clone(),
            timeout: config.timeout,
            auth: config.auth.clone(),
            token: Mutex::new(None),
        })
    }

    fn in_namespace(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(" in namespace {ns}"),
            None => String::new(),
        }
    }

    /// One HTTP exchange, mapping only transport failures.
    async fn raw(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        token: Option<&SecretString>,
    ) -> Result<Reply, SinkError> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if !query.is_empty() {
            request = request.query(query);
        }
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        if let Some(token) = token {
            let mut value =
                reqwest::header::HeaderValue::from_str(token.expose_secret()).map_err(|_| {
                    SinkError::Unauthorized {
                        detail: "the Vault token contains characters that cannot be sent in an \
                             HTTP header; check the token source"
                            .to_owned(),
                    }
                })?;
            value.set_sensitive(true);
            request = request.header("X-Vault-Token", value);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        tracing::debug!(%method, path, status = status.as_u16(), "vault request");
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Reply { status, body })
    }

    fn transport_error(&self, e: reqwest::Error) -> SinkError {
        let detail = if e.is_timeout() {
            format!(
                "Vault at {} did not answer within {}; check that it is healthy or raise \
                 `timeout`",
                self.address,
                humantime::format_duration(self.timeout)
            )
        } else if e.is_connect() {
            format!(
                "cannot connect to Vault at {}: {}; check `address` and that Vault is running",
                self.address,
                root_cause(&e)
            )
        } else {
            format!(
                "request to Vault at {} failed: {}; check that Vault is running and reachable",
                self.address,
                root_cause(&e)
            )
        };
        SinkError::Unavailable {
            detail,
            source: Some(e.without_url().into()),
        }
    }

    fn sealed(&self) -> SinkError {
        SinkError::Unavailable {
            detail: format!(
                "Vault at {} is sealed; unseal it (`vault operator unseal` / \
                 `bao operator unseal`) and run again",
                self.address
            ),
            source: None,
        }
    }

    /// Maps the answers that are errors whatever the request: sealed, 5xx, 429.
    fn server_error(&self, reply: &Reply, path: &str) -> Option<SinkError> {
        let status = reply.status;
        if status == StatusCode::SERVICE_UNAVAILABLE && reply.error_mentions("sealed") {
            return Some(self.sealed());
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Some(SinkError::Unavailable {
                detail: format!(
                    "Vault at {} answered HTTP {} to {path}; try again later",
                    self.address,
                    status.as_u16()
                ),
                source: None,
            });
        }
        None
    }

    /// Checks that Vault is up and unsealed (`sys/health`, no token needed).
    pub async fn health(&self) -> Result<(), SinkError> {
        let query = [
            ("standbyok", "true".to_owned()),
            ("perfstandbyok", "true".to_owned()),
        ];
        let reply = self
            .raw(Method::GET, "sys/health", &query, None, None)
            .await?;
        if reply.body.get("sealed").and_then(Value::as_bool) == Some(true) {
            return Err(self.sealed());
        }
        if reply.status == StatusCode::NOT_IMPLEMENTED {
            return Err(SinkError::Unavailable {
                detail: format!(
                    "Vault at {} is not initialized; run `vault operator init`",
                    self.address
                ),
                source: None,
            });
        }
        if let Some(e) = self.server_error(&reply, "sys/health") {
            return Err(e);
        }
        Ok(())
    }

    /// Sends an authenticated request. `needs` names the policy capabilities the request
    /// requires on `path`, for the message of a 403.
    ///
    /// A 403 with a token Vault no longer knows (expired, revoked) leads to one new login and
    /// one retry. 403, 5xx and 429 answers become errors; all others are returned.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        needs: &[&str],
    ) -> Result<Reply, SinkError> {
        let token = self.token().await?;
        let mut reply = self
            .raw(method.clone(), path, query, body, Some(&token))
            .await?;
        let mut token = token;
        if reply.status == StatusCode::FORBIDDEN && !self.token_valid(&token).await? {
            tracing::info!(
                method = self.auth.method(),
                "Vault token expired or was revoked; logging in again"
            );
            token = self.relogin(&token).await?;
            reply = self.raw(method, path, query, body, Some(&token)).await?;
        }
        if reply.status == StatusCode::FORBIDDEN {
            return Err(self.permission_denied(path, needs, &token).await);
        }
        if let Some(e) = self.server_error(&reply, path) {
            return Err(e);
        }
        Ok(reply)
    }

    async fn permission_denied(
        &self,
        path: &str,
        needs: &[&str],
        token: &SecretString,
    ) -> SinkError {
        let has = self
            .raw(
                Method::POST,
                "sys/capabilities-self",
                &[],
                Some(&json!({ "paths": [path] })),
                Some(token),
            )
            .await
            .ok()
            .filter(|r| r.status.is_success())
            .and_then(|r| {
                r.body
                    .pointer("/data/capabilities")
                    .or_else(|| r.body.get("capabilities"))
                    .and_then(Value::as_array)
                    .map(|caps| {
                        caps.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
            });
        let has = match has {
            Some(caps) => format!(" (the token's policies grant {caps:?} there)"),
            None => String::new(),
        };
        SinkError::Unauthorized {
            detail: format!(
                "permission denied: the Vault policy must grant {needs:?} on {path}{}{has}; \
                 add it to the policy of the rotator's {} login (see docs/stores/vault.md)",
                self.in_namespace(),
                self.auth.method(),
            ),
        }
    }

    /// Logs in unless a valid token is cached; errors say why the login failed.
    pub async fn login_check(&self) -> Result<(), SinkError> {
        self.token().await.map(drop)
    }

    /// Whether Vault still accepts `token` (it answers `lookup-self`, allowed by the
    /// `default` policy). Only called after a 403.
    async fn token_valid(&self, token: &SecretString) -> Result<bool, SinkError> {
        let reply = self
            .raw(
                Method::GET,
                "auth/token/lookup-self",
                &[],
                None,
                Some(token),
            )
            .await?;
        Ok(reply.status != StatusCode::FORBIDDEN)
    }

    /// The cached token, logging in first when there is none or it is about to expire.
    async fn token(&self) -> Result<SecretString, SinkError> {
        let mut cached = self.token.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.renew_at.is_none_or(|at| Instant::now() < at) {
                return Ok(c.token.clone());
            }
        }
        let fresh = self.login().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Logs in again after Vault refused `bad`, unless another task already did.
    async fn relogin(&self, bad: &SecretString) -> Result<SecretString, SinkError> {
        let mut cached = self.token.lock().await;
        if let Some(c) = cached.as_ref() {
            if c.token.expose_secret() != bad.expose_secret() {
                return Ok(c.token.clone());
            }
        }
        *cached = None;
        let fresh = self.login().await?;
        if fresh.token.expose_secret() == bad.expose_secret() {
            return Err(SinkError::Unauthorized {
                detail: format!(
                    "Vault at {} refused the token from {} (expired or revoked); provide a \
                     valid token",
                    self.address,
                    self.token_source()
                ),
            });
        }
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    fn token_source(&self) -> String {
        match &self.auth {
            AuthConfig::Token {
                token_file: Some(file),
                ..
            } => format!("auth.token_file {}", file.display()),
            AuthConfig::Token {
                token_env: Some(env),
                ..
            } => format!("environment variable {env}"),
            _ => format!("environment variable {DEFAULT_TOKEN_ENV}"),
        }
    }

    async fn login(&self) -> Result<CachedToken, SinkError> {
        let (mount, body) = match &self.auth {
            AuthConfig::Token {
                token_env,
                token_file,
            } => {
                let token = match (token_env, token_file) {
                    (_, Some(file)) => read_file(file, "auth.token_file", "the Vault token")?,
                    (Some(env), None) => read_env(env, "auth.token_env", "the Vault token")?,
                    (None, None) => {
                        read_env(DEFAULT_TOKEN_ENV, "auth.token_env", "the Vault token")?
                    }
                };
                return Ok(CachedToken {
                    token,
                    renew_at: None,
                });
            }
            AuthConfig::Approle {
                role_id_env,
                role_id_file,
                secret_id_env,
                secret_id_file,
                mount,
            } => {
                let role_id = read_ref(
                    role_id_env,
                    role_id_file,
                    "auth.role_id_env",
                    "auth.role_id_file",
                    "the AppRole role_id",
                )?;
                let secret_id = read_ref(
                    secret_id_env,
                    secret_id_file,
                    "auth.secret_id_env",
                    "auth.secret_id_file",
                    "the AppRole secret_id",
                )?;
                (
                    mount,
                    json!({
                        "role_id": role_id.expose_secret(),
                        "secret_id": secret_id.expose_secret(),
                    }),
                )
            }
            AuthConfig::Kubernetes {
                role,
                jwt_file,
                mount,
            } => {
                let jwt = read_file(jwt_file, "auth.jwt_file", "the service-account token")?;
                (mount, json!({ "role": role, "jwt": jwt.expose_secret() }))
            }
            AuthConfig::Jwt {
                role,
                jwt_env,
                jwt_file,
                mount,
            } => {
                let jwt = read_ref(
                    jwt_env,
                    jwt_file,
                    "auth.jwt_env",
                    "auth.jwt_file",
                    "the JWT",
                )?;
                let mut body = json!({ "jwt": jwt.expose_secret() });
                if let Some(role) = role {
                    body["role"] = json!(role);
                }
                (mount, body)
            }
        };
        let path = login_path(mount);
        let reply = self
            .raw(Method::POST, &path, &[], Some(&body), None)
            .await?;
        drop(body);
        if let Some(e) = self.server_error(&reply, &path) {
            return Err(e);
        }
        if !reply.status.is_success() {
            let hint = match reply.status {
                StatusCode::NOT_FOUND => format!(
                    "no {} auth method is enabled at auth/{mount}; check `auth.mount`",
                    self.auth.method()
                ),
                _ => {
                    let what = match &self.auth {
                        AuthConfig::Approle { .. } => {
                            "check the role_id and secret_id (a secret_id may have expired or \
                             used up its uses)"
                        }
                        AuthConfig::Kubernetes { .. } => {
                            "check `auth.role` and that the role is bound to this pod's \
                             service account and namespace"
                        }
                        _ => {
                            "check `auth.role` and the role's bound claims (audience, subject, \
                             issuer)"
                        }
                    };
                    format!(
                        "{what}, and that the {} auth method is enabled at auth/{mount} \
                         (`auth.mount`)",
                        self.auth.method()
                    )
                }
            };
            return Err(SinkError::Unauthorized {
                detail: format!(
                    "Vault at {} refused the {} login at {path}{} (HTTP {}): {hint}",
                    self.address,
                    self.auth.method(),
                    self.in_namespace(),
                    reply.status.as_u16()
                ),
            });
        }
        let token = reply
            .body
            .pointer("/auth/client_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| SinkError::Other {
                detail: format!(
                    "Vault at {} answered the {} login at {path} without a client token",
                    self.address,
                    self.auth.method()
                ),
                source: None,
            })?;
        let lease = reply
            .body
            .pointer("/auth/lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        Ok(CachedToken {
            token: SecretString::from(token),
            renew_at: renew_at(Instant::now(), lease),
        })
    }
}

/// The path of a login endpoint.
pub(crate) fn login_path(mount: &str) -> String {
    format!("auth/{mount}/login")
}

/// When a token with a TTL of `lease_secs` obtained at `now` should be replaced: after four
/// fifths of its TTL, at most one minute before it ends. `None` for tokens without a TTL.
pub(crate) fn renew_at(now: Instant, lease_secs: u64) -> Option<Instant> {
    if lease_secs == 0 {
        return None;
    }
    let lease = Duration::from_secs(lease_secs);
    let margin = (lease / 5).min(Duration::from_secs(60));
    Some(now + (lease - margin))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn read_ref(
    env: &Option<String>,
    file: &Option<std::path::PathBuf>,
    env_key: &str,
    file_key: &str,
    what: &str,
) -> Result<SecretString, SinkError> {
    match (env, file) {
        (Some(env), _) => read_env(env, env_key, what),
        (None, Some(file)) => read_file(file, file_key, what),
        (None, None) => Err(SinkError::Unauthorized {
            detail: format!("no source for {what}: set `{env_key}` or `{file_key}`"),
        }),
    }
}

fn read_env(name: &str, key: &str, what: &str) -> Result<SecretString, SinkError> {
    let value = std::env::var(name).map_err(|e| SinkError::Unauthorized {
        detail: match e {
            std::env::VarError::NotPresent => {
                format!("environment variable {name} ({key}) is not set; it must hold {what}")
            }
            std::env::VarError::NotUnicode(_) => {
                format!("environment variable {name} ({key}) is not valid UTF-8")
            }
        },
    })?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SinkError::Unauthorized {
            detail: format!("environment variable {name} ({key}) is empty; it must hold {what}"),
        });
    }
    Ok(SecretString::from(trimmed))
}

fn read_file(path: &Path, key: &str, what: &str) -> Result<SecretString, SinkError> {
    let value = std::fs::read_to_string(path).map_err(|e| SinkError::Unauthorized {
        detail: format!(
            "cannot read {key} {} ({what}): {}",
            path.display(),
            io_reason(&e)
        ),
    })?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SinkError::Unauthorized {
            detail: format!("{key} {} is empty; it must hold {what}", path.display()),
        });
    }
    Ok(SecretString::from(trimmed))
}

fn io_reason(e: &std::io::Error) -> String {
    // The kind, not the full error: a message about invalid UTF-8 could quote content.
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::InvalidData => "not valid UTF-8".to_owned(),
        kind => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_renewed_before_their_ttl_ends() {
        let now = Instant::now();
        assert_eq!(renew_at(now, 0), None);
        assert_eq!(renew_at(now, 10), Some(now + Duration::from_secs(8)));
        assert_eq!(
            renew_at(now, 3600),
            Some(now + Duration::from_secs(3600 - 60))
        );
    }

    #[test]
    fn secret_files_are_trimmed_and_errors_never_quote_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s.supersecret\n").unwrap();
        let token = read_file(&file, "auth.token_file", "the Vault token").unwrap();
        assert_eq!(token.expose_secret(), "s.supersecret");
        std::fs::write(&file, [0xff, 0xfe, b's']).unwrap();
        let err = read_file(&file, "auth.token_file", "the Vault token")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid UTF-8"), "{err}");
        let err = read_file(&dir.path().join("missing"), "auth.token_file", "the token")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
    }
}
