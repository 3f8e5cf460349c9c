//! An in-memory sink that keeps every promise unless told to break one.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use rotator_core::{
    Capabilities, Document, Precondition, SinkError, Stored, TokenSink, Version, WriteOptions,
};
use rotator_testkit::{async_trait, ConformanceTarget};

/// Promises to break.
#[derive(Clone, Copy, Default)]
pub struct Faults {
    /// Declare no `previous_readable` (a legitimate choice, not a fault).
    pub no_previous: bool,
    /// Write over present keys despite `Precondition::Absent`.
    pub ignore_absent: bool,
    /// Never check `Precondition::Version`.
    pub ignore_version: bool,
    /// Write documents without the ownership marker.
    pub no_marker: bool,
    /// Overwrite unmanaged documents without takeover.
    pub ignore_ownership: bool,
    /// Quote the stored document's token in conflict errors.
    pub leak_in_conflict: bool,
}

struct Entry {
    current: Stored,
    previous: Option<Stored>,
}

#[derive(Default)]
struct State {
    entries: HashMap<String, Entry>,
    last_version: u64,
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
}

pub struct MemorySink {
    faults: Faults,
    state: Mutex<State>,
}

impl fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemorySink")
            .field("keys", &self.state.lock().unwrap().entries.len())
            .finish()
    }
}

#[async_trait]
impl TokenSink for MemorySink {
    fn describe(&self) -> String {
        "memory:".into()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(true, !self.faults.no_previous, !self.faults.no_previous)
    }

    async fn check(&self) -> Result<(), SinkError> {
        Ok(())
    }

    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        Ok(self
            .state
            .lock()
            .unwrap()
            .entries
            .get(key)
            .map(|entry| entry.current.clone()))
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        // One lock around check and write, as a real store's compare-and-set.
        let mut state = self.state.lock().unwrap();
        let current = state.entries.get(key).map(|entry| &entry.current);
        let conflict = |detail: String| {
            Err(SinkError::Conflict {
                key: key.to_owned(),
                detail,
            })
        };
        let quoted = |stored: &Stored| {
            if self.faults.leak_in_conflict {
                stored.document.fields()["api_access_token"].to_string()
            } else {
                String::new()
            }
        };
        match (&options.precondition, current) {
            (Precondition::Absent, Some(stored)) if !self.faults.ignore_absent => {
                return conflict(format!("key is present {}", quoted(stored)))
            }
            (Precondition::Version(_), None) if !self.faults.ignore_version => {
                return conflict("key is absent".into())
            }
            (Precondition::Version(expected), Some(stored))
                if !self.faults.ignore_version && *expected != stored.version =>
            {
                return conflict(format!("version differs {}", quoted(stored)))
            }
            _ => {}
        }
        if current.is_some_and(|stored| !stored.managed)
            && !options.takeover
            && !self.faults.ignore_ownership
        {
            return Err(SinkError::Unmanaged {
                key: key.to_owned(),
            });
        }
        Ok(state.put(key, document, !self.faults.no_marker))
    }

    async fn read_previous(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        if self.faults.no_previous {
            return Err(SinkError::Unsupported {
                operation: "reading the previous version",
            });
        }
        Ok(self
            .state
            .lock()
            .unwrap()
            .entries
            .get(key)
            .and_then(|entry| entry.previous.clone()))
    }
}

pub struct Target {
    sink: Arc<MemorySink>,
}

impl Target {
    pub fn new(faults: Faults) -> Self {
        Self {
            sink: Arc::new(MemorySink {
                faults,
                state: Mutex::default(),
            }),
        }
    }
}

#[async_trait]
impl ConformanceTarget for Target {
    fn sink(&self) -> Arc<dyn TokenSink> {
        self.sink.clone()
    }

    async fn plant_unmanaged(&self, key: &str, document: &Document) {
        self.sink.state.lock().unwrap().put(key, document, false);
    }
}
