//! The TOML configuration: parsing with errors that name the file, the line, the key and what
//! was expected, and offline validation of everything that can be checked without contacting
//! Alation or a store.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rotator_core::RenewBefore;
use serde::Deserialize;
use url::Url;

use std::sync::Arc;

use crate::registry::{ParseError, Registry, StoreSettings};

/// Names under which a secret value might be pasted into the file by mistake, whatever the
/// block; each store type adds its own (`StoreType::SECRET_KEYS`).
const SECRET_NAMES: &[&str] = &[
    "password",
    "token",
    "secret",
    "refresh_token",
    "api_access_token",
    "access_token",
    "client_secret",
];

/// The whole configuration file.
#[derive(Debug)]
pub struct Config {
    /// The file it was read from (for messages).
    pub path: PathBuf,
    /// The Alation instance.
    pub alation: AlationConfig,
    /// Default renewal policy; integrations may override parts of it.
    pub policy: PolicyConfig,
    /// Where regenerated refresh tokens wait when their state store cannot take them.
    pub escrow: EscrowConfig,
    /// Named secret stores.
    pub stores: BTreeMap<String, StoreConfig>,
    /// The integrations to keep fresh.
    pub integrations: Vec<IntegrationConfig>,
}

/// `[stores.NAME]`: the `type` and the settings its store type parsed.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The parsed settings.
    pub settings: Arc<dyn StoreSettings>,
}

/// The file as serde reads it; stores stay raw until the registry gives them a type.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    alation: AlationConfig,
    #[serde(default)]
    policy: PolicyConfig,
    #[serde(default)]
    escrow: EscrowConfig,
    #[serde(default)]
    stores: BTreeMap<String, toml::Table>,
    #[serde(default)]
    integrations: Vec<IntegrationConfig>,
}

/// `[alation]`: how to reach Alation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlationConfig {
    /// Base URL of the Alation instance, e.g. `https://alation.example.com`.
    pub base_url: Url,
    /// Timeout of one HTTP request.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// A PEM file with extra CA certificates to trust besides the system roots.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Attempts per call, counting the first, for transient errors (connect, timeout, 429,
    /// 502, 503, 504). `regenRefreshToken` is sent again only when it never left.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Allow a plain `http://` base URL that is not a loopback address (tokens would cross the
    /// network unencrypted).
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// How OAuth client applications authenticate at `/oauth/v2/token/`: `"basic"` (HTTP
    /// Basic, the default) or `"form"` (`client_id` / `client_secret` fields).
    #[serde(default)]
    pub oauth_client_auth: rotator_alation::OAuthClientAuth,
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_max_attempts() -> u32 {
    5
}

/// `[policy]`: when to renew, and how much to do at once.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// Renew the access token when less than this remains: a duration (`8h`) or a share of its
    /// lifetime (`33%`). Default: `8h` for refresh-token integrations (24-hour tokens), `33%`
    /// for OAuth clients, whose tokens may live only minutes.
    #[serde(default)]
    pub access_renew_before: Option<RenewBefore>,
    /// Regenerate the refresh token when less than this remains.
    #[serde(default = "default_refresh_renew_before")]
    pub refresh_renew_before: RenewBefore,
    /// How many requests to Alation are in flight at once (up to twice as many integrations
    /// run at once, their store calls overlapping with those requests).
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Ask Alation whether stored access tokens are still active before calling them fresh.
    #[serde(default)]
    pub validate: bool,
    /// Keep a second (standby) refresh token per integration, to mint from when the primary is
    /// lost.
    #[serde(default)]
    pub standby: bool,
    /// The shortest time between two regenerations of one refresh token.
    #[serde(default = "default_min_regenerate_interval", with = "humantime_serde")]
    pub min_regenerate_interval: Duration,
    /// After SIGTERM or SIGINT, how long work in flight may take before the process exits
    /// (it still waits for a regenerated refresh token to reach escrow).
    #[serde(default = "default_shutdown_grace", with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// A run stops starting new work after this long and exits 1; keep it below the
    /// scheduler's limit (`activeDeadlineSeconds`, `TimeoutStartSec`).
    #[serde(default = "default_run_deadline", with = "humantime_serde")]
    pub run_deadline: Duration,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            access_renew_before: None,
            refresh_renew_before: default_refresh_renew_before(),
            max_concurrency: default_max_concurrency(),
            validate: false,
            standby: false,
            min_regenerate_interval: default_min_regenerate_interval(),
            shutdown_grace: default_shutdown_grace(),
            run_deadline: default_run_deadline(),
        }
    }
}

