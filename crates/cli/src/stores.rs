//! The store backends this build knows, each switched on by a cargo feature of the same name.

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
    /// `type = "vault"`: HashiCorp Vault or OpenBao KV.
    #[cfg(feature = "vault")]
    Vault(rotator_sink_vault::Config),
    /// `type = "vault"` in a build without the `vault` feature.
    #[cfg(not(feature = "vault"))]
    Vault(Disabled),
    /// `type = "aws_secrets_manager"`: AWS Secrets Manager.
    #[cfg(feature = "aws")]
    AwsSecretsManager(rotator_sink_aws::Config),
    /// `type = "aws_secrets_manager"` in a build without the `aws` feature.
    #[cfg(not(feature = "aws"))]
    AwsSecretsManager(Disabled),
}

/// A backend this binary was built without. Its settings are skipped, so the error names
/// the missing feature rather than a field.
#[cfg(not(all(feature = "file", feature = "vault", feature = "aws")))]
#[derive(Debug)]
pub struct Disabled;

#[cfg(not(all(feature = "file", feature = "vault", feature = "aws")))]
impl<'de> Deserialize<'de> for Disabled {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(deserializer).map(|_| Disabled)
    }
}

impl StoreConfig {
    /// Offline checks of the store's own settings.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            #[cfg(feature = "file")]
            StoreConfig::File(config) => config.validate().map_err(|e| e.to_string()),
            #[cfg(feature = "vault")]
            StoreConfig::Vault(config) => config.validate().map_err(|e| e.to_string()),
            #[cfg(feature = "aws")]
            StoreConfig::AwsSecretsManager(config) => config.validate().map_err(|e| e.to_string()),
            #[allow(unreachable_patterns)]
            _ => Err(self.disabled()),
        }
    }

    /// Offline check that `key` is acceptable to this store.
    pub fn validate_key(&self, key: &str) -> Result<(), String> {
        let checked = match self {
            #[cfg(feature = "file")]
            StoreConfig::File(_) => rotator_sink_file::validate_key(key),
            #[cfg(feature = "vault")]
            StoreConfig::Vault(_) => rotator_sink_vault::validate_key(key),
            #[cfg(feature = "aws")]
            StoreConfig::AwsSecretsManager(_) => rotator_sink_aws::validate_key(key),
            #[allow(unreachable_patterns)]
            _ => return Err(self.disabled()),
        };
        checked.map_err(|e| e.to_string())
    }

    /// Builds the sink; no network access happens here.
    pub async fn build(&self) -> Result<Arc<dyn TokenSink>, SinkError> {
        Ok(match self {
            #[cfg(feature = "file")]
            StoreConfig::File(config) => {
                Arc::new(rotator_sink_file::FileSink::new(config.clone())?)
            }
            #[cfg(feature = "vault")]
            StoreConfig::Vault(config) => {
                Arc::new(rotator_sink_vault::VaultSink::new(config.clone())?)
            }
            #[cfg(feature = "aws")]
            StoreConfig::AwsSecretsManager(config) => {
                Arc::new(rotator_sink_aws::AwsSink::new(config.clone()).await?)
            }
            #[allow(unreachable_patterns)]
            _ => {
                return Err(SinkError::Other {
                    detail: self.disabled(),
                    source: None,
                })
            }
        })
    }

    /// Why a backend that was not compiled in cannot be used.
    fn disabled(&self) -> String {
        let feature = match self {
            StoreConfig::File(_) => "file",
            StoreConfig::Vault(_) => "vault",
            StoreConfig::AwsSecretsManager(_) => "aws",
        };
        format!(
            "this alation-rotator was built without the `{feature}` feature; rebuild with \
             `--features {feature}` (release builds have every store)"
        )
    }
}
