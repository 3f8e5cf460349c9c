//! `alation-rotator daemon`: a long-running process that renews each access token just before
//! it is due, for tokens that live minutes (OAuth clients) where a schedule of every 30
//! minutes cannot keep up.
//!
//! Each integration has its own next due time: when its access token enters its renewal window
//! (taken from the token's own timestamps), brought forward by a little jitter and by how long
//! the last pass took, never sooner than `--min-interval` and never later than
//! `--max-interval`. A failure backs that integration off (doubling from `--min-interval` up to
//! `--max-backoff`) without touching the others. The process serves `/metrics` (the same set
//! as `run --metrics-file`), `/healthz` (alive) and `/readyz` (the last pass of every
//! integration succeeded); SIGHUP reloads the configuration (a bad one is refused and the old
//! one kept); SIGTERM and SIGINT stop it as they stop `run`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use jiff::{SignedDuration, Timestamp};
use rotator_core::engine::{Integration, Outcome, Report, RunOptions};
use rotator_core::{Clock, Shard};
use tracing::{error, info, warn};

use crate::cli::DaemonArgs;
use crate::config::Config;
use crate::metrics::{Metrics, RunInfo};
use crate::registry::Registry;
use crate::setup::{self, Setup, UsageError, EXIT_OK};
use crate::signals::Stop;

/// How the daemon waits; tests move clocks instead of sleeping. A reload or a stop ends the
/// wait early: the daemon's loop races the sleep against them.
#[async_trait::async_trait]
pub trait Sleeper: Send + Sync {
    /// Waits `duration`.
    async fn sleep(&self, duration: Duration);
}

/// Real time.
struct RealTime;

#[async_trait::async_trait]
impl Sleeper for RealTime {
    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// When each integration is next due, and how often it failed in a row.
#[derive(Debug, Default)]
struct Schedule {
    next: BTreeMap<String, Timestamp>,
    failures: BTreeMap<String, u32>,
}

/// The daemon's timing rules.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The shortest sleep.
    pub min_interval: Duration,
    /// The longest sleep.
    pub max_interval: Duration,
    /// The longest back-off after failures.
    pub max_backoff: Duration,
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

impl Schedule {
    /// The integrations due by `horizon` (all of them at first): those due a little later
    /// join this pass rather than waking the daemon again moments from now.
    fn due(&self, integrations: &[Integration], horizon: Timestamp) -> Vec<Integration> {
        integrations
            .iter()
            .filter(|i| self.next.get(&i.name).is_none_or(|t| *t <= horizon))
            .cloned()
            .collect::<Vec<_>>()
    }

    /// Plans the next pass of each integration that just ran.
    fn plan(
        &mut self,
        integration: &Integration,
        report: &Report,
        now: Timestamp,
        pass: Duration,
        timing: Timing,
    ) {
        let floor = now + signed(timing.min_interval);
        let ceiling = now + signed(timing.max_interval);
        let next = if report.is_failure() {
            let failures = self.failures.entry(integration.name.clone()).or_default();
            *failures += 1;
            let backoff = timing
                .min_interval
                .saturating_mul(1 << (*failures - 1).min(16))
                .min(timing.max_backoff);
            now + signed(backoff)
        } else {
            self.failures.remove(&integration.name);
            match (report.access_created_at, report.access_expires_at) {
                (Some(created), Some(expires)) => {
                    let threshold = integration
                        .policy
                        .access_renew_before
                        .threshold(created, expires);
                    let due = expires - threshold;
                    // Renew a little early, never late: up to a tenth of the time left (at most
                    // 30 s) of jitter, and the time the last pass took.
                    let left = due.duration_since(now).max(SignedDuration::ZERO);
                    let spread = (left / 10).min(SignedDuration::from_secs(30));
                    let jitter = spread.mul_f64(rand::random::<f64>());
                    due - jitter - signed(pass)
                }
                _ => ceiling,
            }
        };
        self.next.insert(
            integration.name.clone(),
            next.clamp(floor.min(ceiling), ceiling),
        );
    }

    /// Every integration has run and its last pass succeeded.
    fn ready(&self, integrations: &[Integration]) -> bool {
        integrations
            .iter()
            .all(|i| self.next.contains_key(&i.name) && !self.failures.contains_key(&i.name))
    }

    /// Forgets the integrations a reload removed.
    fn retain(&mut self, integrations: &[Integration]) {
        let kept = |name: &String| integrations.iter().any(|i| &i.name == name);
        self.next.retain(|name, _| kept(name));
        self.failures.retain(|name, _| kept(name));
    }