fn default_min_regenerate_interval() -> Duration {
    Duration::from_secs(3600)
}

fn default_shutdown_grace() -> Duration {
    Duration::from_secs(20)
}

fn default_run_deadline() -> Duration {
    Duration::from_secs(600)
}

/// The default renewal threshold of access tokens.
pub fn default_access_renew_before(oauth: bool) -> RenewBefore {
    if oauth {
        RenewBefore::Percent(33.0)
    } else {
        RenewBefore::Duration(Duration::from_secs(8 * 3600))
    }
}

fn default_refresh_renew_before() -> RenewBefore {
    RenewBefore::Duration(Duration::from_secs(14 * 86400))
}

fn default_max_concurrency() -> usize {
    8
}

/// `[escrow]`: the local holding place for refresh tokens that could not be stored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscrowConfig {
    /// A local directory (created 0700) that survives restarts of the job.
    #[serde(default = "default_escrow_directory")]
    pub directory: PathBuf,
}

impl Default for EscrowConfig {
    fn default() -> Self {
        Self {
            directory: default_escrow_directory(),
        }
    }
}

fn default_escrow_directory() -> PathBuf {
    PathBuf::from("/var/lib/alation-rotator/escrow")
}

/// `[[integrations]]`: one consumer of Alation's API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationConfig {
    /// Unique name: letters, digits, `.`, `_`, `-`.
    pub name: String,
    /// The Alation user id the tokens belong to (required with `refresh_token`).
    #[serde(default)]
    pub user_id: Option<i64>,
    /// Where the refresh token is kept. Consumers must not be able to read it.
    #[serde(default)]
    pub refresh_token: Option<LocationConfig>,
    /// Where the OAuth 2.0 client id and secret are kept (instead of `refresh_token`).
    #[serde(default)]
    pub oauth_client: Option<LocationConfig>,
    /// Where the access token is delivered: one location or a list.
    pub access_token: OneOrMany<LocationConfig>,
    /// Overrides `policy.access_renew_before`.
    #[serde(default)]
    pub access_renew_before: Option<RenewBefore>,
    /// Overrides `policy.refresh_renew_before`.
    #[serde(default)]
    pub refresh_renew_before: Option<RenewBefore>,
    /// Overrides `policy.validate`.
    #[serde(default)]
    pub validate: Option<bool>,
    /// Overrides `policy.standby`.
    #[serde(default)]
    pub standby: Option<bool>,
}

impl IntegrationConfig {
    /// The state location, whichever kind of credential it holds.
    pub fn state(&self) -> &LocationConfig {
        self.refresh_token
            .as_ref()
            .or(self.oauth_client.as_ref())
            .expect("validate() requires one of refresh_token and oauth_client")
    }
}

/// A store name and a key in it.
#[derive(Debug, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct LocationConfig {
    /// The name of a store under `[stores]`.
    pub store: String,
    /// The key inside the store.
    pub key: String,
    /// Overwrite a secret at this key that alation-rotator did not write.
    #[serde(default)]
    pub takeover: bool,
    /// Accept a state location on a store that cannot compare-and-set (Vault KV v1): two
    /// runners at once could then overwrite each other's regenerated refresh token.
    #[serde(default)]
    pub allow_without_cas: bool,
}

/// One value or a list of them.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany<T> {
    /// A single value.
    One(T),
    /// A list.
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    /// The values as a slice.
    pub fn as_slice(&self) -> &[T] {
        match self {
            OneOrMany::One(one) => std::slice::from_ref(one),
            OneOrMany::Many(many) => many,
        }
    }
}

/// A configuration error: the file, where in it, and what is wrong. Never holds a value from
/// the file, which may be a secret pasted by mistake.
#[derive(Debug)]
pub struct ConfigFileError {
    file: PathBuf,
    place: String,
    message: String,
}

impl ConfigFileError {
    fn new(file: &Path, place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: file.to_owned(),
            place: place.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.place.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}: {}: {}",
                self.file.display(),
                self.place,
                self.message
            )
        }
    }
}

impl std::error::Error for ConfigFileError {}

