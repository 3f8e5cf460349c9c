//! The heart of alation-rotator: the [`TokenSink`] contract every secret store implements,
//! the two documents the rotator writes, the renewal [`Policy`], an injectable [`Clock`] and
//! the rotation [`Engine`](engine::Engine).
//!
//! The core knows nothing of Vault, AWS or files: backends live in their own crates and
//! implement [`TokenSink`]; `rotator-testkit` holds the conformance suite every backend must
//! pass.
#![deny(missing_docs)]

pub mod clock;
pub mod config;
pub mod document;
pub mod engine;
pub mod error;
pub mod memory;
pub mod policy;
pub mod shard;
pub mod sink;
pub mod source;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::ConfigError;
pub use document::{
    AccessTokenDocument, Degradation, Document, DocumentError, OAuthClientDocument,
    RefreshTokenDocument, RefreshTokenSlot, RegenerationIntent, Slot, TokenDocument,
};
pub use engine::Failure;
pub use error::SinkError;
pub use memory::MemorySink;
pub use policy::{Policy, RenewBefore};
pub use shard::Shard;
pub use sink::{
    Capabilities, Precondition, Stored, TokenSink, TokenSinkExt, Version, WriteOptions,
    MANAGED_BY_KEY, MANAGED_BY_VALUE,
};
pub use source::{
    Credential, CredentialKind, CredentialStatus, IssuedToken, KeepRaw, RefreshGrant,
    SourceCapabilities, SourceError, TokenSource,
};
