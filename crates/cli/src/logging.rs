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

/// The second filter every event must also pass: everything, except the wire-level targets
/// above their caps. Being a filter of its own, no user directive can open it, however
/// specific its target (`aws_smithy_runtime::client::orchestrator=trace` included).
pub fn wire_level_caps() -> EnvFilter {
    let mut directives = String::from("trace");
    for (target, level) in WIRE_LEVEL_CAPS {
        directives.push_str(&format!(",{target}={level}"));
    }
    EnvFilter::new(directives)
}

/// Installs the global subscriber: the user's filter (`RUST_LOG` wins over `--log-level`,
/// which wins over `default_level`) and the caps.
pub fn init(global: &Global, default_level: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let user = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| global.log_level.clone())
        .unwrap_or_else(|| default_level.to_owned());
    let user_filter = EnvFilter::try_new(&user).unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let registry = tracing_subscriber::registry()
        .with(user_filter)
        .with(wire_level_caps());
    match global.log_format {
        LogFormat::Human => registry.with(fmt.with_target(false)).init(),
        LogFormat::Json => registry
            .with(fmt.json().flatten_event(true).with_current_span(true))
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    /// The caps hold even when the user asks for `trace` everywhere, on the target itself or
    /// on a module below it.
    #[test]
    fn wire_level_targets_stay_capped_whatever_the_user_asks() {
        for user in [
            "trace",
            "trace,hyper=trace,aws_smithy_runtime=trace",
            "reqwest=trace",
            "aws_smithy_runtime::client::orchestrator=trace,hyper::proto::h1=trace,reqwest::connect=trace",
        ] {
            let subscriber = tracing_subscriber::registry()
                .with(EnvFilter::try_new(user).unwrap())
                .with(wire_level_caps());
            tracing::subscriber::with_default(subscriber, || {
                assert!(
                    !tracing::enabled!(target: "hyper::proto::h1", tracing::Level::DEBUG),
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
            });
        }
        // Our own targets, and the capped ones up to their cap, still follow the user.
        let subscriber = tracing_subscriber::registry()
            .with(EnvFilter::try_new("trace").unwrap())
            .with(wire_level_caps());
        tracing::subscriber::with_default(subscriber, || {
            assert!(tracing::enabled!(target: "rotator_core::engine", tracing::Level::TRACE));
            assert!(tracing::enabled!(target: "aws_smithy_runtime", tracing::Level::INFO));
        });
    }
}
