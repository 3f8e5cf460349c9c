//! Wires configuration to backends and runs the commands.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rotator_alation::{AlationClient, ClientConfig, RetryConfig};
use rotator_core::engine::{Engine, Escrow, Integration, Location, Report, RunOptions};
use rotator_core::{Clock, Policy, SystemClock};

use crate::cli::{Cli, Command, Global, RunArgs};
use crate::config::{Config, LocationConfig};
use crate::{bootstrap, demo, output};

/// Every integration is fresh or rotated.
pub const EXIT_OK: u8 = 0;
/// At least one integration failed.
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
        || error.downcast_ref::<crate::config::ConfigError>().is_some()
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

/// Runs the command; `Ok` holds the exit code.
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Demo => demo::run().await,
        Command::Bootstrap(args) => {
            let (_, config) = load(&cli.global)?;
            bootstrap::bootstrap(&config, &args).await
        }
        Command::Revoke { name } => {
            let (_, config) = load(&cli.global)?;
            bootstrap::revoke(&config, &name).await
        }
        Command::CheckConfig => {
            let (path, config) = load(&cli.global)?;
            println!(
                "{}: OK ({} integrations, {} stores)",
                path.display(),
                config.integrations.len(),
                config.stores.len()
            );
            Ok(EXIT_OK)
        }
        Command::Run(args) => {
            let (path, config) = load(&cli.global)?;
            rotate(&path, &config, &args).await
        }
        Command::Status { format, offline } => {
            let (_, config) = load(&cli.global)?;
            let setup = Setup::build(&config).await?;
            let reports = setup.engine.status(&setup.integrations, !offline).await;
            output::print_status(&setup.integrations, &reports, format)?;
            Ok(if reports.iter().any(Report::is_failure) {
                EXIT_FAILED
            } else {
                EXIT_OK
            })
        }
    }
}

/// `run`: one pass.
pub async fn rotate(path: &Path, config: &Config, args: &RunArgs) -> anyhow::Result<u8> {
    let setup = Setup::build(config).await?;
    let selected = select(&setup.integrations, &args.only)
        .with_context(|| format!("{}: --only", path.display()))?;
    let options = RunOptions {
        dry_run: args.dry_run,
        force: args.force,
        verify_refresh: false,
    };
    let reports = setup.engine.run(&selected, options).await;
    output::print_run(&reports);
    Ok(if reports.iter().any(Report::is_failure) {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

fn select(all: &[Integration], only: &[String]) -> Result<Vec<Integration>, UsageError> {
    if only.is_empty() {
        return Ok(all.to_vec());
    }
    for name in only {
        find(all, name)?;
    }
    Ok(all
        .iter()
        .filter(|i| only.contains(&i.name))
        .cloned()
        .collect())
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

/// Finds and loads the configuration: `--config`, else `$ALATION_ROTATOR_CONFIG` (both in
/// `global.config`), else `./alation-rotator.toml`.
pub fn load(global: &Global) -> anyhow::Result<(PathBuf, Config)> {
    let path = global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from("alation-rotator.toml"));
    let config = Config::load(&path)?;
    Ok((path, config))
}

/// The engine and integrations built from a configuration, without contacting anything.
pub struct Setup {
    /// The engine.
    pub engine: Engine,
    /// The integrations, with their stores.
    pub integrations: Vec<Integration>,
}

impl Setup {
    /// Builds clients and stores; errors here are configuration errors (exit 2).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let mut client_config = ClientConfig::new(config.alation.base_url.clone());
        client_config.timeout = config.alation.timeout;
        client_config.ca_file = config.alation.ca_file.clone();
        client_config.retry = RetryConfig {
            max_attempts: config.alation.max_attempts,
            ..RetryConfig::default()
        };
        let client = AlationClient::new(client_config)
            .context("key `alation`")
            .map_err(UsageError)?;

        let mut sinks = std::collections::BTreeMap::new();
        for (name, store) in &config.stores {
            let sink = store
                .build()
                .await
                .with_context(|| format!("store `stores.{name}`"))
                .map_err(UsageError)?;
            sinks.insert(name.clone(), sink);
        }
        let location = |l: &LocationConfig| Location {
            store: l.store.clone(),
            key: l.key.clone(),
            sink: Arc::clone(&sinks[&l.store]),
            takeover: l.takeover,
        };
        let integrations = config
            .integrations
            .iter()
            .map(|i| Integration {
                name: i.name.clone(),
                user_id: i.user_id,
                refresh_token: location(&i.refresh_token),
                access_token: i.access_token.as_slice().iter().map(location).collect(),
                policy: Policy {
                    access_renew_before: i
                        .access_renew_before
                        .unwrap_or(config.policy.access_renew_before),
                    refresh_renew_before: i
                        .refresh_renew_before
                        .unwrap_or(config.policy.refresh_renew_before),
                    validate: i.validate.unwrap_or(config.policy.validate),
                },
            })
            .collect();
        let engine = Engine::new(client, clock())
            .with_max_concurrency(config.policy.max_concurrency)
            .with_escrow(Escrow::new(&config.escrow.directory));
        Ok(Self {
            engine,
            integrations,
        })
    }
}

/// The system clock. Debug builds (what `cargo test` runs) honour
/// `ALATION_ROTATOR_TEST_CLOCK_OFFSET` (a humantime duration) so end-to-end tests can move
/// time instead of sleeping; release builds never read it.
fn clock() -> Arc<dyn Clock> {
    #[cfg(debug_assertions)]
    if let Ok(offset) = std::env::var("ALATION_ROTATOR_TEST_CLOCK_OFFSET") {
        if let Ok(offset) = humantime::parse_duration(&offset) {
            if let Ok(offset) = jiff::SignedDuration::try_from(offset) {
                return Arc::new(SystemClock::with_offset(offset));
            }
        }
    }
    Arc::new(SystemClock::new())
}
