//! AWS Secrets Manager [`TokenSink`](rotator_core::TokenSink) for alation-rotator.
//!
//! Each key is a secret name; the document is the secret's `SecretString`, as JSON, so a
//! consumer (Lambda, ECS, Glue, anything with the AWS SDK) reads the token with the usual
//! `GetSecretValue` call. User documentation: `docs/stores/aws.md`.
//!
//! # Writing
//!
//! A write first calls `DescribeSecret`, which gives the ownership tag, the version holding
//! `AWSCURRENT` and whether the secret is scheduled for deletion. Then:
//!
//! - **missing secret**: `CreateSecret` with the document, the configured `kms_key_id`,
//!   description and tags, the `managed-by = alation-rotator` tag and the document's labels.
//! - **existing secret**: refused with [`SinkError::Unmanaged`](rotator_core::SinkError) when
//!   it lacks the ownership tag, unless `takeover` is set, in which case `TagResource` adds
//!   the tag before the value is written. Then `PutSecretValue` writes a new version, which
//!   becomes `AWSCURRENT`; AWS moves `AWSPREVIOUS` to the version that was current, so
//!   consumers that cached the old token can still find it (`read_previous`
//!   reads it). The labels are refreshed with `TagResource` afterwards.
//!
//! Every `CreateSecret` and `PutSecretValue` carries a `ClientRequestToken` derived from the
//! secret name, the version the write starts from and the SHA-256 of the document
//! ([`AwsSink::request_token`]). The token becomes the new `VersionId`, and AWS stores a
//! version only once per token, so a request the SDK retries (after a timeout or a lost
//! response) never creates a second version.
//!
//! # What protects against two writers
//!
//! Secrets Manager has no conditional `PutSecretValue`. The sink therefore uses the staging
//! protocol of AWS's own rotation functions, whose last step is atomic on AWS's side:
//!
//! - [`Precondition::Version(v)`](rotator_core::Precondition): after checking that `v` holds
//!   `AWSCURRENT`, the new version is written with `PutSecretValue` and the stage
//!   `AWSPENDING` only (consumers do not see it), then `UpdateSecretVersionStage` moves
//!   `AWSCURRENT` to it with `RemoveFromVersionId = v`. AWS refuses that call when `v` no
//!   longer holds `AWSCURRENT`, so of two writers that both started from `v`, exactly one
//!   moves the stage; the other gets [`SinkError::Conflict`](rotator_core::SinkError) and its
//!   pending version is never current (its `AWSPENDING` label is removed, and AWS deletes
//!   unlabelled versions in time).
//! - [`Precondition::Absent`](rotator_core::Precondition): `CreateSecret` fails with
//!   `ResourceExistsException` when the name exists, which is a conflict. (Two writers that
//!   create the *same* document both succeed: their request tokens are equal, so AWS sees one
//!   request sent twice. They wrote the same thing, so nothing is lost.)
//! - [`Precondition::Any`](rotator_core::Precondition): the same staged write from the
//!   version found just before; if another writer moves `AWSCURRENT` in between, the write
//!   is simply decided again (up to five times), so the last writer wins.
//!
//! The protection relies on AWS enforcing `RemoveFromVersionId`, not on the request token:
//! the moto test server lets a replayed token overwrite an `AWSPENDING` value, so nothing
//! here depends on that. The sink declares `compare_and_set`, `versions_kept` and
//! `previous_readable`.
//!
//! # Credentials
//!
//! [`AwsSink::new`] loads the standard chain of `aws-config` (environment, profile, web
//! identity / IRSA, ECS task role, instance metadata) and, with `role_arn`, assumes that role
//! with STS. No API call happens until the first operation.
//!
//! # Errors
//!
//! Access denied names the IAM action and the secret; throttling is retried by the SDK's
//! standard retry mode (`max_attempts`); a secret scheduled for deletion says so and how to
//! restore it; KMS failures name the key; connection failures name the endpoint. Messages
//! from AWS and secret values never appear in errors.
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