    /// When the next pass should start.
    fn wake_at(&self) -> Option<Timestamp> {
        self.next.values().min().copied()
    }
}

/// What the HTTP endpoints read.
#[derive(Default)]
struct Shared {
    metrics: Mutex<Metrics>,
    /// Every integration's last pass succeeded.
    ready: AtomicBool,
}

/// Serves /metrics, /healthz and /readyz on `listener`.
fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route(
            "/metrics",
            get(|State(shared): State<Arc<Shared>>| async move {
                let text = shared
                    .metrics
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .render();
                (
                    [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
                    text,
                )
            }),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route(
            "/readyz",
            get(|State(shared): State<Arc<Shared>>| async move {
                if shared.ready.load(Ordering::SeqCst) {
                    (StatusCode::OK, "ready\n").into_response()
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: an integration failed its last pass (see /metrics and the logs)\n",
                    )
                        .into_response()
                }
            }),
        )
        .with_state(shared);
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, app).await {
            error!(%error, "the metrics and health server stopped");
        }
    });
}

/// A configuration and what was built from it.
struct Loaded {
    config: Config,
    setup: Setup,
    integrations: Vec<Integration>,
}

async fn load(
    path: &Path,
    registry: &Registry,
    shard: Shard,
    clock: &Arc<dyn Clock>,
) -> anyhow::Result<Loaded> {
    let config = Config::load(path, registry)?;
    let setup = Setup::build_with_clock(&config, Arc::clone(clock)).await?;
    let integrations = setup::select(&setup.integrations, &[], shard)?;
    Ok(Loaded {
        config,
        setup,
        integrations,
    })
}

/// Runs the daemon until SIGTERM or SIGINT; returns the exit code.
pub async fn run(
    path: PathBuf,
    registry: &Registry,
    args: &DaemonArgs,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<u8> {
    let shard = args
        .shard
        .resolve()
        .map_err(|e| UsageError(anyhow::anyhow!("--shard: {e}")))?;
    let loaded = load(&path, registry, shard, &clock).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| UsageError(anyhow::anyhow!("--listen {}: {e}", args.listen)))?;
    let local = listener.local_addr()?;
    let timing = Timing {
        min_interval: args.min_interval,
        max_interval: args.max_interval,
        max_backoff: args.max_backoff,
    };
    let stop = Stop::watch(None);
    let reload = Arc::new(tokio::sync::Notify::new());
    watch_sighup(Arc::clone(&reload));
    info!(listen = %local, integrations = loaded.integrations.len(), "daemon started");
    let shared = Arc::new(Shared::default());
    serve(listener, Arc::clone(&shared));
    let daemon = Daemon {
        path,
        registry: registry.clone(),
        shard,
        clock,
        timing,
        stop,
        reload,
        shared,
    };
    daemon.run(loaded, &RealTime, local).await
}

/// The daemon's loop, with what it needs injected (tests give it their clock and sleeper).
struct Daemon {
    path: PathBuf,
    registry: Registry,
    shard: Shard,
    clock: Arc<dyn Clock>,
    timing: Timing,
    stop: Stop,
    reload: Arc<tokio::sync::Notify>,
    shared: Arc<Shared>,
}

impl Daemon {
    async fn run(
        &self,
        mut loaded: Loaded,
        sleeper: &dyn Sleeper,
        local: SocketAddr,
    ) -> anyhow::Result<u8> {
        let mut schedule = Schedule::default();
        loop {
            if self.stop.token.is_cancelled() {
                info!(listen = %local, "daemon stopped");
                return Ok(EXIT_OK);
            }
            let started = self.clock.now();
            let timer = std::time::Instant::now();
            let due = schedule.due(
                &loaded.integrations,
                started + signed(self.timing.min_interval),
            );
            if !due.is_empty() {
                let reports = crate::signals::run(
                    &loaded.setup.engine,
                    &due,
                    RunOptions::run(),
                    &self.stop,
                    loaded.config.policy.shutdown_grace,
                )
                .await;
                let pass = timer.elapsed();
                let now = self.clock.now();
                for (integration, report) in due.iter().zip(&reports) {
                    schedule.plan(integration, report, now, pass, self.timing);
                }
                let exit_code = u8::from(reports.iter().any(Report::is_failure));
                self.shared
                    .metrics
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .record(
                        RunInfo {
                            started,
                            duration: pass,
                            exit_code,
                        },
                        &due,
                        &reports,
                    );
                self.shared
                    .ready
                    .store(schedule.ready(&loaded.integrations), Ordering::SeqCst);
                let rotated = reports
                    .iter()
                    .filter(|r| matches!(r.outcome, Outcome::Rotated))
                    .count();
                info!(
                    due = due.len(),
                    rotated,
                    failed = exit_code,
                    "daemon pass done"
                );
            }
            let now = self.clock.now();
            let wake_at = schedule
                .wake_at()
                .unwrap_or(now + signed(self.timing.max_interval));
            let sleep = wake_at
                .duration_since(now)
                .clamp(SignedDuration::ZERO, signed(self.timing.max_interval));
            let sleep = Duration::try_from(sleep).unwrap_or(self.timing.min_interval);
            tokio::select! {
                () = sleeper.sleep(sleep) => {}
                () = self.stop.token.cancelled() => {}
                () = self.reload.notified() => {
                    match load(&self.path, &self.registry, self.shard, &self.clock).await {
                        Ok(new) => {
                            info!(integrations = new.integrations.len(), "configuration reloaded");
                            loaded = new;
                            schedule.retain(&loaded.integrations);
                            let names: Vec<&str> = loaded.integrations.iter().map(|i| i.name.as_str()).collect();
                            self.shared.metrics.lock().unwrap_or_else(|e| e.into_inner()).retain(&names);
                        }
                        Err(error) => {
                            error!(error = %setup::error_chain(&error), "the new configuration is refused; the old one stays in force");
                        }
                    }
                }
            }
        }
    }
}

