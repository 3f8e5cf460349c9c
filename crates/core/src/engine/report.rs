//! What a run says about each integration.

use jiff::Timestamp;
use serde::ser::SerializeStruct;
use serde::Serialize;

use super::escrow::EscrowError;
use super::Location;
use crate::document::{Degradation, Slot};
use crate::error::SinkError;
use crate::sink::Version;
use crate::source::{CredentialKind, SourceError};

/// The result of one run for one integration.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct Report {
    /// The integration's name.
    pub integration: String,
    /// What kind of credential it keeps.
    #[serde(serialize_with = "serialize_kind")]
    pub credential: CredentialKind,
    /// What happened.
    pub outcome: Outcome,
    /// When the access token now in the destinations expires (the earliest, if they differ).
    pub access_expires_at: Option<Timestamp>,
    /// When the access token now in the destinations was minted (the earliest).
    pub access_created_at: Option<Timestamp>,
    /// When the stored (primary) refresh token expires.
    pub refresh_expires_at: Option<Timestamp>,
    /// When the standby refresh token expires, if one is stored.
    pub standby_expires_at: Option<Timestamp>,
    /// Whether the stored refresh token is inside its renewal window.
    pub refresh_due: bool,
    /// Which refresh token was regenerated in this run, if any.
    pub regenerated: Option<Slot>,
    /// Whether a refresh token waits in escrow (status and dry runs).
    pub escrow_waiting: bool,
    /// Whether this run moved a refresh token from escrow to its state location.
    pub escrow_recovered: bool,
    /// Set while the integration runs on one refresh token although it should keep a
    /// standby.
    #[serde(serialize_with = "serialize_degraded")]
    pub degraded: Option<Degradation>,
    /// What happened at each destination written or failed.
    pub destinations: Vec<DestinationReport>,
    /// Things a person should act on even though the run succeeded.
    pub warnings: Vec<String>,
}

fn serialize_kind<S: serde::Serializer>(kind: &CredentialKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(kind.name())
}

fn serialize_degraded<S: serde::Serializer>(
    degraded: &Option<Degradation>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match degraded {
        None => s.serialize_none(),
        Some(d) => {
            let mut st = s.serialize_struct("Degradation", 2)?;
            st.serialize_field("since", &d.since)?;
            st.serialize_field("reason", &d.reason)?;
            st.end()
        }
    }
}

