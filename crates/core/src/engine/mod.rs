//! The rotation engine: per integration and per run, decide whether the access token is
//! fresh; if not, make sure the credential is healthy (regenerating a refresh token when it
//! nears expiry), issue a new access token, and write it to every destination with
//! compare-and-set.
//!
//! The engine talks to a [`TokenSource`] and to [`TokenSink`]s only. Its jobs live in
//! modules named for them:
//! - `plan`: what is stale and why (timestamps, generations, validation);
//! - `regenerate`: the regeneration protocol (preflight, intent record and lease, one
//!   regeneration in flight per process, no blind retries, escrow of the raw answer, holding
//!   on until the new token is stored) and the standby refresh token;
//! - `recover`: escrow recovery and settling regenerations that another run left unfinished;
//! - `deliver`: issuing, writing, reading back, and conflicts with other writers;
//! - `bootstrap`: storing a first credential, and `revoke`;
//! - `escrow`: the local files;
//! - `report`: what a run says.
//!
//! Integrations run concurrently up to a bound and independently: one failure never stops
//! the others. A [`CancellationToken`] stops a run from starting new work (a signal, a
//! deadline) while work in flight finishes.

mod bootstrap;
mod deliver;
pub mod escrow;
mod gate;
pub mod hooks;
mod pass;
mod plan;
mod recover;
mod regenerate;
mod report;
#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::ExponentialBuilder;
use futures::stream::{self, Stream, StreamExt};
use tokio::sync::Semaphore;
use tracing::Instrument;

pub use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::policy::Policy;
use crate::sink::TokenSink;
use crate::source::{CredentialKind, TokenSource};
pub use bootstrap::BootstrapCredential;
pub use escrow::{Escrow, EscrowError, EscrowIdentity};
pub use hooks::{Checkpoint, Hooks, NoHooks};
use pass::Pass;
pub use report::{DestinationReport, Failure, Health, Outcome, Report};

/// A place a document is kept: a configured store and a key in it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Location {
    /// The store's name in the configuration.
    pub store: String,
    /// The key inside the store.
    pub key: String,
    /// The store.
    pub sink: Arc<dyn TokenSink>,
    /// Whether a secret not written by the rotator may be overwritten.
    pub takeover: bool,
}

impl Location {
    /// A location in `sink`, named `store` in the configuration.
    pub fn new(store: impl Into<String>, key: impl Into<String>, sink: Arc<dyn TokenSink>) -> Self {
        Self {
            store: store.into(),
            key: key.into(),
            sink,
            takeover: false,
        }
    }

    /// Allows overwriting a secret the rotator did not write.
    pub fn with_takeover(mut self, takeover: bool) -> Self {
        self.takeover = takeover;
        self
    }

    /// `store:key`, for messages.
    pub fn label(&self) -> String {
        format!("{}:{}", self.store, self.key)
    }
}

/// One consumer of Alation's API with its own credential.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Integration {
    /// Unique name.
    pub name: String,
    /// The Alation user the tokens belong to (refresh tokens; optional for OAuth clients).
    pub user_id: Option<i64>,
    /// Where the credential (refresh-token or OAuth client document) lives.
    pub state: Location,
    /// Where the access-token document is delivered.
    pub access_token: Vec<Location>,
    /// Renewal rules.
    pub policy: Policy,
    /// What issues its tokens.
    pub source: Arc<dyn TokenSource>,
}

impl Integration {
    /// An integration with one destination and the default policy.
    pub fn new(
        name: impl Into<String>,
        user_id: Option<i64>,
        state: Location,
        access_token: Vec<Location>,
        source: Arc<dyn TokenSource>,
    ) -> Self {
        Self {
            name: name.into(),
            user_id,
            state,
            access_token,
            policy: Policy::default(),
            source,
        }
    }

    /// Sets the renewal rules.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The kind of credential its source takes.
    pub fn credential_kind(&self) -> CredentialKind {
        self.source.capabilities().kind
    }

    /// Who its escrowed tokens belong to.
    pub fn escrow_identity(&self) -> EscrowIdentity {
        EscrowIdentity {
            integration: self.name.clone(),
            base_url: self.source.base_url(),
            user_id: self.user_id.unwrap_or_default(),
            store: self.state.store.clone(),
            key: self.state.key.clone(),
        }
    }
}

