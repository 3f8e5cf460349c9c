//! Real servers for integration and end-to-end tests: OpenBao for the Vault API
//! ([`openbao::OpenBao`]) and, with the `moto` feature, moto (or LocalStack) for AWS Secrets
//! Manager (`moto::Moto`).
//!
//! See the [crate documentation](crate#test-peers) for how a peer is chosen and how to get
//! the binaries. In short: [`PeerMode::from_env`] reads [`PEERS_ENV`]
//! (`ROTATOR_TEST_PEERS`); `process` (the default) starts the binaries named by
//! [`openbao::BAO_BIN_ENV`] and `moto::MOTO_BIN_ENV` (else found on `PATH`) as local
//! processes, and `testcontainers` (cargo feature `testcontainers`) starts Docker images.
//! A peer that cannot be started fails the test with a message saying what to set; it never
//! skips.

pub mod openbao;
pub mod pushgateway;

#[cfg(feature = "moto")]
pub mod moto;

#[cfg(feature = "testcontainers")]
mod container;
mod process;

#[cfg(feature = "moto")]
pub use moto::Moto;
pub use openbao::OpenBao;
pub use pushgateway::Pushgateway;

/// The environment variable choosing how peers are started: `process` (the default when
/// unset or empty) or `testcontainers`.
pub const PEERS_ENV: &str = "ROTATOR_TEST_PEERS";

/// How the test peers of this process are started, from [`PEERS_ENV`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerMode {
    /// Local processes from binaries named by environment variables or found on `PATH`
    /// (`ROTATOR_TEST_PEERS=process`, the default). Needs no Docker.
    Process,
    /// Docker containers of official images, through the `testcontainers` crate
    /// (`ROTATOR_TEST_PEERS=testcontainers`). Needs a Docker engine and rotator-testkit's
    /// `testcontainers` cargo feature.
    Testcontainers,
}

impl PeerMode {
    /// The mode [`PEERS_ENV`] asks for.
    ///
    /// Panics, saying what is accepted, on an unknown value, and on `testcontainers` when
    /// rotator-testkit was built without its `testcontainers` feature.
    pub fn from_env() -> PeerMode {
        Self::parse(&std::env::var(PEERS_ENV).unwrap_or_default())
    }

    fn parse(value: &str) -> PeerMode {
        match value.trim() {
            "" | "process" => PeerMode::Process,
            "testcontainers" => {
                if !cfg!(feature = "testcontainers") {
                    panic!(
                        "{PEERS_ENV}=testcontainers needs rotator-testkit's `testcontainers` \
                         cargo feature: add `--features rotator-testkit/testcontainers` to the \
                         cargo command, or unset {PEERS_ENV} to start the peers as processes"
                    );
                }
                PeerMode::Testcontainers
            }
            other => panic!(
                "{PEERS_ENV}={other:?} is not a peer mode: use `process` (the default: start \
                 `bao` and `moto_server` as local processes) or `testcontainers` (Docker)"
            ),
        }
    }
}

/// How a peer runs: a local process or a container.
enum Backend {
    Process(process::LocalServer),
    #[cfg(feature = "testcontainers")]
    Container(container::ContainerPeer),
}

impl Backend {
    fn mode(&self) -> PeerMode {
        match self {
            Backend::Process(_) => PeerMode::Process,
            #[cfg(feature = "testcontainers")]
            Backend::Container(_) => PeerMode::Testcontainers,
        }
    }

    /// The server's output so far (its log file, or the container's stdout and stderr).
    fn log(&self) -> String {
        match self {
            Backend::Process(local) => local.output(),
            #[cfg(feature = "testcontainers")]
            Backend::Container(container) => container.logs(),
        }
    }

    /// Stops the server and waits until it has exited. Does nothing the second time.
    fn stop(&self) {
        match self {
            Backend::Process(local) => local.stop(),
            #[cfg(feature = "testcontainers")]
            Backend::Container(container) => container.stop(),
        }
    }
}

/// The `name:tag` of a container image: the environment variable `env` when set, else
/// `default`.
#[cfg(feature = "testcontainers")]
fn image(env: &str, default: &str) -> String {
    std::env::var(env)
        .ok()
        .filter(|image| !image.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[cfg(test)]
mod tests {
    use super::PeerMode;

    fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
        let panic = std::panic::catch_unwind(f).unwrap_err();
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default()
    }

    #[test]
    fn modes_parse_and_process_is_the_default() {
        assert_eq!(PeerMode::parse(""), PeerMode::Process);
        assert_eq!(PeerMode::parse("process"), PeerMode::Process);
        let message = panic_message(|| {
            PeerMode::parse("skip");
        });
        assert!(message.contains("\"skip\" is not a peer mode"), "{message}");
    }

    #[test]
    fn testcontainers_needs_its_feature() {
        if cfg!(feature = "testcontainers") {
            assert_eq!(PeerMode::parse("testcontainers"), PeerMode::Testcontainers);
        } else {
            let message = panic_message(|| {
                PeerMode::parse("testcontainers");
            });
            assert!(
                message.contains("`testcontainers` cargo feature"),
                "{message}"
            );
        }
    }

    #[test]
    fn a_missing_binary_fails_naming_the_variable_and_the_script() {
        let message = panic_message(|| {
            super::process::find_binary(
                "ROTATOR_TESTKIT_UNIT_UNSET_BIN",
                "rotator-testkit-no-such-binary",
                "nothing",
            );
        });
        assert!(
            message.contains("set ROTATOR_TESTKIT_UNIT_UNSET_BIN or run ./scripts/test.sh"),
            "{message}"
        );
    }
}
