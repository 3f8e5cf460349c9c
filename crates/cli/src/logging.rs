//! Logs go to standard error, human-readable or JSON; standard output carries results.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{Global, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `--log-level`.
/// `default_level` applies when neither `--log-level` nor `RUST_LOG` is given.
pub fn init(global: &Global, default_level: &str) {
    let level = global.log_level.as_deref().unwrap_or(default_level);
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match global.log_format {
        LogFormat::Human => builder.with_target(false).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}
