//! AWS Secrets Manager [`TokenSink`](rotator_core::TokenSink) for alation-rotator.
//!
//! Each key is a secret name; the document is the secret's `SecretString`, as JSON, so a
//! consumer (Lambda, ECS, Glue, anything with the AWS SDK) reads the token with the usual
//! `GetSecretValue` call. User documentation: `docs/stores/aws.md`.
//!
//! # Reading
//!
//! One `GetSecretValue`. Every version the sink writes gets a version id that says so
//! (`alation-rotator-<tags fingerprint>-<128 random bits>`, see the `version_id` module), and
//! the sink writes only to secrets that carry its marker and have no rotation of their own.
//! So while the current version is its own, a read needs nothing else; any other version
//! costs one `DescribeSecret` (ownership tag, `RotationEnabled`, deletion). What a read
//! learnt is kept per key and version for the next write.
//!
//! # Writing
//!
//! - [`Precondition::Absent`](rotator_core::Precondition): `CreateSecret` with the document,
//!   the configured `kms_key_id`, description and tags, the `managed-by = alation-rotator`
//!   tag and the stable labels. AWS refuses a name that exists: a conflict.
//! - [`Precondition::Version(v)`](rotator_core::Precondition): if this process just read or
//!   wrote `v`, what it learnt then is trusted (the compare-and-set below fails anyway if `v`
//!   is no longer current); otherwise `DescribeSecret` first, which must show `v` current.
//!   A secret without the marker is refused with
//!   [`SinkError::Unmanaged`](rotator_core::SinkError) unless `takeover` is set; a secret
//!   with Secrets Manager rotation turned on is refused in any case (its Lambda owns
//!   `AWSPENDING`). Missing tags are added with one `TagResource` before the value is
//!   written (the marker on takeover, a tag added to the settings); then the staged write
//!   below. Labels that change with every document (`token-expires-at`) are not tags: they
//!   would cost a `TagResource` per write.
//! - [`Precondition::Any`](rotator_core::Precondition): `DescribeSecret`, then as above from
//!   the version found; if another writer moves `AWSCURRENT` in between, the write is decided
//!   again (up to five times), so the last writer wins.
//!
//! # What protects against two writers
//!
//! Secrets Manager has no conditional `PutSecretValue`. The sink therefore uses the staging
//! protocol of AWS's own rotation functions, whose last step is atomic on AWS's side: the new
//! version is written with `PutSecretValue` and the stage `AWSPENDING` only (consumers do not
//! see it), then `UpdateSecretVersionStage` moves `AWSCURRENT` to it with
//! `RemoveFromVersionId = v`. AWS refuses that call when `v` no longer holds `AWSCURRENT`, so
//! of two writers that both started from `v`, exactly one moves the stage; the other gets
//! [`SinkError::Conflict`](rotator_core::SinkError) and its pending version is never current
//! (its `AWSPENDING` label is removed). The winner's version keeps `AWSPENDING` next to
//! `AWSCURRENT` until the next write moves it: two calls in the write quota per write, not
//! three.
//!
//! The `ClientRequestToken` of a write (which becomes the new `VersionId`) is random, drawn
//! once, and sent unchanged with every retry, so a request retried after a lost answer never
//! creates a second version, and two writers never share a token. The protection relies on
//! AWS enforcing `RemoveFromVersionId`, not on the request token: the moto test server lets a
//! replayed token overwrite an `AWSPENDING` value, so nothing here depends on that. The sink
//! declares `compare_and_set`, `versions_kept` and `previous_readable`.
//!
//! # A polite client
//!
//! Retries are the sink's own (the SDK's are off): throttling, server errors, timeouts and
//! lost connections are retried with jittered exponential backoff, up to `max_attempts`
//! within `timeout`. Each attempt of a call in one of Secrets Manager's write quotas
//! (`PutSecretValue`/`UpdateSecretVersionStage`/`UpdateSecret`; `TagResource`;
//! `CreateSecret`) first waits for a per-process, per-region limit of
//! `max_writes_per_second` on that quota. Answers over [`MAX_RESPONSE_BYTES`] are refused.
//! Plain `http://` endpoints are refused unless they are loopback addresses or
//! `allow_insecure_http` is set.
//!
//! # Credentials
//!
//! [`AwsSink::new`] loads the standard chain of `aws-config` (environment, profile with SSO
//! or `credential_process`, web identity / IRSA, ECS task role, instance metadata) and, with
//! `role_arn`, assumes that role with STS. No API call happens until the first operation.
//!
//! # Errors
//!
//! Access denied names the IAM action and the secret; a secret scheduled for deletion says so
//! and how to restore it; KMS failures name the key; connection failures name the endpoint.
//! Messages from AWS and secret values never appear in errors.
#![deny(missing_docs)]

mod config;
mod errors;
mod limit;
mod response_cap;
mod sink;
mod version_id;

pub use config::{
    validate_key, Config, DEFAULT_DESCRIPTION, DEFAULT_MAX_WRITES_PER_SECOND,
    DEFAULT_ROLE_SESSION_NAME, MAX_USER_TAGS,
};
pub use response_cap::MAX_RESPONSE_BYTES;
pub use sink::{AwsSink, AWSCURRENT, AWSPENDING, AWSPREVIOUS};

/// The AWS configuration types [`AwsSink::with_sdk_config`] takes, re-exported so that callers
/// need no direct `aws-config` dependency.
pub mod aws {
    pub use aws_config::{BehaviorVersion, Region, SdkConfig};
    pub use aws_sdk_secretsmanager::config::{Credentials, SharedCredentialsProvider};
}
