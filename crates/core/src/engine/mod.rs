//! The rotation engine: per integration and per run, decide whether the access token is
//! fresh; if not, make sure the refresh token is healthy (regenerating it when it nears
//! expiry), mint a new access token, write it to every destination with compare-and-set and
//! read it back.
//!
//! Integrations run concurrently up to a bound and independently: one failure never stops
//! the others. Each run yields one [`Report`] per integration.

mod escrow;
pub mod hooks;
mod report;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use futures::stream::{self, StreamExt};
use jiff::Timestamp;
use rotator_alation::{AccessToken, AlationClient, AlationError, ExposeSecret, RefreshToken};
use tracing::{info, warn, Instrument};

use crate::clock::Clock;
use crate::document::{AccessTokenDocument, RefreshTokenDocument, TokenDocument};
use crate::error::SinkError;
use crate::policy::Policy;
use crate::sink::{Precondition, StoredAs, TokenSink, TokenSinkExt, Version};
use hooks::checkpoint;

pub use escrow::{Escrow, EscrowError};
pub use report::{DestinationReport, Failure, Outcome, Report};

/// A place a document is kept: a configured store and a key in it.
#[derive(Clone, Debug)]
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
    /// `store:key`, for messages.
    pub fn label(&self) -> String {
        format!("{}:{}", self.store, self.key)
    }
}

/// One consumer of Alation's API with its own refresh token.
#[derive(Clone, Debug)]
pub struct Integration {
    /// Unique name.
    pub name: String,
    /// The Alation user the tokens belong to.
    pub user_id: i64,
    /// Where the refresh-token document lives.
    pub refresh_token: Location,
    /// Where the access-token document is delivered.
    pub access_token: Vec<Location>,
    /// Renewal rules.
    pub policy: Policy,
}

/// How a run behaves.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Decide and report, but write nothing and contact no Alation endpoint (except the
    /// read-only check that `verify_refresh` asks for).
    pub dry_run: bool,
    /// Mint a new access token even where the current one is fresh.
    pub force: bool,
    /// Ask Alation (`validateRefreshToken`, which changes nothing) whether the stored refresh
    /// token is still active; `status` uses it to tell "needs bootstrap" apart.
    pub verify_refresh: bool,
}

/// Runs rotations.
#[derive(Debug, Clone)]
pub struct Engine {
    client: AlationClient,
    clock: Arc<dyn Clock>,
    max_concurrency: usize,
    escrow: Option<Escrow>,
    store_retry: ExponentialBuilder,
}

impl Engine {
    /// An engine that talks to Alation through `client` and reads time from `clock`.
    pub fn new(client: AlationClient, clock: Arc<dyn Clock>) -> Self {
        Self {
            client,
            clock,
            max_concurrency: 8,
            escrow: None,
            store_retry: ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(200))
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(4)
                .with_jitter(),
        }
    }

    /// How many integrations run at once (at least one).
    pub fn with_max_concurrency(mut self, max: usize) -> Self {
        self.max_concurrency = max.max(1);
        self
    }

    /// The local escrow: a regenerated refresh token is written there first, and stays there
    /// when its state store cannot take it, until a later run stores it.
    pub fn with_escrow(mut self, escrow: Escrow) -> Self {
        self.escrow = Some(escrow);
        self
    }

    /// How writes to stores are retried when the store is unavailable.
    pub fn with_store_retry(mut self, retry: ExponentialBuilder) -> Self {
        self.store_retry = retry;
        self
    }

    /// The Alation client.
    pub fn client(&self) -> &AlationClient {
        &self.client
    }

    /// One pass over `integrations`, at most `max_concurrency` at a time. Reports come back in
    /// the order of `integrations`.
    pub async fn run(&self, integrations: &[Integration], options: RunOptions) -> Vec<Report> {
        stream::iter(integrations)
            .map(|integration| {
                let span = tracing::info_span!("integration", integration = %integration.name);
                self.run_one(integration, options).instrument(span)
            })
            .buffered(self.max_concurrency)
            .collect()
            .await
    }

    /// One pass over a single integration.
    pub async fn run_one(&self, integration: &Integration, options: RunOptions) -> Report {
        let mut run = Run::new(self, integration, options);
        let outcome = run.execute().await;
        run.report.outcome = outcome;
        match &run.report.outcome {
            Outcome::Fresh => info!("access token fresh everywhere; nothing written"),
            Outcome::Rotated => info!(
                expires_at = %run.report.access_expires_at.map(|t| t.to_string()).unwrap_or_default(),
                destinations = run.report.destinations.len(),
                "access token rotated"
            ),
            Outcome::WouldRotate { reason } => info!(%reason, "dry run: would rotate"),
            Outcome::Failed(failure) => warn!(error = %failure, "rotation failed"),
        }
        run.report
    }

    /// Reads every integration's stored documents and escrow and writes nothing. With
    /// `verify_refresh`, asks Alation whether each stored refresh token is still active
    /// (read-only); without it, contacts nothing but the stores.
    pub async fn status(&self, integrations: &[Integration], verify_refresh: bool) -> Vec<Report> {
        self.run(
            integrations,
            RunOptions {
                dry_run: true,
                force: false,
                verify_refresh,
            },
        )
        .await
    }
}

