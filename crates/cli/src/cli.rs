//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Keeps Alation API tokens fresh in Vault, AWS Secrets Manager or local files.
///
/// Exit codes: 0 every integration fresh or rotated; 1 at least one failed; 2 usage or
/// configuration error (nothing was contacted).
#[derive(Debug, Parser)]
#[command(name = "alation-rotator", version, about, long_about)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options for every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Configuration file [default: $ALATION_ROTATOR_CONFIG, else ./alation-rotator.toml].
    #[arg(long, short = 'c', global = true, env = "ALATION_ROTATOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on standard error.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `debug,reqwest=info` [default: info, `warn` for demo;
    /// RUST_LOG wins when set].
    #[arg(long, global = true)]
    pub log_level: Option<String>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Output format of `status`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned table.
    Table,
    /// A JSON array.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// One rotation pass over the integrations (for cron, CronJob, systemd timers).
    Run(RunArgs),
    /// Show every integration's token expiry, where it is stored and its health. Never prints
    /// a secret and writes nothing; asks Alation (read-only `validateRefreshToken`) whether
    /// each stored refresh token is still active.
    Status(StatusArgs),
    /// Validate the configuration offline; contacts nothing.
    CheckConfig,
    /// Store a first refresh token for an integration: created from a username and password,
    /// or pasted (a token made in Alation's UI, e.g. by an SSO user) and validated.
    Bootstrap(BootstrapArgs),
    /// Incident response: revoke every access token of the integration, mint a fresh one and
    /// push it to every destination.
    Revoke {
        /// The integration.
        name: String,
    },
    /// Run the whole flow against an in-process Alation emulator and a temporary file store.
    Demo,
    /// Keep running: renew each access token just before it is due (for tokens that live
    /// minutes, e.g. OAuth clients), serve /metrics, /healthz and /readyz, reload the
    /// configuration on SIGHUP and stop gracefully on SIGTERM.
    Daemon(DaemonArgs),
}

impl Command {
    /// The log level when neither `--log-level` nor `RUST_LOG` says: `warn` for `demo`, whose
    /// output is the show, `info` otherwise.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Demo => "warn",
            _ => "info",
        }
    }
}

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Decide and report what would happen; mint nothing and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Only these integrations (repeatable).
    #[arg(long, value_name = "NAME")]
    pub only: Vec<String>,
    /// Mint new access tokens even where the current ones are fresh.
    #[arg(long)]
    pub force: bool,
    /// Which integrations this runner handles.
    #[command(flatten)]
    pub shard: ShardArgs,
    /// Where the metrics go.
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

/// Where a run's Prometheus metrics go (see docs/metrics.md).
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Write the metrics to this file, atomically, for node_exporter's textfile collector
    /// (e.g. /var/lib/node_exporter/textfile/alation-rotator.prom). Written for failed runs
    /// and configuration errors too.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
    /// Push the metrics to this Pushgateway (e.g. http://pushgateway:9091), grouped by
    /// job="alation-rotator". An unreachable Pushgateway is a warning, never a failed run.
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<url::Url>,
    /// The `instance` grouping label of the push (e.g. the pod or shard name).
    #[arg(long, value_name = "NAME", requires = "pushgateway")]
    pub metrics_instance: Option<String>,
}

/// Arguments of `daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Where to serve /metrics, /healthz and /readyz (loopback by default; 0.0.0.0:9464 in a
    /// pod).
    #[arg(long, default_value = "127.0.0.1:9464")]
    pub listen: std::net::SocketAddr,
    /// The shortest sleep between passes, whatever tokens say.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub min_interval: std::time::Duration,
    /// The longest sleep between passes (refresh tokens and health are checked at least this
    /// often).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub max_interval: std::time::Duration,
    /// The longest wait before retrying an integration that failed (the wait doubles from
    /// min-interval up to this).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub max_backoff: std::time::Duration,
    /// Which integrations this daemon handles.
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// Arguments of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// Read the stores only; do not ask Alation whether refresh tokens are still active.
    #[arg(long)]
    pub offline: bool,
    /// Which integrations to show.
    #[command(flatten)]
    pub shard: ShardArgs,
}

/// Splitting the integrations over several runners (a Kubernetes Indexed Job): each belongs
/// to exactly one shard, chosen from its name.
#[derive(Debug, Args)]
pub struct ShardArgs {
    /// Handle shard I of N (0-based), e.g. `--shard 0/3`.
    #[arg(long, value_name = "I/N", conflicts_with = "shard_from_env")]
    pub shard: Option<rotator_core::Shard>,
    /// Take the shard from JOB_COMPLETION_INDEX (set by a Kubernetes Indexed Job) and
    /// JOB_COMPLETIONS (set it in the pod's env to the Job's completions).
    #[arg(long)]
    pub shard_from_env: bool,
}

impl ShardArgs {
    /// The shard asked for; the whole fleet when neither flag is given.
    pub fn resolve(&self) -> Result<rotator_core::Shard, rotator_core::shard::ShardError> {
        match (self.shard, self.shard_from_env) {
            (Some(shard), _) => Ok(shard),
            (None, true) => rotator_core::Shard::from_env(|name| std::env::var(name).ok()),
            (None, false) => Ok(rotator_core::Shard::all()),
        }
    }
}

/// Arguments of `bootstrap`.
#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// The integration.
    pub name: String,
    /// Alation username; the password is prompted for without echo (or read with
    /// --password-stdin) and `createRefreshToken` makes the token.
    #[arg(
        long,
        conflicts_with_all = ["refresh_token_stdin", "oauth_client_id"],
        required_unless_present_any = ["refresh_token_stdin", "oauth_client_id"]
    )]
    pub username: Option<String>,
    /// For an `oauth_client` integration: the client id of the OAuth client application
    /// registered in Alation; the secret is read with --client-secret-stdin.
    #[arg(
        long,
        conflicts_with = "refresh_token_stdin",
        requires = "client_secret_stdin"
    )]
    pub oauth_client_id: Option<String>,
    /// Read the OAuth client secret from the first line of standard input. The pair is
    /// checked by asking Alation for a token before it is stored.
    #[arg(long, requires = "oauth_client_id")]
    pub client_secret_stdin: bool,
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Read a refresh token made in Alation's UI from the first line of standard input (two
    /// lines, two tokens, when the integration keeps a standby); each is validated against
    /// the integration's `user_id` and stored exactly as pasted.
    #[arg(long)]
    pub refresh_token_stdin: bool,
    /// Name of the refresh token in Alation [default: the integration's name; when replacing
    /// a stored token, the name plus the UTC time, since Alation may refuse a second live
    /// token of the same name].
    #[arg(long, conflicts_with = "refresh_token_stdin")]
    pub token_name: Option<String>,
    /// Replace a refresh token that Alation still accepts.
    #[arg(long)]
    pub force: bool,
}