impl Report {
    pub(super) fn new(integration: &str, credential: CredentialKind) -> Self {
        Self {
            integration: integration.to_owned(),
            credential,
            outcome: Outcome::Fresh,
            access_expires_at: None,
            access_created_at: None,
            refresh_expires_at: None,
            standby_expires_at: None,
            refresh_due: false,
            regenerated: None,
            escrow_waiting: false,
            escrow_recovered: false,
            degraded: None,
            destinations: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The report of an integration the run left unfinished when it had to stop (the shutdown
    /// grace period ran out while its work was in flight).
    pub fn unfinished(
        integration: &str,
        credential: CredentialKind,
        reason: impl Into<String>,
    ) -> Self {
        let mut report = Self::new(integration, credential);
        report.outcome = Outcome::NotReached {
            reason: reason.into(),
        };
        report
    }

    /// Whether the integration counts as failed in this run (exit code 1): it failed, or the
    /// run stopped before reaching it.
    pub fn is_failure(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Failed(_) | Outcome::NotReached { .. }
        )
    }

    /// The integration's health, for `status`, metrics and alerts.
    pub fn health(&self) -> Health {
        match &self.outcome {
            Outcome::Failed(Failure::NeedsBootstrap { .. }) => Health::NeedsBootstrap,
            Outcome::Failed(Failure::LostDuringRegeneration { .. }) => {
                Health::LostDuringRegeneration
            }
            Outcome::Failed(Failure::RegenerationInProgress { .. }) => {
                Health::RegeneratingElsewhere
            }
            Outcome::Failed(Failure::RefreshEscrowed { .. }) => Health::EscrowWaiting,
            Outcome::Failed(_) | Outcome::NotReached { .. } => Health::Error,
            _ if self.escrow_waiting => Health::EscrowWaiting,
            _ if self.degraded.is_some() => Health::Degraded,
            Outcome::WouldRotate { .. } => Health::AccessDue,
            _ if self.refresh_due => Health::RefreshDue,
            _ => Health::Ok,
        }
    }
}

/// An integration's health, from best to worst.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Health {
    /// Tokens fresh, nothing due.
    Ok,
    /// The access token is due for renewal (status and dry runs).
    AccessDue,
    /// The refresh token is inside its renewal window.
    RefreshDue,
    /// A refresh token waits in escrow for its state location.
    EscrowWaiting,
    /// Minting goes on from the standby refresh token alone; bootstrap again.
    Degraded,
    /// No usable credential: a person must bootstrap.
    NeedsBootstrap,
    /// Alation replaced the refresh token but the new one never arrived.
    LostDuringRegeneration,
    /// Another runner holds the regeneration lease.
    RegeneratingElsewhere,
    /// Any other failure.
    Error,
}

impl Health {
    /// Every value, in order.
    pub const ALL: [Health; 9] = [
        Health::Ok,
        Health::AccessDue,
        Health::RefreshDue,
        Health::EscrowWaiting,
        Health::Degraded,
        Health::NeedsBootstrap,
        Health::LostDuringRegeneration,
        Health::RegeneratingElsewhere,
        Health::Error,
    ];

    /// The name used in `status`, metrics (`state` label) and alerts.
    pub fn name(self) -> &'static str {
        match self {
            Health::Ok => "ok",
            Health::AccessDue => "access-due",
            Health::RefreshDue => "refresh-due",
            Health::EscrowWaiting => "escrow-waiting",
            Health::Degraded => "degraded",
            Health::NeedsBootstrap => "needs-bootstrap",
            Health::LostDuringRegeneration => "lost-during-regeneration",
            Health::RegeneratingElsewhere => "regenerating-elsewhere",
            Health::Error => "error",
        }
    }
}

/// What a run did for one integration.
#[derive(Debug)]
#[non_exhaustive]
pub enum Outcome {
    /// Every destination holds a token with enough time left; nothing was written.
    Fresh,
    /// A new access token was minted and is in every destination.
    Rotated,
    /// Dry run: a run would mint a new access token, for this reason.
    WouldRotate {
        /// Why.
        reason: String,
    },
    /// The run was told to stop (a signal or its deadline) before it reached this integration.
    NotReached {
        /// Why the run stopped.
        reason: String,
    },
    /// Something failed; see the reason.
    Failed(Failure),
}

impl Outcome {
    /// Every outcome name, in order.
    pub const NAMES: [&'static str; 5] =
        ["fresh", "rotated", "would-rotate", "not-reached", "failed"];

    /// A one-word name: `fresh`, `rotated`, `would-rotate`, `not-reached`, `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Fresh => "fresh",
            Outcome::Rotated => "rotated",
            Outcome::WouldRotate { .. } => "would-rotate",
            Outcome::NotReached { .. } => "not-reached",
            Outcome::Failed(_) => "failed",
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Outcome", 3)?;
        s.serialize_field("status", self.name())?;
        match self {
            Outcome::WouldRotate { reason } | Outcome::NotReached { reason } => {
                s.serialize_field("reason", reason)?
            }
            Outcome::Failed(failure) => {
                s.serialize_field("reason", failure.kind())?;
                s.serialize_field("message", &failure.to_string())?;
            }
            Outcome::Fresh | Outcome::Rotated => {}
        }
        s.end()
    }
}

