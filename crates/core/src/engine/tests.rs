//! Unit tests of the engine over an in-memory token source, the in-memory sink and a manual
//! clock: no HTTP, no sleeping on the clock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};

use super::*;
use crate::clock::ManualClock;
use crate::document::{AccessTokenDocument, RefreshTokenDocument, Slot, TokenDocument};
use crate::memory::MemorySink;
use crate::policy::RenewBefore;
use crate::sink::{Precondition, TokenSinkExt};
use crate::source::{
    Credential, CredentialKind, CredentialStatus, IssuedToken, KeepRaw, RefreshGrant,
    SourceCapabilities, SourceError, TokenSource,
};

const DAY: i64 = 86_400;

/// What the next regeneration request does.
#[derive(Clone, Copy, Debug)]
enum Regen {
    /// Replace the token and answer.
    Normal,
    /// Replace the token, then lose the answer.
    CommitThenAmbiguous,
    /// Lose the request before it is carried out.
    AmbiguousWithoutCommit,
    /// Never reach the server.
    Unreachable,
    /// Replace the token and answer 2xx with a body the parser rejects but that holds it.
    BadAnswerHoldingToken,
    /// Replace the token and answer 2xx with a body that holds nothing usable.
    BadAnswerUnreadable,
}

#[derive(Debug)]
struct RefreshRecord {
    user_id: i64,
    created_at: Timestamp,
    expires_at: Timestamp,
    alive: bool,
}

#[derive(Debug)]
struct AccessRecord {
    parent: String,
    expires_at: Timestamp,
}

#[derive(Debug, Default)]
struct FakeState {
    refresh: HashMap<String, RefreshRecord>,
    access: HashMap<String, AccessRecord>,
    regen_plan: VecDeque<Regen>,
    regen_calls: usize,
    issue_calls: usize,
    next: u64,
}

/// An in-memory Alation: refresh tokens, access tokens, regeneration faults.
#[derive(Debug)]
struct FakeAlation {
    clock: ManualClock,
    state: Mutex<FakeState>,
    regen_supported: bool,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    regen_delay: Duration,
    issues_in_flight: AtomicUsize,
    max_issues_in_flight: AtomicUsize,
    issue_delay: Duration,
}