/// The access-token state of one destination, as read at the start of a run.
enum Current {
    Absent,
    /// Holds something we must replace; `version` allows compare-and-set over it.
    Stale {
        version: Version,
    },
    Valid {
        document: AccessTokenDocument,
        version: Version,
    },
}

struct Run<'a> {
    engine: &'a Engine,
    integration: &'a Integration,
    options: RunOptions,
    report: Report,
}

impl<'a> Run<'a> {
    fn new(engine: &'a Engine, integration: &'a Integration, options: RunOptions) -> Self {
        Self {
            engine,
            integration,
            options,
            report: Report::new(&integration.name),
        }
    }

    fn now(&self) -> Timestamp {
        self.engine.clock.now()
    }

    async fn execute(&mut self) -> Outcome {
        if !self.options.dry_run {
            if let Err(failure) = self.recover_escrow().await {
                return Outcome::Failed(failure);
            }
        } else if let Some(escrow) = &self.engine.escrow {
            self.report.escrow_waiting = escrow.holds(&self.integration.name);
        }

        let mut currents = Vec::with_capacity(self.integration.access_token.len());
        let mut read_failure = None;
        for location in &self.integration.access_token {
            match self.read_access(location).await {
                Ok(current) => currents.push(Some(current)),
                Err(failure) => {
                    self.report
                        .destinations
                        .push(DestinationReport::failed(location, &failure));
                    read_failure.get_or_insert(failure);
                    currents.push(None);
                }
            }
        }
        if let Some(expires) = self.earliest_valid_expiry(&currents) {
            self.report.access_expires_at = Some(expires);
        }

        let stale_reason = self.stale_reason(&currents).await;
        let refresh = match self.read_refresh().await {
            Ok(refresh) => refresh,
            Err(failure) => return Outcome::Failed(failure),
        };
        self.report.refresh_expires_at = Some(refresh.document.token_expires_at);
        if refresh.document.token_expires_at <= self.now() {
            return Outcome::Failed(Failure::NeedsBootstrap {
                integration: self.integration.name.clone(),
                location: self.integration.refresh_token.label(),
                reason: format!(
                    "the stored refresh token expired at {}",
                    refresh.document.token_expires_at
                ),
            });
        }
        if self.options.verify_refresh {
            if let Err(error) = self
                .engine
                .client
                .validate_refresh_token(&refresh.document.refresh_token, refresh.document.user_id)
                .await
            {
                let reason = error.to_string();
                return Outcome::Failed(
                    if error.is_token_expired_or_revoked()
                        || matches!(error, AlationError::TokenInvalid { .. })
                    {
                        Failure::NeedsBootstrap {
                            integration: self.integration.name.clone(),
                            location: self.integration.refresh_token.label(),
                            reason,
                        }
                    } else {
                        Failure::Alation {
                            action: "validate the stored refresh token",
                            source: error,
                        }
                    },
                );
            }
        }
        self.report.refresh_due = self.integration.policy.refresh_renew_before.is_due(
            self.now(),
            refresh.document.created_at,
            refresh.document.token_expires_at,
        );

        if self.options.dry_run {
            return match (read_failure, stale_reason) {
                (Some(failure), _) => Outcome::Failed(failure),
                (None, Some(reason)) => Outcome::WouldRotate { reason },
                (None, None) => Outcome::Fresh,
            };
        }
        let refresh = match self.maybe_regenerate(refresh).await {
            Ok(refresh) => refresh,
            Err(failure) => return Outcome::Failed(failure),
        };
        // Alation may revoke the access tokens of a refresh token it regenerates, so a new
        // refresh token always brings a new access token.
        let reason = match stale_reason {
            Some(reason) => reason,
            None if self.report.refresh_regenerated => {
                "the refresh token was regenerated; tokens minted from the old one may be revoked"
                    .to_owned()
            }
            None => {
                return match read_failure {
                    Some(failure) => Outcome::Failed(failure),
                    None => Outcome::Fresh,
                }
            }
        };
        info!(%reason, "rotating access token");

        let token = match self.mint(&refresh).await {
            Ok(token) => token,
            Err(failure) => return Outcome::Failed(failure),
        };
        checkpoint("after-mint").await;
        let document = AccessTokenDocument {
            api_access_token: token.api_access_token,
            user_id: token.user_id,
            token_expires_at: token.token_expires_at,
            created_at: token.created_at,
            base_url: self.engine.client.base_url().to_string(),
            integration: self.integration.name.clone(),
        };
        self.report.access_expires_at = Some(document.token_expires_at);

        let mut first_failure = read_failure;
        for (location, current) in self.integration.access_token.iter().zip(currents) {
            let Some(current) = current else { continue };
            let result = self.deliver(location, current, &document).await;
            match result {
                Ok(report) => {
                    self.report.destinations.push(report);
                    checkpoint("after-first-write").await;
                }
                Err(failure) => {
                    self.report
                        .destinations
                        .push(DestinationReport::failed(location, &failure));
                    first_failure.get_or_insert(failure);
                }
            }
        }
        match first_failure {
            Some(failure) => Outcome::Failed(failure),
            None => Outcome::Rotated,
        }
    }

