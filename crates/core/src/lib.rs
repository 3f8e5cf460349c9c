//! The heart of alation-rotator: the [`TokenSink`] contract every secret store implements,
//! the two documents the rotator writes, the renewal [`Policy`], an injectable [`Clock`] and
//! the rotation [`Engine`](engine::Engine).
//!
//! The core knows nothing of Vault, AWS or files: backends live in their own crates and
//! implement [`TokenSink`]; `rotator-testkit` holds the conformance suite every backend must
//! pass. The engine gets its tokens from a [`TokenSource`] (`rotator-alation` has Alation's
//! two), so its tests run over [`MemorySink`] and an in-memory source with a [`ManualClock`].
//!
//! # A minimal sink and its conformance test
//!
//! A sink keeps named JSON documents with a version, refuses a write whose precondition does
//! not hold ([`SinkError::Conflict`]) and one over a document it did not write unless told to
//! take it over ([`SinkError::Unmanaged`]). This one keeps them in a map; the conformance
//! suite of `rotator-testkit` checks every promise (this example runs as a doctest):
//!
//! ```
//! use std::collections::HashMap;
//! use std::sync::{Arc, Mutex};
//!
//! use rotator_core::{
//!     Capabilities, Document, Precondition, SinkError, Stored, TokenSink, Version, WriteOptions,
//! };
//! use rotator_testkit::{async_trait, ConformanceTarget};
//!
//! /// Documents in a map: key -> (document, version, carries the ownership marker).
//! #[derive(Debug, Default)]
//! struct MapSink(Mutex<HashMap<String, (Document, u64, bool)>>);
//!
//! #[async_trait]
//! impl TokenSink for MapSink {
//!     fn describe(&self) -> String {
//!         "map:".into()
//!     }
//!
//!     fn capabilities(&self) -> Capabilities {
//!         // One lock around check and write makes compare-and-set atomic.
//!         Capabilities::new(true, false, false)
//!     }
//!
//!     async fn check(&self) -> Result<(), SinkError> {
//!         Ok(())
//!     }
//!
//!     async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
//!         let map = self.0.lock().unwrap();
//!         Ok(map.get(key).map(|(document, version, managed)| Stored {
//!             document: document.clone(),
//!             version: Version::new(version.to_string()),
//!             managed: *managed,
//!         }))
//!     }
//!
//!     async fn write(
//!         &self,
//!         key: &str,
//!         document: &Document,
//!         options: &WriteOptions,
//!     ) -> Result<Version, SinkError> {
//!         let mut map = self.0.lock().unwrap();
//!         let current = map.get(key);
//!         let holds = |v: &Version| current.is_some_and(|(_, n, _)| n.to_string() == v.as_str());
//!         let ok = match &options.precondition {
//!             Precondition::Any => true,
//!             Precondition::Absent => current.is_none(),
//!             Precondition::Version(expected) => holds(expected),
//!         };
//!         if !ok {
//!             let detail = "the stored version is not the expected one".into();
//!             return Err(SinkError::Conflict { key: key.into(), detail });
//!         }
//!         if current.is_some_and(|(_, _, managed)| !managed) && !options.takeover {
//!             return Err(SinkError::Unmanaged { key: key.into() });
//!         }
//!         let version = current.map_or(1, |(_, n, _)| n + 1);
//!         map.insert(key.into(), (document.clone(), version, true));
//!         Ok(Version::new(version.to_string()))
//!     }
//! }
//!
//! struct Target(Arc<MapSink>);
//!
//! #[async_trait]
//! impl ConformanceTarget for Target {
//!     fn sink(&self) -> Arc<dyn TokenSink> {
//!         self.0.clone()
//!     }
//!
//!     async fn plant_unmanaged(&self, key: &str, document: &Document) {
//!         self.0 .0.lock().unwrap().insert(key.into(), (document.clone(), 1, false));
//!     }
//! }
//!
//! // In a crate's tests: `rotator_testkit::conformance_tests!(target);`, one test per promise.
//! # #[allow(clippy::needless_doctest_main)]
//! fn main() {
//!     let runtime = tokio::runtime::Runtime::new().unwrap();
//!     runtime.block_on(rotator_testkit::run_all(&Target(Arc::default())));
//! }
//! ```
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