impl FakeAlation {
    fn new(clock: ManualClock) -> Self {
        Self {
            clock,
            state: Mutex::default(),
            regen_supported: true,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            regen_delay: Duration::ZERO,
            issues_in_flight: AtomicUsize::new(0),
            max_issues_in_flight: AtomicUsize::new(0),
            issue_delay: Duration::ZERO,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    fn create_refresh(&self, user_id: i64) -> RefreshGrant {
        let now = self.clock.now();
        let mut state = self.state();
        state.next += 1;
        let token = format!("rt-secret-{}", state.next);
        let expires_at = now + SignedDuration::from_secs(60 * DAY);
        state.refresh.insert(
            token.clone(),
            RefreshRecord {
                user_id,
                created_at: now,
                expires_at,
                alive: true,
            },
        );
        RefreshGrant::new(SecretString::from(token), user_id, "rt", now, expires_at)
    }

    fn revoke_refresh(&self, token: &str) {
        self.state().refresh.get_mut(token).unwrap().alive = false;
    }

    fn alive(&self, token: &str) -> bool {
        let now = self.clock.now();
        self.state()
            .refresh
            .get(token)
            .is_some_and(|r| r.alive && r.expires_at > now)
    }

    fn access_alive(&self, token: &str) -> bool {
        let parent = match self.state().access.get(token) {
            Some(a) if a.expires_at > self.clock.now() => a.parent.clone(),
            _ => return false,
        };
        self.alive(&parent)
    }

    fn plan(&self, regen: Regen) {
        self.state().regen_plan.push_back(regen);
    }

    fn regen_calls(&self) -> usize {
        self.state().regen_calls
    }

    fn live_token(&self, credential: &Credential) -> Result<String, SourceError> {
        let Credential::RefreshToken { refresh_token, .. } = credential else {
            return Err(SourceError::Unsupported {
                operation: "oauth",
                detail: "refresh tokens only".into(),
            });
        };
        let token = refresh_token.expose_secret().to_owned();
        if self.alive(&token) {
            Ok(token)
        } else {
            Err(SourceError::Expired {
                detail: "Refresh token provided is expired or revoked.".into(),
            })
        }
    }
}

#[async_trait]
impl TokenSource for FakeAlation {
    fn base_url(&self) -> String {
        "https://alation.test/".into()
    }

    fn capabilities(&self) -> SourceCapabilities {
        SourceCapabilities {
            regenerate: true,
            revoke: true,
            validate_access: true,
            ..SourceCapabilities::new(CredentialKind::RefreshToken)
        }
    }

    async fn issue(&self, credential: &Credential) -> Result<IssuedToken, SourceError> {
        if !self.issue_delay.is_zero() {
            let running = self.issues_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_issues_in_flight
                .fetch_max(running, Ordering::SeqCst);
            tokio::time::sleep(self.issue_delay).await;
            self.issues_in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let parent = self.live_token(credential)?;
        let now = self.clock.now();
        let mut state = self.state();
        state.issue_calls += 1;
        state.next += 1;
        let token = format!("at-secret-{}", state.next);
        let record = &state.refresh[&parent];
        let expires_at = (now + SignedDuration::from_hours(24)).min(record.expires_at);
        let user_id = record.user_id;
        state
            .access
            .insert(token.clone(), AccessRecord { parent, expires_at });
        Ok(IssuedToken::new(
            SecretString::from(token),
            Some(user_id),
            now,
            expires_at,
        ))
    }

    async fn check(&self, credential: &Credential) -> Result<CredentialStatus, SourceError> {
        let token = self.live_token(credential)?;
        let state = self.state();
        let record = &state.refresh[&token];
        Ok(CredentialStatus::new(
            Some(record.expires_at),
            Some(record.created_at),
            Some(record.user_id),
        ))
    }

    async fn validate_access(
        &self,
        _credential: &Credential,
        access_token: &SecretString,
    ) -> Result<(), SourceError> {
        if self.access_alive(access_token.expose_secret()) {
            Ok(())
        } else {
            Err(SourceError::Expired {
                detail: "API Access Token provided is expired or revoked.".into(),
            })
        }
    }

    async fn regenerate(
        &self,
        credential: &Credential,
        keep_raw: KeepRaw<'_>,
    ) -> Result<RefreshGrant, SourceError> {
        let running = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(running, Ordering::SeqCst);
        tokio::time::sleep(self.regen_delay).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if !self.regen_supported {
            return Err(SourceError::Unsupported {
                operation: "regenerate",
                detail: "this Alation does not offer regenRefreshToken".into(),
            });
        }
        let plan = {
            let mut state = self.state();
            state.regen_calls += 1;
            state.regen_plan.pop_front().unwrap_or(Regen::Normal)
        };
        let ambiguous = || SourceError::Ambiguous {
            detail: "the answer was lost".into(),
        };
        match plan {
            Regen::AmbiguousWithoutCommit => return Err(ambiguous()),
            Regen::Unreachable => {
                return Err(SourceError::Unreachable {
                    detail: "connection refused".into(),
                })
            }
            _ => {}
        }
        let old = self.live_token(credential)?;
        self.revoke_refresh(&old);
        let user_id = self.state().refresh[&old].user_id;
        let grant = self.create_refresh(user_id);
        let body = serde_json::json!({
            "refresh_token": grant.refresh_token.expose_secret(),
            "user_id": user_id,
            "name": "rt",
            "created_at": grant.created_at.to_string(),
            "token_expires_at": grant.expires_at.to_string(),
        });
        match plan {
            Regen::Normal => {
                keep_raw(body.to_string().as_bytes());
                Ok(grant)
            }
            Regen::CommitThenAmbiguous => Err(ambiguous()),
            Regen::BadAnswerHoldingToken => {
                keep_raw(
                    serde_json::json!({"refresh_token": grant.refresh_token.expose_secret()})
                        .to_string()
                        .as_bytes(),
                );
                Err(SourceError::BadAnswer {
                    detail: "field `created_at` is missing (keys seen: refresh_token)".into(),
                })
            }
            Regen::BadAnswerUnreadable => {
                keep_raw(b"<html>gateway</html>");
                Err(SourceError::BadAnswer {
                    detail: "an HTML page".into(),
                })
            }
            Regen::AmbiguousWithoutCommit | Regen::Unreachable => unreachable!(),
        }
    }

    async fn revoke(&self, credential: &Credential) -> Result<String, SourceError> {
        let parent = self.live_token(credential)?;
        self.state().access.retain(|_, a| a.parent != parent);
        Ok("Revoked active access tokens".into())
    }
}

/// One test's world.
struct World {
    clock: ManualClock,
    alation: Arc<FakeAlation>,
    sink: Arc<MemorySink>,
    escrow_dir: tempfile::TempDir,
    engine: Engine,
}

fn start() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

impl World {
    fn new() -> Self {
        Self::with(|_| {})
    }

    fn with(configure: impl FnOnce(&mut FakeAlation)) -> Self {
        let clock = ManualClock::new(start());
        let mut alation = FakeAlation::new(clock.clone());
        configure(&mut alation);
        let escrow_dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(Arc::new(clock.clone()))
            .with_escrow(Escrow::new(escrow_dir.path().join("escrow")))
            .with_regeneration(RegenerationSettings {
                lease_wait: Duration::from_millis(600),
                persist_deadline: Duration::from_millis(500),
                ..RegenerationSettings::default()
            })
            .with_store_retry(
                backon::ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(1))
                    .with_max_times(1),
            );
        Self {
            clock,
            alation: Arc::new(alation),
            sink: Arc::new(MemorySink::new()),
            escrow_dir,
            engine,
        }
    }

    fn integration(&self, name: &str, user_id: i64) -> Integration {
        let sink: Arc<dyn crate::sink::TokenSink> = self.sink.clone();
        Integration::new(
            name,
            Some(user_id),
            Location::new("mem", format!("state/{name}"), Arc::clone(&sink)),
            vec![Location::new("mem", format!("alation/{name}"), sink)],
            self.alation.clone(),
        )
    }

    /// An integration whose refresh token is regenerated on every run.
    fn always_due(&self, name: &str, user_id: i64) -> Integration {
        let mut integration = self.integration(name, user_id);
        integration.policy.refresh_renew_before = RenewBefore::Percent(100.0);
        integration.policy.min_regenerate_interval = Duration::ZERO;
        integration
    }

    async fn bootstrap(&self, integration: &Integration, standby: bool) {
        let user_id = integration.user_id.unwrap();
        let credential = BootstrapCredential::RefreshTokens {
            primary: self.alation.create_refresh(user_id),
            standby: standby.then(|| self.alation.create_refresh(user_id)),
        };
        let precondition = self
            .engine
            .bootstrap_precondition(integration, false)
            .await
            .unwrap();
        self.engine
            .store_bootstrap(integration, credential, precondition)
            .await
            .unwrap();
    }

    async fn state(&self, integration: &Integration) -> RefreshTokenDocument {
        self.sink
            .read_as::<RefreshTokenDocument>(&integration.state.key)
            .await
            .unwrap()
            .unwrap()
            .document
    }

    async fn access(&self, integration: &Integration) -> AccessTokenDocument {
        let location = &integration.access_token[0];
        self.sink
            .read_as::<AccessTokenDocument>(&location.key)
            .await
            .unwrap()
            .unwrap()
            .document
    }

    async fn run(&self, integration: &Integration) -> Report {
        self.engine.run_one(integration, RunOptions::run()).await
    }

    fn advance(&self, days: i64) {
        self.clock.advance(SignedDuration::from_secs(days * DAY));
    }

    fn escrow_files(&self) -> Vec<String> {
        std::fs::read_dir(self.escrow_dir.path().join("escrow"))
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn failure(report: &Report) -> &Failure {
    match &report.outcome {
        Outcome::Failed(failure) => failure,
        other => panic!("expected a failure, got {other:?} ({:?})", report.warnings),
    }
}

fn assert_rotated(report: &Report) {
    assert!(
        matches!(report.outcome, Outcome::Rotated),
        "expected rotated, got {:?} ({:?})",
        report.outcome,
        report.warnings
    );
}

mod plan {
    use super::*;

    #[tokio::test]
    async fn a_first_run_rotates_and_a_second_finds_everything_fresh() {
        let world = World::new();
        let integration = world.integration("a", 7);
        world.bootstrap(&integration, false).await;
        assert_rotated(&world.run(&integration).await);
        let delivered = world.access(&integration).await;
        assert!(world
            .alation
            .access_alive(delivered.api_access_token.expose_secret()));
        assert_eq!(delivered.user_id, Some(7));
        assert_eq!(
            delivered.refresh_token_created_at,
            Some(world.state(&integration).await.created_at)
        );
        let second = world.run(&integration).await;
        assert!(matches!(second.outcome, Outcome::Fresh), "{second:?}");
        assert_eq!(world.alation.state().issue_calls, 1);
    }

    #[tokio::test]
    async fn an_access_token_inside_its_renewal_window_is_replaced() {
        let world = World::new();
        let integration = world.integration("a", 7);
        world.bootstrap(&integration, false).await;
        world.run(&integration).await;
        world.clock.advance(SignedDuration::from_hours(15));
        assert!(matches!(
            world.run(&integration).await.outcome,
            Outcome::Fresh
        ));
        world.clock.advance(SignedDuration::from_hours(2));
        assert_rotated(&world.run(&integration).await);
    }

    #[tokio::test]
    async fn a_token_minted_from_a_replaced_refresh_token_is_renewed_though_young() {
        let world = World::new();
        let integration = world.integration("a", 7);
        world.bootstrap(&integration, false).await;
        world.run(&integration).await;
        let old = world.access(&integration).await;
        // A minute later a person (or another runner) stores a new refresh token; the stored
        // access token still has hours left by its timestamps.
        world.clock.advance(SignedDuration::from_secs(60));
        let fresh = world.alation.create_refresh(7);
        let precondition = world
            .engine
            .bootstrap_precondition(&integration, true)
            .await
            .unwrap();
        world
            .engine
            .store_bootstrap(
                &integration,
                BootstrapCredential::RefreshTokens {
                    primary: fresh,
                    standby: None,
                },
                precondition,
            )
            .await
            .unwrap();
        world.clock.advance(SignedDuration::from_secs(60));
        let report = world.run(&integration).await;
        assert_rotated(&report);
        let new = world.access(&integration).await;
        assert_ne!(
            new.api_access_token.expose_secret(),
            old.api_access_token.expose_secret()
        );
        assert_eq!(
            new.refresh_token_created_at,
            Some(world.state(&integration).await.created_at)
        );
    }

    #[tokio::test]
    async fn validate_asks_the_source_and_replaces_a_revoked_access_token() {
        let world = World::new();
        let mut integration = world.integration("a", 7);
        integration.policy.validate = true;
        world.bootstrap(&integration, false).await;
        world.run(&integration).await;
        world.alation.state().access.clear();
        assert_rotated(&world.run(&integration).await);
    }
}

mod regenerate {
    use super::*;

    #[tokio::test]
    async fn a_due_refresh_token_is_replaced_stored_and_its_escrow_copies_set_aside() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        let before = world.state(&integration).await;
        world.advance(1);
        let report = world.run(&integration).await;
        assert_rotated(&report);
        assert_eq!(report.regenerated, Some(Slot::Primary));
        let after = world.state(&integration).await;
        assert!(!world.alation.alive(before.refresh_token.expose_secret()));
        assert!(world.alation.alive(after.refresh_token.expose_secret()));
        assert!(after.regenerating.is_none(), "the intent record is cleared");
        assert_eq!(world.engine.unsaved_tokens(), 0);
        let files = world.escrow_files();
        assert!(
            files.iter().all(|f| f.contains(".discarded-")),
            "only discarded copies remain: {files:?}"
        );
        assert!(
            files.iter().any(|f| f.contains(".token.json.discarded-")),
            "the token copy is renamed, never deleted: {files:?}"
        );
        // The access token follows the new generation.
        assert_eq!(
            world.access(&integration).await.refresh_token_created_at,
            Some(after.created_at)
        );
    }

    #[tokio::test]
    async fn an_answer_lost_after_alation_committed_is_reported_as_lost_during_regeneration() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        world.alation.plan(Regen::CommitThenAmbiguous);
        world.advance(1);
        let report = world.run(&integration).await;
        let failure = failure(&report);
        assert_eq!(failure.kind(), "lost-during-regeneration", "{failure}");
        assert_eq!(report.health(), Health::LostDuringRegeneration);
        let message = failure.to_string();
        assert!(message.contains("bootstrap a --force"), "{message}");
        assert!(!message.contains("rt-secret"), "{message}");
        assert_eq!(world.alation.regen_calls(), 1, "never resent blindly");
        // The intent stays, so the next run (and status) say the same, not "expired".
        assert!(world.state(&integration).await.regenerating.is_some());
        let next = world.run(&integration).await;
        assert_eq!(failure_kind(&next), "lost-during-regeneration");
        let status = world
            .engine
            .status(std::slice::from_ref(&integration), true)
            .await;
        assert_eq!(status[0].health(), Health::LostDuringRegeneration);
        assert_eq!(world.alation.regen_calls(), 1);
    }

    fn failure_kind(report: &Report) -> &'static str {
        failure(report).kind()
    }

    #[tokio::test]
    async fn a_request_lost_before_alation_acted_is_sent_again_after_the_old_token_proves_alive() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        world.alation.plan(Regen::AmbiguousWithoutCommit);
        world.advance(1);
        let report = world.run(&integration).await;
        assert_rotated(&report);
        assert_eq!(report.regenerated, Some(Slot::Primary));
        assert_eq!(world.alation.regen_calls(), 2);
    }

