//! The one error type every [`TokenSink`](crate::TokenSink) returns.

use std::error::Error as StdError;

/// A boxed underlying cause, kept for the error chain. It must never carry a secret value.
pub type Source = Box<dyn StdError + Send + Sync + 'static>;

/// What went wrong in a secret store.
///
/// Every message names the key (where there is one) and, where the fix is known, what to do.
/// No variant ever holds a secret value: sinks must not copy document contents or response
/// bodies into an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// A precondition (`Absent` or `Version`) did not hold: someone else wrote first.
    /// Retrying the same write cannot help; re-read and decide again.
    #[error("conflict on {key:?}: {detail}")]
    Conflict {
        /// The key written.
        key: String,
        /// What was expected and what was found.
        detail: String,
    },
    /// The key holds a secret that alation-rotator did not write (no ownership marker) and
    /// the destination does not allow takeover.
    #[error(
        "refusing to overwrite {key:?}: it exists but was not written by alation-rotator \
         (no managed-by marker); set `takeover = true` on this destination to adopt it"
    )]
    Unmanaged {
        /// The key that holds the foreign secret.
        key: String,
    },
    /// The key, or a part of the store it needs, does not exist (reads of an absent key return
    /// `Ok(None)` instead; this is for e.g. a missing mount or directory).
    #[error("not found: {detail}")]
    NotFound {
        /// What is missing and how to create it.
        detail: String,
    },
    /// The store refused our credentials or our permissions are too narrow.
    #[error("unauthorized: {detail}")]
    Unauthorized {
        /// Which permission is missing, on what.
        detail: String,
    },
    /// The store could not be reached or answered that it cannot serve now. A retry may help.
    #[error("unavailable: {detail}")]
    Unavailable {
        /// What could not be reached.
        detail: String,
        /// The underlying cause.
        #[source]
        source: Option<Source>,
    },
    /// The stored data is not a document this rotator can read.
    #[error("invalid document at {key:?}: {detail}")]
    InvalidDocument {
        /// The key read.
        key: String,
        /// What is wrong with it (never its contents).
        detail: String,
    },
    /// The key is not acceptable to this store.
    #[error("invalid key {key:?}: {detail}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// The store's rule.
        detail: String,
    },
    /// The store holds the secret somewhere others can read it, or would have to.
    #[error("insecure: {detail}")]
    Insecure {
        /// What is exposed and how to fix it.
        detail: String,
    },
    /// This store cannot do what was asked (see [`Capabilities`](crate::Capabilities)).
    #[error("{operation} is not supported by this store")]
    Unsupported {
        /// The operation asked for.
        operation: &'static str,
    },
    /// Anything else.
    #[error("{detail}")]
    Other {
        /// What happened.
        detail: String,
        /// The underlying cause.
        #[source]
        source: Option<Source>,
    },
}

impl SinkError {
    /// Whether trying the same operation again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Unavailable { .. })
    }

    /// Whether this error is a failed precondition.
    pub fn is_conflict(&self) -> bool {
        matches!(self, SinkError::Conflict { .. })
    }

    /// An [`Unavailable`](SinkError::Unavailable) error with a cause.
    pub fn unavailable(detail: impl Into<String>, source: impl Into<Source>) -> Self {
        SinkError::Unavailable {
            detail: detail.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Other`](SinkError::Other) error with a cause.
    pub fn other(detail: impl Into<String>, source: impl Into<Source>) -> Self {
        SinkError::Other {
            detail: detail.into(),
            source: Some(source.into()),
        }
    }
}
