//! The regeneration protocol and the standby refresh token.
//!
//! Alation kills a refresh token the moment it issues its replacement, so the replacement
//! must never be dropped. Per regeneration, in order:
//! 1. one regeneration in flight per process (a kill costs at most one token);
//! 2. preflight: the escrow directory takes an fsynced file, or the regeneration waits for a
//!    later run (the token still has days left);
//! 3. an intent record (no token, a keyed fingerprint of the old one) in the escrow and, by
//!    compare-and-set, in the state document, where it doubles as a lease other runners
//!    respect; a state location that does not answer also postpones the regeneration;
//! 4. one request: it is sent again only if it provably never left; after any ambiguous
//!    failure the source is asked whether the old token still works (alive: try again; dead:
//!    the answer was lost, reported as "lost during regeneration", never as an admin
//!    revocation);
//! 5. the raw answer is kept in escrow before it is parsed, then the parsed token;
//! 6. the new token is written to the state location, retried with backoff for minutes,
//!    while it is held in memory and the process refuses to exit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use tracing::{info, warn};

use super::escrow::{Escrow, EscrowIdentity};
use super::hooks::Checkpoint;
use super::pass::{Pass, RefreshState};
use super::report::Failure;
use crate::document::{
    Degradation, RefreshTokenDocument, RefreshTokenSlot, RegenerationIntent, Slot,
};
use crate::error::SinkError;
use crate::sink::{Precondition, StoredAs, Version};
use crate::source::{Credential, RefreshGrant, SourceError};

/// Counts a regeneration whose new token may exist only in memory; dropping it uncounts.
struct Unsaved(Arc<AtomicUsize>);

impl Unsaved {
    fn new(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(counter))
    }
}