    #[tokio::test]
    async fn an_unreachable_alation_changes_nothing_and_clears_the_intent() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        let before = world.state(&integration).await;
        world.alation.plan(Regen::Unreachable);
        world.advance(1);
        let report = world.run(&integration).await;
        assert_eq!(failure(&report).kind(), "alation");
        let after = world.state(&integration).await;
        assert!(after.regenerating.is_none());
        assert_eq!(
            after.refresh_token.expose_secret(),
            before.refresh_token.expose_secret()
        );
        assert!(world.alation.alive(after.refresh_token.expose_secret()));
    }

    #[tokio::test]
    async fn an_unparsable_answer_that_holds_the_token_is_stored_from_the_raw_copy() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        world.alation.plan(Regen::BadAnswerHoldingToken);
        world.advance(1);
        let report = world.run(&integration).await;
        assert_rotated(&report);
        let stored = world.state(&integration).await;
        assert!(world.alation.alive(stored.refresh_token.expose_secret()));
        assert!(stored.regenerating.is_none());
    }

    #[tokio::test]
    async fn an_unreadable_answer_is_lost_and_the_message_points_at_the_raw_copy() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        world.alation.plan(Regen::BadAnswerUnreadable);
        world.advance(1);
        let report = world.run(&integration).await;
        let message = failure(&report).to_string();
        assert_eq!(failure(&report).kind(), "lost-during-regeneration");
        assert!(message.contains(".raw.json"), "{message}");
    }

    #[tokio::test]
    async fn a_token_dead_before_the_request_needs_bootstrap_not_lost() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        let state = world.state(&integration).await;
        world
            .alation
            .revoke_refresh(state.refresh_token.expose_secret());
        world.advance(1);
        let report = world.run(&integration).await;
        assert_eq!(failure(&report).kind(), "needs-bootstrap");
        assert!(world.state(&integration).await.regenerating.is_none());
    }

    #[tokio::test]
    async fn without_a_writable_escrow_the_regeneration_waits_and_minting_goes_on() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        // The escrow directory becomes a plain file: nothing can be written there.
        let dir = world.escrow_dir.path().join("escrow");
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::write(&dir, b"not a directory").unwrap();
        world.advance(1);
        let report = world.run(&integration).await;
        assert_rotated(&report);
        assert_eq!(report.regenerated, None);
        assert_eq!(world.alation.regen_calls(), 0);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("escrow directory cannot take a token")),
            "{:?}",
            report.warnings
        );
    }

    #[tokio::test]
    async fn a_state_location_that_refuses_the_intent_postpones_the_regeneration() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        world.advance(1);
        world.sink.fail_next_writes(2);
        let report = world.run(&integration).await;
        assert_eq!(world.alation.regen_calls(), 0);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("did not take the intent record")),
            "{:?}",
            report.warnings
        );
    }

    #[tokio::test]
    async fn a_new_token_the_state_refuses_waits_in_escrow_and_the_next_run_stores_it() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        world.advance(1);
        // The intent write succeeds; every write after the escrow fails until the deadline.
        let hooks = Arc::new(FailWritesAt {
            point: Checkpoint::AfterEscrow,
            sink: world.sink.clone(),
        });
        let engine = world.engine.clone().with_hooks(hooks);
        let report = engine.run_one(&integration, RunOptions::run()).await;
        assert_eq!(failure(&report).kind(), "refresh-escrowed", "{report:?}");
        assert_eq!(report.health(), Health::EscrowWaiting);
        assert_eq!(engine.unsaved_tokens(), 0);
        world.sink.fail_next_writes(0);
        let next = world.run(&integration).await;
        assert!(next.escrow_recovered, "{next:?}");
        let stored = world.state(&integration).await;
        assert!(world.alation.alive(stored.refresh_token.expose_secret()));
        assert!(stored.regenerating.is_none());
    }

    /// Makes every store write fail from a checkpoint on.
    #[derive(Debug)]
    struct FailWritesAt {
        point: Checkpoint,
        sink: Arc<MemorySink>,
    }

    #[async_trait]
    impl Hooks for FailWritesAt {
        async fn reached(&self, point: Checkpoint) {
            if point == self.point {
                self.sink.fail_next_writes(u32::MAX);
            }
        }
    }

    #[tokio::test]
    async fn an_interrupted_regeneration_is_settled_by_asking_about_the_old_token() {
        for committed in [false, true] {
            let world = World::new();
            let integration = world.always_due("a", 7);
            world.bootstrap(&integration, false).await;
            // A runner wrote its intent, then died with its request in flight.
            let stored = world
                .sink
                .read_as::<RefreshTokenDocument>(&integration.state.key)
                .await
                .unwrap()
                .unwrap();
            let mut document = stored.document.clone();
            let salt = "00".repeat(16);
            document.regenerating = Some(crate::document::RegenerationIntent {
                slot: Slot::Primary,
                runner: "gone:1:0000".into(),
                started_at: world.clock.now(),
                fingerprint: crate::engine::regenerate::fingerprint(&salt, &document.refresh_token),
                salt,
            });
            world
                .sink
                .write_as(
                    &integration.state.key,
                    &document,
                    Precondition::Version(stored.version),
                    false,
                )
                .await
                .unwrap();
            if committed {
                world
                    .alation
                    .revoke_refresh(document.refresh_token.expose_secret());
            }
            world.advance(1);
            let mut quiet = integration.clone();
            quiet.policy.refresh_renew_before = RenewBefore::Percent(0.0);
            let report = world.run(&quiet).await;
            assert_eq!(world.alation.regen_calls(), 0);
            if committed {
                assert_eq!(failure(&report).kind(), "lost-during-regeneration");
                assert!(failure(&report).to_string().contains("gone:1:0000"));
            } else {
                assert_rotated(&report);
                assert!(world.state(&integration).await.regenerating.is_none());
            }
        }
    }

    #[tokio::test]
    async fn a_live_lease_of_another_runner_is_waited_for_and_never_reported_as_bootstrap() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        let stored = world
            .sink
            .read_as::<RefreshTokenDocument>(&integration.state.key)
            .await
            .unwrap()
            .unwrap();
        let mut document = stored.document.clone();
        let salt = "11".repeat(16);
        document.regenerating = Some(crate::document::RegenerationIntent {
            slot: Slot::Primary,
            runner: "other:2:abcd".into(),
            started_at: world.clock.now(),
            fingerprint: crate::engine::regenerate::fingerprint(&salt, &document.refresh_token),
            salt,
        });
        world
            .sink
            .write_as(
                &integration.state.key,
                &document,
                Precondition::Version(stored.version),
                false,
            )
            .await
            .unwrap();
        let report = world.run(&integration).await;
        assert_eq!(failure(&report).kind(), "regenerating-elsewhere");
        assert_eq!(report.health(), Health::RegeneratingElsewhere);
        assert!(failure(&report).to_string().contains("other:2:abcd"));
        assert_eq!(world.alation.regen_calls(), 0);
    }

    #[tokio::test]
    async fn a_young_lease_of_a_dead_process_on_this_host_is_settled_at_once() {
        let world = World::new();
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        let stored = world
            .sink
            .read_as::<RefreshTokenDocument>(&integration.state.key)
            .await
            .unwrap()
            .unwrap();
        let mut document = stored.document.clone();
        let salt = "22".repeat(16);
        let dead_pid = (4_000_000..5_000_000)
            .find(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
            .unwrap();
        let runner = format!("{}:{dead_pid}:0000", super::super::host_name());
        document.regenerating = Some(crate::document::RegenerationIntent {
            slot: Slot::Primary,
            runner: runner.clone(),
            started_at: world.clock.now(),
            fingerprint: crate::engine::regenerate::fingerprint(&salt, &document.refresh_token),
            salt,
        });
        world
            .sink
            .write_as(
                &integration.state.key,
                &document,
                Precondition::Version(stored.version),
                false,
            )
            .await
            .unwrap();
        // Alation carried the request out before the process died.
        world
            .alation
            .revoke_refresh(document.refresh_token.expose_secret());
        let report = world.run(&integration).await;
        assert_eq!(failure(&report).kind(), "lost-during-regeneration");
        assert!(failure(&report).to_string().contains(&runner));
        assert!(super::super::runner_may_be_alive("elsewhere:1:0000"));
    }

    /// `max_concurrency` is the number of calls to Alation in flight, however many
    /// integrations run at once around them.
    #[tokio::test]
    async fn max_concurrency_bounds_the_calls_to_alation_in_flight() {
        let world = World::with(|alation| alation.issue_delay = Duration::from_millis(10));
        let integrations: Vec<_> = (0..12)
            .map(|i| world.integration(&format!("i{i}"), 100 + i))
            .collect();
        for integration in &integrations {
            world.bootstrap(integration, false).await;
        }
        let engine = world.engine.clone().with_max_concurrency(3);
        let reports = engine.run(&integrations, RunOptions::run()).await;
        for report in &reports {
            assert_rotated(report);
        }
        assert_eq!(world.alation.max_issues_in_flight.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn one_regeneration_in_flight_per_process_whatever_the_concurrency() {
        let world = World::with(|alation| alation.regen_delay = Duration::from_millis(20));
        let integrations: Vec<_> = (0..8)
            .map(|i| world.always_due(&format!("i{i}"), 100 + i))
            .collect();
        for integration in &integrations {
            world.bootstrap(integration, false).await;
        }
        world.advance(1);
        let engine = world.engine.clone().with_max_concurrency(8);
        let reports = engine.run(&integrations, RunOptions::run()).await;
        for report in &reports {
            assert_rotated(report);
            assert_eq!(report.regenerated, Some(Slot::Primary));
        }
        assert_eq!(world.alation.max_in_flight.load(Ordering::SeqCst), 1);
        assert_eq!(world.alation.regen_calls(), 8);
    }

    #[tokio::test]
    async fn the_minimum_interval_keeps_a_token_from_being_regenerated_twice_in_a_row() {
        let world = World::new();
        let mut integration = world.always_due("a", 7);
        integration.policy.min_regenerate_interval = Duration::from_secs(3600);
        world.bootstrap(&integration, false).await;
        world.advance(1);
        assert_eq!(
            world.run(&integration).await.regenerated,
            Some(Slot::Primary)
        );
        world.clock.advance(SignedDuration::from_mins(30));
        assert_eq!(world.run(&integration).await.regenerated, None);
        world.clock.advance(SignedDuration::from_mins(31));
        assert_eq!(
            world.run(&integration).await.regenerated,
            Some(Slot::Primary)
        );
    }

    #[tokio::test]
    async fn a_server_without_regeneration_warns_and_keeps_the_token() {
        let world = World::with(|alation| alation.regen_supported = false);
        let integration = world.always_due("a", 7);
        world.bootstrap(&integration, false).await;
        world.advance(1);
        let report = world.run(&integration).await;
        assert_rotated(&report);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("cannot regenerate")),
            "{:?}",
            report.warnings
        );
        assert!(world.state(&integration).await.regenerating.is_none());
    }
}

