//! The stores this crate ships, each behind the cargo feature of the same name. They
//! register through [`App::with_store`](crate::App::with_store) like anyone else's.

#[cfg(any(feature = "file", feature = "vault", feature = "aws", feature = "exec"))]
use std::sync::Arc;

#[cfg(any(feature = "file", feature = "vault", feature = "aws", feature = "exec"))]
use rotator_core::{ConfigError, SinkError, TokenSink};

#[cfg(any(feature = "file", feature = "vault", feature = "aws", feature = "exec"))]
use crate::registry::StoreType;

/// `type = "file"`: JSON documents in a local directory.
#[cfg(feature = "file")]
#[derive(Debug)]
pub struct FileStore;

#[cfg(feature = "file")]
impl StoreType for FileStore {
    const TYPE: &'static str = "file";
    type Config = rotator_sink_file::Config;

    fn validate(config: &Self::Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn validate_key(_config: &Self::Config, key: &str) -> Result<(), SinkError> {
        rotator_sink_file::validate_key(key)
    }

    async fn build(config: &Self::Config) -> Result<Arc<dyn TokenSink>, SinkError> {
        Ok(Arc::new(rotator_sink_file::FileSink::new(config.clone())?))
    }
}

/// `type = "vault"`: HashiCorp Vault or OpenBao KV.
#[cfg(feature = "vault")]
#[derive(Debug)]
pub struct VaultStore;

#[cfg(feature = "vault")]
impl StoreType for VaultStore {
    const TYPE: &'static str = "vault";
    type Config = rotator_sink_vault::Config;
    const SECRET_KEYS: &'static [&'static str] =
        &["token", "secret_id", "role_id", "jwt", "password"];

    fn validate(config: &Self::Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn validate_key(_config: &Self::Config, key: &str) -> Result<(), SinkError> {
        rotator_sink_vault::validate_key(key)
    }

    async fn build(config: &Self::Config) -> Result<Arc<dyn TokenSink>, SinkError> {
        Ok(Arc::new(rotator_sink_vault::VaultSink::new(
            config.clone(),
        )?))
    }
}

/// `type = "aws_secrets_manager"`: AWS Secrets Manager.
#[cfg(feature = "aws")]
#[derive(Debug)]
pub struct AwsSecretsManagerStore;

#[cfg(feature = "aws")]
impl StoreType for AwsSecretsManagerStore {
    const TYPE: &'static str = "aws_secrets_manager";
    type Config = rotator_sink_aws::Config;
    const SECRET_KEYS: &'static [&'static str] = &[
        "aws_secret_access_key",
        "secret_access_key",
        "aws_session_token",
    ];

    fn validate(config: &Self::Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn validate_key(_config: &Self::Config, key: &str) -> Result<(), SinkError> {
        rotator_sink_aws::validate_key(key)
    }

    async fn build(config: &Self::Config) -> Result<Arc<dyn TokenSink>, SinkError> {
        Ok(Arc::new(
            rotator_sink_aws::AwsSink::new(config.clone()).await?,
        ))
    }
}

/// `type = "exec"`: a program of yours, in any language, speaks a JSON protocol (see
/// `docs/extending.md`).
#[cfg(feature = "exec")]
#[derive(Debug)]
pub struct ExecStore;

#[cfg(feature = "exec")]
impl StoreType for ExecStore {
    const TYPE: &'static str = "exec";
    type Config = rotator_sink_exec::Config;

    fn validate(config: &Self::Config) -> Result<(), ConfigError> {
        config.validate()
    }

    fn validate_key(_config: &Self::Config, key: &str) -> Result<(), SinkError> {
        rotator_sink_exec::validate_key(key)
    }

    async fn build(config: &Self::Config) -> Result<Arc<dyn TokenSink>, SinkError> {
        Ok(Arc::new(rotator_sink_exec::ExecSink::new(config.clone())?))
    }
}
