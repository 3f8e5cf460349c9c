//! What every command shares: exit codes, loading the configuration, and building the
//! engine, sources and stores from it without contacting anything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use rotator_alation::{
    AlationClient, ClientConfig, ClientCredentialsSource, RefreshTokenSource, RetryConfig,
};
use rotator_core::engine::{Engine, Escrow, Integration, Location};
use rotator_core::{Clock, Policy, Shard, SystemClock, TokenSink, TokenSource};

use crate::cli::Global;
use crate::config::{default_access_renew_before, Config, ConfigFileError, LocationConfig};
use crate::registry::Registry;

/// Every integration is fresh or rotated.
pub const EXIT_OK: u8 = 0;
/// At least one integration failed, or the run stopped before reaching it.
pub const EXIT_FAILED: u8 = 1;
/// Usage or configuration error; nothing was contacted.
pub const EXIT_USAGE: u8 = 2;

/// An error in what the user asked for or configured: exit code 2.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(#[from] pub anyhow::Error);

/// The exit code for an error that ended a command.
pub fn exit_code_of(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<UsageError>().is_some()
        || error.downcast_ref::<ConfigFileError>().is_some()
    {
        EXIT_USAGE
    } else {
        EXIT_FAILED
    }
}

/// The error and its causes on one line, each cause once.
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ")
}

/// Finds and loads the configuration: `--config`, else `$ALATION_ROTATOR_CONFIG` (both in
/// `global.config`), else `./alation-rotator.toml`.
pub fn load(global: &Global, registry: &Registry) -> anyhow::Result<(PathBuf, Config)> {
    let path = global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("alation-rotator.toml"));
    let config = Config::load(&path, registry)?;
    Ok((path, config))
}

/// The integration named `name`; a usage error listing the configured names otherwise.
pub fn find<'a>(all: &'a [Integration], name: &str) -> Result<&'a Integration, UsageError> {
    all.iter().find(|i| i.name == name).ok_or_else(|| {
        let known: Vec<_> = all.iter().map(|i| i.name.as_str()).collect();
        UsageError(anyhow::anyhow!(
            "no integration is named {name:?}; configured: {}",
            known.join(", ")
        ))
    })
}

/// The integrations `--only` names (all when empty) that belong to `shard`.
pub fn select(
    all: &[Integration],
    only: &[String],
    shard: Shard,
) -> Result<Vec<Integration>, UsageError> {
    for name in only {
        find(all, name)?;
    }
    Ok(all
        .iter()
        .filter(|i| only.is_empty() || only.contains(&i.name))
        .filter(|i| shard.owns(&i.name))
        .cloned()
        .collect())
}

/// The engine, sources and integrations built from a configuration, without contacting
/// anything.
pub struct Setup {
    /// The engine.
    pub engine: Engine,
    /// The integrations, with their stores and sources.
    pub integrations: Vec<Integration>,
    /// The refresh-token flow, for `bootstrap` (createRefreshToken).
    pub refresh_source: Arc<RefreshTokenSource>,
}

impl Setup {
    /// Builds clients, sources and stores; errors here are configuration errors (exit 2),
    /// named by the configuration file.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with_clock(config, clock()).await
    }

    /// [`Setup::build`] with the engine reading time from `clock`.
    pub async fn build_with_clock(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::build_from(config, clock).await.map_err(|error| {
            let error = match error.downcast::<UsageError>() {
                Ok(UsageError(inner)) => inner,
                Err(other) => other,
            };
            UsageError(error.context(config.path.display().to_string())).into()
        })
    }

    async fn build_from(config: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        let mut client_config = ClientConfig::new(config.alation.base_url.clone());
        client_config.timeout = config.alation.timeout;
        client_config.ca_file = config.alation.ca_file.clone();
        client_config.allow_insecure_http = config.alation.allow_insecure_http;
        client_config.oauth_client_auth = config.alation.oauth_client_auth;
        client_config.retry = RetryConfig {
            max_attempts: config.alation.max_attempts,
            ..RetryConfig::default()
        };
        let client = AlationClient::new(client_config)
            .context("key `alation`")
            .map_err(UsageError)?;
        let refresh_source = Arc::new(RefreshTokenSource::new(client.clone()));
        let oauth_source = Arc::new(ClientCredentialsSource::new(client));

        let mut stores: BTreeMap<String, Arc<dyn TokenSink>> = BTreeMap::new();
        for (name, store) in &config.stores {
            let sink = store
                .settings
                .build()
                .await
                .with_context(|| format!("store `stores.{name}`"))
                .map_err(UsageError)?;
            stores.insert(name.clone(), sink);
        }
        for (i, integration) in config.integrations.iter().enumerate() {
            let state = integration.state();
            if !stores[&state.store].capabilities().compare_and_set && !state.allow_without_cas {
                return Err(UsageError(anyhow::anyhow!(
                    "integrations[{i}] (name {:?}): the state location is on store `{}`, which \
                     cannot compare-and-set (e.g. Vault KV v1), so two runners at once could \
                     overwrite each other's regenerated refresh token and lose it; use a store \
                     that can (Vault KV v2, AWS, file), or add `allow_without_cas = true` to \
                     the location to accept that risk",
                    integration.name,
                    state.store
                ))
                .into());
            }
        }
        let location = |l: &LocationConfig| {
            Location::new(
                l.store.clone(),
                l.key.clone(),
                Arc::clone(&stores[&l.store]),
            )
            .with_takeover(l.takeover)
        };
        let policy = &config.policy;
        let integrations = config
            .integrations
            .iter()
            .map(|i| {
                let source: Arc<dyn TokenSource> = if i.oauth_client.is_some() {
                    oauth_source.clone()
                } else {
                    refresh_source.clone()
                };
                let mut integration = Integration::new(
                    i.name.clone(),
                    i.user_id,
                    location(i.state()),
                    i.access_token.as_slice().iter().map(location).collect(),
                    source,
                );
                let mut rules = Policy::default();
                rules.access_renew_before = i
                    .access_renew_before
                    .or(policy.access_renew_before)
                    .unwrap_or(default_access_renew_before(i.oauth_client.is_some()));
                rules.refresh_renew_before = i
                    .refresh_renew_before
                    .unwrap_or(policy.refresh_renew_before);
                rules.validate = i.validate.unwrap_or(policy.validate);
                rules.standby = i.standby.unwrap_or(policy.standby) && i.refresh_token.is_some();
                rules.min_regenerate_interval = policy.min_regenerate_interval;
                integration.policy = rules;
                integration
            })
            .collect();
        let engine = Engine::new(clock)
            .with_max_concurrency(policy.max_concurrency)
            .with_escrow(Escrow::new(&config.escrow.directory))
            .with_hooks(crate::hooks::hooks());
        Ok(Self {
            engine,
            integrations,
            refresh_source,
        })
    }
}

/// The system clock; test builds may shift it (see `hooks`).
fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock::with_offset(crate::hooks::clock_offset()))
}