mod standby {
    use super::*;

    #[tokio::test]
    async fn a_lost_primary_hands_over_to_the_standby_and_the_run_still_delivers() {
        let world = World::new();
        let mut integration = world.always_due("a", 7);
        integration.policy.standby = true;
        world.bootstrap(&integration, true).await;
        let standby = world.state(&integration).await.standby.unwrap();
        world.alation.plan(Regen::CommitThenAmbiguous);
        world.advance(1);
        let report = world.run(&integration).await;
        assert_rotated(&report);
        assert_eq!(report.health(), Health::Degraded);
        assert!(
            report.warnings.iter().any(|w| w.contains("degraded")),
            "{:?}",
            report.warnings
        );
        let state = world.state(&integration).await;
        assert_eq!(
            state.refresh_token.expose_secret(),
            standby.refresh_token.expose_secret(),
            "the standby is now the primary"
        );
        assert!(state.degraded.is_some() && state.standby.is_none());
        let delivered = world.access(&integration).await;
        assert!(world
            .alation
            .access_alive(delivered.api_access_token.expose_secret()));
        // Bootstrap restores two tokens and clears the degradation.
        world
            .engine
            .store_bootstrap(
                &integration,
                BootstrapCredential::RefreshTokens {
                    primary: world.alation.create_refresh(7),
                    standby: Some(world.alation.create_refresh(7)),
                },
                world
                    .engine
                    .bootstrap_precondition(&integration, true)
                    .await
                    .unwrap(),
            )
            .await
            .unwrap();
        let healed = world.state(&integration).await;
        assert!(healed.degraded.is_none() && healed.standby.is_some());
    }

