//! [`App`]: the runner, with the store types it knows, and the commands it dispatches.

use std::process::ExitCode;

use clap::Parser;
use rotator_core::engine::{Integration, Report, RunOptions};
use rotator_core::{RenewBefore, Shard};

use crate::cli::{Cli, Command, RunArgs, StatusArgs};
use crate::config::Config;
use crate::metrics::{Metrics, RunInfo};
use crate::registry::{Registry, StoreType};
use crate::setup::{self, Setup, UsageError, EXIT_FAILED, EXIT_OK};
use crate::signals::Stop;
use crate::{bootstrap, logging, output};

/// The alation-rotator command line, with the store types it knows.
///
/// `App::new()` knows the built-in stores of this build (`file`, `vault`,
/// `aws_secrets_manager`, `exec`, each behind its cargo feature); add your own with
/// [`App::with_store`] and run it with [`App::main`]. Your binary then reads the same
/// configuration file and offers the same commands, exit codes, logs and metrics:
///
/// ```no_run
/// # use alation_rotator::{App, StoreType};
/// # struct MyStore;
/// # #[derive(Debug, serde::Deserialize)] struct MyConfig;
/// # impl StoreType for MyStore {
/// #     const TYPE: &'static str = "mine";
/// #     type Config = MyConfig;
/// #     fn validate(_: &MyConfig) -> Result<(), rotator_core::ConfigError> { Ok(()) }
/// #     async fn build(_: &MyConfig) -> Result<std::sync::Arc<dyn rotator_core::TokenSink>, rotator_core::SinkError> { unimplemented!() }
/// # }
/// fn main() -> std::process::ExitCode {
///     App::new().with_store::<MyStore>().main()
/// }
/// ```
#[derive(Debug, Clone)]
pub struct App {
    pub(crate) registry: Registry,
}

impl Default for App {
    fn default() -> Self {
        Self::new()
    }
}

impl App {
    /// The runner with the built-in stores of this build.
    pub fn new() -> Self {
        let app = Self {
            registry: Registry::default(),
        };
        #[cfg(feature = "file")]
        let app = app.with_store::<crate::builtin::FileStore>();
        #[cfg(feature = "vault")]
        let app = app.with_store::<crate::builtin::VaultStore>();
        #[cfg(feature = "aws")]
        let app = app.with_store::<crate::builtin::AwsSecretsManagerStore>();
        #[cfg(feature = "exec")]
        let app = app.with_store::<crate::builtin::ExecStore>();
        app
    }

    /// Adds a store type (`type = T::TYPE` in `[stores.NAME]`); a later registration of the
    /// same type string replaces an earlier one.
    pub fn with_store<T: StoreType>(mut self) -> Self {
        self.registry.register::<T>();
        self
    }

    /// Parses the process's arguments, runs the command and returns its exit code: 0 every
    /// integration fresh or rotated, 1 at least one failed (or was not reached), 2 a usage or
    /// configuration error (nothing contacted). The error chain is printed once, to standard
    /// error.
    pub fn main(self) -> ExitCode {
        let cli = Cli::parse();
        logging::init(&cli.global, cli.command.default_log_level());
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(error) => {
                eprintln!("error: cannot start the async runtime: {error}");
                return ExitCode::from(EXIT_FAILED);
            }
        };
        match runtime.block_on(self.run(cli)) {
            Ok(code) => ExitCode::from(code),
            Err(error) => {
                eprintln!("error: {}", setup::error_chain(&error));
                ExitCode::from(setup::exit_code_of(&error))
            }
        }
    }

    /// Runs one parsed command; `Ok` holds the exit code.
    async fn run(&self, cli: Cli) -> anyhow::Result<u8> {
        let load = || setup::load(&cli.global, &self.registry);
        match &cli.command {
            Command::Demo => crate::demo::run(self).await,
            Command::Daemon(args) => {
                let path = cli
                    .global
                    .config
                    .clone()
                    .unwrap_or_else(|| std::path::PathBuf::from("alation-rotator.toml"));
                let clock: std::sync::Arc<dyn rotator_core::Clock> = std::sync::Arc::new(
                    rotator_core::SystemClock::with_offset(crate::hooks::clock_offset()),
                );
                crate::daemon::run(path, &self.registry, args, clock).await
            }
            Command::Bootstrap(args) => bootstrap::bootstrap(&load()?.1, args).await,
            Command::Revoke { name } => bootstrap::revoke(&load()?.1, name).await,
            Command::CheckConfig => check_config(load()?).await,
            Command::Run(args) => {
                let started = jiff::Timestamp::now();
                let timer = std::time::Instant::now();
                let outcome = match load() {
                    Ok((_, config)) => rotate(&config, args).await,
                    Err(error) => Err(error),
                };
                let (exit_code, done) = match &outcome {
                    Ok((code, integrations, reports)) => (*code, Some((integrations, reports))),
                    Err(error) => (setup::exit_code_of(error), None),
                };
                let run = RunInfo {
                    started,
                    duration: timer.elapsed(),
                    exit_code,
                };
                publish(&args.metrics, run, done).await;
                outcome.map(|(code, _, _)| code)
            }
            Command::Status(args) => status(&load()?.1, args).await,
        }
    }
}

