//! One pass over one integration: the order of the jobs, for each kind of credential.

use jiff::Timestamp;
use secrecy::ExposeSecret;
use tracing::{info, warn};

use super::hooks::Checkpoint;
use super::plan::Destinations;
use super::report::{Failure, Outcome, Report};
use super::{Engine, Integration, RunOptions};
use crate::document::TokenDocument;
use crate::document::{Degradation, OAuthClientDocument, RefreshTokenDocument};
use crate::sink::{StoredAs, TokenSinkExt};
use crate::source::{Credential, CredentialKind};

/// The state document of a refresh-token integration, as read, with its version.
pub(super) type RefreshState = StoredAs<RefreshTokenDocument>;

/// One integration's pass: what it read, what it did, what it reports.
pub(super) struct Pass<'a> {
    pub(super) engine: &'a Engine,
    pub(super) integration: &'a Integration,
    pub(super) options: RunOptions,
    pub(super) report: Report,
    /// A raw regeneration answer kept in escrow that no token could be read from.
    pub(super) unreadable_raw: Option<String>,
}

impl<'a> Pass<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        integration: &'a Integration,
        options: RunOptions,
    ) -> Self {
        Self {
            engine,
            integration,
            options,
            report: Report::new(&integration.name, integration.credential_kind()),
            unreadable_raw: None,
        }
    }

    pub(super) fn now(&self) -> Timestamp {
        self.engine.clock.now()
    }

    pub(super) async fn checkpoint(&self, point: Checkpoint) {
        self.engine.hooks.reached(point).await;
    }

    pub(super) async fn execute(mut self) -> Report {
        let outcome = if self.engine.stopping() {
            Outcome::NotReached {
                reason: "the run was told to stop (a signal or its deadline) before it reached \
                         this integration"
                    .into(),
            }
        } else {
            let result = match self.integration.credential_kind() {
                CredentialKind::OAuthClient => self.oauth().await,
                _ => self.refresh().await,
            };
            result.unwrap_or_else(Outcome::Failed)
        };
        match &outcome {
            Outcome::Fresh => info!("access token fresh everywhere; nothing written"),
            Outcome::Rotated => info!(
                expires_at = %self.report.access_expires_at.map(|t| t.to_string()).unwrap_or_default(),
                destinations = self.report.destinations.len(),
                "access token rotated"
            ),
            Outcome::WouldRotate { reason } => info!(%reason, "dry run: would rotate"),
            Outcome::NotReached { reason } => warn!(%reason, "not reached"),
            Outcome::Failed(failure) => warn!(error = %failure, "rotation failed"),
        }
        for warning in &self.report.warnings {
            warn!(%warning, "needs attention");
        }
        self.report.outcome = outcome;
        self.report
    }

    /// The refresh-token flow.
    async fn refresh(&mut self) -> Result<Outcome, Failure> {
        if self.options.dry_run {
            self.report.escrow_waiting = self
                .engine
                .escrow
                .as_ref()
                .is_some_and(|escrow| escrow.holds(&self.integration.escrow_identity()));
        } else {
            self.recover().await?;
        }
        let destinations = self.read_destinations().await;
        let mut state = self.read_refresh().await?;
        if let Some(intent) = state.document.regenerating.clone() {
            // A dry run that finds the new token in escrow leaves the intent to the recovery
            // of the next real run.
            if !(self.options.dry_run && self.report.escrow_waiting) {
                state = self.settle_intent(state, intent).await?;
            }
        }
        // A token waiting in escrow replaces the stored one at the next run: judging the
        // stored one now would page for nothing.
        if !(self.options.dry_run && self.report.escrow_waiting) {
            state = self.ensure_primary_alive(state).await?;
        }
        self.note_refresh(&state.document);

        if self.options.dry_run {
            let credential = refresh_credential(&state.document);
            let generations = state.document.generations();
            let reason = self
                .stale_reason(&destinations, Some(&generations), &credential)
                .await;
            return Ok(self.planned(destinations, reason));
        }
        state = self.maybe_regenerate(state).await?;
        self.note_refresh(&state.document);
        let generations = state.document.generations();
        let credential = refresh_credential(&state.document);
        let reason = match self
            .stale_reason(&destinations, Some(&generations), &credential)
            .await
        {
            Some(reason) => reason,
            None => return Ok(self.fresh(destinations)),
        };
        info!(%reason, "rotating access token");
        self.engine.wait_for_source_slot().await;
        if self.engine.stopping() {
            return Ok(Outcome::NotReached {
                reason: "the run was told to stop before this integration's access token was \
                         minted"
                    .into(),
            });
        }
        let (token, generation) = self.mint_refresh(&mut state).await?;
        self.checkpoint(Checkpoint::AfterMint).await;
        let generations = state.document.generations();
        self.deliver_all(destinations, token, Some(generation), Some(&generations))
            .await
    }

    /// The OAuth 2.0 client-credentials flow: no refresh token, nothing to regenerate.
    async fn oauth(&mut self) -> Result<Outcome, Failure> {
        let destinations = self.read_destinations().await;
        let state = self.read_oauth().await?;
        let credential = Credential::OAuthClient {
            client_id: state.document.client_id.clone(),
            client_secret: state.document.client_secret.clone(),
        };
        if self.options.verify_credential {
            if let Err(error) = self.integration.source.check(&credential).await {
                return Err(self.dead_or_failed(error, "check the stored client credentials"));
            }
        }
        let reason = self.stale_reason(&destinations, None, &credential).await;
        if self.options.dry_run {
            return Ok(self.planned(destinations, reason));
        }
        let Some(reason) = reason else {
            return Ok(self.fresh(destinations));
        };
        info!(%reason, "rotating access token");
        self.engine.wait_for_source_slot().await;
        if self.engine.stopping() {
            return Ok(Outcome::NotReached {
                reason: "the run was told to stop before this integration's access token was \
                         minted"
                    .into(),
            });
        }
        let token = self
            .integration
            .source
            .issue(&credential)
            .await
            .map_err(|error| self.dead_or_failed(error, "issue an access token"))?;
        self.checkpoint(Checkpoint::AfterMint).await;
        self.deliver_all(destinations, token, None, None).await
    }

    /// The outcome of a dry run.
    fn planned(&self, destinations: Destinations, reason: Option<String>) -> Outcome {
        match (destinations.read_failure, reason) {
            (Some(failure), _) => Outcome::Failed(failure),
            (None, Some(reason)) => Outcome::WouldRotate { reason },
            (None, None) => Outcome::Fresh,
        }
    }

    /// Nothing to renew; a destination that could not be read still fails the integration.
    fn fresh(&self, destinations: Destinations) -> Outcome {
        match destinations.read_failure {
            Some(failure) => Outcome::Failed(failure),
            None => Outcome::Fresh,
        }
    }

    /// A source error as a failure: a dead credential needs a person.
    pub(super) fn dead_or_failed(
        &self,
        error: crate::source::SourceError,
        action: &'static str,
    ) -> Failure {
        if error.is_credential_dead() {
            self.needs_bootstrap(error.to_string())
        } else {
            Failure::alation(action, error)
        }
    }

    pub(super) fn needs_bootstrap(&self, reason: String) -> Failure {
        Failure::NeedsBootstrap {
            integration: self.integration.name.clone(),
            credential: self.integration.credential_kind(),
            location: self.integration.state.label(),
            reason,
        }
    }

    pub(super) async fn read_refresh(&self) -> Result<RefreshState, Failure> {
        self.read_state("read the refresh token", "no refresh token is stored there")
            .await
    }

    async fn read_oauth(&self) -> Result<StoredAs<OAuthClientDocument>, Failure> {
        self.read_state(
            "read the client credentials",
            "no client credentials are stored there",
        )
        .await
    }

    /// Reads the state document; nothing there means the integration needs a bootstrap.
    async fn read_state<D: TokenDocument + Send>(
        &self,
        action: &'static str,
        missing: &str,
    ) -> Result<StoredAs<D>, Failure> {
        let location = &self.integration.state;
        match location.sink.read_as::<D>(&location.key).await {
            Ok(Some(stored)) => Ok(stored),
            Ok(None) => Err(self.needs_bootstrap(missing.into())),
            Err(source) => Err(Failure::store(action, location, source)),
        }
    }

    /// Copies what the state document says into the report.
    pub(super) fn note_refresh(&mut self, document: &RefreshTokenDocument) {
        let policy = &self.integration.policy;
        self.report.refresh_expires_at = Some(document.token_expires_at);
        self.report.standby_expires_at = document.standby.as_ref().map(|s| s.token_expires_at);
        self.report.refresh_due = policy.refresh_renew_before.is_due(
            self.now(),
            document.created_at,
            document.token_expires_at,
        );
        self.report.degraded = match (&document.degraded, &document.standby) {
            (Some(degraded), _) => Some(degraded.clone()),
            (None, None) if policy.standby => Some(Degradation {
                since: document.created_at,
                reason: "standby = true but no standby refresh token is stored; run \
                         `alation-rotator bootstrap NAME --force` to store two"
                    .into(),
            }),
            _ => None,
        };
    }

    /// A primary refresh token that expired, or that the source says is dead (with
    /// `verify_credential`), is replaced by the standby, or the integration needs a person.
    async fn ensure_primary_alive(&mut self, state: RefreshState) -> Result<RefreshState, Failure> {
        let document = &state.document;
        if document.token_expires_at <= self.now() {
            let reason = format!(
                "the stored refresh token expired at {}",
                document.token_expires_at
            );
            return self.replace_dead_primary(state, reason).await;
        }
        if self.options.verify_credential {
            if let Err(error) = self
                .integration
                .source
                .check(&refresh_credential(document))
                .await
            {
                if !error.is_credential_dead() {
                    return Err(Failure::alation("check the stored refresh token", error));
                }
                return self.replace_dead_primary(state, error.to_string()).await;
            }
        }
        Ok(state)
    }

    /// Compares a stored token with one in hand, without printing either.
    pub(super) fn same_token(a: &secrecy::SecretString, b: &secrecy::SecretString) -> bool {
        a.expose_secret() == b.expose_secret()
    }
}

/// The primary refresh token as a credential.
pub(super) fn refresh_credential(document: &RefreshTokenDocument) -> Credential {
    Credential::RefreshToken {
        refresh_token: document.refresh_token.clone(),
        user_id: document.user_id,
    }
}
