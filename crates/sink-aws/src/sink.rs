//! [`AwsSink`]: the [`TokenSink`] on AWS Secrets Manager.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::Client;
use rotator_core::{
    Capabilities, Document, Precondition, SinkError, Stored, TokenSink, Version, WriteOptions,
    MANAGED_BY_KEY, MANAGED_BY_VALUE,
};
use sha2::{Digest, Sha256};

use crate::config::{
    tag_char, validate_key, Config, DEFAULT_DESCRIPTION, DEFAULT_ROLE_SESSION_NAME,
};
use crate::errors::{self, Call};

/// The staging label of the version consumers read.
pub const AWSCURRENT: &str = "AWSCURRENT";
/// The staging label AWS moves to the version that was current before.
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
/// The staging label of a version written but not yet made current.
pub const AWSPENDING: &str = "AWSPENDING";

/// A [`TokenSink`] that keeps each document as the JSON `SecretString` of an AWS Secrets
/// Manager secret named by the key.
///
/// See the [crate documentation](crate) for how writes, compare-and-set and ownership work.
#[derive(Clone)]
pub struct AwsSink {
    client: Client,
    config: Config,
    region: String,
    target: String,
}

impl fmt::Debug for AwsSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsSink")
            .field("target", &self.target)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What `DescribeSecret` says about a secret.
struct SecretState {
    managed: bool,
    deleted: bool,
    tags: BTreeMap<String, String>,
    current: Option<String>,
}

impl AwsSink {
    /// Builds the sink from its settings and the standard AWS configuration chain
    /// (environment, `profile`, web identity, ECS, instance metadata). Makes no API call:
    /// credentials are resolved on first use. Fails when the settings are invalid or no
    /// region can be found.
    pub async fn new(config: Config) -> Result<Self, SinkError> {
        config.validate()?;
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = &config.profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = &config.region {
            loader = loader.region(Region::new(region.clone()));
        }
        let sdk = loader.load().await;
        Self::with_sdk_config(config, &sdk).await
    }

