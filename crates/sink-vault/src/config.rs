//! Configuration of a Vault / OpenBao store, as written in the `[stores.NAME]` table.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// Where the service-account token of a Kubernetes pod is mounted by default.
pub const DEFAULT_KUBERNETES_JWT_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The environment variable a `method = "token"` login reads when neither `token_env` nor
/// `token_file` is set (the same variable the `vault` and `bao` CLIs read).
pub const DEFAULT_TOKEN_ENV: &str = "VAULT_TOKEN";

/// A Vault (or OpenBao) KV store.
///
/// ```toml
/// [stores.vault]
/// type = "vault"   # read by the CLI, not by this struct
/// address = "https://vault.example.com:8200"
/// mount = "secret"
/// kv_version = 2
/// auth = { method = "approle", role_id_env = "VAULT_ROLE_ID", secret_id_file = "/run/secrets/secret-id" }
/// ```
///
/// Secrets never stand in the configuration: credentials are named by environment variable
/// (`*_env`) or file (`*_file`) and read when the rotator logs in.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// URL of the Vault API, e.g. `https://vault.example.com:8200`. Plain `http://` only when
    /// written so (a local dev server).
    pub address: String,
    /// Path of the KV secrets engine mount, without slashes (`secret`, `kv/team-a`).
    #[serde(default = "default_mount")]
    pub mount: String,
    /// Version of the KV engine at `mount`: `2` (versions, compare-and-set, metadata) or `1`.
    #[serde(default = "default_kv_version")]
    pub kv_version: u8,
    /// Vault Enterprise / OpenBao namespace (sent as `X-Vault-Namespace`), e.g. `team-a`.
    /// Login and secret requests both go to this namespace.
    #[serde(default)]
    pub namespace: Option<String>,
    /// PEM file of extra CA certificates to trust besides the system roots (a corporate CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Timeout of each HTTP request to Vault, a humantime duration such as `"30s"`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// How the rotator logs in to Vault. See [`AuthConfig`].
    pub auth: AuthConfig,
}

/// How the rotator logs in to Vault; the `method` key selects the variant.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
pub enum AuthConfig {
    /// A Vault token, e.g. one written by Vault Agent. Set at most one of `token_env` and
    /// `token_file`; with neither, the token is read from `VAULT_TOKEN`.
    Token {
        /// Environment variable holding the token.
        #[serde(default)]
        token_env: Option<String>,
        /// File holding the token (surrounding whitespace is ignored). Re-read when Vault
        /// refuses the cached token, so a token rotated by Vault Agent is picked up.
        #[serde(default)]
        token_file: Option<PathBuf>,
    },
    /// AppRole login with a role_id and a secret_id.
    Approle {
        /// Environment variable holding the role_id. Set exactly one of `role_id_env` and
        /// `role_id_file`.
        #[serde(default)]
        role_id_env: Option<String>,
        /// File holding the role_id.
        #[serde(default)]
        role_id_file: Option<PathBuf>,
        /// Environment variable holding the secret_id. Set exactly one of `secret_id_env`
        /// and `secret_id_file`.
        #[serde(default)]
        secret_id_env: Option<String>,
        /// File holding the secret_id.
        #[serde(default)]
        secret_id_file: Option<PathBuf>,
        /// Path the AppRole auth method is mounted at.
        #[serde(default = "default_approle_mount")]
        mount: String,
    },
    /// Kubernetes login with the pod's service-account token.
    Kubernetes {
        /// The Vault role bound to the service account.
        role: String,
        /// File holding the service-account JWT; re-read at each login.
        #[serde(default = "default_kubernetes_jwt_file")]
        jwt_file: PathBuf,
        /// Path the Kubernetes auth method is mounted at.
        #[serde(default = "default_kubernetes_mount")]
        mount: String,
    },
    /// JWT login (a CI system's OIDC token, a workload identity token).
    Jwt {
        /// The Vault role to log in as; when unset, the auth method's `default_role`.
        #[serde(default)]
        role: Option<String>,
        /// Environment variable holding the JWT. Set exactly one of `jwt_env` and
        /// `jwt_file`.
        #[serde(default)]
        jwt_env: Option<String>,
        /// File holding the JWT; re-read at each login.
        #[serde(default)]
        jwt_file: Option<PathBuf>,
        /// Path the JWT auth method is mounted at.
        #[serde(default = "default_jwt_mount")]
        mount: String,
    },
}