fn shard_of(args: &crate::cli::ShardArgs) -> Result<Shard, UsageError> {
    args.resolve()
        .map_err(|e| UsageError(anyhow::anyhow!("--shard: {e}")))
}

/// Exit 1 when any integration failed or was not reached.
fn exit_code(reports: &[Report]) -> u8 {
    if reports.iter().any(Report::is_failure) {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}

/// Writes and pushes a run's metrics, as asked; failures are warnings.
async fn publish(
    args: &crate::cli::MetricsArgs,
    run: RunInfo,
    done: Option<(&Vec<Integration>, &Vec<Report>)>,
) {
    if args.metrics_file.is_none() && args.pushgateway.is_none() {
        return;
    }
    let mut metrics = Metrics::new();
    match done {
        Some((integrations, reports)) => metrics.record(run, integrations, reports),
        None => metrics.record_failed_start(run),
    }
    if let Some(path) = &args.metrics_file {
        if let Err(error) = metrics.write_textfile(path) {
            tracing::warn!(path = %path.display(), %error, "could not write the metrics file");
        }
    }
    if let Some(gateway) = &args.pushgateway {
        if let Err(error) = metrics
            .push(
                gateway,
                args.metrics_instance.as_deref(),
                std::time::Duration::from_secs(10),
            )
            .await
        {
            tracing::warn!(%error, "could not push the metrics; the rotation itself is unaffected");
        }
    }
}

/// `run`: one pass over the selected integrations, stopping gracefully on a signal. Returns
/// the exit code, the integrations and their reports.
async fn rotate(
    config: &Config,
    args: &RunArgs,
) -> anyhow::Result<(u8, Vec<Integration>, Vec<Report>)> {
    // Watch signals before anything else, so a SIGTERM at start-up is graceful too.
    let stop = Stop::watch(Some(config.policy.run_deadline));
    let shard = shard_of(&args.shard)?;
    let setup = Setup::build(config).await?;
    let selected = setup::select(&setup.integrations, &args.only, shard)?;
    let options = RunOptions::run().dry_run(args.dry_run).force(args.force);
    let reports = crate::signals::run(
        &setup.engine,
        &selected,
        options,
        &stop,
        config.policy.shutdown_grace,
    )
    .await;
    output::print_run(&reports);
    Ok((exit_code(&reports), selected, reports))
}

/// `status`: every integration's health, writing nothing.
async fn status(config: &Config, args: &StatusArgs) -> anyhow::Result<u8> {
    let shard = shard_of(&args.shard)?;
    let setup = Setup::build(config).await?;
    let selected = setup::select(&setup.integrations, &[], shard)?;
    let reports = setup.engine.status(&selected, !args.offline).await;
    output::print_status(&selected, &reports, args.format)?;
    Ok(exit_code(&reports))
}

/// `check-config`: parses, validates and builds every store offline; warns about settings
/// that work but will hurt.
async fn check_config((path, config): (std::path::PathBuf, Config)) -> anyhow::Result<u8> {
    let setup = Setup::build(&config).await?;
    for warning in warnings(&config) {
        eprintln!("warning: {}: {warning}", path.display());
    }
    println!(
        "{}: OK ({} integrations, {} stores)",
        path.display(),
        setup.integrations.len(),
        config.stores.len()
    );
    Ok(EXIT_OK)
}

/// Settings that are valid but defeat their purpose.
fn warnings(config: &Config) -> Vec<String> {
    let half_lifetime = std::time::Duration::from_secs(30 * 86_400);
    let too_early = |renew: &RenewBefore| match renew {
        RenewBefore::Percent(p) => *p >= 50.0,
        RenewBefore::Duration(d) => *d >= half_lifetime,
    };
    let mut warnings = Vec::new();
    if too_early(&config.policy.refresh_renew_before) {
        warnings.push(format!(
            "policy.refresh_renew_before = {} is at least half a refresh token's lifetime \
             (60 days by Alation's default): tokens would be regenerated far more often than \
             needed, and each regeneration is a moment a crash can cost the token; 14d is the \
             default",
            config.policy.refresh_renew_before
        ));
    }
    for (i, integration) in config.integrations.iter().enumerate() {
        if let Some(renew) = &integration.refresh_renew_before {
            if too_early(renew) {
                warnings.push(format!(
                    "integrations[{i}].refresh_renew_before = {renew} is at least half a refresh \
                     token's lifetime (60 days by Alation's default)"
                ));
            }
        }
    }
    warnings
}