/// How a run behaves.
#[derive(Clone, Copy, Debug, Default)]
#[non_exhaustive]
pub struct RunOptions {
    /// Decide and report, but write nothing and change nothing at Alation (read-only checks
    /// that `verify_credential` asks for still happen).
    pub dry_run: bool,
    /// Issue a new access token even where the current one is fresh.
    pub force: bool,
    /// Ask the source (read-only) whether the stored credential still works; `status` uses
    /// it to tell "needs bootstrap" and "lost during regeneration" apart.
    pub verify_credential: bool,
}

impl RunOptions {
    /// A normal run.
    pub fn run() -> Self {
        Self::default()
    }

    /// With `dry_run` set.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// With `force` set.
    pub fn force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// With `verify_credential` set.
    pub fn verify_credential(mut self, verify: bool) -> Self {
        self.verify_credential = verify;
        self
    }
}

/// Timing of the regeneration protocol.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RegenerationSettings {
    /// How long a regenerated token is held in memory while escrow and the state location are
    /// tried again, before the run gives up on storing it (default 5 minutes).
    pub persist_deadline: Duration,
    /// How long an intent record counts as a live lease of its runner (default 10 minutes).
    pub lease: Duration,
    /// How long a second runner waits for a live lease to end before it reports "another
    /// runner is regenerating" (default 30 seconds).
    pub lease_wait: Duration,
    /// How often the regeneration request is sent in all, when each earlier attempt was
    /// ambiguous and the old token still worked afterwards (default 3).
    pub attempts: u32,
}

impl Default for RegenerationSettings {
    fn default() -> Self {
        Self {
            persist_deadline: Duration::from_secs(300),
            lease: Duration::from_secs(600),
            lease_wait: Duration::from_secs(30),
            attempts: 3,
        }
    }
}

/// Runs rotations.
#[derive(Debug, Clone)]
pub struct Engine {
    clock: Arc<dyn Clock>,
    max_concurrency: usize,
    escrow: Option<Escrow>,
    store_retry: ExponentialBuilder,
    regeneration: RegenerationSettings,
    /// At most `max_concurrency` calls to token sources in flight.
    source_gate: Arc<Semaphore>,
    /// One regeneration in flight per process, whatever `max_concurrency` is: a kill then
    /// costs at most one refresh token.
    regen_gate: Arc<Semaphore>,
    /// Regenerations whose new token may exist only in this process's memory.
    unsaved: Arc<AtomicUsize>,
    shutdown: CancellationToken,
    hooks: Arc<dyn Hooks>,
    runner_id: String,
}