    fn earliest_valid_expiry(&self, currents: &[Option<Current>]) -> Option<Timestamp> {
        currents
            .iter()
            .flatten()
            .filter_map(|c| match c {
                Current::Valid { document, .. } => Some(document.token_expires_at),
                _ => None,
            })
            .min()
    }

    async fn read_access(&self, location: &Location) -> Result<Current, Failure> {
        let stored = location
            .sink
            .read(&location.key)
            .await
            .map_err(|source| Failure::store("read the access token", location, source))?;
        let Some(stored) = stored else {
            return Ok(Current::Absent);
        };
        match AccessTokenDocument::from_document(&stored.document) {
            Ok(document) if stored.managed => Ok(Current::Valid {
                document,
                version: stored.version,
            }),
            Ok(_) | Err(_) => Ok(Current::Stale {
                version: stored.version,
            }),
        }
    }

    /// Why the access token must be renewed, or `None` when every destination is fresh.
    async fn stale_reason(&self, currents: &[Option<Current>]) -> Option<String> {
        if self.options.force {
            return Some("--force".into());
        }
        let now = self.now();
        let base_url = self.engine.client.base_url().to_string();
        let policy = &self.integration.policy;
        for (location, current) in self.integration.access_token.iter().zip(currents) {
            let Some(current) = current else { continue };
            let document = match current {
                Current::Absent => return Some(format!("{} holds no token", location.label())),
                Current::Stale { .. } => {
                    return Some(format!(
                        "{} holds something that is not a managed token document",
                        location.label()
                    ))
                }
                Current::Valid { document, .. } => document,
            };
            if document.user_id != self.integration.user_id || document.base_url != base_url {
                return Some(format!(
                    "{} holds a token for another user or Alation instance",
                    location.label()
                ));
            }
            if policy.access_renew_before.is_due(
                now,
                document.created_at,
                document.token_expires_at,
            ) {
                return Some(format!(
                    "{} token expires at {} (renew {} before)",
                    location.label(),
                    document.token_expires_at,
                    policy.access_renew_before
                ));
            }
            if policy.validate && !self.options.dry_run {
                if let Err(error) = self
                    .engine
                    .client
                    .validate_access_token(&document.api_access_token, document.user_id)
                    .await
                {
                    return Some(format!(
                        "Alation no longer accepts the token at {}: {error}",
                        location.label()
                    ));
                }
            }
        }
        None
    }

