//! A [`TokenSink`] that keeps token documents as JSON files in a local directory, for
//! consumers on the same host (a systemd service, a cron script) and for the `demo`.
//!
//! # Layout
//!
//! The document for key `alation/tableau-prod` lives in
//! `<directory>/alation/tableau-prod.json`: each `/`-separated segment of the key but the last
//! is a subdirectory. Keys are checked by [`validate_key`].
//!
//! The file holds the document's fields at top level, so a consumer reads it as the token
//! document, plus two fields of the store's own:
//!
//! ```json
//! {
//!   "api_access_token": "…",
//!   "base_url": "https://alation.example.com",
//!   "created_at": "2026-01-01T00:00:00Z",
//!   "integration": "tableau-prod",
//!   "managed-by": "alation-rotator",
//!   "rotator-version": 7,
//!   "token_expires_at": "2026-01-02T00:00:00Z",
//!   "user_id": 102
//! }
//! ```
//!
//! - `managed-by: alation-rotator` is the ownership marker. A file without it (one a person
//!   wrote) reads as `managed: false` and is only overwritten with `takeover = true`.
//! - `rotator-version` counts the writes; its decimal form is the document's [`Version`] for
//!   compare-and-set. A file without it has version `0`.
//!
//! Both fields are removed from the document [`FileSink::read`] returns, and a document that
//! itself contains either name is refused by [`FileSink::write`]. Labels
//! ([`WriteOptions::labels`]) are not stored: the file has no room for metadata that is not
//! part of the document, and the rotator's labels repeat document fields anyway.
//!
//! # Permissions
//!
//! Files are created with mode `0600`, directories (`directory` itself when missing, and the
//! subdirectories of keys) with `0700`; existing directories are left as they are. A file
//! that group or others can read (`mode & 0o077 != 0`) is refused on read and write with
//! [`SinkError::Insecure`] naming the path, its mode and the fix (`chmod 600 PATH`): a token
//! that others could read must be treated as leaked, not silently used. Consumers therefore
//! run as the rotator's user, or read through a service that does.
//!
//! # Atomicity and locking
//!
//! A write goes to a temporary file in the target's directory (`.<name>.json.*.tmp`,
//! mode 0600), which is flushed to disk (`fsync`), renamed over the target and followed by an
//! `fsync` of the directory: a reader sees the old document or the new one, never a mix, and
//! a crash leaves at worst a stray temporary file.
//!
//! Writers take an exclusive advisory lock (`flock`) on a per-key lock file
//! `.<name>.json.lock` (mode 0600, next to the document, left in place) around the
//! precondition check and the rename. Writers in other processes and in the same process are
//! serialized, so [`Precondition::Absent`] and [`Precondition::Version`] are enforced
//! atomically. Readers take no lock: the rename is atomic.
//!
//! # What it does not do
//!
//! - It keeps no earlier versions: [`TokenSink::read_previous`] is unsupported.
//! - The lock is advisory: a person editing the file by hand is not stopped, and hand edits
//!   that keep `rotator-version` are not detected by compare-and-set.
//! - Locks over network file systems are only as good as the file system's `flock`.
//! - It never deletes documents, lock files or directories.
//! - A relative `directory` is resolved against the working directory of each operation.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use rotator_core::{
    Capabilities, ConfigError, Document, Precondition, SinkError, Stored, TokenSink, Version,
    WriteOptions, MANAGED_BY_KEY,
};
use serde::Deserialize;

mod files;

/// The file field holding the write counter, the document's [`Version`].
pub const VERSION_KEY: &str = "rotator-version";

/// Longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// Configuration of a file store (`type = "file"` in a `[stores.NAME]` table).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory that holds the token files, e.g. `/var/lib/alation-rotator`. It is
    /// created with mode 0700 if missing. A relative path is resolved against the working
    /// directory of the rotator.
    pub directory: PathBuf,
}

impl Config {
    /// Checks the configuration without touching the file system.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.directory.as_os_str().is_empty() {
            return Err(ConfigError::new(
                "directory",
                "is empty: set it to the directory that holds the token files, e.g. \
                 \"/var/lib/alation-rotator\"",
            ));
        }
        Ok(())
    }
}