/// What happened at one destination.
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct DestinationReport {
    /// `store:key`.
    pub location: String,
    /// `written`, `kept-winner` (another runner wrote a token at least as new first) or
    /// `failed`.
    pub result: &'static str,
    /// The version now stored, when known.
    pub version: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl DestinationReport {
    pub(super) fn written(location: &Location, version: &Version) -> Self {
        Self {
            location: location.label(),
            result: "written",
            version: Some(version.to_string()),
            error: None,
        }
    }

    pub(super) fn kept_winner(location: &Location, version: &Version) -> Self {
        Self {
            location: location.label(),
            result: "kept-winner",
            version: Some(version.to_string()),
            error: None,
        }
    }

    pub(super) fn failed(location: &Location, failure: &Failure) -> Self {
        Self {
            location: location.label(),
            result: "failed",
            version: None,
            error: Some(failure.to_string()),
        }
    }
}

fn credential_noun(credential: CredentialKind) -> &'static str {
    match credential {
        CredentialKind::OAuthClient => "OAuth client secret",
        _ => "refresh token",
    }
}

/// How a person gets a new credential of this kind into the state location.
fn bootstrap_hint(credential: CredentialKind, integration: &str) -> String {
    match credential {
        CredentialKind::OAuthClient => format!(
            "check the client application in Alation (its secret may have been rotated or \
             revoked), then run `alation-rotator bootstrap {integration} --oauth-client-id ID \
             --client-secret-stdin`"
        ),
        _ => format!(
            "run `alation-rotator bootstrap {integration} --username USER` (or \
             `--refresh-token-stdin` with a token made in Alation's UI) to store a new refresh \
             token"
        ),
    }
}