fn default_mount() -> String {
    "secret".to_owned()
}
fn default_kv_version() -> u8 {
    2
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_approle_mount() -> String {
    "approle".to_owned()
}
fn default_kubernetes_mount() -> String {
    "kubernetes".to_owned()
}
fn default_kubernetes_jwt_file() -> PathBuf {
    PathBuf::from(DEFAULT_KUBERNETES_JWT_FILE)
}
fn default_jwt_mount() -> String {
    "jwt".to_owned()
}

impl Config {
    /// A configuration with the defaults (`mount = "secret"`, KV v2, 30 s timeout).
    pub fn new(address: impl Into<String>, auth: AuthConfig) -> Self {
        Self {
            address: address.into(),
            mount: default_mount(),
            kv_version: default_kv_version(),
            namespace: None,
            ca_file: None,
            timeout: default_timeout(),
            auth,
        }
    }

    /// Checks the configuration without touching the network, the environment or files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.address).map_err(|e| ConfigError {
            key: "address",
            message: format!(
                "{:?} is not a URL ({e}); expected e.g. \"https://vault.example.com:8200\"",
                self.address
            ),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError {
                key: "address",
                message: format!(
                    "{:?} must be an http:// or https:// URL with a host, e.g. \
                     \"https://vault.example.com:8200\"",
                    self.address
                ),
            });
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError {
                key: "address",
                message: "must not contain credentials; use `auth` instead".to_owned(),
            });
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ConfigError {
                key: "address",
                message: format!(
                    "{:?} must not have a query or fragment; give the server's base URL",
                    self.address
                ),
            });
        }
        check_path("mount", &self.mount, "e.g. \"secret\"")?;
        if !matches!(self.kv_version, 1 | 2) {
            return Err(ConfigError {
                key: "kv_version",
                message: format!("is {}, expected 1 or 2", self.kv_version),
            });
        }
        if let Some(namespace) = &self.namespace {
            check_path("namespace", namespace, "e.g. \"team-a\" or \"team-a/prod\"")?;
        }
        if let Some(ca_file) = &self.ca_file {
            if ca_file.as_os_str().is_empty() {
                return Err(ConfigError {
                    key: "ca_file",
                    message: "is empty; give the path of a PEM file or remove the key".into(),
                });
            }
        }
        if self.timeout.is_zero() {
            return Err(ConfigError {
                key: "timeout",
                message: "must be longer than zero, e.g. \"30s\"".to_owned(),
            });
        }
        self.auth.validate()
    }
}

impl AuthConfig {
    /// The `method` name, as written in the configuration.
    pub fn method(&self) -> &'static str {
        match self {
            AuthConfig::Token { .. } => "token",
            AuthConfig::Approle { .. } => "approle",
            AuthConfig::Kubernetes { .. } => "kubernetes",
            AuthConfig::Jwt { .. } => "jwt",
        }
    }

    /// Checks the auth settings without reading the environment or files.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self {
            AuthConfig::Token {
                token_env,
                token_file,
            } => {
                if token_env.is_some() && token_file.is_some() {
                    return Err(ConfigError {
                        key: "auth.token_env",
                        message: "set either `token_env` or `token_file`, not both".into(),
                    });
                }
                check_reference("auth.token_env", "auth.token_file", token_env, token_file)
            }
            AuthConfig::Approle {
                role_id_env,
                role_id_file,
                secret_id_env,
                secret_id_file,
                mount,
            } => {
                exactly_one(
                    "auth.role_id_env",
                    "auth.role_id_file",
                    role_id_env,
                    role_id_file,
                    "the AppRole role_id",
                )?;
                exactly_one(
                    "auth.secret_id_env",
                    "auth.secret_id_file",
                    secret_id_env,
                    secret_id_file,
                    "the AppRole secret_id",
                )?;
                check_path("auth.mount", mount, "e.g. \"approle\"")
            }
            AuthConfig::Kubernetes {
                role,
                jwt_file,
                mount,
            } => {
                if role.trim().is_empty() {
                    return Err(ConfigError {
                        key: "auth.role",
                        message: "is empty; name the Vault role bound to the service account"
                            .into(),
                    });
                }
                if jwt_file.as_os_str().is_empty() {
                    return Err(ConfigError {
                        key: "auth.jwt_file",
                        message: format!(
                            "is empty; remove it to use {DEFAULT_KUBERNETES_JWT_FILE}"
                        ),
                    });
                }
                check_path("auth.mount", mount, "e.g. \"kubernetes\"")
            }
            AuthConfig::Jwt {
                role,
                jwt_env,
                jwt_file,
                mount,
            } => {
                if role.as_deref().is_some_and(|r| r.trim().is_empty()) {
                    return Err(ConfigError {
                        key: "auth.role",
                        message: "is empty; name a Vault role or remove the key to use the \
                                  auth method's default_role"
                            .into(),
                    });
                }
                exactly_one(
                    "auth.jwt_env",
                    "auth.jwt_file",
                    jwt_env,
                    jwt_file,
                    "the JWT",
                )?;
                check_path("auth.mount", mount, "e.g. \"jwt\"")
            }
        }
    }
}

