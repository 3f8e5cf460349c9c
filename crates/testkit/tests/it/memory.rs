//! rotator-core's in-memory sink, wrapped so that it breaks a promise when told to: the suite
//! must catch each broken one.

use std::sync::Arc;

use rotator_core::{
    Capabilities, Document, MemorySink, Precondition, SinkError, Stored, TokenSink, Version,
    WriteOptions,
};
use rotator_testkit::{async_trait, ConformanceTarget};

/// Promises to break.
#[derive(Clone, Copy, Debug, Default)]
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

#[derive(Debug)]
pub struct FaultySink {
    inner: MemorySink,
    faults: Faults,
}

#[async_trait]
impl TokenSink for FaultySink {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(true, !self.faults.no_previous, !self.faults.no_previous)
    }

    async fn check(&self) -> Result<(), SinkError> {
        self.inner.check().await
    }

    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        self.inner.read(key).await
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        let faults = self.faults;
        let mut options = options.clone();
        if matches!(options.precondition, Precondition::Absent) && faults.ignore_absent
            || matches!(options.precondition, Precondition::Version(_)) && faults.ignore_version
        {
            options.precondition = Precondition::Any;
        }
        options.takeover |= faults.ignore_ownership;
        let written = match self.inner.write(key, document, &options).await {
            Err(SinkError::Conflict { key, detail }) if faults.leak_in_conflict => {
                let token = self
                    .inner
                    .read(&key)
                    .await?
                    .map(|stored| stored.document.fields()["api_access_token"].to_string())
                    .unwrap_or_default();
                return Err(SinkError::Conflict {
                    key,
                    detail: format!("{detail} {token}"),
                });
            }
            other => other?,
        };
        if faults.no_marker {
            return Ok(self.inner.plant_unmanaged(key, document));
        }
        Ok(written)
    }

    async fn read_previous(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        if self.faults.no_previous {
            return Err(SinkError::Unsupported {
                operation: "reading the previous version",
            });
        }
        self.inner.read_previous(key).await
    }
}

pub struct Target {
    sink: Arc<FaultySink>,
}

impl Target {
    pub fn new(faults: Faults) -> Self {
        Self {
            sink: Arc::new(FaultySink {
                inner: MemorySink::new(),
                faults,
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
        self.sink.inner.plant_unmanaged(key, document);
    }
}
