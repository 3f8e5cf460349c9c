//! Configuration of a Vault / OpenBao store, as written in the `[stores.NAME]` table.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rotator_core::ConfigError;
use serde::Deserialize;

/// Where the service-account token of a Kubernetes pod is mounted by default.
pub const DEFAULT_KUBERNETES_JWT_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The environment variable a `method = "token"` login reads when neither `token_env` nor
/// `token_file` is set (the same variable the `vault` and `bao` CLIs read). A store block
/// without `auth` logs in this way.
pub const DEFAULT_TOKEN_ENV: &str = "VAULT_TOKEN";

/// The environment variable that gives `address` when the store block has none.
pub const ADDRESS_ENV: &str = "VAULT_ADDR";

/// The environment variable that gives `namespace` when the store block has none.
pub const NAMESPACE_ENV: &str = "VAULT_NAMESPACE";

/// The environment variable that gives `ca_file` when the store block has none.
pub const CA_FILE_ENV: &str = "VAULT_CACERT";

/// The AWS region whose STS endpoint an `aws` login signs for when `auth.region` is unset
/// (as `vault login -method=aws` does).
pub const DEFAULT_AWS_REGION: &str = "us-east-1";

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
/// Like the `vault` CLI and Vault Agent, `address`, `namespace` and `ca_file` default to the
/// environment variables `VAULT_ADDR`, `VAULT_NAMESPACE` and `VAULT_CACERT`, and a block
/// without `auth` logs in with the token in `VAULT_TOKEN`; what the block says wins (see
/// [`Config::resolve`]).
///
/// Secrets never stand in the configuration: credentials are named by environment variable
/// (`*_env`) or file (`*_file`) and read when the rotator logs in.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// URL of the Vault API, e.g. `https://vault.example.com:8200`, without a path. When
    /// unset, the environment variable `VAULT_ADDR`. Plain `http://` only for a loopback
    /// address (`127.0.0.1`, `::1`, `localhost`) unless `allow_insecure_http = true`.
    #[serde(default)]
    pub address: Option<String>,
    /// Path of the KV secrets engine mount, without slashes (`secret`, `kv/team-a`).
    #[serde(default = "default_mount")]
    pub mount: String,
    /// Version of the KV engine at `mount`: `2` (versions, compare-and-set, metadata) or `1`.
    #[serde(default = "default_kv_version")]
    pub kv_version: u8,
    /// Vault Enterprise / OpenBao namespace (sent as `X-Vault-Namespace`), e.g. `team-a`.
    /// Login and secret requests both go to this namespace. When unset, the environment
    /// variable `VAULT_NAMESPACE`; `""` means the root namespace whatever it says.
    #[serde(default)]
    pub namespace: Option<String>,
    /// PEM file of extra CA certificates to trust besides the system roots (a corporate CA).
    /// When unset, the environment variable `VAULT_CACERT`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Timeout of each HTTP request to Vault, a humantime duration such as `"30s"`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Allow a plain `http://` address that is not a loopback address. The Vault token and
    /// every secret then cross the network unencrypted; only for a network you trust.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// How the rotator logs in to Vault. See [`AuthConfig`]. When unset, with the token in
    /// the environment variable `VAULT_TOKEN`.
    #[serde(default = "default_auth")]
    pub auth: AuthConfig,
}