fn check_reference(
    env_key: &'static str,
    file_key: &'static str,
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<(), ConfigError> {
    if let Some(env) = env {
        if env.is_empty() || env.contains('=') || env.contains('\0') {
            return Err(ConfigError {
                key: env_key,
                message: format!("{env:?} is not an environment variable name"),
            });
        }
    }
    if let Some(file) = file {
        if file.as_os_str().is_empty() {
            return Err(ConfigError {
                key: file_key,
                message: "is empty; give the path of the file".into(),
            });
        }
    }
    Ok(())
}

fn exactly_one(
    env_key: &'static str,
    file_key: &'static str,
    env: &Option<String>,
    file: &Option<PathBuf>,
    what: &str,
) -> Result<(), ConfigError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(ConfigError {
            key: env_key,
            message: format!(
                "set either `{}` or `{}` for {what}, not both",
                short(env_key),
                short(file_key)
            ),
        }),
        (None, None) => Err(ConfigError {
            key: env_key,
            message: format!(
                "{what} is required: set `{}` (an environment variable name) or `{}` \
                 (a file path); secrets are never written in the configuration itself",
                short(env_key),
                short(file_key)
            ),
        }),
        _ => check_reference(env_key, file_key, env, file),
    }
}

fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn check_path(key: &'static str, value: &str, example: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && !value.starts_with('/')
        && !value.ends_with('/')
        && value.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            key,
            message: format!(
                "{value:?} is not a Vault path: use letters, digits, '-', '_' and '.', \
                 segments separated by '/', no leading or trailing '/' ({example})"
            ),
        })
    }
}

/// A configuration value that cannot work. Names the key and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}` {message}")]
pub struct ConfigError {
    /// The configuration key, relative to the store's table (`address`, `auth.role_id_env`).
    pub key: &'static str,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("address", &self.address)
            .field("mount", &self.mount)
            .field("kv_version", &self.kv_version)
            .field("namespace", &self.namespace)
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field("auth", &self.auth)
            .finish()
    }
}

impl fmt::Debug for AuthConfig {
    // The configuration holds only references (variable names and paths), never secret
    // values, but Debug is written by hand so that adding a field cannot leak one.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthConfig::Token {
                token_env,
                token_file,
            } => f
                .debug_struct("Token")
                .field("token_env", token_env)
                .field("token_file", token_file)
                .finish(),
            AuthConfig::Approle {
                role_id_env,
                role_id_file,
                secret_id_env,
                secret_id_file,
                mount,
            } => f
                .debug_struct("Approle")
                .field("role_id_env", role_id_env)
                .field("role_id_file", role_id_file)
                .field("secret_id_env", secret_id_env)
                .field("secret_id_file", secret_id_file)
                .field("mount", mount)
                .finish(),
            AuthConfig::Kubernetes {
                role,
                jwt_file,
                mount,
            } => f
                .debug_struct("Kubernetes")
                .field("role", role)
                .field("jwt_file", jwt_file)
                .field("mount", mount)
                .finish(),
            AuthConfig::Jwt {
                role,
                jwt_env,
                jwt_file,
                mount,
            } => f
                .debug_struct("Jwt")
                .field("role", role)
                .field("jwt_env", jwt_env)
                .field("jwt_file", jwt_file)
                .field("mount", mount)
                .finish(),
        }
    }
}