impl Config {
    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path, registry: &Registry) -> Result<Self, ConfigFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigFileError::new(
                path,
                "",
                format!(
                    "cannot read the configuration file ({e}); pass --config FILE or set \
                     ALATION_ROTATOR_CONFIG"
                ),
            )
        })?;
        let config = Self::parse(path, &text, registry)?;
        config.validate(path)?;
        Ok(config)
    }

    /// Parses TOML text with the store types of `registry`; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str, registry: &Registry) -> Result<Self, ConfigFileError> {
        let table: toml::Table = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let secret_names: Vec<&str> = SECRET_NAMES
            .iter()
            .copied()
            .chain(registry.secret_keys())
            .collect();
        reject_inline_secrets(path, "", &table, &secret_names)?;
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(path, text, &e))?;
        let stores = parse_stores(path, text, registry, raw.stores)?;
        Ok(Config {
            path: path.to_owned(),
            alation: raw.alation,
            policy: raw.policy,
            escrow: raw.escrow,
            stores,
            integrations: raw.integrations,
        })
    }

    /// Checks what the types cannot: references between sections, names, keys, numbers.
    pub fn validate(&self, path: &Path) -> Result<(), ConfigFileError> {
        let err = |place: String, message: String| ConfigFileError::new(path, place, message);
        if !matches!(self.alation.base_url.scheme(), "http" | "https") {
            return Err(err(
                "key `alation.base_url`".into(),
                "expected an http:// or https:// URL".into(),
            ));
        }
        if self.alation.base_url.scheme() == "http"
            && !self.alation.allow_insecure_http
            && !rotator_alation::is_loopback(&self.alation.base_url)
        {
            return Err(err(
                "key `alation.base_url`".into(),
                "is plain http:// to another machine, so tokens would cross the network \
                 unencrypted; use https://, or set `alation.allow_insecure_http = true` if a \
                 trusted network and a TLS-terminating proxy make that safe"
                    .into(),
            ));
        }
        if !self.alation.base_url.username().is_empty()
            || self.alation.base_url.password().is_some()
        {
            return Err(err(
                "key `alation.base_url`".into(),
                "must not hold credentials; the rotator authenticates with refresh tokens".into(),
            ));
        }
        if let Some(ca_file) = &self.alation.ca_file {
            if !ca_file.is_file() {
                return Err(err(
                    "key `alation.ca_file`".into(),
                    format!(
                        "{} is not a readable file; expected a PEM file of CA certificates",
                        ca_file.display()
                    ),
                ));
            }
        }
        if self.alation.max_attempts == 0 {
            return Err(err(
                "key `alation.max_attempts`".into(),
                "expected at least 1".into(),
            ));
        }
        if self.policy.max_concurrency == 0 {
            return Err(err(
                "key `policy.max_concurrency`".into(),
                "expected at least 1".into(),
            ));
        }
        if self.policy.shutdown_grace.is_zero() || self.policy.run_deadline.is_zero() {
            return Err(err(
                "key `policy.shutdown_grace` / `policy.run_deadline`".into(),
                "expected a duration above zero".into(),
            ));
        }
        for (name, store) in &self.stores {
            store
                .settings
                .validate()
                .map_err(|e| err(format!("store `stores.{name}`"), e.to_string()))?;
        }
        if self.integrations.is_empty() {
            return Err(err(
                String::new(),
                "no [[integrations]] are configured; add at least one".into(),
            ));
        }
        let mut names = BTreeSet::new();
        for (i, integration) in self.integrations.iter().enumerate() {
            let place = format!("integrations[{i}] (name {:?})", integration.name);
            if !valid_name(&integration.name) {
                return Err(err(
                    format!("key `integrations[{i}].name`"),
                    "expected 1 to 128 letters, digits, `.`, `_` or `-`".into(),
                ));
            }
            if !names.insert(integration.name.as_str()) {
                return Err(err(
                    format!("key `integrations[{i}].name`"),
                    format!(
                        "duplicate integration name {:?}; every integration needs its own name",
                        integration.name
                    ),
                ));
            }
            match (&integration.refresh_token, &integration.oauth_client) {
                (Some(_), Some(_)) | (None, None) => {
                    return Err(err(
                        format!("integrations[{i}]"),
                        "expected exactly one of `refresh_token = {store, key}` (an Alation \
                         user's refresh token) and `oauth_client = {store, key}` (an OAuth \
                         client application)"
                            .into(),
                    ))
                }
                (Some(_), None) if integration.user_id.is_none() => {
                    return Err(err(
                        format!("key `integrations[{i}].user_id`"),
                        "is required with `refresh_token`: the Alation user id the tokens \
                         belong to"
                            .into(),
                    ))
                }
                _ => {}
            }
            if integration.user_id.is_some_and(|id| id <= 0) {
                return Err(err(
                    format!("key `integrations[{i}].user_id`"),
                    "expected a positive Alation user id".into(),
                ));
            }
            if integration.oauth_client.is_some() && integration.standby == Some(true) {
                return Err(err(
                    format!("key `integrations[{i}].standby`"),
                    "applies to refresh tokens only; an OAuth client has no refresh token".into(),
                ));
            }
            let (state_key, state) = match (&integration.refresh_token, &integration.oauth_client) {
                (Some(location), _) => ("refresh_token", location),
                (_, Some(location)) => ("oauth_client", location),
                _ => unreachable!("checked above"),
            };
            let destinations = integration.access_token.as_slice();
            if destinations.is_empty() {
                return Err(err(
                    format!("key `integrations[{i}].access_token`"),
                    "expected at least one destination".into(),
                ));
            }
            self.check_location(path, &format!("integrations[{i}].{state_key}"), state)?;
            let mut seen = BTreeSet::new();
            for (j, location) in destinations.iter().enumerate() {
                let key = format!("integrations[{i}].access_token[{j}]");
                self.check_location(path, &key, location)?;
                if location.store == state.store && location.key == state.key {
                    return Err(err(
                        format!("key `{key}`"),
                        format!(
                            "is the {state_key} state location; consumers must never be able to \
                             read the refresh token or client secret, so give the access token \
                             another key"
                        ),
                    ));
                }
                if !seen.insert((&location.store, &location.key)) {
                    return Err(err(
                        format!("key `{key}`"),
                        format!("{place} lists this destination twice"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_location(
        &self,
        path: &Path,
        key: &str,
        location: &LocationConfig,
    ) -> Result<(), ConfigFileError> {
        let Some(store) = self.stores.get(&location.store) else {
            let known: Vec<_> = self.stores.keys().map(String::as_str).collect();
            return Err(ConfigFileError::new(
                path,
                format!("key `{key}.store`"),
                format!(
                    "unknown store {:?}; expected one of the stores defined under [stores]: {}",
                    location.store,
                    if known.is_empty() {
                        "(none defined)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        store.settings.validate_key(&location.key).map_err(|e| {
            ConfigFileError::new(
                path,
                format!("key `{key}.key`"),
                match e {
                    rotator_core::SinkError::InvalidKey { detail, .. } => detail,
                    other => other.to_string(),
                },
            )
        })
    }
}

fn valid_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != "."
        && name != ".."
}

/// A secret pasted into the file is refused before anything else reads it, and its value is
/// never repeated.
fn reject_inline_secrets(
    path: &Path,
    prefix: &str,
    table: &toml::Table,
    secret_names: &[&str],
) -> Result<(), ConfigFileError> {
    for (key, value) in table {
        let dotted = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::String(_) if secret_names.contains(&key.as_str()) => {
                return Err(ConfigFileError::new(
                    path,
                    format!("key `{dotted}`"),
                    format!(
                        "holds a secret inline; secrets never stand in the configuration file: \
                         reference it with `{key}_env = \"VARIABLE\"` or `{key}_file = \"/path\"` \
                         where the store supports it (the value was not read further)"
                    ),
                ));
            }
            toml::Value::Table(inner) => reject_inline_secrets(path, &dotted, inner, secret_names)?,
            toml::Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let toml::Value::Table(inner) = item {
                        reject_inline_secrets(
                            path,
                            &format!("{dotted}[{i}]"),
                            inner,
                            secret_names,
                        )?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Gives each `[stores.NAME]` block to the store type its `type` names.
fn parse_stores(
    path: &Path,
    text: &str,
    registry: &Registry,
    raw: BTreeMap<String, toml::Table>,
) -> Result<BTreeMap<String, StoreConfig>, ConfigFileError> {
    let mut stores = BTreeMap::new();
    for (name, mut table) in raw {
        let place = format!("store `stores.{name}`");
        let kind = match table.remove("type") {
            Some(toml::Value::String(kind)) => kind,
            Some(_) => {
                return Err(ConfigFileError::new(
                    path,
                    format!("key `stores.{name}.type`"),
                    "expected a string",
                ))
            }
            None => {
                return Err(ConfigFileError::new(
                    path,
                    place,
                    "missing field `type`: say which store this is, e.g. type = \"vault\"",
                ))
            }
        };
        let settings = registry.parse(&kind, table).map_err(|e| match e {
            ParseError::Type(message) => {
                ConfigFileError::new(path, format!("key `stores.{name}.type`"), message)
            }
            ParseError::Settings(error) => {
                let message = error.message().trim().to_owned();
                let place = match field_line(text, &name, &message) {
                    Some(line) => format!("line {line}, {place}"),
                    None => place,
                };
                ConfigFileError::new(path, place, message)
            }
        })?;
        stores.insert(name, StoreConfig { settings });
    }
    Ok(stores)
}

/// The line of the field a store's settings error names (`unknown field \`x\``), searched
/// for inside that store's block. Best effort: the settings were parsed apart from the text.
fn field_line(text: &str, store: &str, message: &str) -> Option<usize> {
    let field = message.split('`').nth(1)?;
    let header = format!("[stores.{store}]");
    let mut inside = false;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            inside = trimmed == header;
            continue;
        }
        let key = trimmed.split('=').next().unwrap_or_default().trim();
        if inside && (key == field || trimmed.contains(&format!("{field} ="))) {
            return Some(n + 1);
        }
    }
    None
}

/// Turns a TOML error into "line N, key `table.key`: message" without quoting the source
/// line, which could hold a secret.
fn toml_error(path: &Path, text: &str, error: &toml::de::Error) -> ConfigFileError {
    let message = error.message().trim().to_owned();
    let Some(span) = error.span() else {
        return ConfigFileError::new(path, "", message);
    };
    let before = &text[..span.start.min(text.len())];
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or_default();
    let table = before
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    let key = line
        .split_once('=')
        .map(|(k, _)| k.trim().to_owned())
        .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with('['));
    let place = match (table, key) {
        (Some(t), Some(k)) => format!("line {line_no}, key `{t}.{k}`"),
        (None, Some(k)) => format!("line {line_no}, key `{k}`"),
        (Some(t), None) => format!("line {line_no}, in [{t}]"),
        (None, None) => format!("line {line_no}"),
    };
    ConfigFileError::new(path, place, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every section the file may have, all optional, so a documentation fragment such as a
    /// lone `[stores.vault]` block is checked against the same types as a whole file.
    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Fragment {
        alation: Option<AlationConfig>,
        policy: Option<PolicyConfig>,
        escrow: Option<EscrowConfig>,
        #[serde(default)]
        stores: BTreeMap<String, toml::Table>,
        integrations: Option<Vec<IntegrationConfig>>,
    }

    fn markdown_files(dir: &Path, found: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                markdown_files(&path, found);
            } else if path.extension().is_some_and(|e| e == "md") {
                found.push(path);
            }
        }
    }

    fn toml_blocks(text: &str) -> Vec<(usize, String)> {
        let mut blocks = Vec::new();
        let mut current: Option<(usize, String)> = None;
        for (n, line) in text.lines().enumerate() {
            match current.as_mut() {
                None if line.trim_start().starts_with("```toml") => {
                    current = Some((n + 1, String::new()));
                }
                Some(_) if line.trim_start().starts_with("```") => {
                    blocks.extend(current.take());
                }
                Some((_, block)) => {
                    block.push_str(line);
                    block.push('\n');
                }
                None => {}
            }
        }
        blocks
    }

    /// Every TOML example in the README and docs parses with today's code: a whole file is
    /// parsed and validated, a fragment is checked section by section.
    #[test]
    fn every_config_example_in_the_docs_is_valid() {
        let registry = crate::App::new().registry;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("README.md")];
        markdown_files(&root.join("docs"), &mut files);
        let mut checked = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            for (line, block) in toml_blocks(&text) {
                let place = format!("{}:{line}", file.display());
                if block.contains("[alation]") && block.contains("[[integrations]]") {
                    let config = Config::parse(file, &block, &registry)
                        .unwrap_or_else(|e| panic!("{place}: {e}"));
                    config
                        .validate(file)
                        .unwrap_or_else(|e| panic!("{place}: {e}"));
                } else {
                    let table: toml::Table =
                        toml::from_str(&block).unwrap_or_else(|e| panic!("{place}: {e}"));
                    let names: Vec<&str> = SECRET_NAMES
                        .iter()
                        .copied()
                        .chain(registry.secret_keys())
                        .collect();
                    reject_inline_secrets(file, "", &table, &names)
                        .unwrap_or_else(|e| panic!("{place}: {e}"));
                    let fragment: Fragment =
                        toml::from_str(&block).unwrap_or_else(|e| panic!("{place}: {e}"));
                    let stores = parse_stores(file, &block, &registry, fragment.stores)
                        .unwrap_or_else(|e| panic!("{place}: {e}"));
                    for (name, store) in &stores {
                        store
                            .settings
                            .validate()
                            .unwrap_or_else(|e| panic!("{place}: stores.{name}: {e}"));
                    }
                }
                checked += 1;
            }
        }
        assert!(
            checked >= 3,
            "only {checked} TOML examples found in {files:?}"
        );
    }

    /// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens.
    fn slug(heading: &str) -> String {
        heading
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect()
    }

    fn anchors(text: &str) -> Vec<String> {
        let mut in_code = false;
        text.lines()
            .filter(|line| {
                if line.trim_start().starts_with("```") {
                    in_code = !in_code;
                }
                !in_code
            })
            .filter_map(|line| line.strip_prefix('#'))
            .map(|line| slug(line.trim_start_matches('#')))
            .collect()
    }

    /// Every relative link in the README, docs/, deploy/ and the crates' and examples'
    /// READMEs points at a file that exists, and an anchor into a Markdown file at one of its
    /// headings.
    #[test]
    fn every_relative_link_resolves() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut files = vec![root.join("README.md")];
        for dir in ["docs", "deploy", "examples", "crates"] {
            markdown_files(&root.join(dir), &mut files);
        }
        let mut checked = 0;
        let mut broken = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("](") {
                rest = &rest[start + 2..];
                let Some(end) = rest.find(')') else { break };
                let link = &rest[..end];
                rest = &rest[end..];
                if link.contains("://") || link.starts_with("mailto:") || link.contains(' ') {
                    continue;
                }
                let (path, anchor) = link.split_once('#').unwrap_or((link, ""));
                let target = if path.is_empty() {
                    file.clone()
                } else {
                    file.parent().unwrap().join(path)
                };
                checked += 1;
                if !target.exists() {
                    broken.push(format!("{}: {link} (no such file)", file.display()));
                    continue;
                }
                if !anchor.is_empty() && target.extension().is_some_and(|e| e == "md") {
                    let headings = anchors(&std::fs::read_to_string(&target).unwrap());
                    if !headings.iter().any(|h| h == anchor) {
                        broken.push(format!("{}: {link} (no such heading)", file.display()));
                    }
                }
            }
        }
        assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
        assert!(
            checked >= 20,
            "only {checked} links found in {} files",
            files.len()
        );
        eprintln!(
            "links: {checked} relative links in {} Markdown files resolve",
            files.len()
        );
    }

    /// The exec store shown in docs/extending.md is the file the conformance suite tests.
    #[test]
    fn the_exec_example_in_the_docs_is_the_tested_file() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let doc = std::fs::read_to_string(root.join("docs/extending.md")).unwrap();
        let script =
            std::fs::read_to_string(root.join("examples/exec-store/file-store.py")).unwrap();
        assert!(
            doc.contains(&format!("```python\n{script}```")),
            "docs/extending.md must show examples/exec-store/file-store.py verbatim"
        );
    }

    /// The configuration the deploy examples mount is a valid whole file.
    #[test]
    fn the_deploy_example_config_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/alation-rotator.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let registry = crate::App::new().registry;
        let config = Config::parse(&path, &text, &registry).unwrap_or_else(|e| panic!("{e}"));
        config.validate(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.stores.len(), 2);
    }

    #[test]
    fn one_or_many_destinations_and_defaults() {
        let text = r#"
[alation]
base_url = "https://alation.example.com"

[stores.local]
type = "file"
directory = "/tmp/x"

[[integrations]]
name = "a"
user_id = 1
refresh_token = { store = "local", key = "state/a" }
access_token = { store = "local", key = "alation/a" }
"#;
        let config = Config::parse(Path::new("t.toml"), text, &crate::App::new().registry).unwrap();
        config.validate(Path::new("t.toml")).unwrap();
        assert_eq!(config.alation.timeout, Duration::from_secs(30));
        assert_eq!(config.policy.max_concurrency, 8);
        assert_eq!(config.integrations[0].access_token.as_slice().len(), 1);
    }

    #[test]
    fn a_toml_error_names_line_and_key_but_not_the_value() {
        let text = "[alation]\nbase_url = \"https://a\"\nsecret_sauce = \"do-not-print-me\"\n";
        let err = Config::parse(Path::new("c.toml"), text, &crate::App::new().registry)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("c.toml: line 3, key `alation.secret_sauce`"),
            "{err}"
        );
        assert!(!err.contains("do-not-print-me"), "{err}");
    }
}