    #[tokio::test]
    async fn an_admin_revoked_primary_is_replaced_by_the_standby_when_minting() {
        let world = World::new();
        let mut integration = world.integration("a", 7);
        integration.policy.standby = true;
        world.bootstrap(&integration, true).await;
        let state = world.state(&integration).await;
        world
            .alation
            .revoke_refresh(state.refresh_token.expose_secret());
        let report = world.run(&integration).await;
        assert_rotated(&report);
        assert_eq!(report.health(), Health::Degraded);
    }

    #[tokio::test]
    async fn the_two_tokens_are_regenerated_half_a_cycle_apart_and_never_in_one_run() {
        let world = World::new();
        let mut integration = world.integration("a", 7);
        integration.policy.standby = true;
        world.bootstrap(&integration, true).await;
        let mut regenerated = Vec::new();
        for day in 1..=120 {
            world.advance(1);
            let report = world.run(&integration).await;
            assert!(!report.is_failure(), "day {day}: {report:?}");
            if let Some(slot) = report.regenerated {
                regenerated.push((day, slot));
            }
        }
        // 60-day tokens renewed 14 days before expiry: a 46-day cycle. The standby moves to
        // half a cycle (23 days) first; then each is renewed every 46 days.
        assert_eq!(
            regenerated,
            vec![
                (23, Slot::Standby),
                (46, Slot::Primary),
                (69, Slot::Standby),
                (92, Slot::Primary),
                (115, Slot::Standby),
            ]
        );
        let state = world.state(&integration).await;
        assert!(world.alation.alive(state.refresh_token.expose_secret()));
        assert!(world
            .alation
            .alive(state.standby.unwrap().refresh_token.expose_secret()));
    }
}