/// Notifies `reload` at every SIGHUP.
fn watch_sighup(reload: Arc<tokio::sync::Notify>) {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::hangup()) {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    info!("SIGHUP: reloading the configuration");
                    reload.notify_one();
                }
            });
        }
        Err(error) => warn!(%error, "cannot watch SIGHUP; reloading needs a restart"),
    }
}

#[cfg(test)]
mod tests {
    //! The daemon over virtual time: its clock and the emulator's move together, by the
    //! daemon's own sleeps, while a consumer reads every destination each virtual second.

    use std::sync::atomic::AtomicI64;

    use alation_emulator::{Emulator, EmulatorConfig};
    use rotator_core::{AccessTokenDocument, TokenSinkExt};

    use super::*;

    /// System time plus an offset that only the sleeper moves (as the emulator's clock).
    #[derive(Debug)]
    struct OffsetClock(Arc<AtomicI64>);

    impl Clock for OffsetClock {
        fn now(&self) -> Timestamp {
            Timestamp::now() + SignedDuration::from_millis(self.0.load(Ordering::SeqCst))
        }
    }

    /// What the consumer saw.
    #[derive(Default)]
    struct Seen {
        reads: usize,
        expired: usize,
        min_left: Option<SignedDuration>,
        tokens: std::collections::BTreeSet<String>,
    }

