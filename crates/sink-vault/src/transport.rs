//! How vaultrs's requests reach Vault: a [`rustify::client::Client`] over our own
//! `reqwest::Client`, and [`Transport::exec`], which runs any vaultrs (or rustify) endpoint
//! through vaultrs's own [`EndpointMiddleware`] (API version, token, namespace).
//!
//! Why not `vaultrs::client::VaultClient` and `vaultrs::api::exec_with_result`: vaultrs's
//! `Client` trait hands out the concrete `rustify::clients::reqwest::Client`, whose `send`
//! reads every answer whole (`response.bytes()`), so a body cap cannot be put under it; and
//! its `exec_*` functions log every non-2xx answer (a 404 for an absent key included) as an
//! error. rustify's `Client` trait is the documented seam for a transport, so the sink
//! plugs one in here and keeps vaultrs's request types, response types and middleware.
//!
//! Nothing here puts a secret or a response body into an error or a log line.

use std::time::Duration;

use async_trait::async_trait;
use rotator_core::SinkError;
use rustify::client::Client as RustifyClient;
use rustify::endpoint::Endpoint;
use rustify::errors::ClientError as RustifyError;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use vaultrs::api::{EndpointError, EndpointMiddleware, EndpointResult};

use crate::config::Config;

/// The largest answer read from Vault. A token, a secret of ours or a login answer is a few
/// kilobytes; anything bigger comes from something broken (a captive portal, a proxy).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// An answer larger than [`MAX_RESPONSE_BYTES`], carried through rustify's error type.
#[derive(Debug, thiserror::Error)]
#[error("the answer is larger than {MAX_RESPONSE_BYTES} bytes")]
struct AnswerTooLarge;

/// The `reqwest::Client` under rustify: never follows a redirect (a redirect would carry the
/// token, or a login's credentials, to wherever it points) and reads at most
/// [`MAX_RESPONSE_BYTES`] of an answer.
struct CappedClient {
    base: String,
    http: reqwest::Client,
}

#[async_trait]
impl RustifyClient for CappedClient {
    fn base(&self) -> &str {
        &self.base
    }