impl Engine {
    /// An engine that reads time from `clock`, with no escrow, no hooks and a shutdown token
    /// of its own.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            max_concurrency: 8,
            source_gate: Arc::new(Semaphore::new(8)),
            escrow: None,
            store_retry: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(4)
                .with_jitter(),
            regeneration: RegenerationSettings::default(),
            regen_gate: Arc::new(Semaphore::new(1)),
            unsaved: Arc::new(AtomicUsize::new(0)),
            shutdown: CancellationToken::new(),
            hooks: Arc::new(NoHooks),
            runner_id: runner_id(),
        }
    }

    /// How many calls to token sources (Alation) are in flight at once (at least one). Up to
    /// twice as many integrations run at once, so that their store reads and writes overlap
    /// with those calls. Regenerations are still one at a time.
    pub fn with_max_concurrency(mut self, max: usize) -> Self {
        self.max_concurrency = max.max(1);
        self.source_gate = Arc::new(Semaphore::new(self.max_concurrency));
        self
    }

    /// The local escrow. Without one, refresh tokens are never regenerated (there would be no
    /// safe place for the new one).
    pub fn with_escrow(mut self, escrow: Escrow) -> Self {
        self.escrow = Some(escrow);
        self
    }

    /// How writes to stores are retried when the store is unavailable.
    pub fn with_store_retry(mut self, retry: ExponentialBuilder) -> Self {
        self.store_retry = retry;
        self
    }

    /// Timing of the regeneration protocol.
    pub fn with_regeneration(mut self, settings: RegenerationSettings) -> Self {
        self.regeneration = settings;
        self
    }

    /// The token that stops the engine from starting new work. Cancelling it lets work in
    /// flight finish, including storing any regenerated refresh token.
    pub fn with_shutdown(mut self, shutdown: CancellationToken) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// Named points the engine reports as it passes them (crash tests stop there).
    pub fn with_hooks(mut self, hooks: Arc<dyn Hooks>) -> Self {
        self.hooks = hooks;
        self
    }

    /// This engine's name in intent records (host, process id, random suffix).
    pub fn runner_id(&self) -> &str {
        &self.runner_id
    }

    /// How many regenerations have a new refresh token that may exist only in this process
    /// (the request is in flight, or the token is not yet in escrow or its state location).
    /// A process must not exit while this is above zero.
    pub fn unsaved_tokens(&self) -> usize {
        self.unsaved.load(Ordering::SeqCst)
    }

    /// Waits until [`Engine::unsaved_tokens`] is zero.
    pub async fn tokens_saved(&self) {
        while self.unsaved_tokens() > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn stopping(&self) -> bool {
        self.shutdown.is_cancelled()
    }

    /// Waits until a call to the token source could start now. New work (a mint, a
    /// regeneration) waits here before it checks [`Engine::stopping`], so that a stop that
    /// comes while it queues for Alation starts nothing new.
    async fn wait_for_source_slot(&self) {
        drop(
            self.source_gate
                .acquire()
                .await
                .expect("the engine never closes its gate"),
        );
    }

    /// One pass over `integrations`, with at most `max_concurrency` calls to token sources in
    /// flight. Reports come back in the order of `integrations`.
    pub async fn run(&self, integrations: &[Integration], options: RunOptions) -> Vec<Report> {
        let mut reports: Vec<(usize, Report)> =
            self.run_stream(integrations, options).collect().await;
        reports.sort_by_key(|(index, _)| *index);
        reports.into_iter().map(|(_, report)| report).collect()
    }

    /// Like [`Engine::run`], yielding each report (with the integration's index) as soon as
    /// it is done, so a caller that must stop early knows which integrations finished.
    pub fn run_stream<'a>(
        &'a self,
        integrations: &'a [Integration],
        options: RunOptions,
    ) -> impl Stream<Item = (usize, Report)> + 'a {
        stream::iter(integrations.iter().enumerate())
            .map(move |(index, integration)| {
                let span = tracing::info_span!("integration", integration = %integration.name);
                let gated = Integration {
                    source: Arc::new(gate::GatedSource {
                        inner: Arc::clone(&integration.source),
                        gate: Arc::clone(&self.source_gate),
                    }),
                    ..integration.clone()
                };
                async move { (index, self.run_one(&gated, options).await) }.instrument(span)
            })
            .buffer_unordered(self.max_concurrency.saturating_mul(2))
    }

    /// One pass over a single integration.
    pub async fn run_one(&self, integration: &Integration, options: RunOptions) -> Report {
        Pass::new(self, integration, options).execute().await
    }

    /// Reads every integration's stored documents and escrow and writes nothing. With
    /// `verify_credential`, asks the source whether each stored credential still works
    /// (read-only); without it, contacts nothing but the stores.
    pub async fn status(
        &self,
        integrations: &[Integration],
        verify_credential: bool,
    ) -> Vec<Report> {
        self.run(
            integrations,
            RunOptions::run()
                .dry_run(true)
                .verify_credential(verify_credential),
        )
        .await
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".to_owned())
}

/// Host name, process id and a random suffix: unique per process, readable in messages.
fn runner_id() -> String {
    format!(
        "{}:{}:{:04x}",
        host_name(),
        std::process::id(),
        rand::random::<u16>()
    )
}

/// Whether the runner named in an intent record may still be at work: always, unless it ran
/// on this host and its process is gone (a crash or kill on the same machine, the common case
/// for a CronJob or timer that runs again after a failure).
fn runner_may_be_alive(runner: &str) -> bool {
    let mut parts = runner.rsplitn(3, ':');
    let (_suffix, pid, host) = (parts.next(), parts.next(), parts.next());
    match (host, pid.and_then(|p| p.parse::<u32>().ok())) {
        (Some(host), Some(pid)) if host == host_name() => {
            pid != std::process::id() && std::path::Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => true,
    }
}