    async fn read_refresh(&self) -> Result<StoredAs<RefreshTokenDocument>, Failure> {
        let location = &self.integration.refresh_token;
        match location
            .sink
            .read_as::<RefreshTokenDocument>(&location.key)
            .await
        {
            Ok(Some(stored)) => Ok(stored),
            Ok(None) => Err(Failure::NeedsBootstrap {
                integration: self.integration.name.clone(),
                location: location.label(),
                reason: "no refresh token is stored there".into(),
            }),
            Err(source) => Err(Failure::store("read the refresh token", location, source)),
        }
    }

    /// Regenerates the refresh token when it nears expiry and persists the new one before
    /// anything else happens. Returns the refresh token to use.
    async fn maybe_regenerate(
        &mut self,
        current: StoredAs<RefreshTokenDocument>,
    ) -> Result<RefreshTokenDocument, Failure> {
        let policy = &self.integration.policy;
        let doc = &current.document;
        if !policy
            .refresh_renew_before
            .is_due(self.now(), doc.created_at, doc.token_expires_at)
        {
            return Ok(current.document);
        }
        info!(expires_at = %doc.token_expires_at, "regenerating the refresh token");
        checkpoint("before-regen").await;
        let regenerated = match self
            .engine
            .client
            .regen_refresh_token(&doc.refresh_token, doc.user_id)
            .await
        {
            Ok(token) => token,
            Err(AlationError::NotSupported { .. }) => {
                warn!(
                    expires_at = %doc.token_expires_at,
                    "this Alation does not offer regenRefreshToken: the refresh token cannot be \
                     renewed automatically; bootstrap a new one before it expires \
                     (alation-rotator bootstrap {} --force)",
                    self.integration.name
                );
                self.report.warnings.push(format!(
                    "refresh token expires at {} and this Alation cannot regenerate it: run \
                     `alation-rotator bootstrap {} --force` before then",
                    doc.token_expires_at, self.integration.name
                ));
                return Ok(current.document);
            }
            Err(error) if error.is_token_expired_or_revoked() => {
                return self.adopt_newer_refresh(&current.version, error).await;
            }
            Err(source) => {
                return Err(Failure::Alation {
                    action: "regenerate the refresh token",
                    source,
                })
            }
        };
        // The old token is dead from here on. Until the new one is written somewhere durable
        // a crash loses it: this is the window docs/operations.md names.
        checkpoint("after-regen").await;
        let document = self.refresh_document(regenerated, Some(self.now()));
        let escrowed = self
            .engine
            .escrow
            .as_ref()
            .map(|escrow| escrow.put(&self.integration.name, &document));
        if let Some(Err(error)) = &escrowed {
            warn!(%error, "could not write the regenerated refresh token to escrow first; storing it directly");
        }
        checkpoint("after-escrow").await;
        self.persist_refresh(&document, Precondition::Version(current.version), escrowed)
            .await?;
        checkpoint("after-persist-refresh").await;
        self.report.refresh_regenerated = true;
        self.report.refresh_due = false;
        self.report.refresh_expires_at = Some(document.token_expires_at);
        Ok(document)
    }

    fn refresh_document(
        &self,
        token: RefreshToken,
        regenerated_at: Option<Timestamp>,
    ) -> RefreshTokenDocument {
        RefreshTokenDocument {
            refresh_token: token.refresh_token,
            user_id: token.user_id,
            name: token.name,
            token_expires_at: token.token_expires_at,
            created_at: token.created_at,
            integration: self.integration.name.clone(),
            last_regenerated_at: regenerated_at,
        }
    }