mod recovery {
    use super::*;

    #[tokio::test]
    async fn a_token_escrowed_by_a_failed_bootstrap_is_stored_by_the_next_run() {
        let world = World::new();
        let integration = world.integration("a", 7);
        world.sink.fail_next_writes(u32::MAX);
        let grant = world.alation.create_refresh(7);
        let error = world
            .engine
            .store_bootstrap(
                &integration,
                BootstrapCredential::RefreshTokens {
                    primary: grant.clone(),
                    standby: None,
                },
                Precondition::Absent,
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "refresh-escrowed", "{error}");
        world.sink.fail_next_writes(0);
        let report = world.run(&integration).await;
        assert_rotated(&report);
        assert!(report.escrow_recovered);
        assert_eq!(
            world
                .state(&integration)
                .await
                .refresh_token
                .expose_secret(),
            grant.refresh_token.expose_secret()
        );
    }

    #[tokio::test]
    async fn escrow_of_another_state_location_is_never_taken() {
        let world = World::new();
        let mine = world.integration("a", 7);
        world.bootstrap(&mine, false).await;
        // Same integration name, another state key (another configuration on this host).
        let mut other = world.integration("a", 7);
        other.state.key = "elsewhere/a".into();
        world.sink.fail_next_writes(u32::MAX);
        let grant = world.alation.create_refresh(7);
        let _ = world
            .engine
            .store_bootstrap(
                &other,
                BootstrapCredential::RefreshTokens {
                    primary: grant,
                    standby: None,
                },
                Precondition::Absent,
            )
            .await;
        world.sink.fail_next_writes(0);
        // Mine is dead, so a token that looked like mine would be stored at once.
        let state = world.state(&mine).await;
        world
            .alation
            .revoke_refresh(state.refresh_token.expose_secret());
        let report = world.run(&mine).await;
        assert!(!report.escrow_recovered);
        assert_eq!(failure(&report).kind(), "needs-bootstrap");
        assert!(world
            .engine
            .escrow
            .as_ref()
            .unwrap()
            .holds(&other.escrow_identity()));
    }

