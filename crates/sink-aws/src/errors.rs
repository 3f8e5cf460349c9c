//! Turning AWS SDK errors into [`SinkError`]s that say what to do.
//!
//! Error messages returned by AWS are never copied into a [`SinkError`]: only the error code,
//! the IAM action, the secret name and the endpoint, all of which are known not to be secret.

use std::error::Error as StdError;

use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use rotator_core::SinkError;

use crate::response_cap;

/// What a failed call was doing, for the error message.
pub(crate) struct Call<'a> {
    /// The IAM action, e.g. `secretsmanager:PutSecretValue`.
    pub action: &'static str,
    /// The secret name, or `*` for account-level calls.
    pub key: &'a str,
    /// Where the call went (region and endpoint).
    pub target: &'a str,
    /// The KMS key configured for new secrets, if any.
    pub kms_key_id: Option<&'a str>,
}

/// The AWS error code of a service error, if the call got that far.
pub(crate) fn code<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> Option<&str> {
    match error {
        SdkError::ServiceError(service) => service.err().code(),
        _ => None,
    }
}

/// Whether a service error's message says the secret is scheduled for deletion. The message
/// is matched, never copied.
pub(crate) fn marked_for_deletion<E: ProvideErrorMetadata, R>(error: &SdkError<E, R>) -> bool {
    match error {
        SdkError::ServiceError(service) => service.err().message().is_some_and(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("marked for deletion")
                || m.contains("scheduled for deletion")
                || m.contains("marked deleted")
        }),
        _ => false,
    }
}

/// The error for a secret that is scheduled for deletion.
pub(crate) fn scheduled_for_deletion(key: &str) -> SinkError {
    SinkError::Other {
        detail: format!(
            "AWS secret {key:?} is scheduled for deletion, so it can neither be read nor \
             written; restore it with `aws secretsmanager restore-secret --secret-id {key}` \
             (or wait until AWS has deleted it, after which the rotator creates it anew)"
        ),
        source: None,
    }
}

/// The error for a write to a secret that has Secrets Manager's own rotation turned on.
pub(crate) fn rotation_enabled(key: &str, lambda: Option<&str>) -> SinkError {
    let function = lambda
        .filter(|arn| !arn.is_empty())
        .map(|arn| format!(" by {arn}"))
        .unwrap_or_default();
    SinkError::Other {
        detail: format!(
            "refusing to write AWS secret {key:?}: it has Secrets Manager rotation turned on \
             (RotationEnabled{function}), whose rotation function owns the AWSPENDING label \
             and would replace the token with a value of its own; turn that rotation off \
             (`aws secretsmanager cancel-rotate-secret --secret-id {key}`) if alation-rotator \
             is to keep this secret, or deliver the token to another secret"
        ),
        source: None,
    }
}

/// Maps any SDK error of `call` to a [`SinkError`]. A call is worth trying again exactly
/// when the result [`is_retryable`](SinkError::is_retryable): throttling, server errors,
/// timeouts, lost connections and garbled responses; not a refusal, not missing
/// credentials, not an oversized response.
pub(crate) fn map<E>(error: &SdkError<E, HttpResponse>, call: &Call<'_>) -> SinkError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let Call {
        action,
        key,
        target,
        kms_key_id,
    } = *call;
    if response_cap::is_too_large(error) {
        return SinkError::Other {
            detail: format!(
                "{action} on {key:?}: {target} sent a response larger than {} bytes, which no \
                 Secrets Manager answer is; check `endpoint_url` and any proxy in between",
                response_cap::MAX_RESPONSE_BYTES
            ),
            source: None,
        };
    }
    match error {
        SdkError::DispatchFailure(failure) => {
            let chain = format!("{}", DisplayErrorContext(error));
            if failure.is_user() || chain.contains("credentials") {
                return SinkError::Unauthorized {
                    detail: format!(
                        "no usable AWS credentials for {action} on {key:?} at {target}: {chain}; \
                         provide credentials through the standard chain (AWS_ACCESS_KEY_ID / \
                         AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity / IRSA, ECS task \
                         role or instance profile)"
                    ),
                };
            }
            let what = if failure.is_timeout() {
                "timed out connecting to"
            } else {
                "cannot reach"
            };
            SinkError::Unavailable {
                detail: format!(
                    "{what} AWS Secrets Manager at {target} ({action} on {key:?}); check the \
                     network, `region` and `endpoint_url`"
                ),
                source: Some(Box::new(PlainError(chain))),
            }
        }
        SdkError::TimeoutError(_) => SinkError::Unavailable {
            detail: format!(
                "{action} on {key:?} at {target} did not finish within the store's `timeout`; \
                 AWS may be slow or unreachable, or raise `timeout`"
            ),
            source: None,
        },
        SdkError::ResponseError(_) => SinkError::Unavailable {
            detail: format!(
                "{action} on {key:?}: {target} sent a response that is not an AWS Secrets \
                 Manager response; check `endpoint_url`"
            ),
            source: None,
        },
        SdkError::ConstructionFailure(_) => {
            let chain = format!("{}", DisplayErrorContext(error));
            if chain.contains("credentials") || chain.contains("identity") {
                SinkError::Unauthorized {
                    detail: format!(
                        "no usable AWS credentials for {action} on {key:?}: {chain}; provide \
                         credentials through the standard chain (AWS_ACCESS_KEY_ID / \
                         AWS_SECRET_ACCESS_KEY, AWS_PROFILE, web identity / IRSA, ECS task \
                         role or instance profile)"
                    ),
                }
            } else {
                SinkError::Other {
                    detail: format!("could not build the {action} request for {key:?}: {chain}"),
                    source: None,
                }
            }
        }
        SdkError::ServiceError(service)
            if service.err().code().is_none() && service.raw().status().is_server_error() =>
        {
            SinkError::Unavailable {
                detail: format!(
                    "{target} failed {action} on {key:?} with HTTP {}; try again later",
                    service.raw().status().as_u16()
                ),
                source: None,
            }
        }
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("an unnamed error");
            let message = service
                .err()
                .message()
                .unwrap_or_default()
                .to_ascii_lowercase();
            service_error(code, &message, call, kms_key_id.unwrap_or(DEFAULT_KMS_KEY))
        }
        _ => SinkError::Other {
            detail: format!("{action} on {key:?} at {target} failed unexpectedly"),
            source: None,
        },
    }
}