    /// Alation refused our refresh token. If another runner stored a newer one meanwhile, use
    /// that; otherwise the integration needs a person.
    async fn adopt_newer_refresh(
        &self,
        seen: &Version,
        error: AlationError,
    ) -> Result<RefreshTokenDocument, Failure> {
        // A runner that regenerated concurrently may still be storing its new token: give it
        // a moment before calling the integration broken.
        for attempt in 0..5 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            let reread = self.read_refresh().await?;
            if &reread.version != seen {
                info!("another runner stored a new refresh token; using it");
                return Ok(reread.document);
            }
        }
        Err(Failure::NeedsBootstrap {
            integration: self.integration.name.clone(),
            location: self.integration.refresh_token.label(),
            reason: error.to_string(),
        })
    }

    /// Writes a regenerated refresh token to the state location with retries. It was put in
    /// escrow first (`escrowed`); on success the escrow copy is removed, on failure it stays
    /// for the next run.
    async fn persist_refresh(
        &self,
        document: &RefreshTokenDocument,
        precondition: Precondition,
        escrowed: Option<Result<PathBuf, EscrowError>>,
    ) -> Result<Version, Failure> {
        let location = &self.integration.refresh_token;
        let error = match self
            .write_with_retry(location, document, precondition)
            .await
        {
            Ok(version) => {
                self.discard_escrow();
                return Ok(version);
            }
            Err(error) if error.is_conflict() => match self.stored_is(document).await {
                // A concurrent run recovered our escrowed token into the state location.
                Some(version) => {
                    self.discard_escrow();
                    return Ok(version);
                }
                None => error,
            },
            Err(error) => error,
        };
        match escrowed {
            Some(Ok(path)) => Err(Failure::RefreshEscrowed {
                location: location.label(),
                escrow: path.display().to_string(),
                source: error,
            }),
            Some(Err(escrow_error)) => Err(Failure::RefreshTokenLost {
                location: location.label(),
                source: error,
                escrow: Some(escrow_error),
            }),
            None => Err(Failure::RefreshTokenLost {
                location: location.label(),
                source: error,
                escrow: None,
            }),
        }
    }

    /// The version of the state document if it holds exactly this refresh token.
    async fn stored_is(&self, document: &RefreshTokenDocument) -> Option<Version> {
        let location = &self.integration.refresh_token;
        let stored = location
            .sink
            .read_as::<RefreshTokenDocument>(&location.key)
            .await
            .ok()??;
        (stored.document.refresh_token.expose_secret() == document.refresh_token.expose_secret())
            .then_some(stored.version)
    }

    fn discard_escrow(&self) {
        if let Some(escrow) = &self.engine.escrow {
            if let Err(error) = escrow.remove(&self.integration.name) {
                warn!(%error, "the refresh token is stored but its escrow copy could not be removed; the next run will tidy it");
            }
        }
    }

    async fn write_with_retry<D: TokenDocument + Sync>(
        &self,
        location: &Location,
        document: &D,
        precondition: Precondition,
    ) -> Result<Version, SinkError> {
        (|| {
            location
                .sink
                .write_as(&location.key, document, precondition.clone(), location.takeover)
        })
        .retry(self.engine.store_retry)
        .when(SinkError::is_retryable)
        .notify(|error, delay| {
            warn!(location = %location.label(), %error, ?delay, "store unavailable; retrying")
        })
        .await
    }

    /// A refresh token kept in escrow by an earlier run goes to the state location first.
    async fn recover_escrow(&mut self) -> Result<(), Failure> {
        let Some(escrow) = &self.engine.escrow else {
            return Ok(());
        };
        let name = &self.integration.name;
        let escrowed = match escrow.get(name) {
            Ok(Some(document)) => document,
            Ok(None) => return Ok(()),
            Err(error) => return Err(Failure::Escrow { source: error }),
        };
        info!("recovering the refresh token kept in escrow");
        // Read the state first: the version read here is what compare-and-set checks, so a
        // token another runner stores after this read is never overwritten.
        let location = &self.integration.refresh_token;
        let precondition = match location.sink.read(&location.key).await {
            Ok(Some(stored)) => {
                let holds_escrowed = RefreshTokenDocument::from_document(&stored.document)
                    .is_ok_and(|d| {
                        d.refresh_token.expose_secret() == escrowed.refresh_token.expose_secret()
                    });
                if holds_escrowed {
                    info!("the escrowed refresh token is already stored; removing the escrow copy");
                    return escrow
                        .remove(name)
                        .map_err(|source| Failure::Escrow { source });
                }
                Precondition::Version(stored.version)
            }
            Ok(None) => Precondition::Absent,
            Err(source) => {
                return Err(Failure::store(
                    "read the refresh token before recovering escrow",
                    location,
                    source,
                ))
            }
        };
        let checked = self
            .engine
            .client
            .validate_refresh_token(&escrowed.refresh_token, escrowed.user_id)
            .await;
        if let Err(error) = checked {
            if !error.is_token_expired_or_revoked() {
                return Err(Failure::Alation {
                    action: "validate the escrowed refresh token",
                    source: error,
                });
            }
            warn!(%error, "the escrowed refresh token is no longer valid; discarding it");
            return escrow
                .remove(name)
                .map_err(|source| Failure::Escrow { source });
        }
        match self
            .write_with_retry(location, &escrowed, precondition)
            .await
        {
            Ok(_) => {}
            Err(error) if error.is_conflict() && self.stored_is(&escrowed).await.is_some() => {}
            Err(source) => {
                return Err(Failure::RefreshEscrowed {
                    location: location.label(),
                    escrow: escrow.path_of(name).display().to_string(),
                    source,
                })
            }
        }
        escrow
            .remove(name)
            .map_err(|source| Failure::Escrow { source })?;
        self.report.escrow_recovered = true;
        info!("refresh token recovered from escrow");
        Ok(())
    }

    async fn mint(&self, refresh: &RefreshTokenDocument) -> Result<AccessToken, Failure> {
        match self
            .engine
            .client
            .create_access_token(&refresh.refresh_token, refresh.user_id)
            .await
        {
            Ok(token) => Ok(token),
            Err(error) if error.is_token_expired_or_revoked() => {
                let location = &self.integration.refresh_token;
                let reread = self.read_refresh().await?;
                if reread.document.refresh_token.expose_secret()
                    != refresh.refresh_token.expose_secret()
                {
                    let token = self
                        .engine
                        .client
                        .create_access_token(
                            &reread.document.refresh_token,
                            reread.document.user_id,
                        )
                        .await
                        .map_err(|source| Failure::Alation {
                            action: "mint an access token",
                            source,
                        })?;
                    return Ok(token);
                }
                Err(Failure::NeedsBootstrap {
                    integration: self.integration.name.clone(),
                    location: location.label(),
                    reason: error.to_string(),
                })
            }
            Err(source) => Err(Failure::Alation {
                action: "mint an access token",
                source,
            }),
        }
    }

    /// Writes the new token to one destination with compare-and-set over what was read, then
    /// reads it back.
    async fn deliver(
        &self,
        location: &Location,
        current: Current,
        document: &AccessTokenDocument,
    ) -> Result<DestinationReport, Failure> {
        let precondition = match current {
            Current::Absent => Precondition::Absent,
            Current::Stale { version } | Current::Valid { version, .. } => {
                Precondition::Version(version)
            }
        };
        let written = self
            .write_with_retry(location, document, precondition)
            .await;
        match written {
            Ok(version) => {
                self.read_back(location, document).await?;
                Ok(DestinationReport::written(location, version))
            }
            Err(error) if error.is_conflict() => self.accept_winner(location, error).await,
            Err(source) => Err(Failure::store("write the access token", location, source)),
        }
    }

    async fn read_back(
        &self,
        location: &Location,
        document: &AccessTokenDocument,
    ) -> Result<(), Failure> {
        let stored = location
            .sink
            .read_as::<AccessTokenDocument>(&location.key)
            .await
            .map_err(|source| Failure::store("read back the access token", location, source))?;
        match stored {
            Some(stored)
                if stored.document.api_access_token.expose_secret()
                    == document.api_access_token.expose_secret() =>
            {
                Ok(())
            }
            Some(stored) if self.is_fresh(&stored.document) => Ok(()),
            _ => Err(Failure::ReadBack {
                location: location.label(),
            }),
        }
    }

    /// Another runner wrote between our read and our write. If what it wrote is fresh, it
    /// serves as well as ours.
    async fn accept_winner(
        &self,
        location: &Location,
        conflict: SinkError,
    ) -> Result<DestinationReport, Failure> {
        let stored = location
            .sink
            .read_as::<AccessTokenDocument>(&location.key)
            .await
            .map_err(|source| Failure::store("re-read after a conflict", location, source))?;
        match stored {
            Some(stored) if stored.managed && self.is_fresh(&stored.document) => {
                info!(location = %location.label(), "another runner wrote a fresh token first; keeping it");
                Ok(DestinationReport::kept_winner(location, stored.version))
            }
            _ => Err(Failure::store("write the access token", location, conflict)),
        }
    }

    fn is_fresh(&self, document: &AccessTokenDocument) -> bool {
        document.user_id == self.integration.user_id
            && !self.integration.policy.access_renew_before.is_due(
                self.now(),
                document.created_at,
                document.token_expires_at,
            )
    }
}