/// Checks that `key` is acceptable to the file store.
///
/// A key is one or more `/`-separated segments of `A-Z`, `a-z`, `0-9`, `.`, `_` and `-`, at
/// most [`MAX_KEY_LEN`] bytes long. Segments must not be empty or start with `.` (which rules
/// out `.` and `..`, and keeps names starting with `.` free for lock and temporary files),
/// and a segment other than the last must not end in `.json`, where it would collide with
/// the file of a shorter key.
pub fn validate_key(key: &str) -> Result<(), SinkError> {
    let invalid = |detail: String| {
        Err(SinkError::InvalidKey {
            key: key.to_owned(),
            detail,
        })
    };
    if key.is_empty() {
        return invalid("the key is empty".into());
    }
    if key.len() > MAX_KEY_LEN {
        return invalid(format!("the key is longer than {MAX_KEY_LEN} bytes"));
    }
    if key.starts_with('/') {
        return invalid(
            "keys are relative to the store's directory and must not start with '/'".into(),
        );
    }
    let segments: Vec<&str> = key.split('/').collect();
    for (index, segment) in segments.iter().enumerate() {
        if segment.is_empty() {
            return invalid("the key has an empty segment ('//' or a trailing '/')".into());
        }
        if segment.starts_with('.') {
            return invalid(format!(
                "segment {segment:?} starts with '.': '.' and '..' are not allowed, and names \
                 starting with '.' are reserved for the store's lock and temporary files"
            ));
        }
        if let Some(c) = segment
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return invalid(format!(
                "segment {segment:?} contains {c:?}; segments may contain only A-Z, a-z, 0-9, \
                 '.', '_' and '-'"
            ));
        }
        if index + 1 < segments.len() && segment.ends_with(".json") {
            return invalid(format!(
                "segment {segment:?} would be a directory named like the document file of \
                 another key; choose a directory name not ending in \".json\""
            ));
        }
    }
    Ok(())
}

/// The file store. Its `Debug` output shows the directory only.
#[derive(Debug)]
pub struct FileSink {
    directory: PathBuf,
}

impl FileSink {
    /// A store over `config.directory`. Validates the configuration; touches no file.
    pub fn new(config: Config) -> Result<Self, SinkError> {
        config.validate().map_err(|error| SinkError::Other {
            detail: format!("invalid file store configuration: {error}"),
            source: None,
        })?;
        Ok(Self {
            directory: config.directory,
        })
    }

    /// The directory that holds the token files.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    /// Where the document for `key` lives: `<directory>/<key>.json`.
    pub fn path(&self, key: &str) -> Result<PathBuf, SinkError> {
        validate_key(key)?;
        Ok(self.directory.join(format!("{key}.json")))
    }
}

/// Runs blocking file-system work off the async worker threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| SinkError::other("the file store's worker task failed", error))?
}

#[async_trait]
impl TokenSink for FileSink {
    fn describe(&self) -> String {
        format!("file:{}", self.directory.display())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(true, false, false)
    }

    async fn check(&self) -> Result<(), SinkError> {
        let directory = self.directory.clone();
        blocking(move || files::check(&directory)).await
    }

    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        let path = self.path(key)?;
        let key = key.to_owned();
        blocking(move || Ok(files::read(&path, &key)?.map(|current| current.stored))).await
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        let path = self.path(key)?;
        for reserved in [MANAGED_BY_KEY, VERSION_KEY] {
            if document.fields().contains_key(reserved) {
                return Err(SinkError::InvalidDocument {
                    key: key.to_owned(),
                    detail: format!("the field `{reserved}` is reserved by the file store"),
                });
            }
        }
        let (key, document) = (key.to_owned(), document.clone());
        let (precondition, takeover): (Precondition, bool) =
            (options.precondition.clone(), options.takeover);
        blocking(move || files::write(&path, &key, document, &precondition, takeover)).await
    }
}
