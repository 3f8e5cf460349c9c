//! The alation-rotator runner as a library: the command line, configuration file, commands,
//! exit codes and logs of the `alation-rotator` binary, for binaries of your own that add
//! store types beside the built-in ones.
//!
//! ```no_run
//! fn main() -> std::process::ExitCode {
//!     alation_rotator::App::new().main()
//! }
//! ```
//!
//! A store type is a [`StoreType`]: the `type` string of its `[stores.NAME]` block, a serde
//! configuration type, offline validation, and a constructor of a
//! [`TokenSink`](rotator_core::TokenSink). The built-in stores register through the same
//! [`App::with_store`]; see `docs/extending.md` for a walk from `cargo new` to a store that
//! passes the conformance suite and runs in your own binary.
#![deny(missing_docs)]

mod app;
mod bootstrap;
mod builtin;
mod cli;
mod config;
mod daemon;
mod demo;
mod hooks;
mod logging;
mod metrics;
mod output;
mod registry;
mod setup;
mod signals;

pub use app::App;
#[cfg(feature = "aws")]
pub use builtin::AwsSecretsManagerStore;
#[cfg(feature = "exec")]
pub use builtin::ExecStore;
#[cfg(feature = "file")]
pub use builtin::FileStore;
#[cfg(feature = "vault")]
pub use builtin::VaultStore;
pub use registry::StoreType;
pub use setup::{EXIT_FAILED, EXIT_OK, EXIT_USAGE};