impl Drop for Unsaved {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// HMAC-SHA256 of `token` keyed with `salt`, in hex: names a token without revealing it.
pub(super) fn fingerprint(salt: &str, token: &SecretString) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(salt.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(token.expose_secret().as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn credential_of(token: &RefreshTokenSlot, user_id: i64) -> Credential {
    Credential::RefreshToken {
        refresh_token: token.refresh_token.clone(),
        user_id,
    }
}

impl Pass<'_> {
    /// Regenerates the refresh token that is due, at most one per run.
    pub(super) async fn maybe_regenerate(
        &mut self,
        state: RefreshState,
    ) -> Result<RefreshState, Failure> {
        if self.engine.stopping() {
            return Ok(state);
        }
        match self.due_slot(&state.document) {
            Some(slot) => self.regenerate(state, slot).await,
            None => Ok(state),
        }
    }

    /// The slot to regenerate now, if any. The primary goes first; the standby is kept about
    /// half a renewal cycle apart from it, so the two never expire together.
    fn due_slot(&self, document: &RefreshTokenDocument) -> Option<Slot> {
        let policy = &self.integration.policy;
        let now = self.now();
        let min_interval =
            SignedDuration::try_from(policy.min_regenerate_interval).unwrap_or(SignedDuration::MAX);
        let rested = |token: &RefreshTokenSlot| {
            let last = token
                .last_regenerated_at
                .unwrap_or(token.created_at)
                .max(token.created_at);
            now.duration_since(last) >= min_interval
        };
        let due = |token: &RefreshTokenSlot| {
            policy
                .refresh_renew_before
                .is_due(now, token.created_at, token.token_expires_at)
        };
        let primary = document.primary();
        if due(&primary) {
            return rested(&primary).then_some(Slot::Primary);
        }
        let standby = document.standby.as_ref()?;
        let cycle = primary.token_expires_at.duration_since(primary.created_at)
            - policy
                .refresh_renew_before
                .threshold(primary.created_at, primary.token_expires_at);
        let half_cycle = (cycle / 2).max(SignedDuration::ZERO);
        let offset = primary.created_at.duration_since(standby.created_at).abs();
        let too_close =
            offset < half_cycle / 2 && now.duration_since(standby.created_at) >= half_cycle;
        ((due(standby) || too_close) && rested(standby)).then_some(Slot::Standby)
    }

    async fn regenerate(
        &mut self,
        state: RefreshState,
        slot: Slot,
    ) -> Result<RefreshState, Failure> {
        let old = state
            .document
            .slot(slot)
            .expect("due_slot only names a slot the document holds");
        let Some(escrow) = self.engine.escrow.clone() else {
            self.report.warnings.push(format!(
                "the {slot} refresh token is due but no escrow directory is configured, so it is \
                 not regenerated; it works until {}",
                old.token_expires_at
            ));
            return Ok(state);
        };
        let gate = Arc::clone(&self.engine.regen_gate);
        let _permit = gate
            .acquire_owned()
            .await
            .expect("the gate is never closed");
        self.engine.wait_for_source_slot().await;
        if self.engine.stopping() {
            return Ok(state);
        }
        let identity = self.integration.escrow_identity();
        if let Err(error) = escrow.preflight() {
            self.report.warnings.push(format!(
                "the {slot} refresh token was not regenerated this run: the escrow directory \
                 cannot take a token ({error}); it works until {}",
                old.token_expires_at
            ));
            return Ok(state);
        }
        let salt = hex::encode(rand::random::<[u8; 16]>());
        let intent = RegenerationIntent {
            slot,
            runner: self.engine.runner_id.clone(),
            started_at: self.now(),
            fingerprint: fingerprint(&salt, &old.refresh_token),
            salt,
        };
        if let Err(error) = escrow.put_intent(&identity, &intent) {
            self.report.warnings.push(format!(
                "the {slot} refresh token was not regenerated this run: the intent record could \
                 not be written ({error}); it works until {}",
                old.token_expires_at
            ));
            return Ok(state);
        }
        let mut announced = state.document.clone();
        announced.regenerating = Some(intent.clone());
        let version = match self
            .write_state(&announced, Precondition::Version(state.version.clone()))
            .await
        {
            Ok(version) => version,
            Err(error) if error.is_conflict() => {
                let _ = escrow.remove_intent(&identity);
                let reread = self.read_refresh().await?;
                if let Some(other) = reread.document.regenerating.clone() {
                    return self.settle_intent(reread, other).await;
                }
                info!("the state document changed while the regeneration was prepared; leaving it to the next run");
                return Ok(reread);
            }
            Err(error) => {
                let _ = escrow.remove_intent(&identity);
                self.report.warnings.push(format!(
                    "the {slot} refresh token was not regenerated this run: the state location \
                     {} did not take the intent record ({error}); it works until {}",
                    self.integration.state.label(),
                    old.token_expires_at
                ));
                return Ok(state);
            }
        };
        let state = StoredAs {
            document: announced,
            version,
            managed: true,
        };
        info!(%slot, expires_at = %old.token_expires_at, "regenerating the refresh token");
        self.checkpoint(Checkpoint::BeforeRegen).await;
        self.request(state, slot, &old, &intent, &escrow, &identity)
            .await
    }

    /// Sends the regeneration request, at most once unless it provably never left or the old
    /// token is known to still work.
    async fn request(
        &mut self,
        state: RefreshState,
        slot: Slot,
        old: &RefreshTokenSlot,
        intent: &RegenerationIntent,
        escrow: &Escrow,
        identity: &EscrowIdentity,
    ) -> Result<RefreshState, Failure> {
        let credential = credential_of(old, state.document.user_id);
        let source = Arc::clone(&self.integration.source);
        let mut earlier_ambiguity: Option<String> = None;
        let mut last_error = None;
        for attempt in 1..=self.engine.regeneration.attempts.max(1) {
            let unsaved = Unsaved::new(&self.engine.unsaved);
            let raw_path = Mutex::new(None);
            let now = self.now();
            let keep_raw = |body: &[u8]| match escrow.put_raw(identity, slot, body, now) {
                Ok(path) => *raw_path.lock().unwrap_or_else(|e| e.into_inner()) = Some(path),
                Err(error) => warn!(%error, "could not keep Alation's raw answer in escrow"),
            };
            let result = source.regenerate(&credential, &keep_raw).await;
            let raw_kept = raw_path
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take()
                .is_some();
            let error = match result {
                Ok(grant) => {
                    let unsaved = (!raw_kept).then_some(unsaved);
                    return self
                        .store_regenerated(state, slot, grant, unsaved, escrow, identity)
                        .await;
                }
                Err(error) => error,
            };
            drop(unsaved);
            match error {
                SourceError::Unsupported { .. } => {
                    let state = self.clear_intent(state).await;
                    warn!(
                        expires_at = %old.token_expires_at,
                        "this Alation does not offer regenRefreshToken: the refresh token cannot be \
                         renewed automatically; bootstrap a new one before it expires \
                         (alation-rotator bootstrap {} --force)",
                        self.integration.name
                    );
                    self.report.warnings.push(format!(
                        "the {slot} refresh token expires at {} and this Alation cannot regenerate \
                         it: run `alation-rotator bootstrap {} --force` before then",
                        old.token_expires_at, self.integration.name
                    ));
                    return Ok(state);
                }
                error if error.is_credential_dead() => {
                    if let Some(first) = earlier_ambiguity {
                        return self
                            .lost(
                                state,
                                intent,
                                format!(
                                    "an earlier attempt got no usable answer ({first}) and Alation \
                                     now refuses the old token: that attempt replaced it"
                                ),
                            )
                            .await;
                    }
                    let state = self.clear_intent(state).await;
                    return self.replace_dead_slot(state, slot, error.to_string()).await;
                }
                SourceError::Unreachable { .. } => {
                    let state = self.clear_intent(state).await;
                    let _ = state;
                    return Err(Failure::alation(
                        "reach Alation to regenerate the refresh token (nothing changed there; \
                         the next run tries again)",
                        error,
                    ));
                }
                SourceError::BadAnswer { .. } if raw_kept => {
                    return self
                        .store_from_raw_answer(state, slot, intent, escrow, identity, error)
                        .await;
                }
                SourceError::Rejected { .. } => {
                    let state = self.clear_intent(state).await;
                    let _ = state;
                    return Err(Failure::alation("regenerate the refresh token", error));
                }
                error => {
                    // The request may have been carried out: only the old token can tell.
                    match source.check(&credential).await {
                        Ok(_) => {
                            warn!(attempt, %error, "the regeneration got no usable answer but the old refresh token still works; trying again");
                            earlier_ambiguity = Some(error.to_string());
                            last_error = Some(error);
                            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt)))
                                .await;
                        }
                        Err(check) if check.is_credential_dead() => {
                            return self
                                .lost(
                                    state,
                                    intent,
                                    format!(
                                        "the request failed ({error}) and Alation no longer \
                                         accepts the old token, so it did replace it"
                                    ),
                                )
                                .await;
                        }
                        Err(check) => {
                            return Err(Failure::alation(
                                "learn whether Alation replaced the refresh token after a \
                                 regeneration request without a usable answer (the intent \
                                 record stays; the next run settles it)",
                                check,
                            ));
                        }
                    }
                }
            }
        }
        let state = self.clear_intent(state).await;
        let _ = state;
        Err(Failure::alation(
            "regenerate the refresh token (every attempt went unanswered while the old token kept \
             working; it still does)",
            last_error.unwrap_or(SourceError::Ambiguous {
                detail: "no attempt was made".into(),
            }),
        ))
    }

    /// Alation answered 2xx but the source could not read the answer; the raw body is in
    /// escrow and may still hold the new token.
    async fn store_from_raw_answer(
        &mut self,
        state: RefreshState,
        slot: Slot,
        intent: &RegenerationIntent,
        escrow: &Escrow,
        identity: &EscrowIdentity,
        error: SourceError,
    ) -> Result<RefreshState, Failure> {
        let found = escrow.contents(identity).ok().and_then(|c| {
            c.tokens
                .into_iter()
                .find(|t| t.slot == slot && t.from_raw_answer)
        });
        if let Some(token) = found {
            let checked = self
                .integration
                .source
                .check(&Credential::RefreshToken {
                    refresh_token: token.refresh_token.clone(),
                    user_id: state.document.user_id,
                })
                .await;
            if let Ok(status) = checked {
                let now = self.now();
                let grant = RefreshGrant::new(
                    token.refresh_token,
                    state.document.user_id,
                    status
                        .name
                        .or(token.name)
                        .unwrap_or_else(|| self.integration.name.clone()),
                    status.created_at.or(token.created_at).unwrap_or(now),
                    status.expires_at.or(token.token_expires_at).unwrap_or(now),
                );
                warn!(%error, "Alation's regeneration answer did not parse, but the new token in it works; storing it");
                return self
                    .store_regenerated(state, slot, grant, None, escrow, identity)
                    .await;
            }
        }
        self.unreadable_raw = Some(
            escrow
                .contents(identity)
                .ok()
                .and_then(|c| c.unreadable_raw.into_iter().next())
                .unwrap_or_else(|| escrow.directory().to_owned())
                .display()
                .to_string(),
        );
        self.lost(
            state,
            intent,
            format!("Alation's answer could not be read ({error})"),
        )
        .await
    }

    /// A new token is in hand: escrow it, then store it, holding on for minutes if need be.
    async fn store_regenerated(
        &mut self,
        state: RefreshState,
        slot: Slot,
        grant: RefreshGrant,
        mut unsaved: Option<Unsaved>,
        escrow: &Escrow,
        identity: &EscrowIdentity,
    ) -> Result<RefreshState, Failure> {
        self.checkpoint(Checkpoint::AfterRegen).await;
        let now = self.now();
        let token = RefreshTokenSlot {
            refresh_token: grant.refresh_token,
            name: grant.name,
            created_at: grant.created_at,
            token_expires_at: grant.expires_at,
            last_regenerated_at: Some(now),
        };
        let mut escrowed = self.escrow_token(escrow, identity, slot, &token, false);
        if escrowed.is_some() {
            unsaved = None;
        }
        self.checkpoint(Checkpoint::AfterEscrow).await;
        let mut document = state.document.clone();
        document.set_slot(slot, token.clone());
        document.regenerating = None;

        let location = self.integration.state.clone();
        let deadline = tokio::time::Instant::now() + self.engine.regeneration.persist_deadline;
        let mut delay = Duration::from_millis(200);
        let last_error = loop {
            if escrowed.is_none() {
                escrowed = self.escrow_token(escrow, identity, slot, &token, false);
                if escrowed.is_some() {
                    unsaved = None;
                }
            }
            let error = match self
                .write_state(&document, Precondition::Version(state.version.clone()))
                .await
            {
                Ok(version) => {
                    drop(unsaved);
                    self.discard_escrow(escrow, identity, slot);
                    let _ = escrow.remove_intent(identity);
                    self.checkpoint(Checkpoint::AfterPersistRefresh).await;
                    self.report.regenerated = Some(slot);
                    info!(%slot, expires_at = %token.token_expires_at, "refresh token regenerated and stored");
                    return Ok(StoredAs {
                        document,
                        version,
                        managed: true,
                    });
                }
                Err(error) if error.is_conflict() => {
                    if let Ok(reread) = self.read_refresh().await {
                        let stored = reread.document.slot(slot);
                        if stored.is_some_and(|s| {
                            Self::same_token(&s.refresh_token, &token.refresh_token)
                        }) {
                            drop(unsaved);
                            self.discard_escrow(escrow, identity, slot);
                            self.report.regenerated = Some(slot);
                            return Ok(reread);
                        }
                    }
                    error
                }
                Err(error) => error,
            };
            // Once the token is in escrow it is safe: the next run stores it. Until then it
            // exists only here, so keep trying both for minutes.
            if escrowed.is_some() || tokio::time::Instant::now() >= deadline {
                break error;
            }
            warn!(%error, ?delay, "the regenerated refresh token is not stored yet; trying again");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(10));
        };
        drop(unsaved);
        match escrowed {
            Some(path) => Err(Failure::RefreshEscrowed {
                location: location.label(),
                escrow: path.display().to_string(),
                source: last_error,
            }),
            None => Err(Failure::RefreshTokenLost {
                location: location.label(),
                source: last_error,
                escrow: escrow
                    .put_token(
                        identity,
                        slot,
                        &token.refresh_token,
                        &token.name,
                        token.created_at,
                        token.token_expires_at,
                        false,
                    )
                    .err(),
            }),
        }
    }

    pub(super) fn escrow_token(
        &self,
        escrow: &Escrow,
        identity: &EscrowIdentity,
        slot: Slot,
        token: &RefreshTokenSlot,
        replace_live: bool,
    ) -> Option<std::path::PathBuf> {
        match escrow.put_token(
            identity,
            slot,
            &token.refresh_token,
            &token.name,
            token.created_at,
            token.token_expires_at,
            replace_live,
        ) {
            Ok(path) => Some(path),
            Err(error) => {
                warn!(%error, "could not keep the refresh token in escrow; holding it in memory");
                None
            }
        }
    }

    /// The stored token's escrow copies are no longer needed: rename them aside.
    pub(super) fn discard_escrow(&self, escrow: &Escrow, identity: &EscrowIdentity, slot: Slot) {
        let now = self.now();
        for path in escrow.files_of(identity, slot) {
            if let Err(error) = escrow.discard(&path, now) {
                warn!(%error, "the refresh token is stored but its escrow copy could not be set aside; the next run will");
            }
        }
        escrow.prune_discarded(now);
    }

    /// Writes the state document with the engine's store retries.
    pub(super) async fn write_state(
        &self,
        document: &RefreshTokenDocument,
        precondition: Precondition,
    ) -> Result<Version, SinkError> {
        self.write_with_retry(&self.integration.state, document, precondition)
            .await
    }

    /// Removes the intent record from the state document (and escrow). On failure the record
    /// stays and the next run settles it.
    pub(super) async fn clear_intent(&self, state: RefreshState) -> RefreshState {
        if let Some(escrow) = &self.engine.escrow {
            let _ = escrow.remove_intent(&self.integration.escrow_identity());
        }
        if state.document.regenerating.is_none() || self.options.dry_run {
            return state;
        }
        let mut document = state.document.clone();
        document.regenerating = None;
        match self
            .write_state(&document, Precondition::Version(state.version.clone()))
            .await
        {
            Ok(version) => StoredAs {
                document,
                version,
                managed: true,
            },
            Err(error) => {
                warn!(%error, "could not clear the intent record; the next run will");
                state
            }
        }
    }

    /// A regeneration whose answer never arrived: the standby takes over, or a person must
    /// bootstrap. The intent record stays in the state document so every later run and
    /// `status` report the same.
    async fn lost(
        &mut self,
        state: RefreshState,
        intent: &RegenerationIntent,
        detail: String,
    ) -> Result<RefreshState, Failure> {
        warn!(at = %intent.started_at, %detail, "refresh token lost during regeneration");
        let reason = format!(
            "the {} refresh token was lost during regeneration at {}: {detail}",
            intent.slot, intent.started_at
        );
        match intent.slot {
            Slot::Standby => self.drop_standby(state, reason).await,
            Slot::Primary if self.has_live_standby(&state.document) => {
                self.promote_standby(state, reason).await
            }
            Slot::Primary => Err(Failure::LostDuringRegeneration {
                integration: self.integration.name.clone(),
                location: self.integration.state.label(),
                at: intent.started_at,
                detail,
                raw: self.unreadable_raw.clone(),
            }),
        }
    }

    fn has_live_standby(&self, document: &RefreshTokenDocument) -> bool {
        document
            .standby
            .as_ref()
            .is_some_and(|s| s.token_expires_at > self.now())
    }

    /// The primary refresh token is dead: mint on from the standby, or a person must act.
    pub(super) async fn replace_dead_primary(
        &mut self,
        state: RefreshState,
        reason: String,
    ) -> Result<RefreshState, Failure> {
        if self.has_live_standby(&state.document) {
            return self.promote_standby(state, reason).await;
        }
        Err(self.needs_bootstrap(reason))
    }

    async fn replace_dead_slot(
        &mut self,
        state: RefreshState,
        slot: Slot,
        reason: String,
    ) -> Result<RefreshState, Failure> {
        match slot {
            Slot::Primary => self.replace_dead_primary(state, reason).await,
            Slot::Standby => self.drop_standby(state, reason).await,
        }
    }

    async fn promote_standby(
        &mut self,
        state: RefreshState,
        reason: String,
    ) -> Result<RefreshState, Failure> {
        let standby = state
            .document
            .standby
            .clone()
            .expect("promotion needs a standby");
        if self.options.verify_credential || !self.options.dry_run {
            if let Err(error) = self
                .integration
                .source
                .check(&credential_of(&standby, state.document.user_id))
                .await
            {
                return Err(if error.is_credential_dead() {
                    self.needs_bootstrap(format!(
                        "{reason}; the standby refresh token does not work either ({error})"
                    ))
                } else {
                    Failure::alation("check the standby refresh token", error)
                });
            }
        }
        let mut document = state.document.clone();
        document.set_slot(Slot::Primary, standby.clone());
        document.standby = None;
        document.regenerating = None;
        self.degrade(state, document, reason, standby.token_expires_at)
            .await
    }

    async fn drop_standby(
        &mut self,
        state: RefreshState,
        reason: String,
    ) -> Result<RefreshState, Failure> {
        let mut document = state.document.clone();
        document.standby = None;
        document.regenerating = None;
        let expires = document.token_expires_at;
        self.degrade(state, document, reason, expires).await
    }

    /// Writes a document that runs on one refresh token and says why.
    async fn degrade(
        &mut self,
        state: RefreshState,
        mut document: RefreshTokenDocument,
        reason: String,
        expires: Timestamp,
    ) -> Result<RefreshState, Failure> {
        document.degraded = Some(Degradation {
            since: self.now(),
            reason: reason.clone(),
        });
        self.report.warnings.push(format!(
            "degraded: {reason}; minting goes on from the remaining refresh token, which expires \
             at {expires}: run `alation-rotator bootstrap {} --force` before then to restore a \
             standby",
            self.integration.name
        ));
        if self.options.dry_run {
            return Ok(StoredAs { document, ..state });
        }
        match self
            .write_state(&document, Precondition::Version(state.version.clone()))
            .await
        {
            Ok(version) => Ok(StoredAs {
                document,
                version,
                managed: true,
            }),
            Err(error) if error.is_conflict() => self.read_refresh().await,
            Err(source) => Err(Failure::store(
                "record that the standby refresh token took over",
                &self.integration.state,
                source,
            )),
        }
    }

    /// The state document names a regeneration that has not finished. A young one belongs to
    /// a runner that is still at work: wait for it. An old one was interrupted: the old token
    /// tells whether Alation replaced it.
    pub(super) async fn settle_intent(
        &mut self,
        state: RefreshState,
        intent: RegenerationIntent,
    ) -> Result<RefreshState, Failure> {
        let names_held_token = state
            .document
            .slot(intent.slot)
            .is_some_and(|t| fingerprint(&intent.salt, &t.refresh_token) == intent.fingerprint);
        if !names_held_token {
            // The token it names is gone already (stored elsewhere, or replaced by a person).
            return Ok(self.clear_intent(state).await);
        }
        let lease =
            SignedDuration::try_from(self.engine.regeneration.lease).unwrap_or(SignedDuration::MAX);
        let lease_ends = intent
            .started_at
            .checked_add(lease)
            .unwrap_or(Timestamp::MAX);
        if lease_ends > self.now()
            && intent.runner != self.engine.runner_id
            && super::runner_may_be_alive(&intent.runner)
        {
            if !self.options.dry_run {
                if let Some(settled) = self.wait_for_lease(&intent).await? {
                    return Ok(settled);
                }
            }
            return Err(Failure::RegenerationInProgress {
                location: self.integration.state.label(),
                runner: intent.runner,
                since: intent.started_at,
                lease_ends,
            });
        }
        if self.options.dry_run && !self.options.verify_credential {
            self.report.warnings.push(format!(
                "a regeneration started at {} by {} did not finish; the next run (or `status` \
                 without --offline) finds out whether the refresh token survived",
                intent.started_at, intent.runner
            ));
            return Ok(state);
        }
        let old = state
            .document
            .slot(intent.slot)
            .expect("names_held_token checked the slot");
        match self
            .integration
            .source
            .check(&credential_of(&old, state.document.user_id))
            .await
        {
            Ok(_) => {
                info!(at = %intent.started_at, "an interrupted regeneration never replaced the refresh token; clearing its intent record");
                Ok(self.clear_intent(state).await)
            }
            Err(error) if error.is_credential_dead() => {
                let raw = self.engine.escrow.as_ref().and_then(|escrow| {
                    escrow
                        .contents(&self.integration.escrow_identity())
                        .ok()
                        .and_then(|c| c.unreadable_raw.into_iter().next())
                });
                self.unreadable_raw = raw.map(|p| p.display().to_string());
                self.lost(
                    state,
                    &intent,
                    format!(
                        "runner {} stopped while its request was in flight (a crash, a kill or \
                         a lost answer) and Alation no longer accepts the old token ({error})",
                        intent.runner
                    ),
                )
                .await
            }
            Err(error) => Err(Failure::alation(
                "learn whether an interrupted regeneration replaced the refresh token",
                error,
            )),
        }
    }

    /// Polls the state document until the other runner's intent is gone, for at most
    /// `lease_wait`.
    async fn wait_for_lease(
        &mut self,
        intent: &RegenerationIntent,
    ) -> Result<Option<RefreshState>, Failure> {
        info!(runner = %intent.runner, "another runner is regenerating this refresh token; waiting for it");
        let deadline = tokio::time::Instant::now() + self.engine.regeneration.lease_wait;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let reread = self.read_refresh().await?;
            if reread.document.regenerating.as_ref() != Some(intent) {
                return Ok(Some(reread));
            }
        }
        Ok(None)
    }
}