/// How the rotator logs in to Vault; the `method` key selects the variant.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(tag = "method", rename_all = "lowercase", deny_unknown_fields)]
#[non_exhaustive]
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
    /// AWS IAM login: a signed `sts:GetCallerIdentity` request made with the credentials of
    /// the standard AWS chain (environment, profile, web identity, ECS or EC2 role), which
    /// Vault forwards to STS to learn who the rotator is.
    Aws {
        /// The Vault role to log in as; when unset, Vault uses the IAM principal's name.
        #[serde(default)]
        role: Option<String>,
        /// Region of the STS endpoint the request is signed for, default `us-east-1`. Must
        /// match the `sts_region` of Vault's AWS auth configuration.
        #[serde(default)]
        region: Option<String>,
        /// STS endpoint the request is signed for, default `https://sts.amazonaws.com` in
        /// `us-east-1` and `https://sts.REGION.amazonaws.com` elsewhere. Must match the
        /// `sts_endpoint` of Vault's AWS auth configuration.
        #[serde(default)]
        sts_endpoint: Option<String>,
        /// Value of the `X-Vault-AWS-IAM-Server-ID` header, signed into the request, when
        /// Vault's AWS auth sets `iam_server_id_header_value` (protects against replay to
        /// another Vault).
        #[serde(default)]
        server_id: Option<String>,
        /// Path the AWS auth method is mounted at.
        #[serde(default = "default_aws_mount")]
        mount: String,
    },
    /// TLS certificate login: the rotator presents a client certificate when it connects.
    /// Needs an `https://` address.
    Cert {
        /// PEM file of the client certificate (the chain may follow it).
        cert_file: PathBuf,
        /// PEM file of the certificate's private key; read when the sink is built.
        key_file: PathBuf,
        /// The certificate role to log in as; when unset, any role that trusts the
        /// certificate.
        #[serde(default)]
        name: Option<String>,
        /// Path the cert auth method is mounted at.
        #[serde(default = "default_cert_mount")]
        mount: String,
    },
    /// Username and password login.
    Userpass {
        /// The Vault user name (not a secret).
        username: String,
        /// Environment variable holding the password. Set exactly one of `password_env` and
        /// `password_file`.
        #[serde(default)]
        password_env: Option<String>,
        /// File holding the password.
        #[serde(default)]
        password_file: Option<PathBuf>,
        /// Path the userpass auth method is mounted at.
        #[serde(default = "default_userpass_mount")]
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
fn default_auth() -> AuthConfig {
    AuthConfig::Token {
        token_env: None,
        token_file: None,
    }
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
fn default_aws_mount() -> String {
    "aws".to_owned()
}
fn default_cert_mount() -> String {
    "cert".to_owned()
}
fn default_userpass_mount() -> String {
    "userpass".to_owned()
}

impl Config {
    /// A configuration with the defaults (`mount = "secret"`, KV v2, 30 s timeout).
    pub fn new(address: impl Into<String>, auth: AuthConfig) -> Self {
        Self {
            address: Some(address.into()),
            mount: default_mount(),
            kv_version: default_kv_version(),
            namespace: None,
            ca_file: None,
            timeout: default_timeout(),
            allow_insecure_http: false,
            auth,
        }
    }

    /// Checks the configuration as written, without touching the network, the environment
    /// or files. Settings left to the environment (`address`, `namespace`, `ca_file`) are
    /// checked by [`Config::resolve`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(address) = &self.address {
            self.check_address(address, "")?;
        }
        check_path("mount", &self.mount, "e.g. \"secret\"")?;
        if !matches!(self.kv_version, 1 | 2) {
            return Err(ConfigError::new(
                "kv_version",
                format!("is {}, expected 1 or 2", self.kv_version),
            ));
        }
        if let Some(namespace) = self.namespace.as_deref().filter(|ns| !ns.is_empty()) {
            check_path(
                "namespace",
                namespace,
                "e.g. \"team-a\" or \"team-a/prod\", or \"\" for the root namespace",
            )?;
        }
        if let Some(ca_file) = &self.ca_file {
            file_given(
                "ca_file",
                ca_file,
                "give the path of a PEM file or remove the key",
            )?;
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new(
                "timeout",
                "must be longer than zero, e.g. \"30s\"",
            ));
        }
        self.auth.validate()
    }

    /// The configuration with the settings it leaves out taken from the environment, as the
    /// `vault` CLI and Vault Agent do: `address` from `VAULT_ADDR`, `namespace` from
    /// `VAULT_NAMESPACE`, `ca_file` from `VAULT_CACERT` (a block without `auth` already
    /// means the token in `VAULT_TOKEN`). `env` looks a variable up; [`VaultSink::new`]
    /// passes the process environment. Then checks everything, naming the variable a bad
    /// value came from; without an address from either, says how to give one.
    ///
    /// The result has `address` and `namespace` set (`""` for the root namespace), so that
    /// resolving it again changes nothing but an unset `ca_file`.
    ///
    /// [`VaultSink::new`]: crate::VaultSink::new
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        self.validate()?;
        let from_env = |name: &str| env(name).filter(|value| !value.trim().is_empty());
        let mut resolved = self.clone();
        if resolved.address.is_none() {
            let address = from_env(ADDRESS_ENV).ok_or_else(|| {
                ConfigError::new(
                    "address",
                    format!(
                        "is not set: give the Vault URL in `address` (e.g. \
                         \"https://vault.example.com:8200\") or the environment variable \
                         {ADDRESS_ENV}"
                    ),
                )
            })?;
            let address = address.trim().to_owned();
            self.check_address(
                &address,
                &format!(" (from the environment variable {ADDRESS_ENV})"),
            )?;
            resolved.address = Some(address);
        }
        resolved.namespace = match &self.namespace {
            Some(namespace) => Some(namespace.clone()),
            None => match from_env(NAMESPACE_ENV) {
                Some(namespace) => {
                    let namespace = namespace.trim().trim_matches('/').to_owned();
                    check_path(
                        "namespace",
                        &namespace,
                        &format!(
                            "from the environment variable {NAMESPACE_ENV}; set `namespace` \
                             in the store block to override it"
                        ),
                    )?;
                    Some(namespace)
                }
                None => Some(String::new()),
            },
        };
        if resolved.ca_file.is_none() {
            resolved.ca_file = from_env(CA_FILE_ENV).map(PathBuf::from);
        }
        Ok(resolved)
    }

    /// Checks an address; `origin` is appended to what the message quotes (empty for the
    /// configuration, the variable's name for the environment).
    fn check_address(&self, address: &str, origin: &str) -> Result<(), ConfigError> {
        let url = url::Url::parse(address).map_err(|e| {
            ConfigError::new(
                "address",
                format!(
                    "{address:?}{origin} is not a URL ({e}); expected e.g. \
                     \"https://vault.example.com:8200\""
                ),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ConfigError::new(
                "address",
                format!(
                    "{address:?}{origin} must be an http:// or https:// URL with a host, e.g. \
                     \"https://vault.example.com:8200\""
                ),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ConfigError::new(
                "address",
                format!("must not contain credentials{origin}; use `auth` instead"),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() || url.path() != "/" {
            return Err(ConfigError::new(
                "address",
                format!(
                    "{address:?}{origin} must be the server's base URL, without a path, query \
                     or fragment (the API is always under /v1/), e.g. \
                     \"https://vault.example.com:8200\""
                ),
            ));
        }
        if url.scheme() == "http" && !self.allow_insecure_http && !is_loopback(&url) {
            return Err(ConfigError::new(
                "address",
                format!(
                    "{address:?}{origin} is plain http:// to a host that is not this machine: \
                     the Vault token and every secret would cross the network unencrypted. \
                     Use https://, or set `allow_insecure_http = true` in this store block to \
                     accept that risk (plain http:// is allowed without it only for loopback \
                     addresses: 127.0.0.1, ::1, localhost)"
                ),
            ));
        }
        if url.scheme() == "http" && matches!(self.auth, AuthConfig::Cert { .. }) {
            return Err(ConfigError::new(
                "address",
                format!(
                    "{address:?}{origin} is plain http://, but `method = \"cert\"` logs in \
                     with a TLS client certificate: use an https:// address"
                ),
            ));
        }
        Ok(())
    }
}

/// Whether the URL's host is this machine: an address of 127.0.0.0/8, `::1`, or
/// `localhost`.
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
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
            AuthConfig::Aws { .. } => "aws",
            AuthConfig::Cert { .. } => "cert",
            AuthConfig::Userpass { .. } => "userpass",
        }
    }

    /// The path the auth method is mounted at (`None` for `token`, which has no login).
    pub fn mount(&self) -> Option<&str> {
        match self {
            AuthConfig::Token { .. } => None,
            AuthConfig::Approle { mount, .. }
            | AuthConfig::Kubernetes { mount, .. }
            | AuthConfig::Jwt { mount, .. }
            | AuthConfig::Aws { mount, .. }
            | AuthConfig::Cert { mount, .. }
            | AuthConfig::Userpass { mount, .. } => Some(mount),
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
                    return Err(ConfigError::new(
                        "auth.token_env",
                        "set either `token_env` or `token_file`, not both",
                    ));
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
                    return Err(ConfigError::new(
                        "auth.role",
                        "is empty; name the Vault role bound to the service account",
                    ));
                }
                file_given(
                    "auth.jwt_file",
                    jwt_file,
                    &format!("remove it to use {DEFAULT_KUBERNETES_JWT_FILE}"),
                )?;
                check_path("auth.mount", mount, "e.g. \"kubernetes\"")
            }
            AuthConfig::Jwt {
                role,
                jwt_env,
                jwt_file,
                mount,
            } => {
                optional_name("auth.role", role, "auth method's default_role")?;
                exactly_one(
                    "auth.jwt_env",
                    "auth.jwt_file",
                    jwt_env,
                    jwt_file,
                    "the JWT",
                )?;
                check_path("auth.mount", mount, "e.g. \"jwt\"")
            }
            AuthConfig::Aws {
                role,
                region,
                sts_endpoint,
                server_id,
                mount,
            } => {
                optional_name("auth.role", role, "IAM principal's name as the role")?;
                if let Some(region) = region {
                    let ok = !region.is_empty()
                        && region
                            .chars()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
                    if !ok {
                        return Err(ConfigError::new(
                            "auth.region",
                            format!("{region:?} is not an AWS region, e.g. \"eu-west-1\""),
                        ));
                    }
                }
                if let Some(endpoint) = sts_endpoint {
                    let ok = url::Url::parse(endpoint).is_ok_and(|url| {
                        matches!(url.scheme(), "http" | "https")
                            && url.host_str().is_some()
                            && url.query().is_none()
                    });
                    if !ok {
                        return Err(ConfigError::new(
                            "auth.sts_endpoint",
                            format!(
                                "{endpoint:?} is not an STS endpoint URL, e.g. \
                                 \"https://sts.eu-west-1.amazonaws.com\""
                            ),
                        ));
                    }
                }
                if let Some(server_id) = server_id {
                    if server_id.is_empty() || !server_id.chars().all(|c| c.is_ascii_graphic()) {
                        return Err(ConfigError::new(
                            "auth.server_id",
                            "must be the non-empty iam_server_id_header_value of Vault's AWS \
                             auth configuration, printable ASCII without spaces",
                        ));
                    }
                }
                check_path("auth.mount", mount, "e.g. \"aws\"")
            }
            AuthConfig::Cert {
                cert_file,
                key_file,
                name,
                mount,
            } => {
                file_given(
                    "auth.cert_file",
                    cert_file,
                    "give the path of the client certificate's PEM file",
                )?;
                file_given(
                    "auth.key_file",
                    key_file,
                    "give the path of the private key's PEM file",
                )?;
                optional_name("auth.name", name, "any certificate role that trusts it")?;
                check_path("auth.mount", mount, "e.g. \"cert\"")
            }
            AuthConfig::Userpass {
                username,
                password_env,
                password_file,
                mount,
            } => {
                if username.trim().is_empty() || username.contains('/') {
                    return Err(ConfigError::new(
                        "auth.username",
                        "must be the Vault user name, not empty and without '/'",
                    ));
                }
                exactly_one(
                    "auth.password_env",
                    "auth.password_file",
                    password_env,
                    password_file,
                    "the password",
                )?;
                check_path("auth.mount", mount, "e.g. \"userpass\"")
            }
        }
    }
}

