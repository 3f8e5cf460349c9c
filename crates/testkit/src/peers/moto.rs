//! A fake AWS Secrets Manager (and STS, KMS, ...) for tests: a moto server (PyPI
//! `moto[server]`), or LocalStack under `testcontainers`. Needs the `moto` cargo feature.
//!
//! Started as [`PeerMode::from_env`] says:
//!
//! - `process`: the binary from [`MOTO_BIN_ENV`] (else `moto_server` on `PATH`) on an
//!   OS-picked port of 127.0.0.1, under a small `sh` watchdog that kills it when the test
//!   process ends.
//! - `testcontainers`: the image from [`LOCALSTACK_IMAGE_ENV`] (default
//!   [`DEFAULT_LOCALSTACK_IMAGE`]). LocalStack is not moto: the sink tests are written
//!   against moto and some of them (e.g. the account switch of `AssumeRole`) may behave
//!   differently there.
//!
//! Requests must be SigV4-signed with any keys; [`Moto::env`] and [`Moto::sdk_config`] give
//! fake ones ([`ACCESS_KEY_ID`], [`SECRET_ACCESS_KEY`], [`REGION`]).
//!
//! ```no_run
//! use rotator_testkit::peers::moto::Moto;
//!
//! # async fn demo() {
//! let moto = Moto::shared(); // one server for every test of this binary
//! // Direct SDK checks:
//! let sdk = moto.sdk_config().await;
//! // The binary under test, as a child process:
//! let mut command = std::process::Command::new("alation-rotator");
//! moto.configure(&mut command);
//! // ... with `endpoint_url = moto.endpoint()` in its store configuration.
//! # let _ = sdk;
//! # }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

use super::process::{find_binary, free_port, http_status, start_with_retries, LocalServer};
use super::{Backend, PeerMode};

/// The environment variable naming the `moto_server` binary (PyPI package `moto[server]`)
/// started in `process` mode.
pub const MOTO_BIN_ENV: &str = "ROTATOR_TEST_MOTO_BIN";

/// The environment variable naming the LocalStack image (`name:tag`) started in
/// `testcontainers` mode.
pub const LOCALSTACK_IMAGE_ENV: &str = "ROTATOR_TEST_LOCALSTACK_IMAGE";

/// The LocalStack image started in `testcontainers` mode unless [`LOCALSTACK_IMAGE_ENV`]
/// names another: a community release from before LocalStack's images required an auth
/// token. (`LOCALSTACK_AUTH_TOKEN` is passed on to the container when set.)
pub const DEFAULT_LOCALSTACK_IMAGE: &str = "localstack/localstack:4.9";

/// The region of the fake configuration.
pub const REGION: &str = "us-east-1";

/// The fake access key id (moto and LocalStack accept any).
pub const ACCESS_KEY_ID: &str = "testing";

/// The fake secret access key (moto and LocalStack accept any).
pub const SECRET_ACCESS_KEY: &str = "testing";

/// Environment variables to remove from a child process so that the AWS SDK in it uses
/// nothing but [`Moto::env`]: profiles, session and web-identity credentials, container
/// credentials and endpoint overrides of the person running the tests.
pub const ENV_TO_REMOVE: &[&str] = &[
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_STS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_CA_BUNDLE",
];

/// A running moto (or LocalStack) server, stopped when dropped.
pub struct Moto {
    /// Base URL, e.g. `http://127.0.0.1:38123`; the same as [`endpoint`](Self::endpoint).
    pub url: String,
    /// The address it listens on, e.g. for a proxy in front of it.
    pub addr: SocketAddr,
    backend: Backend,
}

impl std::fmt::Debug for Moto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moto")
            .field("url", &self.url)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

/// The moto server shared by the tests of this binary, started on first use; the same as
/// [`Moto::shared`].
pub fn moto() -> &'static Moto {
    Moto::shared()
}

/// The `moto_server` binary: [`MOTO_BIN_ENV`], else `moto_server` on `PATH`.
///
/// Panics when neither exists, saying "set ROTATOR_TEST_MOTO_BIN or run ./scripts/test.sh".
pub fn moto_bin() -> PathBuf {
    find_binary(MOTO_BIN_ENV, "moto_server", "moto[server]")
}

/// An AWS configuration with the fake credentials and [`REGION`] but no endpoint, for
/// clients that set their own (e.g. a sink whose configuration has an `endpoint_url`).
///
/// Set on the SDK rather than in the environment, because tests run in parallel threads.
pub async fn fake_sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            None,
            None,
            "rotator-testkit",
        ))
        .load()
        .await
}