/// Why an integration failed. Messages name the cause and the fix and never hold a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// There is no usable credential: a person must store a new one.
    #[error("needs bootstrap: {reason} (state location {location}); {}", bootstrap_hint(*.credential, .integration))]
    NeedsBootstrap {
        /// The integration.
        integration: String,
        /// The kind of credential it keeps.
        credential: CredentialKind,
        /// The state location.
        location: String,
        /// Why the stored credential cannot be used.
        reason: String,
    },
    /// Alation replaced the refresh token during a regeneration, but the new one never reached
    /// the rotator (a lost answer, or a crash while the request was in flight).
    #[error(
        "lost during regeneration at {at}: Alation replaced the refresh token at {location} but \
         the new one never reached the rotator ({detail}){}; the old one no longer works: run \
         `alation-rotator bootstrap {integration} --force` to store a new one",
        .raw.as_ref().map(|p| format!("; Alation's raw answer is kept at {p} (0600): if it holds a refresh_token, store that with `bootstrap {integration} --refresh-token-stdin --force` instead")).unwrap_or_default()
    )]
    LostDuringRegeneration {
        /// The integration.
        integration: String,
        /// The state location.
        location: String,
        /// When the regeneration started.
        at: Timestamp,
        /// What is known about how it was lost.
        detail: String,
        /// A raw answer kept in escrow that could not be read automatically.
        raw: Option<String>,
    },
    /// Another runner holds the regeneration lease of this integration.
    #[error(
        "another runner ({runner}) has been regenerating the refresh token at {location} since \
         {since}; this run left it alone. If no other runner is alive, a run after {lease_ends} \
         settles it"
    )]
    RegenerationInProgress {
        /// The state location.
        location: String,
        /// The other runner.
        runner: String,
        /// When it started.
        since: Timestamp,
        /// When its lease runs out.
        lease_ends: Timestamp,
    },
    /// A call to the token source failed.
    #[error("could not {action}: {source}")]
    Alation {
        /// What we tried.
        action: &'static str,
        /// The source's error.
        #[source]
        source: SourceError,
    },
    /// A store operation failed.
    #[error("could not {action} at {location}: {source}")]
    Store {
        /// What we tried.
        action: &'static str,
        /// `store:key`.
        location: String,
        /// The store's error.
        #[source]
        source: SinkError,
    },
    /// The token read back after writing is not the one written.
    #[error("the token read back from {location} is not the one just written; check that nothing else writes to this key")]
    ReadBack {
        /// `store:key`.
        location: String,
    },
    /// A refresh token could not be stored in its state location and waits in escrow.
    #[error(
        "the refresh token could not be stored at {location} ({source}); it is kept in escrow \
         at {escrow} and the next run will store it once the store is back"
    )]
    RefreshEscrowed {
        /// The state location.
        location: String,
        /// The escrow file.
        escrow: String,
        /// Why the state store refused.
        #[source]
        source: SinkError,
    },
    /// A regenerated refresh token could be stored neither in its state location nor in escrow
    /// before the deadline.
    #[error(
        "LOST REFRESH TOKEN: the regenerated refresh token could not be stored at {location} \
         ({source}) nor in escrow ({}); the old one is already dead: run `alation-rotator \
         bootstrap` for this integration", .escrow.as_ref().map_or_else(|| "no escrow directory configured".to_owned(), ToString::to_string)
    )]
    RefreshTokenLost {
        /// The state location.
        location: String,
        /// Why the state store refused.
        #[source]
        source: SinkError,
        /// Why escrow failed, if one is configured.
        escrow: Option<EscrowError>,
    },
    /// `bootstrap` found a credential that the source still accepts.
    #[error("{integration} already has an active {} at {location}{}; pass --force to replace it", credential_noun(*.credential), .expires_at.map(|t| format!(" (expires {t})")).unwrap_or_default())]
    AlreadyBootstrapped {
        /// The integration.
        integration: String,
        /// The kind of credential.
        credential: CredentialKind,
        /// The state location.
        location: String,
        /// When the stored credential expires, where known.
        expires_at: Option<Timestamp>,
    },
    /// The token belongs to another Alation user than the configuration says.
    #[error(
        "the refresh token belongs to Alation user {actual} but integration {integration} is \
         configured with user_id = {configured}; fix user_id or use that user's credentials"
    )]
    UserMismatch {
        /// The integration.
        integration: String,
        /// `user_id` in the configuration.
        configured: i64,
        /// The token's user.
        actual: i64,
    },
    /// After `revoke`, a destination still holds a token minted before the revocation.
    #[error(
        "{location} holds an access token minted at {created_at}, before the revocation, so \
         Alation no longer accepts it; something else wrote it: run `alation-rotator revoke` \
         again once that writer is stopped"
    )]
    RevocationNotVerified {
        /// `store:key`.
        location: String,
        /// When the token found there was minted.
        created_at: Timestamp,
    },
    /// The escrow directory could not be used.
    #[error("escrow: {source}")]
    Escrow {
        /// The escrow error.
        #[source]
        source: EscrowError,
    },
}

impl Failure {
    pub(super) fn store(action: &'static str, location: &Location, source: SinkError) -> Self {
        Failure::Store {
            action,
            location: location.label(),
            source,
        }
    }

    pub(super) fn alation(action: &'static str, source: SourceError) -> Self {
        Failure::Alation { action, source }
    }

    /// A stable, machine-readable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::NeedsBootstrap { .. } => "needs-bootstrap",
            Failure::LostDuringRegeneration { .. } => "lost-during-regeneration",
            Failure::RegenerationInProgress { .. } => "regenerating-elsewhere",
            Failure::Alation { .. } => "alation",
            Failure::Store { .. } => "store",
            Failure::ReadBack { .. } => "read-back",
            Failure::RefreshEscrowed { .. } => "refresh-escrowed",
            Failure::RefreshTokenLost { .. } => "refresh-token-lost",
            Failure::AlreadyBootstrapped { .. } => "already-bootstrapped",
            Failure::UserMismatch { .. } => "user-mismatch",
            Failure::RevocationNotVerified { .. } => "revocation-not-verified",
            Failure::Escrow { .. } => "escrow",
        }
    }
}