    #[tokio::test]
    async fn a_different_working_token_in_the_state_is_not_overwritten_without_force() {
        let world = World::new();
        let integration = world.integration("a", 7);
        world.bootstrap(&integration, false).await;
        let stored = world.state(&integration).await;
        let stray = world.alation.create_refresh(7);
        world
            .engine
            .escrow
            .as_ref()
            .unwrap()
            .put_token(
                &integration.escrow_identity(),
                Slot::Primary,
                &stray.refresh_token,
                "rt",
                stray.created_at,
                stray.expires_at,
                false,
            )
            .unwrap();
        let report = world.run(&integration).await;
        assert!(!report.escrow_recovered);
        assert!(
            report.warnings.iter().any(|w| w.contains("left in escrow")),
            "{:?}",
            report.warnings
        );
        assert_eq!(
            world
                .state(&integration)
                .await
                .refresh_token
                .expose_secret(),
            stored.refresh_token.expose_secret()
        );
    }
}

mod deliver {
    use super::*;

    #[tokio::test]
    async fn a_conflicting_older_token_is_overwritten_and_a_newer_one_kept() {
        let world = World::new();
        let integration = world.integration("a", 7);
        world.bootstrap(&integration, false).await;
        world.run(&integration).await;
        let location = &integration.access_token[0];
        // Between our read and our write, another writer puts a token: first an old one.
        let old = world.access(&integration).await;
        world.clock.advance(SignedDuration::from_hours(20));
        let hooks = Arc::new(WriteAtMint {
            sink: world.sink.clone(),
            key: location.key.clone(),
            document: AccessTokenDocument {
                created_at: old.created_at - SignedDuration::from_hours(1),
                ..old.clone()
            },
        });
        let engine = world.engine.clone().with_hooks(hooks);
        let report = engine.run_one(&integration, RunOptions::run()).await;
        assert_rotated(&report);
        assert_eq!(report.destinations[0].result, "written");
        assert!(world.access(&integration).await.created_at > old.created_at);
    }

