//! Logging in and calling Vault with the token: every auth method, the token cache, one new
//! login when Vault stops accepting the token, and the messages of refused requests.

use std::time::{Duration, Instant};

use rotator_core::SinkError;
use rustify::endpoint::Endpoint;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;
use vaultrs::api::auth::approle::requests::LoginWithApproleRequest;
use vaultrs::api::auth::kubernetes::requests::LoginWithKubernetesRequest;
use vaultrs::api::auth::oidc::requests::JWTLoginRequest;
use vaultrs::api::auth::userpass::requests::LoginRequest as UserpassLoginRequest;
use vaultrs::api::sys::requests::ReadHealthRequest;
use vaultrs::api::token::requests::LookupTokenSelfRequest;

use crate::config::{AuthConfig, Config, DEFAULT_TOKEN_ENV};
use crate::endpoints::{CapabilitiesSelfRequest, CertLoginRequest};
use crate::secrets::{io_reason, read_env, read_file, read_ref};
use crate::transport::{Reply, Transport};

struct CachedToken {
    token: SecretString,
    /// When to log in again before using the token (a little before its TTL ends).
    renew_at: Option<Instant>,
}

/// The parts of `sys/health`'s answer the sink reads. (vaultrs's `ReadHealthResponse`
/// requires `performance_standby`, which OpenBao does not send.)
#[derive(Deserialize)]
struct Health {
    #[serde(default)]
    sealed: bool,
}

/// A logged-in (or about to log in) connection to one Vault server.
pub(crate) struct Session {
    pub transport: Transport,
    auth: AuthConfig,
    token: Mutex<Option<CachedToken>>,
}

impl Session {
    /// Prepares the transport from a resolved configuration; a `cert` login's certificate
    /// and key are read here, since they go into the TLS client.
    pub fn new(config: &Config) -> Result<Self, SinkError> {
        let identity = match &config.auth {
            AuthConfig::Cert {
                cert_file,
                key_file,
                ..
            } => Some(client_identity(cert_file, key_file)?),
            _ => None,
        };
        Ok(Self {
            transport: Transport::new(config, identity)?,
            auth: config.auth.clone(),
            token: Mutex::new(None),
        })
    }

    /// Checks that Vault is up, initialized and unsealed (`sys/health`, no token needed).
    pub async fn health(&self) -> Result<(), SinkError> {
        let request = ReadHealthRequest {
            standbyok: Some(true),
            perfstandbyok: Some(true),
            ..ReadHealthRequest::default()
        };
        let reply = self.transport.exec(request, None).await?;
        if reply.parse::<Health>().is_some_and(|h| h.sealed) {
            return Err(self.transport.sealed());
        }
        if reply.status == 501 {
            return Err(SinkError::Unavailable {
                detail: format!(
                    "Vault at {} is not initialized; run `vault operator init`",
                    self.transport.address
                ),
                source: None,
            });
        }
        if let Some(e) = self.transport.server_error(&reply, "sys/health") {
            return Err(e);
        }
        Ok(())
    }

    /// Logs in unless a valid token is cached; errors say why the login failed.
    pub async fn login_check(&self) -> Result<(), SinkError> {
        self.token().await.map(drop)
    }

