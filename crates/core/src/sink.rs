//! The contract between the rotation engine and a secret store.
//!
//! A sink stores named JSON [`Document`]s and reads them back with a [`Version`]. The rotator
//! writes two kinds: the access-token document consumers read and the refresh-token document
//! only the rotator reads. Implementations must keep each promise written on the methods
//! below; `rotator-testkit` checks every one of them.

use std::collections::BTreeMap;
use std::fmt::{self, Debug, Display};

use async_trait::async_trait;

use crate::document::{Document, TokenDocument};
use crate::error::SinkError;

/// Name of the ownership marker (Vault `custom_metadata` key, AWS tag key, file field).
pub const MANAGED_BY_KEY: &str = "managed-by";
/// Value of the ownership marker.
pub const MANAGED_BY_VALUE: &str = "alation-rotator";

/// An opaque version of a stored document, as the store names it (a KV v2 version number,
/// an AWS `VersionId`, a file's counter). Only equality is meaningful.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Version(String);

impl Version {
    /// Wraps a store's version identifier.
    pub fn new(version: impl Into<String>) -> Self {
        Self(version.into())
    }

    /// The store's version identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What must be true of the key for a write to go ahead.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Precondition {
    /// Write whatever is there.
    Any,
    /// Write only if the key holds nothing.
    Absent,
    /// Write only if the key's current version is this one (compare-and-set).
    Version(Version),
}

/// How to write a document.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// What must hold before the write; a failed precondition is [`SinkError::Conflict`].
    pub precondition: Precondition,
    /// Allow overwriting a document that lacks the ownership marker.
    pub takeover: bool,
    /// Non-secret metadata stored next to the document where the store has room for it
    /// (Vault `custom_metadata`, AWS tags). Keys and values must not be secrets.
    pub labels: BTreeMap<String, String>,
}

impl WriteOptions {
    /// Options with the given precondition, no takeover and no labels.
    pub fn new(precondition: Precondition) -> Self {
        Self {
            precondition,
            takeover: false,
            labels: BTreeMap::new(),
        }
    }
}

/// A document read back from a store.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The document.
    pub document: Document,
    /// Its current version, usable in [`Precondition::Version`].
    pub version: Version,
    /// Whether it carries the ownership marker.
    pub managed: bool,
}

/// What a store can promise beyond the basic contract.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// `Absent` and `Version` preconditions are enforced atomically: of two writers with the
    /// same precondition, exactly one succeeds.
    pub compare_and_set: bool,
    /// Earlier versions are kept by the store.
    pub versions_kept: bool,
    /// [`TokenSink::read_previous`] returns the version before the current one.
    pub previous_readable: bool,
}

impl Capabilities {
    /// A capability set; all false means only the basic contract.
    pub fn new(compare_and_set: bool, versions_kept: bool, previous_readable: bool) -> Self {
        Self {
            compare_and_set,
            versions_kept,
            previous_readable,
        }
    }
}

/// A secret store the rotator can write token documents to.
///
/// Implementations are constructed from their own `Config` without network access, so that
/// configuration can be checked offline; connections happen in the methods.
#[async_trait]
pub trait TokenSink: Send + Sync + Debug {
    /// A short description of where documents go, e.g. `file:/var/lib/alation-rotator` or
    /// `vault:https://vault:8200/secret`. Shown in status output; never contains a secret.
    fn describe(&self) -> String;

    /// What this store promises beyond the basic contract.
    fn capabilities(&self) -> Capabilities;

    /// Checks that the store is reachable and our credentials are accepted, without writing.
    ///
    /// Errors: [`SinkError::Unavailable`] when it cannot be reached,
    /// [`SinkError::Unauthorized`] when the credentials are refused.
    async fn check(&self) -> Result<(), SinkError>;

    /// Reads the document stored under `key`.
    ///
    /// Returns `Ok(None)` when the key holds nothing. A document without the ownership marker
    /// is returned with `managed: false`. Errors: [`SinkError::InvalidDocument`] when the key
    /// holds something that is not a JSON object, [`SinkError::Unavailable`],
    /// [`SinkError::Unauthorized`], [`SinkError::Insecure`].
    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError>;

    /// Writes `document` under `key` with the ownership marker and returns the new version.
    ///
    /// The precondition is checked first: [`Precondition::Absent`] fails with
    /// [`SinkError::Conflict`] if the key holds anything, [`Precondition::Version`] fails with
    /// [`SinkError::Conflict`] if the current version differs (or the key holds nothing).
    /// Then, if the key holds a document without the ownership marker and
    /// `options.takeover` is false, the write fails with [`SinkError::Unmanaged`].
    /// A failed write leaves the stored document as it was. After a successful write,
    /// [`TokenSink::read`] returns the new document, the returned version and
    /// `managed: true`.
    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError>;

    /// Reads the version written before the current one, when
    /// [`Capabilities::previous_readable`] is set. `Ok(None)` when there is no earlier version.
    /// Stores without the capability return [`SinkError::Unsupported`].
    async fn read_previous(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        let _ = key;
        Err(SinkError::Unsupported {
            operation: "reading the previous version",
        })
    }
}

/// A typed document read back from a store.
#[derive(Debug, Clone)]
pub struct StoredAs<D> {
    /// The document, parsed.
    pub document: D,
    /// Its current version.
    pub version: Version,
    /// Whether it carries the ownership marker.
    pub managed: bool,
}

/// Conveniences over [`TokenSink`] for the typed documents; implemented for every sink.
#[async_trait]
pub trait TokenSinkExt: TokenSink {
    /// Reads and parses a typed document. A document that does not parse is
    /// [`SinkError::InvalidDocument`].
    async fn read_as<D: TokenDocument + Send>(
        &self,
        key: &str,
    ) -> Result<Option<StoredAs<D>>, SinkError> {
        let Some(stored) = self.read(key).await? else {
            return Ok(None);
        };
        let document =
            D::from_document(&stored.document).map_err(|e| SinkError::InvalidDocument {
                key: key.to_owned(),
                detail: e.to_string(),
            })?;
        Ok(Some(StoredAs {
            document,
            version: stored.version,
            managed: stored.managed,
        }))
    }

    /// Writes a typed document with its labels added to `options`.
    async fn write_as<D: TokenDocument + Sync>(
        &self,
        key: &str,
        document: &D,
        precondition: Precondition,
        takeover: bool,
    ) -> Result<Version, SinkError> {
        let options = WriteOptions {
            precondition,
            takeover,
            labels: document.labels(),
        };
        self.write(key, &document.to_document(), &options).await
    }
}

impl<T: TokenSink + ?Sized> TokenSinkExt for T {}
