//! Logs go to standard error, human-readable or JSON; standard output carries results.
//!
//! Whatever `RUST_LOG` or `--log-level` asks, the wire-level targets of the HTTP and TLS
//! stacks and of the AWS SDK are held at `info` (hyper, h2, rustls, reqwest: `warn`), below
//! the levels at which they log request or response contents, so no token or password can
//! reach a log. Colour is used only on a terminal and never when `NO_COLOR` is set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{Global, LogFormat};

/// Targets whose `debug`/`trace` events may carry request or response contents, and the most
/// they may log.
const WIRE_LEVEL_CAPS: &[(&str, &str)] = &[
    ("aws_smithy_runtime", "info"),
    ("aws_smithy_runtime_api", "info"),
    ("aws_smithy_http_client", "info"),
    ("aws_smithy_http", "info"),
    ("aws_sigv4", "info"),
    ("aws_config", "info"),
    ("aws_sdk_secretsmanager", "info"),
    ("aws_sdk_sts", "info"),
    ("hyper", "warn"),
    ("hyper_util", "warn"),
    ("h2", "warn"),
    ("rustls", "warn"),
    ("reqwest", "warn"),
    ("vaultrs", "info"),
    ("rustify", "info"),
];

/// The filter: the user's directives (`RUST_LOG` wins over `--log-level`, which wins over
/// `default_level`), then the caps, which win because later directives for the same target
/// replace earlier ones.
pub fn filter_directives(user: &str) -> String {
    let mut directives = user.trim().to_owned();
    for (target, level) in WIRE_LEVEL_CAPS {
        if !directives.is_empty() {
            directives.push(',');
        }
        directives.push_str(&format!("{target}={level}"));
    }
    directives
}

/// Installs the global subscriber.
pub fn init(global: &Global, default_level: &str) {
    let user = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| global.log_level.clone())
        .unwrap_or_else(|| default_level.to_owned());
    let filter = EnvFilter::try_new(filter_directives(&user))
        .unwrap_or_else(|_| EnvFilter::new(filter_directives("info")));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    match global.log_format {
        LogFormat::Human => builder.with_target(false).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The caps hold even when the user asks for `trace` everywhere or on the target itself.
    #[test]
    fn wire_level_targets_stay_capped_whatever_the_user_asks() {
        for user in [
            "trace",
            "trace,hyper=trace,aws_smithy_runtime=trace",
            "reqwest=trace",
        ] {
            let filter = EnvFilter::try_new(filter_directives(user)).unwrap();
            let subscriber = tracing_subscriber::registry().with(filter);
            tracing::subscriber::with_default(subscriber, || {
                assert!(
                    !tracing::enabled!(target: "hyper", tracing::Level::DEBUG),
                    "{user}"
                );
                assert!(
                    !tracing::enabled!(target: "aws_smithy_runtime::client::orchestrator", tracing::Level::TRACE),
                    "{user}"
                );
                assert!(
                    !tracing::enabled!(target: "reqwest::connect", tracing::Level::DEBUG),
                    "{user}"
                );
                assert!(
                    tracing::enabled!(target: "aws_smithy_runtime", tracing::Level::INFO),
                    "{user}"
                );
            });
        }
        // Our own targets still follow the user.
        let filter = EnvFilter::try_new(filter_directives("trace")).unwrap();
        assert_eq!(filter.max_level_hint(), Some(LevelFilter::TRACE));
    }
}