    /// Runs the endpoint `make` builds with the token. `needs` names the policy
    /// capabilities the request requires, for the message of a 403.
    ///
    /// A 403 with a token Vault no longer knows (expired, revoked) leads to one new login and
    /// one retry (so `make` may be called twice). 403, redirects, 5xx and 429 become errors;
    /// all other answers are returned.
    pub async fn call<E: Endpoint>(
        &self,
        make: impl Fn() -> E,
        needs: &[&str],
    ) -> Result<Reply, SinkError> {
        let endpoint = make();
        let path = endpoint.path().trim_start_matches('/').to_owned();
        let mut token = self.token().await?;
        let mut reply = self.transport.exec(endpoint, Some(&token)).await?;
        if reply.status == 403 && !self.token_valid(&token).await? {
            tracing::info!(
                method = self.auth.method(),
                "Vault token expired or was revoked; logging in again"
            );
            token = self.relogin(&token).await?;
            reply = self.transport.exec(make(), Some(&token)).await?;
        }
        if reply.status == 403 {
            return Err(self.permission_denied(&path, needs, &token).await);
        }
        if let Some(e) = self.transport.server_error(&reply, &path) {
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
        let request = CapabilitiesSelfRequest {
            path: path.to_owned(),
        };
        let has = self
            .transport
            .exec(request, Some(token))
            .await
            .ok()
            .filter(Reply::is_success)
            .and_then(|r| r.envelope::<crate::endpoints::Capabilities>())
            .and_then(|e| e.data)
            .map(|caps| {
                format!(
                    " (the token's policies grant {:?} there)",
                    caps.capabilities
                )
            })
            .unwrap_or_default();
        SinkError::Unauthorized {
            detail: format!(
                "permission denied: the Vault policy must grant {needs:?} on {path}{}{has}; \
                 add it to the policy of the rotator's {} login (see docs/stores/vault.md)",
                self.transport.in_namespace(),
                self.auth.method(),
            ),
        }
    }

    /// Whether Vault still accepts `token` (it answers `lookup-self`, allowed by the
    /// `default` policy). Only called after a 403.
    async fn token_valid(&self, token: &SecretString) -> Result<bool, SinkError> {
        let reply = self
            .transport
            .exec(LookupTokenSelfRequest {}, Some(token))
            .await?;
        Ok(reply.status != 403)
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
                    self.transport.address,
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

    /// Logs in with the configured method (each through vaultrs's login request, except
    /// `cert`: see [`CertLoginRequest`]).
    async fn login(&self) -> Result<CachedToken, SinkError> {
        let mount = self.auth.mount().unwrap_or_default().to_owned();
        let path = format!("auth/{mount}/login");
        match &self.auth {
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
                Ok(CachedToken {
                    token: header_safe(token)?,
                    renew_at: None,
                })
            }
            AuthConfig::Approle {
                role_id_env,
                role_id_file,
                secret_id_env,
                secret_id_file,
                ..
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
                let request = LoginWithApproleRequest {
                    mount,
                    role_id: role_id.expose_secret().to_owned(),
                    secret_id: secret_id.expose_secret().to_owned(),
                };
                self.login_with(request, &path).await
            }
            AuthConfig::Kubernetes { role, jwt_file, .. } => {
                let jwt = read_file(jwt_file, "auth.jwt_file", "the service-account token")?;
                let request = LoginWithKubernetesRequest {
                    mount,
                    role: role.clone(),
                    jwt: jwt.expose_secret().to_owned(),
                };
                self.login_with(request, &path).await
            }
            AuthConfig::Jwt {
                role,
                jwt_env,
                jwt_file,
                ..
            } => {
                let jwt = read_ref(
                    jwt_env,
                    jwt_file,
                    "auth.jwt_env",
                    "auth.jwt_file",
                    "the JWT",
                )?;
                let request = JWTLoginRequest {
                    mount,
                    jwt: jwt.expose_secret().to_owned(),
                    role: role.clone(),
                };
                self.login_with(request, &path).await
            }
            AuthConfig::Aws {
                role,
                region,
                sts_endpoint,
                server_id,
                ..
            } => {
                let request = crate::aws::iam_login_request(
                    &mount,
                    role.as_deref(),
                    region.as_deref(),
                    sts_endpoint.as_deref(),
                    server_id.as_deref(),
                )
                .await?;
                self.login_with(request, &path).await
            }
            AuthConfig::Cert { name, .. } => {
                let request = CertLoginRequest {
                    mount,
                    name: name.clone(),
                };
                self.login_with(request, &path).await
            }
            AuthConfig::Userpass {
                username,
                password_env,
                password_file,
                ..
            } => {
                let password = read_ref(
                    password_env,
                    password_file,
                    "auth.password_env",
                    "auth.password_file",
                    "the password",
                )?;
                let path = format!("{path}/{username}");
                let request = UserpassLoginRequest {
                    mount,
                    username: username.clone(),
                    password: password.expose_secret().to_owned(),
                };
                self.login_with(request, &path).await
            }
        }
    }

    /// Sends a login request (without a token) and takes the client token from Vault's
    /// answer. `path` names the login endpoint in messages.
    async fn login_with<E: Endpoint>(
        &self,
        request: E,
        path: &str,
    ) -> Result<CachedToken, SinkError> {
        let reply = self.transport.exec(request, None).await?;
        if let Some(e) = self.transport.server_error(&reply, path) {
            return Err(e);
        }
        let method = self.auth.method();
        let mount = self.auth.mount().unwrap_or_default();
        if !reply.is_success() {
            let hint = if reply.status == 404 {
                format!("no {method} auth method is enabled at auth/{mount}; check `auth.mount`")
            } else {
                format!(
                    "{}, and that the {method} auth method is enabled at auth/{mount} \
                     (`auth.mount`)",
                    self.refusal_hint()
                )
            };
            return Err(SinkError::Unauthorized {
                detail: format!(
                    "Vault at {} refused the {method} login at {path}{} (HTTP {}): {hint}",
                    self.transport.address,
                    self.transport.in_namespace(),
                    reply.status
                ),
            });
        }
        let auth = reply
            .envelope::<Value>()
            .and_then(|envelope| envelope.auth)
            .filter(|auth| !auth.client_token.is_empty())
            .ok_or_else(|| SinkError::Other {
                detail: format!(
                    "Vault at {} answered the {method} login at {path} without a client token",
                    self.transport.address
                ),
                source: None,
            })?;
        Ok(CachedToken {
            renew_at: renew_at(Instant::now(), auth.lease_duration),
            token: header_safe(SecretString::from(auth.client_token))?,
        })
    }

    /// What to check when Vault refuses a login with valid syntax.
    fn refusal_hint(&self) -> &'static str {
        match &self.auth {
            AuthConfig::Approle { .. } => {
                "check the role_id and secret_id (a secret_id may have expired or used up its \
                 uses)"
            }
            AuthConfig::Kubernetes { .. } => {
                "check `auth.role` and that the role is bound to this pod's service account \
                 and namespace"
            }
            AuthConfig::Jwt { .. } => {
                "check `auth.role` and the role's bound claims (audience, subject, issuer)"
            }
            AuthConfig::Aws { .. } => {
                "check `auth.role` and that its bound_iam_principal_arn matches the rotator's \
                 AWS identity, and that `auth.region`, `auth.sts_endpoint` and \
                 `auth.server_id` match Vault's AWS auth configuration"
            }
            AuthConfig::Cert { .. } => {
                "check that a certificate role (`auth.name`) trusts the certificate in \
                 `auth.cert_file` and that the certificate is valid now"
            }
            AuthConfig::Userpass { .. } => "check `auth.username` and the password",
            AuthConfig::Token { .. } => "check the token",
        }
    }
}

