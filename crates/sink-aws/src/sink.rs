//! [`AwsSink`]: the [`TokenSink`] on AWS Secrets Manager.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::Client;
use backon::{ExponentialBuilder, Retryable};
use rotator_core::{
    Capabilities, ConfigError, Document, Precondition, SinkError, Stored, TokenSink, Version,
    WriteOptions, MANAGED_BY_KEY, MANAGED_BY_VALUE,
};

use crate::config::{
    check_endpoint, tag_char, validate_key, Config, DEFAULT_DESCRIPTION, DEFAULT_ROLE_SESSION_NAME,
};
use crate::errors::{self, Call};
use crate::limit::{Bucket, Limits};
use crate::response_cap::ResponseCap;
use crate::version_id;

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
    limits: Limits,
    /// What this process last learnt about each secret, by key (see [`Known`]).
    known: Arc<Mutex<HashMap<String, Known>>>,
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
#[derive(Clone)]
struct SecretState {
    managed: bool,
    deleted: bool,
    /// `Some(rotation function ARN, possibly empty)` when Secrets Manager rotation is on.
    rotation: Option<String>,
    tags: BTreeMap<String, String>,
    current: Option<String>,
}

/// What the sink knows of a secret while `version` holds `AWSCURRENT`: learnt by the last
/// read or write of this process. A write with `Precondition::Version(version)` trusts it
/// instead of calling `DescribeSecret` again; if the secret changed meanwhile, the version
/// changed too and the compare-and-set of the write fails as it should.
#[derive(Clone)]
struct Known {
    version: String,
    what: KnownState,
}

#[derive(Clone)]
enum KnownState {
    /// The rotator wrote `version` (its version id says so), after making sure the secret
    /// carried its marker and the tags of this fingerprint, and had no rotation of its own.
    Ours { tags_fingerprint: String },
    /// `DescribeSecret` was asked.
    Described(SecretState),
}

/// Why an attempt of a call failed.
enum Failed<E> {
    /// The SDK's error: AWS's answer, or why there was none.
    Sdk(Box<SdkError<E, HttpResponse>>),
    /// The store's `timeout` passed.
    TimedOut,
}

/// How a create ended when it did not fail.
enum Created {
    Created(Version),
    Exists,
}

impl AwsSink {
    /// Builds the sink from its settings and the standard AWS configuration chain
    /// (environment, `profile`, web identity, ECS, instance metadata). Makes no API call:
    /// credentials are resolved on first use. Fails when the settings are invalid or no
    /// region can be found.
    pub async fn new(config: Config) -> Result<Self, SinkError> {
        config.validate().map_err(invalid_settings)?;
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
    ///
    /// An endpoint that `sdk` brings (`AWS_ENDPOINT_URL`, a profile's `endpoint_url`) is held
    /// to the same rule as `endpoint_url`: plain `http://` only to a loopback address, unless
    /// `allow_insecure_http`.
    pub async fn with_sdk_config(config: Config, sdk: &SdkConfig) -> Result<Self, SinkError> {
        config.validate().map_err(invalid_settings)?;
        if let (None, Some(url)) = (&config.endpoint_url, sdk.endpoint_url()) {
            check_endpoint(
                "endpoint_url (from AWS_ENDPOINT_URL or the profile)",
                url,
                config.allow_insecure_http,
            )
            .map_err(invalid_settings)?;
        }
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
            // Retries are the sink's own (`AwsSink::send`): the request token must stay the
            // same across them, and each attempt of a write must pass the rate limit.
            .retry_config(RetryConfig::disabled())
            // The store's `timeout` is applied around all attempts (`AwsSink::send`).
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(config.connect_timeout)
                    .build(),
            )
            .interceptor(ResponseCap);
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
        let limits = Limits::shared(
            &region,
            config.role_arn.as_deref(),
            config.max_writes_per_second,
        );
        Ok(Self {
            client: Client::from_conf(builder.build()),
            config,
            region,
            target,
            limits,
            known: Arc::default(),
        })
    }

    /// The region the sink talks to.
    pub fn region(&self) -> &str {
        &self.region
    }

