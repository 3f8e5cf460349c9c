//! The three Vault API calls the sink needs that vaultrs 0.8 does not offer, as request types
//! on vaultrs's own mechanism, rustify's [`Endpoint`] trait, so that they run through the
//! same transport and middleware as vaultrs's requests.
//!
//! - [`MountInfoRequest`], `GET sys/internal/ui/mounts/:path`: the type and KV version of a
//!   mount, readable by any token with a capability under it (vaultrs has only
//!   `sys/mounts/:path`, which needs `sudo`-level access to `sys/mounts`). Proven by the
//!   test `failures::a_missing_mount_or_a_wrong_kv_version_is_named`.
//! - [`CapabilitiesSelfRequest`], `POST sys/capabilities-self`: what the token may do on a
//!   path, for the message of a permission error (vaultrs has no capabilities call). Proven
//!   by `policies::a_policy_that_denies_write_gives_a_clear_error_and_writes_nothing`.
//! - [`CertLoginRequest`], `POST auth/:mount/login` with `name`: vaultrs's
//!   `api::auth::cert::requests::LoginRequest` sends the role as `cert_name`, which Vault
//!   ignores ("Endpoint ignored these unrecognized parameters: [cert_name]"), so a chosen
//!   role could not be selected. Proven by `auth::cert_login_selects_the_named_role`.

use rustify::endpoint::Endpoint;
use rustify::enums::{RequestMethod, RequestType, ResponseType};
use rustify::errors::ClientError;
use serde::Deserialize;
use serde_json::{json, Value};

/// `GET sys/internal/ui/mounts/:mount`.
pub(crate) struct MountInfoRequest {
    pub mount: String,
}

/// The part of [`MountInfoRequest`]'s answer the sink reads.
#[derive(Deserialize)]
pub(crate) struct MountInfo {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub options: Option<MountOptions>,
}

/// A mount's options.
#[derive(Deserialize)]
pub(crate) struct MountOptions {
    #[serde(default)]
    pub version: Option<String>,
}

impl Endpoint for MountInfoRequest {
    type Response = MountInfo;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        format!("sys/internal/ui/mounts/{}", self.mount)
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::GET
    }
}

/// `POST sys/capabilities-self` for one path.
pub(crate) struct CapabilitiesSelfRequest {
    pub path: String,
}

/// The answer of [`CapabilitiesSelfRequest`].
#[derive(Deserialize)]
pub(crate) struct Capabilities {
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl Endpoint for CapabilitiesSelfRequest {
    type Response = Capabilities;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        "sys/capabilities-self".to_owned()
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::POST
    }

    fn body(&self) -> Result<Option<Vec<u8>>, ClientError> {
        Ok(Some(
            json!({ "paths": [self.path] }).to_string().into_bytes(),
        ))
    }
}

/// `POST auth/:mount/login` of the cert method, with the role `name` when given. The
/// credential is the TLS client certificate, so the body holds no secret.
pub(crate) struct CertLoginRequest {
    pub mount: String,
    pub name: Option<String>,
}

impl Endpoint for CertLoginRequest {
    type Response = Value;
    const REQUEST_BODY_TYPE: RequestType = RequestType::JSON;
    const RESPONSE_BODY_TYPE: ResponseType = ResponseType::JSON;

    fn path(&self) -> String {
        format!("auth/{}/login", self.mount)
    }

    fn method(&self) -> RequestMethod {
        RequestMethod::POST
    }

    fn body(&self) -> Result<Option<Vec<u8>>, ClientError> {
        let body = match &self.name {
            Some(name) => json!({ "name": name }),
            None => json!({}),
        };
        Ok(Some(body.to_string().into_bytes()))
    }
}