    async fn send(
        &self,
        mut request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, RustifyError> {
        if let Some(token) = request.headers_mut().get_mut("x-vault-token") {
            // Kept out of HTTP/2 header tables and out of any Debug of the headers.
            token.set_sensitive(true);
        }
        let request = reqwest::Request::try_from(request)
            .map_err(|source| RustifyError::ReqwestBuildError { source })?;
        let method = request.method().to_string();
        let mut response =
            self.http
                .execute(request)
                .await
                .map_err(|e| RustifyError::RequestError {
                    source: e.without_url().into(),
                    url: String::new(),
                    method,
                })?;
        if response
            .content_length()
            .is_some_and(|length| length > MAX_RESPONSE_BYTES as u64)
        {
            return Err(RustifyError::ResponseError {
                source: AnswerTooLarge.into(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| RustifyError::ResponseError {
                source: e.without_url().into(),
            })?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(RustifyError::ResponseError {
                    source: AnswerTooLarge.into(),
                });
            }
            body.extend_from_slice(&chunk);
        }
        let mut answer = http::Response::new(body);
        *answer.status_mut() = response.status();
        if let Some(location) = response.headers().get(http::header::LOCATION) {
            answer
                .headers_mut()
                .insert(http::header::LOCATION, location.clone());
        }
        Ok(answer)
    }

    /// Every status is an answer: the sink classifies it (rustify's default turns non-2xx
    /// into an error that it also logs).
    async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, RustifyError> {
        self.send(request).await
    }
}

/// One answer from Vault: status and body (at most [`MAX_RESPONSE_BYTES`]).
pub(crate) struct Reply {
    pub status: u16,
    body: Vec<u8>,
    /// Where a redirect pointed (its host, for the message).
    location: Option<String>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Vault's error strings (`{"errors": [...]}`), for classification only: never copied
    /// into a message.
    fn errors(&self) -> Vec<String> {
        serde_json::from_slice::<EndpointError>(&self.body)
            .map(|e| e.errors)
            .unwrap_or_default()
    }

    /// Whether one of Vault's error strings contains `needle`.
    pub fn error_mentions(&self, needle: &str) -> bool {
        self.errors().iter().any(|e| e.contains(needle))
    }

    /// Whether Vault said the path has no handler (nothing is mounted there).
    pub fn no_route(&self) -> bool {
        self.status == 404 && self.error_mentions("no handler for route")
    }

    /// The answer in Vault's response envelope (vaultrs's [`EndpointResult`]); `None` when
    /// the body is not one (e.g. a bare `{"errors": []}`).
    pub fn envelope<T: DeserializeOwned>(&self) -> Option<EndpointResult<T>> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as a type of its own (vaultrs's responses that have no envelope).
    pub fn parse<T: DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// The HTTP side of a Vault store: base URL, namespace and the capped client.
pub(crate) struct Transport {
    client: CappedClient,
    /// The address as configured, for messages.
    pub address: String,
    namespace: Option<String>,
    timeout: Duration,
}

impl Transport {
    /// Builds the HTTP client from a resolved configuration: timeouts, no redirects, the
    /// CA file and, for `cert` logins, the client identity.
    pub fn new(config: &Config, identity: Option<reqwest::Identity>) -> Result<Self, SinkError> {
        let address = config
            .address
            .clone()
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_owned();
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("alation-rotator/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca_file) = &config.ca_file {
            let pem = std::fs::read(ca_file).map_err(|e| SinkError::Other {
                detail: format!(
                    "cannot read ca_file {}: {}; give the path of a readable PEM file",
                    ca_file.display(),
                    crate::secrets::io_reason(&e)
                ),
                source: None,
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .ok()
                .filter(|c| !c.is_empty())
                .ok_or_else(|| SinkError::Other {
                    detail: format!(
                        "ca_file {} holds no PEM certificate (expected \
                         -----BEGIN CERTIFICATE----- blocks)",
                        ca_file.display()
                    ),
                    source: None,
                })?;
            builder = builder.tls_certs_merge(certs);
        }
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        let http = builder.build().map_err(|e| SinkError::Other {
            detail: "cannot build the HTTP client for Vault".to_owned(),
            source: Some(e.without_url().into()),
        })?;
        Ok(Self {
            client: CappedClient {
                base: address.clone(),
                http,
            },
            address,
            namespace: config.namespace.clone().filter(|ns| !ns.is_empty()),
            timeout: config.timeout,
        })
    }

    /// Runs `endpoint` with vaultrs's middleware (API version `v1`, the namespace and, when
    /// given, the token) and returns Vault's answer, whatever its status. Only failures to
    /// get an answer are errors.
    pub async fn exec<E: Endpoint>(
        &self,
        endpoint: E,
        token: Option<&SecretString>,
    ) -> Result<Reply, SinkError> {
        let path = endpoint.path();
        let middleware = EndpointMiddleware {
            token: token
                .map(|t| t.expose_secret().to_owned())
                .unwrap_or_default(),
            version: "v1".to_owned(),
            wrap: None,
            namespace: self.namespace.clone(),
        };
        let result = endpoint
            .with_middleware(&middleware)
            .exec(&self.client)
            .await;
        drop(middleware);
        let response = result.map_err(|e| self.transport_error(e))?.response;
        let status = response.status().as_u16();
        tracing::debug!(path = %path.trim_start_matches('/'), status, "vault request");
        let location = response
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(redirect_target);
        Ok(Reply {
            status,
            body: response.into_body(),
            location,
        })
    }

    fn transport_error(&self, error: RustifyError) -> SinkError {
        let address = &self.address;
        match error {
            RustifyError::RequestError { source, .. } => {
                match source.downcast::<reqwest::Error>() {
                    Ok(e) if e.is_timeout() => SinkError::Unavailable {
                        detail: format!(
                            "Vault at {address} did not answer within {}; check that it is \
                             healthy or raise `timeout`",
                            humantime::format_duration(self.timeout)
                        ),
                        source: Some(e.into()),
                    },
                    Ok(e) if e.is_connect() => SinkError::Unavailable {
                        detail: format!(
                            "cannot connect to Vault at {address}: {}; check `address` and \
                             that Vault is running",
                            root_cause(&e)
                        ),
                        source: Some(e.into()),
                    },
                    Ok(e) => SinkError::Unavailable {
                        detail: format!(
                            "request to Vault at {address} failed: {}; check that Vault is \
                             running and reachable",
                            root_cause(&e)
                        ),
                        source: Some(e.into()),
                    },
                    Err(_) => SinkError::Unavailable {
                        detail: format!("request to Vault at {address} failed"),
                        source: None,
                    },
                }
            }
            RustifyError::ResponseError { source } if source.is::<AnswerTooLarge>() => {
                SinkError::Other {
                    detail: format!(
                        "Vault at {address} sent an answer larger than 1 MiB, which no Vault \
                         API call of the rotator produces; it was not read. Check that \
                         `address` points at Vault and not at a proxy or portal"
                    ),
                    source: None,
                }
            }
            RustifyError::ResponseError { source } => match source.downcast::<reqwest::Error>() {
                Ok(e) if e.is_timeout() => SinkError::Unavailable {
                    detail: format!(
                        "Vault at {address} did not finish its answer within {}; check that \
                         it is healthy or raise `timeout`",
                        humantime::format_duration(self.timeout)
                    ),
                    source: Some(e.into()),
                },
                Ok(e) => SinkError::Unavailable {
                    detail: format!(
                        "the answer of Vault at {address} broke off: {}",
                        root_cause(&e)
                    ),
                    source: Some(e.into()),
                },
                Err(_) => SinkError::Unavailable {
                    detail: format!("the answer of Vault at {address} broke off"),
                    source: None,
                },
            },
            // Building the request failed: a value that cannot go into a URL or header.
            // rustify's error may hold request data, so it is not kept as the source.
            _ => SinkError::Other {
                detail: format!(
                    "cannot build a request to Vault at {address}; check `address`, \
                     `namespace` and the key"
                ),
                source: None,
            },
        }
    }

    /// Maps the answers that are errors whatever the request: a redirect, sealed, 5xx, 429.
    pub fn server_error(&self, reply: &Reply, path: &str) -> Option<SinkError> {
        let address = &self.address;
        if (300..400).contains(&reply.status) {
            let to = reply
                .location
                .as_deref()
                .map(|l| format!(" to {l}"))
                .unwrap_or_default();
            return Some(SinkError::Other {
                detail: format!(
                    "Vault at {address} answered {path} with a redirect (HTTP {}){to}, which \
                     the rotator never follows: it would carry the Vault token or the login's \
                     credentials elsewhere. Point `address` at the Vault server itself",
                    reply.status
                ),
                source: None,
            });
        }
        if reply.status == 503 && reply.error_mentions("sealed") {
            return Some(self.sealed());
        }
        if reply.status >= 500 || reply.status == 429 {
            return Some(SinkError::Unavailable {
                detail: format!(
                    "Vault at {address} answered HTTP {} to {path}; try again later",
                    reply.status
                ),
                source: None,
            });
        }
        None
    }

    pub fn sealed(&self) -> SinkError {
        SinkError::Unavailable {
            detail: format!(
                "Vault at {} is sealed; unseal it (`vault operator unseal` / \
                 `bao operator unseal`) and run again",
                self.address
            ),
            source: None,
        }
    }

    /// The namespace, for messages (`" in namespace X"` or empty).
    pub fn in_namespace(&self) -> String {
        match &self.namespace {
            Some(ns) => format!(" in namespace {ns}"),
            None => String::new(),
        }
    }
}

/// The scheme, host and port of a redirect's target (never its path or query, which could
/// carry anything).
fn redirect_target(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(url) => format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "a relative location".to_owned(),
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
