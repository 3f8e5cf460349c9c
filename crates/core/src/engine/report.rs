//! What a run says about each integration.

use jiff::Timestamp;
use rotator_alation::AlationError;
use serde::ser::SerializeStruct;
use serde::Serialize;

use super::escrow::EscrowError;
use super::Location;
use crate::error::SinkError;
use crate::sink::Version;

/// The result of one run for one integration.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The integration's name.
    pub integration: String,
    /// What happened.
    pub outcome: Outcome,
    /// When the access token now in the destinations expires (the earliest, if they differ).
    pub access_expires_at: Option<Timestamp>,
    /// When the stored refresh token expires.
    pub refresh_expires_at: Option<Timestamp>,
    /// Whether the stored refresh token is inside its renewal window.
    pub refresh_due: bool,
    /// Whether the refresh token was regenerated in this run.
    pub refresh_regenerated: bool,
    /// Whether a refresh token waits in escrow (status and dry runs).
    pub escrow_waiting: bool,
    /// Whether this run moved a refresh token from escrow to its state location.
    pub escrow_recovered: bool,
    /// What happened at each destination written or failed.
    pub destinations: Vec<DestinationReport>,
    /// Things a person should act on even though the run succeeded.
    pub warnings: Vec<String>,
}

impl Report {
    pub(super) fn new(integration: &str) -> Self {
        Self {
            integration: integration.to_owned(),
            outcome: Outcome::Fresh,
            access_expires_at: None,
            refresh_expires_at: None,
            refresh_due: false,
            refresh_regenerated: false,
            escrow_waiting: false,
            escrow_recovered: false,
            destinations: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Whether the integration failed in this run.
    pub fn is_failure(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_))
    }
}

/// What a run did for one integration.
#[derive(Debug)]
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
    /// Something failed; see the reason.
    Failed(Failure),
}

impl Outcome {
    /// A one-word name: `fresh`, `rotated`, `would-rotate`, `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Fresh => "fresh",
            Outcome::Rotated => "rotated",
            Outcome::WouldRotate { .. } => "would-rotate",
            Outcome::Failed(_) => "failed",
        }
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Outcome", 3)?;
        s.serialize_field("status", self.name())?;
        match self {
            Outcome::WouldRotate { reason } => s.serialize_field("reason", reason)?,
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
pub struct DestinationReport {
    /// `store:key`.
    pub location: String,
    /// `written`, `kept-winner` (another runner wrote a fresh token first) or `failed`.
    pub result: &'static str,
    /// The version now stored, when known.
    pub version: Option<String>,
    /// Why it failed.
    pub error: Option<String>,
}

impl DestinationReport {
    pub(super) fn written(location: &Location, version: Version) -> Self {
        Self {
            location: location.label(),
            result: "written",
            version: Some(version.to_string()),
            error: None,
        }
    }

    pub(super) fn kept_winner(location: &Location, version: Version) -> Self {
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

/// Why an integration failed. Messages name the cause and the fix and never hold a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    /// There is no usable refresh token: a person must store a new one.
    #[error(
        "needs bootstrap: {reason} (state location {location}); run `alation-rotator bootstrap \
         {integration}` to store a new refresh token"
    )]
    NeedsBootstrap {
        /// The integration.
        integration: String,
        /// The state location.
        location: String,
        /// Why the stored token cannot be used.
        reason: String,
    },
    /// An Alation call failed.
    #[error("could not {action}: {source}")]
    Alation {
        /// What we tried.
        action: &'static str,
        /// Alation's error.
        #[source]
        source: AlationError,
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
    /// A regenerated refresh token could not be stored and waits in escrow.
    #[error(
        "the regenerated refresh token could not be stored at {location} ({source}); it is kept \
         in escrow at {escrow} and the next run will store it once the store is back"
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
    /// A regenerated refresh token could be stored neither in its state location nor in escrow.
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
    /// `bootstrap` found a refresh token that Alation still accepts.
    #[error(
        "{integration} already has an active refresh token at {location} (expires {expires_at}); \
         pass --force to replace it"
    )]
    AlreadyBootstrapped {
        /// The integration.
        integration: String,
        /// The state location.
        location: String,
        /// When the stored token expires.
        expires_at: Timestamp,
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

    /// A stable, machine-readable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Failure::NeedsBootstrap { .. } => "needs-bootstrap",
            Failure::Alation { .. } => "alation",
            Failure::Store { .. } => "store",
            Failure::ReadBack { .. } => "read-back",
            Failure::RefreshEscrowed { .. } => "refresh-escrowed",
            Failure::RefreshTokenLost { .. } => "refresh-token-lost",
            Failure::AlreadyBootstrapped { .. } => "already-bootstrapped",
            Failure::UserMismatch { .. } => "user-mismatch",
            Failure::Escrow { .. } => "escrow",
        }
    }
}