/// An optional name that, when given, must not be blank; `otherwise` says what applies
/// without it.
fn optional_name(key: &str, value: &Option<String>, otherwise: &str) -> Result<(), ConfigError> {
    if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
        return Err(ConfigError::new(
            key,
            format!("is empty; give a name or remove the key to use the {otherwise}"),
        ));
    }
    Ok(())
}

fn check_reference(
    env_key: &str,
    file_key: &str,
    env: &Option<String>,
    file: &Option<PathBuf>,
) -> Result<(), ConfigError> {
    if let Some(env) = env {
        if env.is_empty() || env.contains('=') || env.contains('\0') {
            return Err(ConfigError::new(
                env_key,
                format!("{env:?} is not an environment variable name"),
            ));
        }
    }
    if let Some(file) = file {
        file_given(file_key, file, "give the path of the file")?;
    }
    Ok(())
}

/// A file path that is set must not be empty; `fix` says what to do instead.
fn file_given(key: &str, path: &Path, fix: &str) -> Result<(), ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError::new(key, format!("is empty; {fix}")));
    }
    Ok(())
}

fn exactly_one(
    env_key: &str,
    file_key: &str,
    env: &Option<String>,
    file: &Option<PathBuf>,
    what: &str,
) -> Result<(), ConfigError> {
    match (env, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            env_key,
            format!(
                "set either `{}` or `{}` for {what}, not both",
                short(env_key),
                short(file_key)
            ),
        )),
        (None, None) => Err(ConfigError::new(
            env_key,
            format!(
                "{what} is required: set `{}` (an environment variable name) or `{}` \
                 (a file path); secrets are never written in the configuration itself",
                short(env_key),
                short(file_key)
            ),
        )),
        _ => check_reference(env_key, file_key, env, file),
    }
}

fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

fn check_path(key: &str, value: &str, example: &str) -> Result<(), ConfigError> {
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
        Err(ConfigError::new(
            key,
            format!(
                "{value:?} is not a Vault path: use letters, digits, '-', '_' and '.', \
                 segments separated by '/', no leading or trailing '/' ({example})"
            ),
        ))
    }
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
            .field("allow_insecure_http", &self.allow_insecure_http)
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
            AuthConfig::Aws {
                role,
                region,
                sts_endpoint,
                server_id,
                mount,
            } => f
                .debug_struct("Aws")
                .field("role", role)
                .field("region", region)
                .field("sts_endpoint", sts_endpoint)
                .field("server_id", server_id)
                .field("mount", mount)
                .finish(),
            AuthConfig::Cert {
                cert_file,
                key_file,
                name,
                mount,
            } => f
                .debug_struct("Cert")
                .field("cert_file", cert_file)
                .field("key_file", key_file)
                .field("name", name)
                .field("mount", mount)
                .finish(),
            AuthConfig::Userpass {
                username,
                password_env,
                password_file,
                mount,
            } => f
                .debug_struct("Userpass")
                .field("username", username)
                .field("password_env", password_env)
                .field("password_file", password_file)
                .field("mount", mount)
                .finish(),
        }
    }
}