    struct VirtualTime<'a> {
        offset: Arc<AtomicI64>,
        emulator: &'a Emulator,
        sink: rotator_sink_file::FileSink,
        names: Vec<String>,
        seen: Mutex<Seen>,
        until: SignedDuration,
        stop: rotator_core::engine::CancellationToken,
    }

    impl VirtualTime<'_> {
        async fn consume(&self) {
            for name in &self.names {
                let stored = self
                    .sink
                    .read_as::<AccessTokenDocument>(&format!("alation/{name}"))
                    .await
                    .unwrap()
                    .expect("a delivered token");
                let token = secrecy::ExposeSecret::expose_secret(&stored.document.api_access_token)
                    .to_owned();
                let left = stored
                    .document
                    .token_expires_at
                    .duration_since(self.emulator.now());
                let active = self.emulator.bearer_token_is_active(&token);
                let mut seen = self.seen.lock().unwrap();
                seen.reads += 1;
                if !active || left <= SignedDuration::ZERO {
                    seen.expired += 1;
                }
                seen.min_left = Some(seen.min_left.map_or(left, |m| m.min(left)));
                seen.tokens.insert(token);
            }
        }
    }

    #[async_trait::async_trait]
    impl Sleeper for VirtualTime<'_> {
        async fn sleep(&self, duration: Duration) {
            let mut left = duration;
            while !left.is_zero() {
                let step = left.min(Duration::from_secs(1));
                left -= step;
                self.emulator.advance_clock(step);
                self.offset
                    .fetch_add(step.as_millis() as i64, Ordering::SeqCst);
                self.consume().await;
                if SignedDuration::from_millis(self.offset.load(Ordering::SeqCst)) >= self.until {
                    self.stop.cancel();
                    return;
                }
            }
        }
    }

    /// Tokens of 30 s and 40 s (alternately), so passes run different integrations.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn twenty_short_lived_tokens_stay_fresh_for_five_minutes() {
        freshness(20, 5, Duration::ZERO).await;
    }

    /// Alation takes 4 s to issue each token (a sixth of its life): the daemon starts early
    /// enough that no consumer ever reads a dead one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn slow_answers_still_leave_no_expired_token() {
        freshness(3, 2, Duration::from_secs(4)).await;
        // In the test, min_interval is 1 s: integrations due within a second share a pass.
    }

    fn lifetime(integration: usize) -> Duration {
        Duration::from_secs(30 + 10 * (integration as u64 % 2))
    }

    async fn freshness(integrations: usize, minutes: i64, latency: Duration) {
        let emulator = Emulator::start(EmulatorConfig::default()).await.unwrap();
        if !latency.is_zero() {
            emulator.inject(
                alation_emulator::Fault::new(alation_emulator::FaultKind::Latency(latency))
                    .on(alation_emulator::endpoints::OAUTH_TOKEN),
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let mut text = format!(
            "[alation]\nbase_url = \"{}\"\n\n[escrow]\ndirectory = \"{}\"\n\n\
             [stores.local]\ntype = \"file\"\ndirectory = \"{}\"\n",
            emulator.base_url(),
            dir.path().join("escrow").display(),
            store.display()
        );
        let mut names = Vec::new();
        let mut clients = Vec::new();
        for i in 0..integrations {
            let name = format!("svc{i}");
            text.push_str(&format!(
                "\n[[integrations]]\nname = \"{name}\"\n\
                 oauth_client = {{ store = \"local\", key = \"state/{name}\" }}\n\
                 access_token = {{ store = \"local\", key = \"alation/{name}\" }}\n"
            ));
            clients.push(emulator.register_oauth_client(lifetime(i)));
            names.push(name);
        }
        let path = dir.path().join("alation-rotator.toml");
        std::fs::write(&path, text).unwrap();
        let registry = crate::App::new().registry;
        let offset = Arc::new(AtomicI64::new(0));
        let clock: Arc<dyn Clock> = Arc::new(OffsetClock(Arc::clone(&offset)));
        let loaded = load(&path, &registry, Shard::all(), &clock).await.unwrap();
        for (integration, (id, secret)) in loaded.integrations.iter().zip(&clients) {
            loaded
                .setup
                .engine
                .store_bootstrap(
                    integration,
                    rotator_core::engine::BootstrapCredential::OAuthClient {
                        client_id: id.clone(),
                        client_secret: secret.clone().into(),
                    },
                    rotator_core::Precondition::Absent,
                )
                .await
                .unwrap();
        }
        let stop = Stop::watch(None);
        let virtual_time = VirtualTime {
            offset: Arc::clone(&offset),
            emulator: &emulator,
            sink: rotator_sink_file::FileSink::new(rotator_sink_file::Config { directory: store })
                .unwrap(),
            names,
            seen: Mutex::default(),
            until: SignedDuration::from_mins(minutes),
            stop: stop.token.clone(),
        };
        let shared = Arc::new(Shared::default());
        let daemon = Daemon {
            path,
            registry,
            shard: Shard::all(),
            clock,
            timing: Timing {
                min_interval: Duration::from_secs(1),
                max_interval: Duration::from_secs(900),
                max_backoff: Duration::from_secs(60),
            },
            stop,
            reload: Arc::new(tokio::sync::Notify::new()),
            shared: Arc::clone(&shared),
        };
        let started = std::time::Instant::now();
        daemon
            .run(loaded, &virtual_time, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let seen = virtual_time.seen.lock().unwrap();
        let renewals = seen.tokens.len();
        let min_left = seen.min_left.unwrap();
        eprintln!(
            "daemon freshness: {integrations} integrations, 30 s and 40 s tokens, Alation latency \
             {latency:?}, {minutes} min of emulator time in {:?} of real time: {renewals} tokens \
             delivered, {} consumer reads, {} found an expired token, minimum remaining \
             lifetime seen {:.1} s",
            started.elapsed(),
            seen.reads,
            seen.expired,
            min_left.as_secs_f64()
        );
        assert_eq!(seen.expired, 0, "a consumer found an expired token");
        assert!(min_left > SignedDuration::from_secs(1), "{min_left:?}");
        let lifetimes: usize = (0..integrations)
            .map(|i| minutes as usize * 60 / lifetime(i).as_secs() as usize)
            .sum();
        assert!(
            renewals >= lifetimes,
            "{renewals} tokens: each integration is renewed at least once per lifetime ({lifetimes})"
        );
        assert!(seen.reads >= integrations * minutes as usize * 60 - integrations * 30);
        assert!(shared.ready.load(Ordering::SeqCst));
        let metrics = shared.metrics.lock().unwrap().render();
        assert!(metrics.contains("alation_rotator_integration_outcomes_total{integration=\"svc0\",outcome=\"rotated\"}"), "{metrics}");
        // Passes run only the integrations due; every integration keeps its gauges between
        // them, or alerts and dashboards would see gaps.
        for i in 0..integrations {
            for family in [
                "alation_rotator_access_token_expiry_timestamp_seconds",
                "alation_rotator_last_success_timestamp_seconds",
            ] {
                let series = format!("{family}{{integration=\"svc{i}\"}}");
                assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
            }
        }
    }
}
