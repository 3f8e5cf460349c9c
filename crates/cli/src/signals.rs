//! Graceful termination. SIGTERM (what Kubernetes, systemd and ECS send first) and SIGINT
//! stop a command from starting new work; work in flight finishes, including storing any
//! replaced refresh token. After `[policy] shutdown_grace`, or at a second signal, the process
//! exits anyway, but never while a regenerated refresh token exists only in its memory.
//! A run's deadline (`[policy] run_deadline`) stops it the same way.

use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use rotator_core::engine::{CancellationToken, Engine, Integration, Outcome, Report, RunOptions};
use tokio::sync::Notify;
use tracing::warn;

/// The stop signal of one command.
#[derive(Clone)]
pub struct Stop {
    /// Cancelled at the first signal or the deadline.
    pub token: CancellationToken,
    second: Arc<Notify>,
    reason: Arc<Mutex<Option<String>>>,
}

impl Stop {
    /// Watches SIGTERM and SIGINT (and the deadline, if any) from now on.
    pub fn watch(deadline: Option<Duration>) -> Self {
        let stop = Self {
            token: CancellationToken::new(),
            second: Arc::new(Notify::new()),
            reason: Arc::new(Mutex::new(None)),
        };
        let watcher = stop.clone();
        tokio::spawn(async move { watcher.listen(deadline).await });
        stop
    }

    fn stop(&self, reason: String) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            warn!(%reason, "stopping: starting nothing new, finishing what is in flight");
            *slot = Some(reason);
        }
        self.token.cancel();
    }

    async fn listen(&self, deadline: Option<Duration>) {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            warn!("cannot watch SIGTERM and SIGINT; a signal will end the process at once");
            return;
        };
        let deadline = async {
            match deadline {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        let mut deadline = pin!(deadline);
        let mut deadline_passed = false;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                () = &mut deadline, if !deadline_passed => {
                    deadline_passed = true;
                    self.stop("the run reached its deadline (policy.run_deadline)".into());
                    continue;
                }
            };
            if self.token.is_cancelled() {
                warn!(signal = name, "second signal: exiting once no regenerated refresh token is held in memory only");
                self.second.notify_waiters();
                self.second.notify_one();
            } else {
                self.stop(format!("{name} received"));
            }
        }
    }

    /// Why the command was stopped, if it was.
    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Resolves once the command must give up on work in flight: `grace` after the stop, or
    /// at a second signal.
    async fn forced(&self, grace: Duration) {
        self.token.cancelled().await;
        tokio::select! {
            () = tokio::time::sleep(grace) => {}
            () = self.second.notified() => {}
        }
    }
}

/// Runs the engine over `integrations` until it is done or `stop` forces an end. In the
/// latter case the engine's work goes on in the background until no regenerated token is
/// held in memory only; integrations it did not finish are reported as not reached.
pub async fn run(
    engine: &Engine,
    integrations: &[Integration],
    options: RunOptions,
    stop: &Stop,
    grace: Duration,
) -> Vec<Report> {
    let engine = engine.clone().with_shutdown(stop.token.clone());
    let slots: Arc<Mutex<Vec<Option<Report>>>> =
        Arc::new(Mutex::new(integrations.iter().map(|_| None).collect()));
    let mut work = tokio::spawn({
        let (engine, integrations, slots) = (engine.clone(), integrations.to_vec(), slots.clone());
        async move {
            let mut reports = pin!(engine.run_stream(&integrations, options));
            while let Some((index, report)) = reports.next().await {
                slots.lock().unwrap_or_else(|e| e.into_inner())[index] = Some(report);
            }
        }
    });
    let forced = tokio::select! {
        _ = &mut work => false,
        () = stop.forced(grace) => true,
    };
    if forced && engine.unsaved_tokens() > 0 {
        warn!("waiting for a regenerated refresh token to reach escrow before exiting");
        engine.tokens_saved().await;
    }
    let reason = stop.reason().unwrap_or_default();
    let mut slots = slots.lock().unwrap_or_else(|e| e.into_inner());
    integrations
        .iter()
        .zip(slots.iter_mut())
        .map(|(integration, slot)| match slot.take() {
            Some(mut report) => {
                if let Outcome::NotReached { reason: why } = &mut report.outcome {
                    *why = format!("not started: {reason}");
                }
                report
            }
            None => Report::unfinished(
                &integration.name,
                integration.credential_kind(),
                format!(
                    "{reason}; its work was still in flight when the shutdown grace period ended"
                ),
            ),
        })
        .collect()
}
