//! Issuing an access token and writing it to every destination: compare-and-set over what
//! was read, a read-back where the store cannot compare-and-set, and conflicts with other
//! writers (theirs is kept only if it is at least as new as ours).

use jiff::Timestamp;
use tracing::info;

use super::hooks::Checkpoint;
use super::pass::{refresh_credential, Pass, RefreshState};
use super::plan::{Current, Destinations};
use super::report::{DestinationReport, Failure, Outcome};
use super::Location;
use crate::document::{AccessTokenDocument, TokenDocument};
use crate::error::SinkError;
use crate::sink::{Precondition, TokenSinkExt, Version};
use crate::source::IssuedToken;
use backon::Retryable;

/// How often a write that lost a race to an older token is tried again.
const CONFLICT_ATTEMPTS: usize = 3;

impl Pass<'_> {
    /// Mints from the primary refresh token. If Alation refuses it, another runner may have
    /// regenerated it (use the stored one), or the standby takes over, or a person must act.
    pub(super) async fn mint_refresh(
        &mut self,
        state: &mut RefreshState,
    ) -> Result<(IssuedToken, Timestamp), Failure> {
        let source = std::sync::Arc::clone(&self.integration.source);
        let error = match source.issue(&refresh_credential(&state.document)).await {
            Ok(token) => return Ok((token, state.document.created_at)),
            Err(error) if error.is_credential_dead() => error,
            Err(error) => return Err(Failure::alation("mint an access token", error)),
        };
        let reread = self.read_refresh().await?;
        if Self::same_token(
            &reread.document.refresh_token,
            &state.document.refresh_token,
        ) {
            *state = self
                .replace_dead_primary(state.clone(), error.to_string())
                .await?;
        } else {
            info!("another runner stored a new refresh token; minting from it");
            *state = reread;
        }
        self.note_refresh(&state.document);
        let token = source
            .issue(&refresh_credential(&state.document))
            .await
            .map_err(|error| self.dead_or_failed(error, "mint an access token"))?;
        Ok((token, state.document.created_at))
    }

    /// Writes the new token to every destination that could be read.
    pub(super) async fn deliver_all(
        &mut self,
        destinations: Destinations,
        token: IssuedToken,
        generation: Option<Timestamp>,
        generations: Option<&[Timestamp]>,
    ) -> Result<Outcome, Failure> {
        let document = AccessTokenDocument {
            api_access_token: token.access_token,
            user_id: token.user_id.or(self.integration.user_id),
            token_expires_at: token.expires_at,
            created_at: token.created_at,
            base_url: self.integration.source.base_url(),
            integration: self.integration.name.clone(),
            token_type: token.token_type,
            refresh_token_created_at: generation,
        };
        self.report.access_expires_at = Some(document.token_expires_at);
        self.report.access_created_at = Some(document.created_at);
        let mut first_failure = destinations.read_failure;
        let mut first_write = true;
        for (location, current) in self
            .integration
            .access_token
            .iter()
            .zip(destinations.currents)
        {
            let Some(current) = current else { continue };
            match self
                .deliver(location, &current, &document, generations)
                .await
            {
                Ok(report) => {
                    self.report.destinations.push(report);
                    if first_write {
                        first_write = false;
                        self.checkpoint(Checkpoint::AfterFirstWrite).await;
                    }
                }
                Err(failure) => {
                    self.report
                        .destinations
                        .push(DestinationReport::failed(location, &failure));
                    first_failure.get_or_insert(failure);
                }
            }
        }
        Ok(match first_failure {
            Some(failure) => Outcome::Failed(failure),
            None => Outcome::Rotated,
        })
    }

    /// Writes the new token to one destination with compare-and-set over what was read.
    async fn deliver(
        &self,
        location: &Location,
        current: &Current,
        document: &AccessTokenDocument,
        generations: Option<&[Timestamp]>,
    ) -> Result<DestinationReport, Failure> {
        let mut precondition = match current.version() {
            None => Precondition::Absent,
            Some(version) => Precondition::Version(version.clone()),
        };
        let mut conflict = None;
        for _ in 0..CONFLICT_ATTEMPTS {
            match self
                .write_with_retry(location, document, precondition.clone())
                .await
            {
                Ok(version) => {
                    if !location.sink.capabilities().compare_and_set {
                        self.read_back(location, document, generations).await?;
                    }
                    return Ok(DestinationReport::written(location, &version));
                }
                Err(error) if error.is_conflict() => {
                    // Another writer came first: keep theirs if it serves and is at least as
                    // new as ours, else write over it.
                    let stored = location.sink.read(&location.key).await.map_err(|source| {
                        Failure::store("re-read after a conflict", location, source)
                    })?;
                    let Some(stored) = stored else {
                        precondition = Precondition::Absent;
                        conflict = Some(error);
                        continue;
                    };
                    if let Ok(theirs) = AccessTokenDocument::from_document(&stored.document) {
                        if stored.managed
                            && theirs.created_at >= document.created_at
                            && self.is_current(&theirs, generations)
                        {
                            info!(location = %location.label(), "another runner wrote a token at least as new first; keeping it");
                            return Ok(DestinationReport::kept_winner(location, &stored.version));
                        }
                    }
                    precondition = Precondition::Version(stored.version);
                    conflict = Some(error);
                }
                Err(source) => {
                    return Err(Failure::store("write the access token", location, source))
                }
            }
        }
        Err(Failure::store(
            "write the access token",
            location,
            conflict.unwrap_or(SinkError::Conflict {
                key: location.key.clone(),
                detail: "other writers kept winning".into(),
            }),
        ))
    }

    /// For stores without compare-and-set: what is there now must be ours or a current token
    /// at least as new.
    async fn read_back(
        &self,
        location: &Location,
        document: &AccessTokenDocument,
        generations: Option<&[Timestamp]>,
    ) -> Result<(), Failure> {
        let stored = location
            .sink
            .read_as::<AccessTokenDocument>(&location.key)
            .await
            .map_err(|source| Failure::store("read back the access token", location, source))?;
        match stored {
            Some(stored)
                if Self::same_token(
                    &stored.document.api_access_token,
                    &document.api_access_token,
                ) || (stored.document.created_at >= document.created_at
                    && self.is_current(&stored.document, generations)) =>
            {
                Ok(())
            }
            _ => Err(Failure::ReadBack {
                location: location.label(),
            }),
        }
    }

    /// Writes a typed document, retrying while the store is unavailable.
    pub(super) async fn write_with_retry<D: TokenDocument + Sync>(
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
            tracing::warn!(location = %location.label(), %error, ?delay, "store unavailable; retrying")
        })
        .await
    }
}