impl Moto {
    /// The server shared by the tests of this binary, started on first use.
    pub fn shared() -> &'static Moto {
        static SHARED: OnceLock<Moto> = OnceLock::new();
        SHARED.get_or_init(Moto::start)
    }

    /// Starts a new server, as [`PeerMode::from_env`] says, and waits until it answers.
    /// Panics with the server's output when it does not start.
    ///
    /// It blocks the calling thread; it may be called from inside a Tokio runtime.
    pub fn start() -> Moto {
        match PeerMode::from_env() {
            PeerMode::Process => Self::start_process(),
            #[cfg(feature = "testcontainers")]
            PeerMode::Testcontainers => Self::start_container(),
            #[allow(unreachable_patterns)]
            mode => unreachable!("{mode:?} needs a feature this build lacks"),
        }
    }

    fn start_process() -> Moto {
        let bin = moto_bin();
        start_with_retries("moto_server", &bin, || {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let args = [
                "-H".to_owned(),
                "127.0.0.1".to_owned(),
                "-p".to_owned(),
                port.to_string(),
            ];
            let server = LocalServer::start(
                &bin,
                &args,
                "moto.log",
                |command, dir| {
                    command.current_dir(dir);
                },
                Duration::from_millis(100),
                || http_status(addr, "GET", "/moto-api/").is_some(),
            )?;
            Ok(Moto {
                url: format!("http://{addr}"),
                addr,
                backend: Backend::Process(server),
            })
        })
    }

    #[cfg(feature = "testcontainers")]
    fn start_container() -> Moto {
        let mut env = vec![(
            "SERVICES".to_owned(),
            "secretsmanager,sts,kms,iam".to_owned(),
        )];
        if let Ok(token) = std::env::var("LOCALSTACK_AUTH_TOKEN") {
            env.push(("LOCALSTACK_AUTH_TOKEN".to_owned(), token));
        }
        let container = super::container::ContainerPeer::start(super::container::Spec {
            image: super::image(LOCALSTACK_IMAGE_ENV, DEFAULT_LOCALSTACK_IMAGE),
            port: 4566,
            env,
            cmd: Vec::new(),
            ready_path: "/_localstack/health",
            what: "LocalStack",
        });
        Moto {
            url: format!("http://{}", container.host_port),
            addr: container.socket,
            backend: Backend::Container(container),
        }
    }

    /// How this server was started.
    pub fn mode(&self) -> PeerMode {
        self.backend.mode()
    }

    /// The endpoint URL to give the SDK or the rotator's `endpoint_url`, e.g.
    /// `http://127.0.0.1:38123`.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// Environment variables for a child process whose AWS SDK must talk to this server with
    /// the fake credentials and [`REGION`], and must not read `~/.aws` or the instance
    /// metadata service: access key, secret key, `AWS_REGION` and `AWS_DEFAULT_REGION`,
    /// `AWS_EC2_METADATA_DISABLED=true`, and `AWS_CONFIG_FILE` and
    /// `AWS_SHARED_CREDENTIALS_FILE` set to `/dev/null`.
    ///
    /// The endpoint is not among them: give [`endpoint`](Self::endpoint) to the program's
    /// own configuration (or add `AWS_ENDPOINT_URL` yourself). Also remove
    /// [`ENV_TO_REMOVE`] from the child, or use [`configure`](Self::configure), which does
    /// both.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
            ("AWS_CONFIG_FILE", "/dev/null".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".to_owned()),
        ]
    }

    /// Removes [`ENV_TO_REMOVE`] from `command` and sets [`env`](Self::env) on it.
    pub fn configure<'c>(&self, command: &'c mut Command) -> &'c mut Command {
        for name in ENV_TO_REMOVE {
            command.env_remove(name);
        }
        command.envs(self.env())
    }

    /// An AWS configuration with the fake credentials, [`REGION`] and this server as the
    /// endpoint, for direct SDK checks: `aws_sdk_secretsmanager::Client::new(&sdk)`.
    pub async fn sdk_config(&self) -> SdkConfig {
        let base = fake_sdk_config().await;
        base.into_builder().endpoint_url(self.url.clone()).build()
    }

    /// Forgets every secret, key and role the server holds: moto's `POST /moto-api/reset`
    /// (LocalStack's `POST /_localstack/state/reset` under `testcontainers`). Panics when the
    /// server refuses.
    ///
    /// Every test of the binary shares [`shared`](Self::shared), so only reset a server of
    /// your own ([`start`](Self::start)), or one no other test uses at the same time.
    pub fn reset(&self) {
        let path = match self.backend {
            Backend::Process(_) => "/moto-api/reset",
            #[cfg(feature = "testcontainers")]
            Backend::Container(_) => "/_localstack/state/reset",
        };
        let status = http_status(self.addr, "POST", path);
        assert!(
            status.is_some_and(|status| (200..300).contains(&status)),
            "POST {path} on {}: {}",
            self.url,
            status.map_or("no answer".to_owned(), |s| format!("HTTP {s}"))
        );
    }

    /// The server's output so far (its log file, or the container's stdout and stderr).
    pub fn log(&self) -> String {
        self.backend.log()
    }

    /// Stops the server and waits until it has exited; afterwards nothing listens at
    /// [`url`](Self::url). Stopping twice does nothing.
    ///
    /// Under `testcontainers` this is `docker stop`; the container is removed when the
    /// handle is dropped.
    pub fn stop(&self) {
        self.backend.stop()
    }
}
