//! What is stale and why: the access tokens in the destinations, judged by their expiry, by
//! the refresh-token generation that minted them, and (with `validate = true`) by the source.

use jiff::Timestamp;

use super::pass::Pass;
use super::report::{DestinationReport, Failure};
use super::Location;
use crate::document::{AccessTokenDocument, TokenDocument};
use crate::sink::Version;
use crate::source::Credential;

/// The access-token state of one destination, as read at the start of a run.
pub(super) enum Current {
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

impl Current {
    pub(super) fn version(&self) -> Option<&Version> {
        match self {
            Current::Absent => None,
            Current::Stale { version } | Current::Valid { version, .. } => Some(version),
        }
    }
}

/// What the destinations held at the start of the run. `None` where the read failed.
pub(super) struct Destinations {
    pub(super) currents: Vec<Option<Current>>,
    pub(super) read_failure: Option<Failure>,
}

impl Pass<'_> {
    pub(super) async fn read_destinations(&mut self) -> Destinations {
        let mut currents = Vec::with_capacity(self.integration.access_token.len());
        let mut read_failure = None;
        for location in &self.integration.access_token {
            match read_access(location).await {
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
        let valid = || {
            currents.iter().flatten().filter_map(|c| match c {
                Current::Valid { document, .. } => Some(document),
                _ => None,
            })
        };
        self.report.access_expires_at = valid().map(|d| d.token_expires_at).min();
        self.report.access_created_at = valid().map(|d| d.created_at).min();
        Destinations {
            currents,
            read_failure,
        }
    }

    /// Whether a stored access token serves: ours (user, instance), minted from a refresh
    /// token the state still holds (`generations`; `None` for credentials without
    /// generations), and not due for renewal.
    pub(super) fn is_current(
        &self,
        document: &AccessTokenDocument,
        generations: Option<&[Timestamp]>,
    ) -> bool {
        self.problem_with(document, generations).is_none()
    }

    fn problem_with(
        &self,
        document: &AccessTokenDocument,
        generations: Option<&[Timestamp]>,
    ) -> Option<String> {
        let integration = self.integration;
        let user_mismatch = matches!(
            (integration.user_id, document.user_id),
            (Some(configured), Some(actual)) if configured != actual
        );
        if user_mismatch || document.base_url != integration.source.base_url() {
            return Some("holds a token for another user or Alation instance".to_owned());
        }
        if let Some(generations) = generations {
            let minted_from_held = match document.refresh_token_created_at {
                Some(generation) => generations.contains(&generation),
                // Written before generations were recorded: it is current only if it was
                // minted after the primary refresh token was created.
                None => generations
                    .first()
                    .is_some_and(|primary| document.created_at >= *primary),
            };
            if !minted_from_held {
                return Some(
                    "holds a token minted from a refresh token that was since replaced".to_owned(),
                );
            }
        }
        let policy = &integration.policy;
        if policy.access_renew_before.is_due(
            self.now(),
            document.created_at,
            document.token_expires_at,
        ) {
            return Some(format!(
                "token expires at {} (renew {} before)",
                document.token_expires_at, policy.access_renew_before
            ));
        }
        None
    }

    /// Why the access token must be renewed, or `None` when every destination is fresh.
    pub(super) async fn stale_reason(
        &self,
        destinations: &Destinations,
        generations: Option<&[Timestamp]>,
        credential: &Credential,
    ) -> Option<String> {
        if self.options.force {
            return Some("--force".into());
        }
        let validate = self.integration.policy.validate && !self.options.dry_run;
        for (location, current) in self
            .integration
            .access_token
            .iter()
            .zip(&destinations.currents)
        {
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
            if let Some(problem) = self.problem_with(document, generations) {
                return Some(format!("{} {problem}", location.label()));
            }
            if validate {
                if let Err(error) = self
                    .integration
                    .source
                    .validate_access(credential, &document.api_access_token)
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
}

async fn read_access(location: &Location) -> Result<Current, Failure> {
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