const DEFAULT_KMS_KEY: &str = "aws/secretsmanager (the account's default key)";

fn service_error(code: &str, message: &str, call: &Call<'_>, kms_key: &str) -> SinkError {
    let Call {
        action,
        key,
        target,
        ..
    } = *call;
    let kms =
        message.contains("kms") || code.starts_with("KMS") || code.contains("cryptionFailure");
    match code {
        _ if kms => SinkError::Unauthorized {
            detail: format!(
                "AWS KMS refused {action} on {key:?} ({code}): KMS key {kms_key} (or the key \
                 the secret was created with) must exist, be enabled, and allow the rotator \
                 kms:GenerateDataKey and kms:Decrypt; consumers need kms:Decrypt"
            ),
        },
        "AccessDeniedException" | "AccessDenied" | "AuthorizationError" => {
            SinkError::Unauthorized {
                detail: format!(
                    "AWS denied {action} on {key:?} at {target}; grant the rotator's IAM \
                     identity {action} on this secret (see the minimal policy in \
                     docs/stores/aws.md)"
                ),
            }
        }
        "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "SignatureDoesNotMatch"
        | "InvalidClientTokenId"
        | "ExpiredTokenException"
        | "ExpiredToken"
        | "IncompleteSignature"
        | "MissingAuthenticationToken" => SinkError::Unauthorized {
            detail: format!(
                "AWS did not accept the rotator's credentials for {action} on {key:?} \
                 ({code}); check the credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, the \
                 task or instance role) and that the credentials are not expired"
            ),
        },
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => SinkError::Unavailable {
            detail: format!(
                "AWS throttled {action} on {key:?} ({code}) and the retries (`max_attempts`) \
                 ran out; try again later or spread the runs out"
            ),
            source: None,
        },
        "InternalServiceError"
        | "InternalFailure"
        | "InternalServerError"
        | "ServiceUnavailable"
        | "ServiceUnavailableException" => SinkError::Unavailable {
            detail: format!(
                "AWS Secrets Manager at {target} failed {action} on {key:?} ({code}) after \
                 retries; try again later"
            ),
            source: None,
        },
        "InvalidRequestException"
            if message.contains("marked for deletion")
                || message.contains("scheduled for deletion")
                || message.contains("marked deleted") =>
        {
            scheduled_for_deletion(key)
        }
        "ResourceNotFoundException" => SinkError::NotFound {
            detail: format!("AWS secret {key:?} does not exist (at {target})"),
        },
        "LimitExceededException" => SinkError::Other {
            detail: format!(
                "AWS refused {action} on {key:?}: an account quota is exhausted \
                 ({code}); see Secrets Manager quotas in the Service Quotas console"
            ),
            source: None,
        },
        _ => SinkError::Other {
            detail: format!("AWS refused {action} on {key:?} at {target} with {code}"),
            source: None,
        },
    }
}

/// An error cause that is just text already known to be free of secrets.
#[derive(Debug)]
struct PlainError(String);

impl std::fmt::Display for PlainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for PlainError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(kms_key_id: Option<&'static str>) -> Call<'static> {
        Call {
            action: "secretsmanager:PutSecretValue",
            key: "alation/x",
            target: "aws-secretsmanager:eu-west-1",
            kms_key_id,
        }
    }

    fn map(code: &str, message: &str, kms_key_id: Option<&'static str>) -> SinkError {
        let call = call(kms_key_id);
        service_error(code, message, &call, kms_key_id.unwrap_or(DEFAULT_KMS_KEY))
    }

    #[test]
    fn access_denied_names_the_iam_action_and_secret() {
        let err = map("AccessDeniedException", "user x is not authorized", None);
        assert!(matches!(err, SinkError::Unauthorized { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("secretsmanager:PutSecretValue on \"alation/x\""),
            "{err}"
        );
        assert!(
            !err.to_string().contains("user x"),
            "AWS's message is not copied: {err}"
        );
    }

    #[test]
    fn kms_failures_name_the_key() {
        for (code, message) in [
            ("EncryptionFailure", ""),
            ("AccessDeniedException", "access to kms is not allowed"),
        ] {
            let err = map(code, message, Some("alias/alation-rotator"));
            assert!(
                err.to_string().contains("KMS key alias/alation-rotator"),
                "{err}"
            );
        }
        let err = map("DecryptionFailure", "", None);
        assert!(err.to_string().contains("aws/secretsmanager"), "{err}");
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        for code in ["ThrottlingException", "InternalServiceError"] {
            assert!(map(code, "", None).is_retryable(), "{code}");
        }
        assert!(!map("ValidationException", "", None).is_retryable());
    }

    #[test]
    fn deletion_says_how_to_restore() {
        let err = map(
            "InvalidRequestException",
            "you can't perform this operation on the secret because it was marked for deletion.",
            None,
        );
        assert!(
            err.to_string()
                .contains("aws secretsmanager restore-secret --secret-id alation/x"),
            "{err}"
        );
    }
}
