//! [`MemorySink`]: a [`TokenSink`] that keeps documents in memory and every promise of the
//! contract, for tests of engines, sources and tools built on rotator-core.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::document::Document;
use crate::error::SinkError;
use crate::sink::{Capabilities, Precondition, Stored, TokenSink, Version, WriteOptions};

struct Entry {
    current: Stored,
    previous: Option<Stored>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    last_version: u64,
    unavailable: bool,
    failing_writes: u32,
    reads: u64,
    writes: u64,
}

impl State {
    fn put(&mut self, key: &str, document: &Document, managed: bool) -> Version {
        self.last_version += 1;
        let version = Version::new(self.last_version.to_string());
        let current = Stored {
            document: document.clone(),
            version: version.clone(),
            managed,
        };
        let previous = self.entries.remove(key).map(|entry| entry.current);
        self.entries
            .insert(key.to_owned(), Entry { current, previous });
        version
    }

    fn refuse_if_unavailable(&self, key: &str) -> Result<(), SinkError> {
        if self.unavailable {
            return Err(SinkError::Unavailable {
                detail: format!("memory store is switched off (key {key:?})"),
                source: None,
            });
        }
        Ok(())
    }
}

/// Documents in a map, with compare-and-set, versions, the ownership marker and the previous
/// version, as the [`TokenSink`] contract asks. Tests can also plant a document without the
/// ownership marker, make the store unavailable, fail the next writes, and count calls.
///
/// `Debug` shows the number of keys, never a document.
#[derive(Default)]
pub struct MemorySink {
    state: Mutex<State>,
}

impl MemorySink {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `document` under `key` without the ownership marker, as a person or another
    /// tool would. Returns its version.
    pub fn plant_unmanaged(&self, key: &str, document: &Document) -> Version {
        self.state().put(key, document, false)
    }

    /// While `unavailable`, every call fails with [`SinkError::Unavailable`].
    pub fn set_unavailable(&self, unavailable: bool) {
        self.state().unavailable = unavailable;
    }

    /// Makes the next `count` writes fail with [`SinkError::Unavailable`] (reads still work).
    pub fn fail_next_writes(&self, count: u32) {
        self.state().failing_writes = count;
    }

    /// How many reads ([`TokenSink::read`] and [`TokenSink::read_previous`]) were made.
    pub fn reads(&self) -> u64 {
        self.state().reads
    }

    /// How many writes were attempted, failed ones included.
    pub fn writes(&self) -> u64 {
        self.state().writes
    }
}

impl fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySink")
            .field("keys", &self.state().entries.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl TokenSink for MemorySink {
    fn describe(&self) -> String {
        "memory:".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(true, true, true)
    }

    async fn check(&self) -> Result<(), SinkError> {
        self.state().refuse_if_unavailable("")
    }

    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        let mut state = self.state();
        state.reads += 1;
        state.refuse_if_unavailable(key)?;
        Ok(state.entries.get(key).map(|entry| entry.current.clone()))
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        // One lock around check and write, as a real store's compare-and-set.
        let mut state = self.state();
        state.writes += 1;
        state.refuse_if_unavailable(key)?;
        if state.failing_writes > 0 {
            state.failing_writes -= 1;
            return Err(SinkError::Unavailable {
                detail: format!("memory store refused a write to {key:?} as told"),
                source: None,
            });
        }
        let current = state.entries.get(key).map(|entry| &entry.current);
        let conflict = |detail: &str| {
            Err(SinkError::Conflict {
                key: key.to_owned(),
                detail: detail.to_owned(),
            })
        };
        match (&options.precondition, current) {
            (Precondition::Absent, Some(_)) => return conflict("the key holds a document"),
            (Precondition::Version(_), None) => return conflict("the key holds nothing"),
            (Precondition::Version(expected), Some(stored)) if *expected != stored.version => {
                return conflict(&format!(
                    "expected version {expected}, found {}",
                    stored.version
                ))
            }
            _ => {}
        }
        if current.is_some_and(|stored| !stored.managed) && !options.takeover {
            return Err(SinkError::Unmanaged {
                key: key.to_owned(),
            });
        }
        Ok(state.put(key, document, true))
    }

    async fn read_previous(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        let mut state = self.state();
        state.reads += 1;
        state.refuse_if_unavailable(key)?;
        Ok(state
            .entries
            .get(key)
            .and_then(|entry| entry.previous.clone()))
    }
}
