//! Prometheus metrics of runs and daemon passes, in the text exposition format (0.0.4, what
//! node_exporter's textfile collector and the Pushgateway read), through the `prometheus`
//! crate. The same set is written by `run --metrics-file` (for
//! node_exporter's textfile collector), pushed by `run --pushgateway`, and served by the
//! daemon's `/metrics`; `docs/metrics.md` documents every family and a test keeps the two in
//! step. Labels hold integration, store, outcome, state, slot and credential names only,
//! never a secret.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use jiff::Timestamp;
use prometheus::{Gauge, GaugeVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry};
use rotator_core::engine::{Health, Integration, Outcome, Report};
use url::Url;

/// What one run (or daemon pass) was, besides its reports.
#[derive(Clone, Copy, Debug)]
pub struct RunInfo {
    /// When it started.
    pub started: Timestamp,
    /// How long it took.
    pub duration: Duration,
    /// The exit code it ends (or, in the daemon, would end) with.
    pub exit_code: u8,
}

/// The metrics of a process: counters accumulate over passes (the daemon), gauges show the
/// last one. A batch run records one pass.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    info: IntGaugeVec,
    access_expiry: GaugeVec,
    refresh_expiry: GaugeVec,
    last_success: GaugeVec,
    outcome: IntGaugeVec,
    outcomes_total: IntCounterVec,
    state: IntGaugeVec,
    regenerations_total: IntCounterVec,
    run_start: Gauge,
    run_duration: Gauge,
    run_integrations: IntGaugeVec,
    run_exit_code: IntGauge,
    /// Last successes seen by this process, carried across passes.
    successes: BTreeMap<String, Timestamp>,
    /// The `credential` and `state_store` labels of each integration's info series.
    info_labels: BTreeMap<String, (String, String)>,
}

fn seconds(t: Timestamp) -> f64 {
    t.as_millisecond() as f64 / 1000.0
}

