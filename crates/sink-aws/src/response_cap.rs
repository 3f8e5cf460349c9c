//! A cap on the size of Secrets Manager responses.
//!
//! The SDK reads a whole response body into memory before parsing it. A broken proxy or a
//! wrong `endpoint_url` that streams gigabytes would get the job killed for memory; no
//! Secrets Manager answer the rotator asks for comes near the cap (a `SecretString` is at
//! most 64 KiB).

use std::fmt;

use aws_sdk_secretsmanager::config::interceptors::{
    BeforeDeserializationInterceptorContextMut, BeforeDeserializationInterceptorContextRef,
};
use aws_sdk_secretsmanager::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_secretsmanager::error::BoxError;
use aws_smithy_types::body::SdkBody;
use http_body_util::{BodyExt, LengthLimitError, Limited};

/// The largest response body read from Secrets Manager: 1 MiB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Refuses a response whose `Content-Length` exceeds [`MAX_RESPONSE_BYTES`], and stops
/// reading any other body (chunked, or lying about its length) once it passes the cap.
#[derive(Debug)]
pub(crate) struct ResponseCap;

/// The error of a response over the cap. The SDK reports it as a response (or dispatch)
/// error, with this in its source chain.
#[derive(Debug)]
pub(crate) struct ResponseTooLarge;

impl fmt::Display for ResponseTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the response body is larger than {MAX_RESPONSE_BYTES} bytes"
        )
    }
}

impl std::error::Error for ResponseTooLarge {}

impl Intercept for ResponseCap {
    fn name(&self) -> &'static str {
        "ResponseCap"
    }

    fn read_after_transmit(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let declared = context
            .response()
            .headers()
            .get("content-length")
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(length) if length > MAX_RESPONSE_BYTES as u64 => Err(Box::new(ResponseTooLarge)),
            _ => Ok(()),
        }
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let body = context.response_mut().take_body();
        let capped = Limited::new(body, MAX_RESPONSE_BYTES).map_err(|error: BoxError| {
            if error.is::<LengthLimitError>() {
                Box::new(ResponseTooLarge) as BoxError
            } else {
                error
            }
        });
        *context.response_mut().body_mut() = SdkBody::from_body_1_x(capped);
        Ok(())
    }
}

/// Whether `error`, or any error in its source chain, is a [`ResponseTooLarge`].
pub(crate) fn is_too_large(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<ResponseTooLarge>() {
            return true;
        }
        next = error.source();
    }
    false
}