impl Engine {
    /// Decides how a bootstrap may write the state location, before any token is created:
    /// an empty location takes `Absent`; a location holding a token that Alation still accepts
    /// is refused unless `force`; a dead or unreadable token may be replaced (that is what
    /// bootstrap is for), with compare-and-set over the version read.
    pub async fn bootstrap_precondition(
        &self,
        integration: &Integration,
        force: bool,
    ) -> Result<Precondition, Failure> {
        let location = &integration.refresh_token;
        let stored = match location
            .sink
            .read_as::<RefreshTokenDocument>(&location.key)
            .await
        {
            Ok(Some(stored)) => stored,
            Ok(None) => return Ok(Precondition::Absent),
            Err(SinkError::InvalidDocument { .. }) if force => {
                let stored =
                    location.sink.read(&location.key).await.map_err(|source| {
                        Failure::store("read the refresh token", location, source)
                    })?;
                return Ok(
                    stored.map_or(Precondition::Absent, |s| Precondition::Version(s.version))
                );
            }
            Err(source) => return Err(Failure::store("read the refresh token", location, source)),
        };
        if force {
            return Ok(Precondition::Version(stored.version));
        }
        match self
            .client
            .validate_refresh_token(&stored.document.refresh_token, stored.document.user_id)
            .await
        {
            Ok(active) => Err(Failure::AlreadyBootstrapped {
                integration: integration.name.clone(),
                location: location.label(),
                expires_at: active.token_expires_at,
            }),
            Err(error)
                if error.is_token_expired_or_revoked()
                    || matches!(error, AlationError::TokenInvalid { .. }) =>
            {
                Ok(Precondition::Version(stored.version))
            }
            Err(source) => Err(Failure::Alation {
                action: "check the stored refresh token",
                source,
            }),
        }
    }

