//! The store backends this build knows, switched on by cargo features.

use std::sync::Arc;

use rotator_core::{SinkError, TokenSink};
use serde::Deserialize;

/// `[stores.NAME]`: one configured secret store; `type` selects the backend.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StoreConfig {
    /// `type = "file"`: documents as JSON files in a local directory.
    #[cfg(feature = "file")]
    File(rotator_sink_file::Config),
    /// `type = "file"` in a build without the `file` feature.
    #[cfg(not(feature = "file"))]
    File(Disabled),
}

/// A backend this binary was built without; any settings are accepted so that the error
/// names the missing feature rather than a field.
#[derive(Debug, Deserialize)]
pub struct Disabled(#[allow(dead_code)] toml::Table);

impl StoreConfig {
    fn backend(&self) -> &'static str {
        match self {
            StoreConfig::File(_) => "file",
        }
    }

    /// Offline checks of the store's own settings.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            #[cfg(feature = "file")]
            StoreConfig::File(config) => config.validate().map_err(|e| e.to_string()),
            #[allow(unreachable_patterns)]
            _ => Err(self.disabled()),
        }
    }

    /// Offline check that `key` is acceptable to this store.
    pub fn validate_key(&self, key: &str) -> Result<(), String> {
        match self {
            #[cfg(feature = "file")]
            StoreConfig::File(_) => rotator_sink_file::validate_key(key).map_err(|e| e.to_string()),
            #[allow(unreachable_patterns)]
            _ => Err(self.disabled()),
        }
    }

    /// Builds the sink; no network access happens here.
    pub async fn build(&self) -> Result<Arc<dyn TokenSink>, SinkError> {
        match self {
            #[cfg(feature = "file")]
            StoreConfig::File(config) => {
                Ok(Arc::new(rotator_sink_file::FileSink::new(config.clone())?))
            }
            #[allow(unreachable_patterns)]
            _ => Err(SinkError::Unsupported {
                operation: "this store type (feature not built in)",
            }),
        }
    }

    fn disabled(&self) -> String {
        format!(
            "this alation-rotator was built without the `{}` feature; rebuild with \
             `--features {}` or use a release build, which has every store",
            self.backend(),
            self.backend()
        )
    }
}