    fn call<'a>(&'a self, action: &'static str, key: &'a str) -> Call<'a> {
        Call {
            action,
            key,
            target: &self.target,
            kms_key_id: self.config.kms_key_id.as_deref(),
        }
    }

    /// Sends one API call, as `request` builds it, and retries it while the failure is
    /// transient (throttling, server errors, timeouts, lost connections), with jittered
    /// exponential backoff, up to `max_attempts` attempts and within `timeout` in all. Each
    /// attempt of a call in a write quota first waits for the quota's rate limit.
    ///
    /// `request` builds the same request every time: a write's `ClientRequestToken` is drawn
    /// before, so every attempt names the same new version and AWS stores it once.
    ///
    /// The outer error is a timeout, already explained; the inner one is the SDK's, for the
    /// caller to recognise expected answers (not found, exists) before mapping it.
    async fn send<T, E, F, Fut>(
        &self,
        bucket: Option<Bucket>,
        action: &'static str,
        key: &str,
        request: F,
    ) -> Result<Result<T, SdkError<E, HttpResponse>>, SinkError>
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, SdkError<E, HttpResponse>>>,
    {
        let call = self.call(action, key);
        // `timeout` is for AWS, not for our own queue: time spent waiting for the write
        // limit moves the deadline.
        let deadline = Mutex::new(Instant::now() + self.config.timeout);
        let attempt = || async {
            if let Some(bucket) = bucket {
                let queued = Instant::now();
                self.limits.of(bucket).acquire().await;
                *deadline.lock().unwrap_or_else(|e| e.into_inner()) += queued.elapsed();
            }
            let deadline = *deadline.lock().unwrap_or_else(|e| e.into_inner());
            match tokio::time::timeout_at(deadline.into(), request()).await {
                Ok(result) => result.map_err(|error| Failed::Sdk(Box::new(error))),
                Err(_) => Err(Failed::TimedOut),
            }
        };
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(self.config.max_attempts.saturating_sub(1) as usize);
        let result = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .when(|failed| match failed {
                Failed::Sdk(error) => errors::map(error, &call).is_retryable(),
                Failed::TimedOut => false,
            })
            .notify(|failed, delay| {
                if let Failed::Sdk(error) = failed {
                    tracing::debug!(
                        action,
                        key,
                        code = errors::code(error).unwrap_or("none"),
                        ?delay,
                        "transient AWS failure; trying again"
                    );
                }
            })
            .await;
        match result {
            Ok(out) => Ok(Ok(out)),
            Err(Failed::Sdk(error)) => Ok(Err(*error)),
            Err(Failed::TimedOut) => Err(SinkError::Unavailable {
                detail: format!(
                    "{action} on {key:?} at {} did not finish within the store's `timeout` \
                     ({}), retries included; AWS may be slow or unreachable, or raise `timeout`",
                    self.target,
                    humantime_serde::re::humantime::format_duration(self.config.timeout)
                ),
                source: None,
            }),
        }
    }

    fn remember(&self, key: &str, version: &str, what: KnownState) {
        self.known.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key.to_owned(),
            Known {
                version: version.to_owned(),
                what,
            },
        );
    }

    fn forget(&self, key: &str) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// What is known of `key` while `version` holds `AWSCURRENT`.
    fn known_at(&self, key: &str, version: &str) -> Option<KnownState> {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .filter(|known| known.version == version)
            .map(|known| known.what.clone())
    }

    /// `DescribeSecret`; `None` when the secret does not exist.
    async fn describe(&self, key: &str) -> Result<Option<SecretState>, SinkError> {
        let action = "secretsmanager:DescribeSecret";
        let out = match self
            .send(None, action, key, || {
                self.client.describe_secret().secret_id(key).send()
            })
            .await?
        {
            Ok(out) => out,
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => return Ok(None),
            Err(e) => return Err(errors::map(&e, &self.call(action, key))),
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
            rotation: (out.rotation_enabled() == Some(true))
                .then(|| out.rotation_lambda_arn().unwrap_or_default().to_owned()),
            tags,
            current,
        }))
    }

    /// The tags a written secret should carry: the user's, the labels and the marker.
    ///
    /// Labels whose value changes with every document (the token's expiry) are left out:
    /// keeping them true would cost a `TagResource` call on every write.
    fn wanted_tags(&self, labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut tags = self.config.tags.clone();
        for (key, value) in labels {
            if CHANGING_LABELS.contains(&key.as_str()) {
                continue;
            }
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

    async fn tag(&self, key: &str, tags: BTreeMap<String, String>) -> Result<(), SinkError> {
        if tags.is_empty() {
            return Ok(());
        }
        let tags: Vec<Tag> = tags
            .into_iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let action = "secretsmanager:TagResource";
        self.send(Some(Bucket::Tag), action, key, || {
            self.client
                .tag_resource()
                .secret_id(key)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await?
        .map(|_| ())
        .map_err(|e| errors::map(&e, &self.call(action, key)))
    }

    async fn get(&self, key: &str, stage: &'static str) -> Result<Option<Stored>, SinkError> {
        validate_key(key)?;
        let action = "secretsmanager:GetSecretValue";
        let out = match self
            .send(None, action, key, || {
                self.client
                    .get_secret_value()
                    .secret_id(key)
                    .version_stage(stage)
                    .send()
            })
            .await?
        {
            Ok(out) => out,
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => {
                if stage == AWSCURRENT {
                    self.forget(key);
                }
                return Ok(None);
            }
            Err(e) if errors::marked_for_deletion(&e) => {
                return Err(errors::scheduled_for_deletion(key))
            }
            Err(e) => return Err(errors::map(&e, &self.call(action, key))),
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
        let managed = if let Some(tags_fingerprint) = version_id::ours(&version) {
            if stage == AWSCURRENT {
                self.remember(
                    key,
                    &version,
                    KnownState::Ours {
                        tags_fingerprint: tags_fingerprint.to_owned(),
                    },
                );
            }
            true
        } else {
            let Some(state) = self.describe(key).await? else {
                return Ok(None);
            };
            let managed = state.managed;
            if stage == AWSCURRENT && state.current.as_deref() == Some(version.as_str()) {
                self.remember(key, &version, KnownState::Described(state));
            }
            managed
        };
        Ok(Some(Stored {
            document,
            version: Version::new(version),
            managed,
        }))
    }

    /// `CreateSecret` with the document, the configured key, description and `tags`.
    async fn create(
        &self,
        key: &str,
        secret_string: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Created, SinkError> {
        let tags_fingerprint = version_id::tags_fingerprint(tags);
        let token = version_id::new(&tags_fingerprint);
        let tag_list: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        let description = self
            .config
            .description
            .clone()
            .unwrap_or_else(|| DEFAULT_DESCRIPTION.to_owned());
        let action = "secretsmanager:CreateSecret";
        let result = self
            .send(Some(Bucket::Create), action, key, || {
                self.client
                    .create_secret()
                    .name(key)
                    .secret_string(secret_string)
                    .client_request_token(&token)
                    .description(&description)
                    .set_kms_key_id(self.config.kms_key_id.clone())
                    .set_tags(Some(tag_list.clone()))
                    .send()
            })
            .await?;
        match result {
            Ok(out) => {
                let version = out.version_id().unwrap_or(&token).to_owned();
                self.remember(key, &version, KnownState::Ours { tags_fingerprint });
                Ok(Created::Created(Version::new(version)))
            }
            Err(e) if errors::marked_for_deletion(&e) => Err(errors::scheduled_for_deletion(key)),
            Err(e) if errors::code(&e) == Some("ResourceExistsException") => Ok(Created::Exists),
            Err(e) => Err(errors::map(&e, &self.call(action, key))),
        }
    }

    /// Writes a new version of an existing secret and makes it `AWSCURRENT`, if and only if
    /// `expected` still holds `AWSCURRENT` (or, with `None`, no version does).
    ///
    /// The version is written with `AWSPENDING` only, then `UpdateSecretVersionStage` moves
    /// `AWSCURRENT` to it with `RemoveFromVersionId = expected`, which AWS refuses when
    /// `expected` no longer holds `AWSCURRENT`: this is the compare-and-set. `AWSPENDING`
    /// stays on the new version; the next write's `PutSecretValue` moves it, which saves a
    /// call in the write quota.
    async fn put(
        &self,
        key: &str,
        secret_string: &str,
        expected: Option<&str>,
        tags_fingerprint: &str,
    ) -> Result<Version, SinkError> {
        let token = version_id::new(tags_fingerprint);
        let action = "secretsmanager:PutSecretValue";
        let put = self
            .send(Some(Bucket::Write), action, key, || {
                self.client
                    .put_secret_value()
                    .secret_id(key)
                    .secret_string(secret_string)
                    .client_request_token(&token)
                    .version_stages(AWSPENDING)
                    .send()
            })
            .await?;
        let out = match put {
            Ok(out) => out,
            Err(e) if errors::marked_for_deletion(&e) => {
                return Err(errors::scheduled_for_deletion(key))
            }
            Err(e) if errors::code(&e) == Some("ResourceNotFoundException") => {
                return Err(SinkError::Conflict {
                    key: key.to_owned(),
                    detail: format!(
                        "expected version {}, but the secret no longer exists",
                        expected.unwrap_or("(none)")
                    ),
                })
            }
            Err(e) => return Err(errors::map(&e, &self.call(action, key))),
        };
        let version = out.version_id().unwrap_or(&token).to_owned();
        if out.version_stages().iter().any(|s| s == AWSCURRENT) {
            // The first version of a secret is current at once.
            return Ok(Version::new(version));
        }
        let action = "secretsmanager:UpdateSecretVersionStage";
        let moved = self
            .send(Some(Bucket::Write), action, key, || {
                self.client
                    .update_secret_version_stage()
                    .secret_id(key)
                    .version_stage(AWSCURRENT)
                    .move_to_version_id(&version)
                    .set_remove_from_version_id(expected.map(str::to_owned))
                    .send()
            })
            .await?;
        let error = match moved {
            Ok(_) => return Ok(Version::new(version)),
            Err(e) => e,
        };
        if errors::marked_for_deletion(&error) {
            return Err(errors::scheduled_for_deletion(key));
        }
        if matches!(
            errors::code(&error),
            Some("InvalidParameterException" | "InvalidRequestException")
        ) {
            // Either another writer moved AWSCURRENT first, or an earlier attempt of this
            // very call moved it and its answer was lost. Ask which.
            let now = self.describe(key).await?.and_then(|s| s.current);
            if now.as_deref() == Some(version.as_str()) {
                return Ok(Version::new(version));
            }
            if now.as_deref() != expected {
                self.drop_pending(key, &version).await;
                return Err(SinkError::Conflict {
                    key: key.to_owned(),
                    detail: format!(
                        "expected AWSCURRENT on version {}, but another writer made {} \
                         current first; re-read and decide again",
                        expected.unwrap_or("(none)"),
                        now.as_deref().unwrap_or("(none)")
                    ),
                });
            }
        }
        Err(errors::map(&error, &self.call(action, key)))
    }

    /// Removes `AWSPENDING` from the version of a write that lost, so that its token is
    /// never labelled. Best effort: a left-over label is harmless, and the next write moves
    /// it.
    async fn drop_pending(&self, key: &str, version: &str) {
        let result = self
            .send(
                Some(Bucket::Write),
                "secretsmanager:UpdateSecretVersionStage",
                key,
                || {
                    self.client
                        .update_secret_version_stage()
                        .secret_id(key)
                        .version_stage(AWSPENDING)
                        .remove_from_version_id(version)
                        .send()
                },
            )
            .await;
        if !matches!(result, Ok(Ok(_))) {
            tracing::debug!(
                key,
                "could not remove AWSPENDING from the losing version; harmless"
            );
        }
    }

    /// One decision of a write over an existing secret, from what is `known` of it.
    async fn write_existing(
        &self,
        key: &str,
        secret_string: &str,
        options: &WriteOptions,
        known: KnownState,
        expected: Option<&str>,
    ) -> Result<Version, SinkError> {
        let wanted = self.wanted_tags(&options.labels);
        let tags_fingerprint = version_id::tags_fingerprint(&wanted);
        let missing = match &known {
            KnownState::Ours {
                tags_fingerprint: had,
            } if *had == tags_fingerprint => BTreeMap::new(),
            // The settings' tags or the labels changed since the rotator last wrote: put
            // them all (TagResource keeps other tags).
            KnownState::Ours { .. } => wanted,
            KnownState::Described(state) => {
                if state.deleted {
                    return Err(errors::scheduled_for_deletion(key));
                }
                if let Precondition::Version(expected) = &options.precondition {
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
                if let Some(lambda) = &state.rotation {
                    return Err(errors::rotation_enabled(key, Some(lambda)));
                }
                if !state.managed && !options.takeover {
                    return Err(SinkError::Unmanaged {
                        key: key.to_owned(),
                    });
                }
                wanted
                    .into_iter()
                    .filter(|(k, v)| state.tags.get(k) != Some(v))
                    .collect()
            }
        };
        // Tag first: adopting a secret marks it before our document is in it, so that a
        // crash in between cannot leave our token in a secret that looks foreign.
        self.tag(key, missing).await?;
        let version = self
            .put(key, secret_string, expected, &tags_fingerprint)
            .await?;
        self.remember(key, version.as_str(), KnownState::Ours { tags_fingerprint });
        Ok(version)
    }
}

/// Labels that change with every document; not kept as tags (see `wanted_tags`).
const CHANGING_LABELS: &[&str] = &["token-expires-at"];

fn invalid_settings(error: ConfigError) -> SinkError {
    SinkError::Other {
        detail: format!("invalid aws_secrets_manager store settings: {error}"),
        source: None,
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
        let action = "secretsmanager:ListSecrets";
        match self
            .send(None, action, "*", || {
                self.client.list_secrets().max_results(1).send()
            })
            .await?
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    errors::code(&e),
                    Some("AccessDeniedException" | "AccessDenied")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(errors::map(&e, &self.call(action, "*"))),
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
        let result = self.decide_and_write(key, &secret_string, options).await;
        if result.is_err() {
            // Whatever was known may be what made the write fail; ask again next time.
            self.forget(key);
        }
        result
    }

    async fn read_previous(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        self.get(key, AWSPREVIOUS).await
    }
}

impl AwsSink {
    async fn decide_and_write(
        &self,
        key: &str,
        secret_string: &str,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        // `Absent` needs no look first: CreateSecret refuses a name that exists.
        if options.precondition == Precondition::Absent {
            let tags = self.wanted_tags(&options.labels);
            return match self.create(key, secret_string, &tags).await? {
                Created::Created(version) => Ok(version),
                Created::Exists => Err(SinkError::Conflict {
                    key: key.to_owned(),
                    detail: "expected no secret, but it exists (another writer may have \
                             created it first)"
                        .into(),
                }),
            };
        }
        // The decision is taken again when a `Precondition::Any` write loses the create or
        // the stage move to another writer.
        for _ in 0..5 {
            let (known, expected) = match &options.precondition {
                Precondition::Version(expected) => match self.known_at(key, expected.as_str()) {
                    Some(known) => (Some(known), Some(expected.as_str().to_owned())),
                    None => (None, None),
                },
                _ => (None, None),
            };
            let (known, expected) = match known {
                Some(known) => (known, expected),
                None => match self.describe(key).await? {
                    Some(state) => {
                        let current = state.current.clone();
                        (KnownState::Described(state), current)
                    }
                    None => {
                        if let Precondition::Version(expected) = &options.precondition {
                            return Err(SinkError::Conflict {
                                key: key.to_owned(),
                                detail: format!(
                                    "expected version {expected}, but the secret does not exist"
                                ),
                            });
                        }
                        let tags = self.wanted_tags(&options.labels);
                        match self.create(key, secret_string, &tags).await? {
                            Created::Created(version) => return Ok(version),
                            Created::Exists => continue,
                        }
                    }
                },
            };
            match self
                .write_existing(key, secret_string, options, known, expected.as_deref())
                .await
            {
                Err(SinkError::Conflict { .. }) if options.precondition == Precondition::Any => {
                    self.forget(key);
                    continue;
                }
                result => return result,
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
}