    /// Stores a refresh token obtained by `bootstrap` (created with a password, or pasted and
    /// validated) under `precondition` from [`Engine::bootstrap_precondition`].
    pub async fn store_bootstrap(
        &self,
        integration: &Integration,
        token: RefreshToken,
        precondition: Precondition,
    ) -> Result<Version, Failure> {
        if token.user_id != integration.user_id {
            return Err(Failure::UserMismatch {
                integration: integration.name.clone(),
                configured: integration.user_id,
                actual: token.user_id,
            });
        }
        let run = Run::new(self, integration, RunOptions::default());
        let location = &integration.refresh_token;
        let document = run.refresh_document(token, None);
        run.write_with_retry(location, &document, precondition)
            .await
            .map_err(|source| Failure::store("store the refresh token", location, source))
    }

    /// Incident response: revokes every access token minted from the integration's refresh
    /// token, then mints a fresh one and pushes it to every destination.
    pub async fn revoke(&self, integration: &Integration) -> Report {
        let mut run = Run::new(self, integration, RunOptions::default());
        let revoked = async {
            let refresh = run.read_refresh().await?;
            self.client
                .revoke_access_tokens(&refresh.document.refresh_token, refresh.document.user_id)
                .await
                .map_err(|source| Failure::Alation {
                    action: "revoke the access tokens",
                    source,
                })
        }
        .await;
        match revoked {
            Ok(detail) => info!(%detail, "revoked every access token of the integration"),
            Err(failure) => {
                warn!(error = %failure, "revocation failed");
                run.report.outcome = Outcome::Failed(failure);
                return run.report;
            }
        }
        self.run_one(
            integration,
            RunOptions {
                force: true,
                ..RunOptions::default()
            },
        )
        .await
    }
}