    /// Builds the sink on an AWS configuration loaded by the caller (for example
    /// `aws_config::defaults(..).credentials_provider(..).load()`), applying the store's own
    /// settings on top: `region`, `endpoint_url`, `role_arn`, timeouts and retries. `profile`
    /// is not applied here: load it into `sdk` instead. Makes no API call.
    pub async fn with_sdk_config(config: Config, sdk: &SdkConfig) -> Result<Self, SinkError> {
        config.validate()?;
        let region = match (&config.region, sdk.region()) {
            (Some(region), _) => region.clone(),
            (None, Some(region)) => region.to_string(),
            (None, None) => {
                return Err(SinkError::Other {
                    detail: "no AWS region for the aws_secrets_manager store: set `region` in \
                             the store's settings, or AWS_REGION in the environment"
                        .into(),
                    source: None,
                })
            }
        };
        let mut builder = aws_sdk_secretsmanager::config::Builder::from(sdk)
            .region(Region::new(region.clone()))
            .retry_config(RetryConfig::standard().with_max_attempts(config.max_attempts))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(config.timeout)
                    .connect_timeout(config.connect_timeout)
                    .build(),
            );
        if let Some(url) = &config.endpoint_url {
            builder = builder.endpoint_url(url);
        }
        if let Some(role_arn) = &config.role_arn {
            let mut sts = sdk.to_builder();
            sts.set_region(Some(Region::new(region.clone())));
            if let Some(url) = &config.sts_endpoint_url {
                sts.set_endpoint_url(Some(url.clone()));
            }
            let mut role = AssumeRoleProvider::builder(role_arn.clone())
                .session_name(
                    config
                        .role_session_name
                        .clone()
                        .unwrap_or_else(|| DEFAULT_ROLE_SESSION_NAME.to_owned()),
                )
                .region(Region::new(region.clone()));
            if let Some(id) = &config.external_id {
                role = role.external_id(id.clone());
            }
            let provider = role.configure(&sts.build()).build().await;
            builder = builder.credentials_provider(provider);
        }
        let mut target = format!("aws-secretsmanager:{region}");
        if let Some(url) = &config.endpoint_url {
            target.push_str(&format!(" at {url}"));
        }
        if let Some(role_arn) = &config.role_arn {
            target.push_str(&format!(" as {role_arn}"));
        }
        Ok(Self {
            client: Client::from_conf(builder.build()),
            config,
            region,
            target,
        })
    }

    /// The region the sink talks to.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The ClientRequestToken (and so the `VersionId`) of a write: derived from the secret
    /// name, the version the write starts from and the document, so that every retry of the
    /// same request names the same version and Secrets Manager stores it only once.
    pub fn request_token(key: &str, base: Option<&str>, secret_string: &str) -> String {
        let document = Sha256::digest(secret_string.as_bytes());
        let mut hasher = Sha256::new();
        hasher.update(b"alation-rotator/aws-request-token/v1\0");
        hasher.update(key.as_bytes());
        hasher.update(b"\0");
        hasher.update(base.unwrap_or("-").as_bytes());
        hasher.update(b"\0");
        hasher.update(document);
        let digest = hasher.finalize();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        // UUID-shaped (version 8, "custom"), like the version ids AWS generates itself.
        format!(
            "{}-{}-8{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[13..16],
            &hex[16..20],
            &hex[20..32]
        )
    }

    fn call<'a>(&'a self, action: &'static str, key: &'a str) -> Call<'a> {
        Call {
            action,
            key,
            target: &self.target,
            kms_key_id: self.config.kms_key_id.as_deref(),
        }
    }

    /// `DescribeSecret`; `None` when the secret does not exist.
    async fn state(&self, key: &str) -> Result<Option<SecretState>, SinkError> {
        let out = match self.client.describe_secret().secret_id(key).send().await {
            Ok(out) => out,
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => {
                return Err(errors::map(
                    e,
                    &self.call("secretsmanager:DescribeSecret", key),
                ))
            }
        };
        let tags: BTreeMap<String, String> = out
            .tags()
            .iter()
            .filter_map(|t| {
                Some((
                    t.key()?.to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                ))
            })
            .collect();
        let current = out.version_ids_to_stages().and_then(|versions| {
            versions
                .iter()
                .find(|(_, stages)| stages.iter().any(|s| s == AWSCURRENT))
                .map(|(id, _)| id.clone())
        });
        Ok(Some(SecretState {
            managed: tags.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE),
            deleted: out.deleted_date().is_some(),
            tags,
            current,
        }))
    }

    /// The tags a written secret should carry: the user's, the labels and the marker.
    fn wanted_tags(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut tags = self.config.tags.clone();
        for (key, value) in labels {
            let key: String = key.chars().filter(|c| tag_char(*c)).take(128).collect();
            if key.is_empty() || key.to_ascii_lowercase().starts_with("aws:") {
                continue;
            }
            let value: String = value
                .chars()
                .map(|c| if tag_char(c) { c } else { '_' })
                .take(256)
                .collect();
            tags.insert(key, value);
        }
        tags.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
        tags
    }

    async fn tag(&self, key: &str, tags: Vec<Tag>) -> Result<(), SinkError> {
        if tags.is_empty() {
            return Ok(());
        }
        self.client
            .tag_resource()
            .secret_id(key)
            .set_tags(Some(tags))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| errors::map(e, &self.call("secretsmanager:TagResource", key)))
    }

    async fn get(&self, key: &str, stage: &'static str) -> Result<Option<Stored>, SinkError> {
        validate_key(key)?;
        let out = match self
            .client
            .get_secret_value()
            .secret_id(key)
            .version_stage(stage)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) if errors::marked_for_deletion(&e) => {
                return Err(errors::scheduled_for_deletion(key))
            }
            Err(e) => {
                return Err(errors::map(
                    e,
                    &self.call("secretsmanager:GetSecretValue", key),
                ))
            }
        };
        let version = out.version_id().unwrap_or_default().to_owned();
        let Some(text) = out.secret_string() else {
            return Err(SinkError::InvalidDocument {
                key: key.to_owned(),
                detail: "the secret holds a SecretBinary, not a JSON SecretString".into(),
            });
        };
        let document =
            Document::from_slice(text.as_bytes()).map_err(|e| SinkError::InvalidDocument {
                key: key.to_owned(),
                detail: format!("the SecretString is {e}"),
            })?;
        let managed = match self.state(key).await? {
            Some(state) => state.managed,
            None => return Ok(None),
        };
        Ok(Some(Stored {
            document,
            version: Version::new(version),
            managed,
        }))
    }

    async fn create(
        &self,
        key: &str,
        secret_string: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<Result<Version, ()>, SinkError> {
        let token = Self::request_token(key, None, secret_string);
        let tags = self
            .wanted_tags(labels)
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let result = self
            .client
            .create_secret()
            .name(key)
            .secret_string(secret_string)
            .client_request_token(&token)
            .description(
                self.config
                    .description
                    .clone()
                    .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_owned()),
            )
            .set_kms_key_id(self.config.kms_key_id.clone())
            .set_tags(Some(tags))
            .send()
            .await;
        match result {
            Ok(out) => Ok(Ok(Version::new(out.version_id().unwrap_or(&token)))),
            Err(e) if errors::code(&e) == Some("ResourceExistsException") => Ok(Err(())),
            Err(e) if errors::marked_for_deletion(&e) => Err(errors::scheduled_for_deletion(key)),
            Err(e) => Err(errors::map(
                e,
                &self.call("secretsmanager:CreateSecret", key),
            )),
        }
    }

    /// Writes a new version of an existing secret and makes it `AWSCURRENT`, if and only if
    /// `expected` still holds `AWSCURRENT` (or, with `None`, no version does).
    ///
    /// The version is written with `AWSPENDING` only, then `UpdateSecretVersionStage` moves
    /// `AWSCURRENT` to it with `RemoveFromVersionId = expected`, which AWS refuses when
    /// `expected` no longer holds `AWSCURRENT`: this is the compare-and-set.
    async fn put(
        &self,
        key: &str,
        secret_string: &str,
        expected: Option<&str>,
    ) -> Result<Version, SinkError> {
        let token = Self::request_token(key, expected, secret_string);
        let request = self
            .client
            .put_secret_value()
            .secret_id(key)
            .secret_string(secret_string)
            .client_request_token(&token)
            .version_stages(AWSPENDING);
        let out = match request.send().await {
            Ok(out) => out,
            Err(e) if errors::marked_for_deletion(&e) => {
                return Err(errors::scheduled_for_deletion(key))
            }
            Err(e) => {
                return Err(errors::map(
                    e,
                    &self.call("secretsmanager:PutSecretValue", key),
                ))
            }
        };
        let version = out.version_id().unwrap_or(&token).to_owned();
        if out.version_stages().iter().any(|s| s == AWSCURRENT) {
            // The first version of a secret is current at once.
            self.drop_pending(key, &version).await;
            return Ok(Version::new(version));
        }
        let from = expected.map(str::to_owned);
        let moved = self
            .client
            .update_secret_version_stage()
            .secret_id(key)
            .version_stage(AWSCURRENT)
            .move_to_version_id(&version)
            .set_remove_from_version_id(from.clone())
            .send()
            .await;
        match moved {
            Ok(_) => {
                self.drop_pending(key, &version).await;
                Ok(Version::new(version))
            }
            Err(e) => {
                let code = errors::code(&e).map(str::to_owned);
                let deleted = errors::marked_for_deletion(&e);
                self.drop_pending(key, &version).await;
                if deleted {
                    return Err(errors::scheduled_for_deletion(key));
                }
                if matches!(
                    code.as_deref(),
                    Some("InvalidParameterException" | "InvalidRequestException")
                ) {
                    // Confirm that someone else moved AWSCURRENT before calling it a conflict.
                    let now = self.state(key).await?.and_then(|s| s.current);
                    if now != from {
                        return Err(SinkError::Conflict {
                            key: key.to_owned(),
                            detail: format!(
                                "expected AWSCURRENT on version {}, but another writer made {} \
                                 current first; re-read and decide again",
                                from.as_deref().unwrap_or("(none)"),
                                now.as_deref().unwrap_or("(none)")
                            ),
                        });
                    }
                }
                Err(errors::map(
                    e,
                    &self.call("secretsmanager:UpdateSecretVersionStage", key),
                ))
            }
        }
    }

    /// Removes `AWSPENDING` from `version` once it is no longer needed. Best effort: a left-over
    /// label is harmless and the next staged write moves it.
    async fn drop_pending(&self, key: &str, version: &str) {
        let result = self
            .client
            .update_secret_version_stage()
            .secret_id(key)
            .version_stage(AWSPENDING)
            .remove_from_version_id(version)
            .send()
            .await;
        if let Err(e) = result {
            tracing::debug!(
                key,
                code = errors::code(&e).unwrap_or("none"),
                "could not remove AWSPENDING from the written version; harmless"
            );
        }
    }
}