/// A token that can go into an HTTP header (Vault tokens are letters, digits, `.`, `_`
/// and `-`); anything else is refused here rather than by the HTTP library.
fn header_safe(token: SecretString) -> Result<SecretString, SinkError> {
    if token.expose_secret().chars().all(|c| c.is_ascii_graphic()) {
        Ok(token)
    } else {
        Err(SinkError::Unauthorized {
            detail: "the Vault token contains characters that cannot be sent in an HTTP \
                     header; check the token source"
                .to_owned(),
        })
    }
}

/// The TLS client identity of a `cert` login: the certificate (chain) and its key.
fn client_identity(
    cert_file: &std::path::Path,
    key_file: &std::path::Path,
) -> Result<reqwest::Identity, SinkError> {
    let read = |file: &std::path::Path, key: &str| {
        std::fs::read(file).map_err(|e| SinkError::Unauthorized {
            detail: format!("cannot read {key} {}: {}", file.display(), io_reason(&e)),
        })
    };
    let mut pem = read(cert_file, "auth.cert_file")?;
    pem.push(b'\n');
    pem.extend_from_slice(&read(key_file, "auth.key_file")?);
    reqwest::Identity::from_pem(&pem).map_err(|_| SinkError::Unauthorized {
        detail: format!(
            "auth.cert_file {} and auth.key_file {} must hold a PEM certificate and its PEM \
             private key (PKCS#8, PKCS#1 or SEC1)",
            cert_file.display(),
            key_file.display()
        ),
    })
}

/// When a token with a TTL of `lease_secs` obtained at `now` should be replaced: after four
/// fifths of its TTL, at most one minute before it ends. `None` for tokens without a TTL.
fn renew_at(now: Instant, lease_secs: u64) -> Option<Instant> {
    if lease_secs == 0 {
        return None;
    }
    let lease = Duration::from_secs(lease_secs);
    let margin = (lease / 5).min(Duration::from_secs(60));
    Some(now + (lease - margin))
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
    fn tokens_that_cannot_be_headers_are_refused_without_being_quoted() {
        let err = header_safe(SecretString::from("s.abc\ndef")).unwrap_err();
        assert!(err.to_string().contains("cannot be sent in an HTTP header"));
        assert!(!err.to_string().contains("s.abc"));
        header_safe(SecretString::from("hvs.CAES-x_y.z")).unwrap();
    }
}