/// Registers a collector; the names are constants, so a failure is a bug.
fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: C,
) -> C {
    registry
        .register(Box::new(collector.clone()))
        .expect("metric names and labels are valid and unique");
    collector
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics with every family registered.
    pub fn new() -> Self {
        let registry = Registry::new();
        let int_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntGaugeVec::new(Opts::new(name, help), labels).expect("valid"),
            )
        };
        let float_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                GaugeVec::new(Opts::new(name, help), labels).expect("valid"),
            )
        };
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            register(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid"),
            )
        };
        let metrics = Self {
            info: int_vec(
                "alation_rotator_integration_info",
                "One series per integration handled: its credential kind and state store",
                &["integration", "credential", "state_store"],
            ),
            access_expiry: float_vec(
                "alation_rotator_access_token_expiry_timestamp_seconds",
                "When the access token now in the integration's destinations expires (the earliest)",
                &["integration"],
            ),
            refresh_expiry: float_vec(
                "alation_rotator_refresh_token_expiry_timestamp_seconds",
                "When each stored refresh token expires (slot primary or standby)",
                &["integration", "slot"],
            ),
            last_success: float_vec(
                "alation_rotator_last_success_timestamp_seconds",
                "When the integration last ended a run fresh or rotated",
                &["integration"],
            ),
            outcome: int_vec(
                "alation_rotator_integration_outcome",
                "The integration's outcome in the last run, one series per outcome",
                &["integration", "outcome"],
            ),
            outcomes_total: counter_vec(
                "alation_rotator_integration_outcomes_total",
                "Outcomes counted (per run for batch runs; accumulated by the daemon)",
                &["integration", "outcome"],
            ),
            state: int_vec(
                "alation_rotator_integration_state",
                "The integration's health, one series per state",
                &["integration", "state"],
            ),
            regenerations_total: counter_vec(
                "alation_rotator_refresh_token_regenerations_total",
                "Refresh-token regenerations done",
                &["integration"],
            ),
            run_start: register(
                &registry,
                Gauge::new(
                    "alation_rotator_run_start_timestamp_seconds",
                    "When the run (or daemon pass) started",
                )
                .expect("valid"),
            ),
            run_duration: register(
                &registry,
                Gauge::new(
                    "alation_rotator_run_duration_seconds",
                    "How long the run (or daemon pass) took",
                )
                .expect("valid"),
            ),
            run_integrations: int_vec(
                "alation_rotator_run_integrations",
                "Integrations by outcome in the run (or daemon pass)",
                &["outcome"],
            ),
            run_exit_code: register(
                &registry,
                IntGauge::new(
                    "alation_rotator_run_exit_code",
                    "The run's exit code: 0 ok, 1 an integration failed or was not reached, 2 usage or configuration error",
                )
                .expect("valid"),
            ),
            successes: BTreeMap::new(),
            info_labels: BTreeMap::new(),
            registry,
        };
        let build = IntGaugeVec::new(
            Opts::new(
                "alation_rotator_build_info",
                "The version of alation-rotator (always 1)",
            ),
            &["version"],
        )
        .expect("valid");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        register(&metrics.registry, build);
        metrics
    }

    /// Records a run or pass that could not start (a configuration error, exit 2): only the
    /// per-run metrics.
    pub fn record_failed_start(&mut self, run: RunInfo) {
        self.record_run(run, &[]);
    }

    fn record_run(&mut self, run: RunInfo, reports: &[Report]) {
        self.run_start.set(seconds(run.started));
        self.run_duration.set(run.duration.as_secs_f64());
        self.run_exit_code.set(i64::from(run.exit_code));
        self.run_integrations.reset();
        for name in Outcome::NAMES {
            let count = reports.iter().filter(|r| r.outcome.name() == name).count();
            self.run_integrations
                .with_label_values(&[name])
                .set(count as i64);
        }
    }

    /// Removes an integration's gauges (its counters stay).
    fn forget_gauges(&mut self, name: &str) {
        // Removing a series that was never set is not an error worth reporting.
        let _ = self.access_expiry.remove_label_values(&[name]);
        let _ = self.last_success.remove_label_values(&[name]);
        for slot in ["primary", "standby"] {
            let _ = self.refresh_expiry.remove_label_values(&[name, slot]);
        }
        for outcome in Outcome::NAMES {
            let _ = self.outcome.remove_label_values(&[name, outcome]);
        }
        for state in Health::ALL {
            let _ = self.state.remove_label_values(&[name, state.name()]);
        }
        if let Some((credential, store)) = self.info_labels.remove(name) {
            let _ = self.info.remove_label_values(&[name, &credential, &store]);
        }
    }

    /// Drops every series of the integrations not in `names` (the daemon, after a reload
    /// removed them); the others keep their gauges and counters.
    pub fn retain(&mut self, names: &[&str]) {
        let gone: Vec<String> = self
            .info_labels
            .keys()
            .chain(self.successes.keys())
            .filter(|name| !names.contains(&name.as_str()))
            .cloned()
            .collect();
        for name in gone {
            self.forget_gauges(&name);
            self.successes.remove(&name);
            for outcome in Outcome::NAMES {
                let _ = self.outcomes_total.remove_label_values(&[&name, outcome]);
            }
            let _ = self.regenerations_total.remove_label_values(&[&name]);
        }
    }

    /// Records a run or daemon pass over `integrations` (in the order of `reports`). The
    /// gauges of integrations not in this pass keep their last values.
    pub fn record(&mut self, run: RunInfo, integrations: &[Integration], reports: &[Report]) {
        self.record_run(run, reports);
        for (integration, report) in integrations.iter().zip(reports) {
            let name = integration.name.as_str();
            self.forget_gauges(name);
            self.info
                .with_label_values(&[name, report.credential.name(), &integration.state.store])
                .set(1);
            self.info_labels.insert(
                name.to_owned(),
                (
                    report.credential.name().to_owned(),
                    integration.state.store.clone(),
                ),
            );
            if let Some(t) = report.access_expires_at {
                self.access_expiry
                    .with_label_values(&[name])
                    .set(seconds(t));
            }
            for (slot, expires) in [
                ("primary", report.refresh_expires_at),
                ("standby", report.standby_expires_at),
            ] {
                if let Some(t) = expires {
                    self.refresh_expiry
                        .with_label_values(&[name, slot])
                        .set(seconds(t));
                }
            }
            if matches!(report.outcome, Outcome::Fresh | Outcome::Rotated) {
                self.successes.insert(name.to_owned(), run.started);
            }
            if let Some(t) = self
                .successes
                .get(name)
                .copied()
                .or(report.access_created_at)
            {
                self.last_success.with_label_values(&[name]).set(seconds(t));
            }
            for outcome in Outcome::NAMES {
                let happened = report.outcome.name() == outcome;
                self.outcome
                    .with_label_values(&[name, outcome])
                    .set(i64::from(happened));
                let counter = self.outcomes_total.with_label_values(&[name, outcome]);
                if happened {
                    counter.inc();
                }
            }
            let health = report.health();
            for state in Health::ALL {
                self.state
                    .with_label_values(&[name, state.name()])
                    .set(i64::from(state == health));
            }
            let regenerations = self.regenerations_total.with_label_values(&[name]);
            if report.regenerated.is_some() {
                regenerations.inc();
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .expect("the text encoder writes to a String")
    }

    /// Writes the exposition to `path` atomically (a temporary file in the same directory,
    /// fsync, rename), mode 0644: node_exporter's textfile collector must be able to read it,
    /// and it holds no secret.
    pub fn write_textfile(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let directory = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut temp = tempfile::Builder::new()
            .prefix(".alation-rotator-metrics.")
            .permissions(std::fs::Permissions::from_mode(0o644))
            .tempfile_in(directory)?;
        temp.write_all(self.render().as_bytes())?;
        temp.as_file().sync_all()?;
        temp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Pushes the exposition to a Pushgateway, replacing the group
    /// `job="alation-rotator"` (plus `instance` when given). Never follows a redirect; the
    /// error never shows credentials from the URL.
    pub async fn push(
        &self,
        gateway: &Url,
        instance: Option<&str>,
        timeout: Duration,
    ) -> Result<(), String> {
        let mut shown = gateway.clone();
        let _ = shown.set_username("");
        let _ = shown.set_password(None);
        let mut url = gateway.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|_| format!("{shown} cannot be a Pushgateway URL"))?;
            path.pop_if_empty()
                .extend(["metrics", "job", "alation-rotator"]);
            if let Some(instance) = instance {
                if instance.contains('/') || instance.is_empty() {
                    use base64::Engine as _;
                    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(instance.as_bytes());
                    path.extend(["instance@base64", &encoded]);
                } else {
                    path.extend(["instance", instance]);
                }
            }
        }
        let mut request = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot set up an HTTP client: {e}"))?
            .put(url.clone())
            .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
            .body(self.render());
        if !gateway.username().is_empty() {
            let password = gateway.password().map(str::to_owned);
            request = request.basic_auth(gateway.username(), password);
        }
        let response = request.send().await.map_err(|e| {
            format!(
                "could not reach the Pushgateway at {shown}: {}",
                without_url(&e)
            )
        })?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(format!(
                "the Pushgateway at {shown} answered {}",
                response.status()
            ))
        }
    }
}

/// A reqwest error's text without the URL it carries (which may hold credentials).
fn without_url(error: &reqwest::Error) -> String {
    let mut error_kind = String::from(if error.is_connect() {
        "connection failed"
    } else if error.is_timeout() {
        "timed out"
    } else {
        "request failed"
    });
    if let Some(source) = std::error::Error::source(error) {
        error_kind.push_str(&format!(" ({source})"));
    }
    error_kind
}