#[async_trait]
impl TokenSink for AwsSink {
    fn describe(&self) -> String {
        self.target.clone()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(true, true, true)
    }

    /// Lists at most one secret. `AccessDeniedException` still proves the endpoint answers and
    /// the credentials are valid (AWS checks the signature first), so it counts as success:
    /// the rotator's policy need not grant `secretsmanager:ListSecrets`.
    async fn check(&self) -> Result<(), SinkError> {
        match self.client.list_secrets().max_results(1).send().await {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    errors::code(&e),
                    Some("AccessDeniedException" | "AccessDenied")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(errors::map(
                e,
                &self.call("secretsmanager:ListSecrets", "*"),
            )),
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        self.get(key, AWSCURRENT).await
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        validate_key(key)?;
        let secret_string = String::from_utf8(document.to_json_bytes()).map_err(|_| {
            SinkError::InvalidDocument {
                key: key.to_owned(),
                detail: "the document does not serialize to UTF-8 JSON".into(),
            }
        })?;
        // The decision is taken again when a create loses to another create, or when a
        // `Precondition::Any` write loses the stage move to another writer.
        for _ in 0..5 {
            let Some(state) = self.state(key).await? else {
                if let Precondition::Version(expected) = &options.precondition {
                    return Err(SinkError::Conflict {
                        key: key.to_owned(),
                        detail: format!(
                            "expected version {expected}, but the secret does not exist"
                        ),
                    });
                }
                match self.create(key, &secret_string, &options.labels).await? {
                    Ok(version) => return Ok(version),
                    Err(()) if options.precondition == Precondition::Absent => {
                        return Err(SinkError::Conflict {
                            key: key.to_owned(),
                            detail: "expected no secret, but another writer created it first"
                                .into(),
                        })
                    }
                    Err(()) => continue,
                }
            };
            if state.deleted {
                return Err(errors::scheduled_for_deletion(key));
            }
            match &options.precondition {
                Precondition::Any => {}
                Precondition::Absent => {
                    if let Some(current) = &state.current {
                        return Err(SinkError::Conflict {
                            key: key.to_owned(),
                            detail: format!(
                                "expected no secret, but it exists at version {current}"
                            ),
                        });
                    }
                }
                Precondition::Version(expected) => {
                    if state.current.as_deref() != Some(expected.as_str()) {
                        return Err(SinkError::Conflict {
                            key: key.to_owned(),
                            detail: format!(
                                "expected version {expected}, but AWSCURRENT is {}",
                                state.current.as_deref().unwrap_or("(no version)")
                            ),
                        });
                    }
                }
            }
            if !state.managed && !options.takeover {
                return Err(SinkError::Unmanaged {
                    key: key.to_owned(),
                });
            }
            let wanted = self.wanted_tags(&options.labels);
            let (marker, rest): (Vec<_>, Vec<_>) = wanted
                .into_iter()
                .filter(|(k, v)| state.tags.get(k) != Some(v))
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .partition(|t| t.key() == Some(MANAGED_BY_KEY));
            // Adopting a secret: mark it first, so that a crash after the write cannot leave
            // our document in a secret that still looks foreign.
            self.tag(key, marker).await?;
            match self
                .put(key, &secret_string, state.current.as_deref())
                .await
            {
                Err(SinkError::Conflict { .. }) if options.precondition == Precondition::Any => {
                    continue
                }
                Err(e) => return Err(e),
                Ok(version) => {
                    self.tag(key, rest).await?;
                    return Ok(version);
                }
            }
        }
        Err(SinkError::Unavailable {
            detail: format!(
                "gave up writing {key:?} after 5 attempts: other writers kept changing it; \
                 try again"
            ),
            source: None,
        })
    }

    async fn read_previous(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        self.get(key, AWSPREVIOUS).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_tokens_are_deterministic_and_fit_aws_limits() {
        let a = AwsSink::request_token("alation/x", Some("v1"), "{\"a\":1}");
        assert_eq!(
            a,
            AwsSink::request_token("alation/x", Some("v1"), "{\"a\":1}")
        );
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
        for other in [
            AwsSink::request_token("alation/y", Some("v1"), "{\"a\":1}"),
            AwsSink::request_token("alation/x", Some("v2"), "{\"a\":1}"),
            AwsSink::request_token("alation/x", None, "{\"a\":1}"),
            AwsSink::request_token("alation/x", Some("v1"), "{\"a\":2}"),
        ] {
            assert_ne!(a, other);
        }
    }
}