    /// Writes a document to a key at `AfterMint`, as a concurrent runner would.
    #[derive(Debug)]
    struct WriteAtMint {
        sink: Arc<MemorySink>,
        key: String,
        document: AccessTokenDocument,
    }

    #[async_trait]
    impl Hooks for WriteAtMint {
        async fn reached(&self, point: Checkpoint) {
            if point == Checkpoint::AfterMint {
                self.sink
                    .write_as(&self.key, &self.document, Precondition::Any, true)
                    .await
                    .unwrap();
            }
        }
    }

    #[tokio::test]
    async fn revoke_kills_the_old_tokens_and_verifies_every_destination() {
        let world = World::new();
        let integration = world.integration("a", 7);
        world.bootstrap(&integration, false).await;
        world.run(&integration).await;
        let before = world.access(&integration).await;
        world.clock.advance(SignedDuration::from_secs(5));
        let report = world.engine.revoke(&integration).await;
        assert_rotated(&report);
        assert!(!world
            .alation
            .access_alive(before.api_access_token.expose_secret()));
        let after = world.access(&integration).await;
        assert!(world
            .alation
            .access_alive(after.api_access_token.expose_secret()));
    }
}

mod shutdown {
    use super::*;

    #[tokio::test]
    async fn a_cancelled_run_reaches_nothing_and_says_so() {
        let world = World::new();
        let integrations: Vec<_> = (0..3)
            .map(|i| world.integration(&format!("i{i}"), 100 + i))
            .collect();
        for integration in &integrations {
            world.bootstrap(integration, false).await;
        }
        let token = CancellationToken::new();
        token.cancel();
        let engine = world.engine.clone().with_shutdown(token);
        let reports = engine.run(&integrations, RunOptions::run()).await;
        for report in &reports {
            assert!(
                matches!(report.outcome, Outcome::NotReached { .. }),
                "{report:?}"
            );
            assert!(report.is_failure());
        }
        assert_eq!(world.alation.state().issue_calls, 0);
    }

    #[tokio::test]
    async fn a_regeneration_in_flight_when_the_signal_comes_still_stores_its_token() {
        let world = World::with(|alation| alation.regen_delay = Duration::from_millis(50));
        let integrations: Vec<_> = (0..3)
            .map(|i| world.always_due(&format!("i{i}"), 100 + i))
            .collect();
        for integration in &integrations {
            world.bootstrap(integration, false).await;
        }
        world.advance(1);
        let token = CancellationToken::new();
        let engine = world
            .engine
            .clone()
            .with_shutdown(token.clone())
            .with_max_concurrency(1);
        let cancel = async {
            while world.alation.in_flight.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            token.cancel();
        };
        let (reports, ()) = tokio::join!(engine.run(&integrations, RunOptions::run()), cancel);
        assert_eq!(
            reports[0].regenerated,
            Some(Slot::Primary),
            "{:?}",
            reports[0]
        );
        for report in &reports[1..] {
            assert!(
                matches!(report.outcome, Outcome::NotReached { .. }),
                "{report:?}"
            );
        }
        let stored = world.state(&integrations[0]).await;
        assert!(world.alation.alive(stored.refresh_token.expose_secret()));
        assert_eq!(engine.unsaved_tokens(), 0);
    }
}

#[tokio::test]
async fn reports_and_failures_never_show_a_token() {
    let world = World::new();
    let integration = world.always_due("a", 7);
    world.bootstrap(&integration, false).await;
    world.alation.plan(Regen::CommitThenAmbiguous);
    world.advance(1);
    let report = world.run(&integration).await;
    let text = format!(
        "{report:?} {} {}",
        serde_json::to_string(&report).unwrap(),
        failure(&report)
    );
    assert!(
        !text.contains("rt-secret") && !text.contains("at-secret"),
        "{text}"
    );
    let state = world.state(&integration).await;
    assert!(!format!("{state:?}").contains("rt-secret"));
    assert!(!state.to_document().to_json_bytes().is_empty());
}
