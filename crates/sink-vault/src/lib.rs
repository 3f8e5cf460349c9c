//! HashiCorp Vault / OpenBao KV store for alation-rotator.
//!
//! [`VaultSink`] implements [`TokenSink`] on a KV secrets engine, version 2 (the default:
//! versions, compare-and-set, `custom_metadata`) or version 1. Build it from a [`Config`]
//! (deserialized from the `[stores.NAME]` table); construction never touches the network, it
//! logs in lazily on first use and logs in again when Vault stops accepting its token.
//!
//! Every Vault call is a request type of the [`vaultrs`] crate (KV v1 and v2, metadata,
//! health, token lookup, the logins of AppRole, Kubernetes, JWT, AWS IAM and userpass), run
//! through vaultrs's middleware over a transport of the sink's own that never follows a
//! redirect and reads at most 1 MiB of an answer. The three calls vaultrs lacks are small
//! request types on the same mechanism (`endpoints.rs` says which and why).
//!
//! # KV version 2
//! A document is the `data` of the secret at `<mount>/data/<key>`. The ownership marker
//! (`managed-by = alation-rotator`) and the labels of the write that created or adopted the
//! secret (`integration`, `token-expires-at`) are the secret's `custom_metadata`, written
//! only then: later writes leave it alone, so other custom metadata keys are kept and each
//! write is one call. Versions are Vault's version numbers; [`Precondition::Absent`] is
//! `cas=0` (or the number of a deleted latest version), [`Precondition::Version`] is `cas=v`,
//! and [`Precondition::Any`] writes with `cas` set to the version it last saw (retried when
//! another writer got in between), so it works on mounts with `cas_required = true` and never
//! overwrites a secret whose ownership it did not check. A secret whose latest version is
//! deleted or destroyed reads as absent. The previous version stays readable
//! ([`TokenSink::read_previous`]).
//!
//! ## Calls per operation
//! A read is one call (`GET data`, which also returns the version and `custom_metadata`). A
//! write remembers what the last read of the same key saw, so a write over the version just
//! read is one call (`POST data` with `cas`: if anything changed, the `cas` fails), a write
//! that creates or adopts a secret two (`POST metadata`, then `POST data`); without such a
//! read, a write first reads the metadata (one more call). Once per sink come a login and a
//! look at the mount (`sys/internal/ui/mounts`).
//!
//! # KV version 1
//! Version 1 keeps no versions and no metadata, so the marker is stored as two extra fields
//! of the secret, `managed-by` and `rotator-revision` (a counter that serves as the version);
//! reads remove them again. Preconditions are checked by reading first (so a write is two
//! calls), which is not atomic: the store declares no compare-and-set, and two rotators must
//! not write the same KV v1 key at the same time.
#![deny(missing_docs)]

mod aws;
pub mod config;
mod endpoints;
mod secrets;
mod session;
mod transport;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use async_trait::async_trait;
use rotator_core::{
    Capabilities, Document, Precondition, SinkError, Stored, TokenSink, Version, WriteOptions,
    MANAGED_BY_KEY, MANAGED_BY_VALUE,
};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;
use vaultrs::api::kv1::requests::{GetSecretRequest, SetSecretRequest as SetV1SecretRequest};
use vaultrs::api::kv1::responses::GetSecretResponse;
use vaultrs::api::kv2::requests::{
    ReadSecretMetadataRequest, ReadSecretRequest, SetSecretMetadataRequest, SetSecretRequest,
    SetSecretRequestOptions,
};
use vaultrs::api::kv2::responses::{
    ReadSecretMetadataResponse, ReadSecretResponse, SecretVersionMetadata,
};

pub use crate::config::{AuthConfig, Config};
use crate::endpoints::{MountInfo, MountInfoRequest};
use crate::session::Session;
use crate::transport::Reply;
pub use crate::transport::MAX_RESPONSE_BYTES;

/// On KV version 1, the field holding the write counter that serves as the version.
pub const REVISION_FIELD: &str = "rotator-revision";

/// How often an `Any` write re-reads and retries when another writer changed the secret
/// between its read and its write.
const ANY_WRITE_ATTEMPTS: usize = 5;

/// Longest accepted key.
const MAX_KEY_LEN: usize = 512;

/// Checks that `key` can be used as a Vault secret path: segments of letters, digits, `-`,
/// `_` and `.` separated by single `/`, no leading or trailing `/`, no `.` or `..` segment,
/// at most 512 characters.
pub fn validate_key(key: &str) -> Result<(), SinkError> {
    let invalid = |detail: &str| SinkError::InvalidKey {
        key: key.to_owned(),
        detail: detail.to_owned(),
    };
    if key.is_empty() {
        return Err(invalid("a Vault key must not be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(invalid("a Vault key must be at most 512 characters long"));
    }
    if key.starts_with('/') || key.ends_with('/') || key.contains("//") {
        return Err(invalid(
            "a Vault key must not start or end with '/' or contain '//', e.g. \
             \"alation/tableau-prod\"",
        ));
    }
    for segment in key.split('/') {
        if segment == "." || segment == ".." {
            return Err(invalid("a Vault key must not contain '.' or '..' segments"));
        }
        if !segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(invalid(
                "a Vault key may contain only letters, digits, '-', '_', '.' and '/'",
            ));
        }
    }
    Ok(())
}

/// A Vault or OpenBao KV secrets engine as a [`TokenSink`].
pub struct VaultSink {
    config: Config,
    address: String,
    session: Session,
    mount_checked: OnceCell<()>,
    /// What the last read or write of each KV v2 key saw, so that the write that follows a
    /// read needs no read of its own.
    seen: Mutex<HashMap<String, KeyState>>,
}

impl fmt::Debug for VaultSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the cached token; the configuration holds only references to secrets.
        f.debug_struct("VaultSink")
            .field("address", &self.address)
            .field("mount", &self.config.mount)
            .field("kv_version", &self.config.kv_version)
            .field("namespace", &self.namespace())
            .field("auth_method", &self.config.auth.method())
            .finish_non_exhaustive()
    }
}

/// What Vault said about a KV v2 key.
#[derive(Clone, Default)]
struct KeyState {
    /// The current version number (0: the key never held a version).
    version: u64,
    /// The current version exists and is neither deleted nor destroyed.
    live: bool,
    /// The secret's `custom_metadata` carries the ownership marker.
    managed: bool,
    /// The secret's `custom_metadata`.
    custom: HashMap<String, String>,
}

impl KeyState {
    fn new(version: u64, live: bool, custom: Option<HashMap<String, String>>) -> Self {
        let custom = custom.unwrap_or_default();
        Self {
            version,
            live,
            managed: custom.get(MANAGED_BY_KEY).map(String::as_str) == Some(MANAGED_BY_VALUE),
            custom,
        }
    }

    /// Whether a write with `precondition` may rely on this state instead of reading again:
    /// its `cas` fails if the key changed since.
    fn serves(&self, precondition: &Precondition) -> bool {
        match precondition {
            Precondition::Any => true,
            Precondition::Absent => !self.live,
            Precondition::Version(v) => self.live && v.as_str() == self.version.to_string(),
        }
    }
}

/// Whether a KV v2 version is deleted (now) or destroyed.
fn version_gone(destroyed: bool, deletion_time: &str) -> bool {
    if destroyed {
        return true;
    }
    match deletion_time {
        "" => false,
        time => time
            .parse::<jiff::Timestamp>()
            .map_or(true, |at| at <= jiff::Timestamp::now()),
    }
}

impl VaultSink {
    /// Builds the sink from a configuration: fills what it leaves out from `VAULT_ADDR`,
    /// `VAULT_NAMESPACE` and `VAULT_CACERT` ([`Config::resolve`]), validates it and prepares
    /// the HTTP client (reading `ca_file`, and a `cert` login's certificate and key). Does
    /// not contact Vault or read other credentials.
    pub fn new(config: Config) -> Result<Self, SinkError> {
        let config = config
            .resolve(|name| std::env::var(name).ok())
            .map_err(|e| SinkError::Other {
                detail: format!("invalid Vault store configuration: {e}"),
                source: None,
            })?;
        let session = Session::new(&config)?;
        Ok(Self {
            address: session.transport.address.clone(),
            config,
            session,
            mount_checked: OnceCell::new(),
            seen: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration the sink was built from, with the environment's defaults filled in.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn namespace(&self) -> Option<&str> {
        self.config.namespace.as_deref().filter(|ns| !ns.is_empty())
    }

    fn mount(&self) -> &str {
        &self.config.mount
    }

    fn v2(&self) -> bool {
        self.config.kv_version == 2
    }

    fn no_mount(&self) -> SinkError {
        SinkError::NotFound {
            detail: format!(
                "no KV secrets engine is mounted at {}/ on {}; enable one (`vault secrets \
                 enable -path={} kv-v{}`) or fix `mount`",
                self.mount(),
                self.address,
                self.mount(),
                self.config.kv_version
            ),
        }
    }

    fn unexpected(&self, reply: &Reply, what: &str, path: &str) -> SinkError {
        // Vault's error text is not copied: only the status and what we were doing.
        SinkError::Other {
            detail: format!(
                "Vault at {} answered HTTP {} when {what} {path}",
                self.address, reply.status
            ),
            source: None,
        }
    }

    /// Whether a read found something at `path`: `false` for a 404, an error for a missing
    /// mount or any other failure.
    fn read_found(&self, reply: &Reply, path: &str) -> Result<bool, SinkError> {
        if reply.no_route() {
            return Err(self.no_mount());
        }
        if reply.status == 404 {
            return Ok(false);
        }
        if !reply.is_success() {
            return Err(self.unexpected(reply, "reading", path));
        }
        Ok(true)
    }

    fn malformed(&self, what: &str, path: &str) -> SinkError {
        SinkError::Other {
            detail: format!(
                "Vault at {} answered {what} {path} with something that is not Vault's answer",
                self.address
            ),
            source: None,
        }
    }

    fn remember(&self, key: &str, state: KeyState) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_owned(), state);
    }

    fn forget(&self, key: &str) {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// What the last read of `key` saw, when a write with `precondition` may rely on it.
    fn recall(&self, key: &str, precondition: &Precondition) -> Option<KeyState> {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .filter(|state| state.serves(precondition))
            .cloned()
    }

    /// Verifies once per sink that `mount` is a KV engine of the configured version, so that
    /// a KV v2 request is never written literally into a KV v1 engine. Tokens that may not
    /// look at the mount skip the check.
    async fn ensure_mount(&self) -> Result<(), SinkError> {
        self.mount_checked
            .get_or_try_init(|| self.verify_mount(false))
            .await
            .map(|_| ())
    }

    /// Asks Vault what is mounted at `mount` and compares it with the configuration. With
    /// `strict`, a token that may not look is an error; otherwise the check is skipped.
    async fn verify_mount(&self, strict: bool) -> Result<(), SinkError> {
        let request = || MountInfoRequest {
            mount: self.mount().to_owned(),
        };
        let reply = match self.session.call(request, &["read"]).await {
            Ok(reply) => reply,
            Err(SinkError::Unauthorized { .. }) if !strict => return Ok(()),
            Err(SinkError::Unauthorized { .. }) => {
                return Err(SinkError::Unauthorized {
                    detail: format!(
                        "permission denied: the Vault policy grants nothing under {}/ on {}; \
                         grant the rotator's policy (see docs/stores/vault.md)",
                        self.mount(),
                        self.address
                    ),
                })
            }
            Err(e) => return Err(e),
        };
        let path = format!("sys/internal/ui/mounts/{}", self.mount());
        if reply.status == 400 || reply.status == 404 {
            return Err(self.no_mount());
        }
        if !reply.is_success() {
            return Err(self.unexpected(&reply, "reading", &path));
        }
        let info = reply
            .envelope::<MountInfo>()
            .and_then(|e| e.data)
            .ok_or_else(|| self.malformed("reading", &path))?;
        if !matches!(info.kind.as_str(), "kv" | "generic") {
            return Err(SinkError::NotFound {
                detail: format!(
                    "the secrets engine at {}/ is of type {:?}, not a KV engine; fix `mount`",
                    self.mount(),
                    info.kind
                ),
            });
        }
        let version = match info.options.and_then(|o| o.version).as_deref() {
            Some("2") => 2,
            _ => 1,
        };
        if version != self.config.kv_version {
            return Err(SinkError::Other {
                detail: format!(
                    "the KV engine at {}/ is version {version} but the store is configured \
                     with kv_version = {}; set kv_version = {version}",
                    self.mount(),
                    self.config.kv_version
                ),
                source: None,
            });
        }
        Ok(())
    }

    // ---- KV version 2 -------------------------------------------------------------------

    /// The key's state from its metadata (`None`: no metadata, the key never held
    /// anything).
    async fn read_metadata(&self, key: &str) -> Result<Option<KeyState>, SinkError> {
        let request = || ReadSecretMetadataRequest {
            mount: self.mount().to_owned(),
            path: key.to_owned(),
        };
        let path = format!("{}/metadata/{key}", self.mount());
        let reply = self.session.call(request, &["read"]).await?;
        if !self.read_found(&reply, &path)? {
            return Ok(None);
        }
        let metadata = reply
            .envelope::<ReadSecretMetadataResponse>()
            .and_then(|e| e.data)
            .ok_or_else(|| self.malformed("reading", &path))?;
        let current = metadata.current_version;
        let live = current > 0
            && metadata
                .versions
                .get(&current.to_string())
                .is_some_and(|v| !version_gone(v.destroyed, &v.deletion_time));
        Ok(Some(KeyState::new(current, live, metadata.custom_metadata)))
    }

    /// Reads one version (`None`: the current one, whose state is remembered) of a KV v2
    /// secret.
    async fn read_v2(&self, key: &str, version: Option<u64>) -> Result<Option<Stored>, SinkError> {
        let request = || ReadSecretRequest {
            mount: self.mount().to_owned(),
            path: key.to_owned(),
            version,
        };
        let path = format!("{}/data/{key}", self.mount());
        let reply = self.session.call(request, &["read"]).await?;
        if reply.no_route() {
            return Err(self.no_mount());
        }
        if reply.status == 404 {
            // A deleted or destroyed version still comes with its metadata; a key that never
            // held anything answers with none.
            let state = reply
                .envelope::<ReadSecretResponse>()
                .and_then(|e| e.data)
                .map(|r| KeyState::new(r.metadata.version, false, r.metadata.custom_metadata))
                .unwrap_or_default();
            if version.is_none() {
                self.remember(key, state);
            }
            return Ok(None);
        }
        if !reply.is_success() {
            return Err(self.unexpected(&reply, "reading", &path));
        }
        let ReadSecretResponse { data, metadata } = reply
            .envelope::<ReadSecretResponse>()
            .and_then(|e| e.data)
            .ok_or_else(|| self.malformed("reading", &path))?;
        let SecretVersionMetadata {
            version: number,
            deletion_time,
            destroyed,
            custom_metadata,
            ..
        } = metadata;
        let gone = version_gone(destroyed, &deletion_time);
        let state = KeyState::new(number, !gone && !data.is_null(), custom_metadata);
        let managed = state.managed;
        if version.is_none() {
            self.remember(key, state);
        }
        let document = match data {
            _ if gone => return Ok(None),
            Value::Null => return Ok(None),
            Value::Object(fields) => Document::new(fields),
            _ => {
                return Err(SinkError::InvalidDocument {
                    key: key.to_owned(),
                    detail: "the secret's data is not a JSON object".to_owned(),
                })
            }
        };
        Ok(Some(Stored {
            document,
            version: Version::new(number.to_string()),
            managed,
        }))
    }

    async fn write_metadata(
        &self,
        key: &str,
        custom: &HashMap<String, String>,
    ) -> Result<(), SinkError> {
        let request = || SetSecretMetadataRequest {
            mount: self.mount().to_owned(),
            path: key.to_owned(),
            custom_metadata: Some(custom.clone()),
            ..SetSecretMetadataRequest::default()
        };
        let reply = self.session.call(request, &["create", "update"]).await?;
        if reply.no_route() {
            return Err(self.no_mount());
        }
        if reply.is_success() {
            Ok(())
        } else {
            let path = format!("{}/metadata/{key}", self.mount());
            Err(self.unexpected(&reply, "writing the custom_metadata of", &path))
        }
    }

    async fn write_v2(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        let result = self.try_write_v2(key, document, options).await;
        if result.is_err() {
            self.forget(key);
        }
        result
    }

    async fn try_write_v2(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        let path = format!("{}/data/{key}", self.mount());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let recalled = if attempt == 1 {
                self.recall(key, &options.precondition)
            } else {
                None
            };
            let state = match recalled {
                Some(state) => state,
                None => self.read_metadata(key).await?.unwrap_or_default(),
            };
            let current = state.version;
            match &options.precondition {
                Precondition::Any => {}
                Precondition::Absent if state.live => {
                    return Err(SinkError::Conflict {
                        key: key.to_owned(),
                        detail: format!("expected no secret, but version {current} exists"),
                    });
                }
                Precondition::Absent => {}
                Precondition::Version(expected) if !state.live => {
                    return Err(SinkError::Conflict {
                        key: key.to_owned(),
                        detail: format!("expected version {expected}, but the key holds no secret"),
                    });
                }
                Precondition::Version(expected) if expected.as_str() != current.to_string() => {
                    return Err(SinkError::Conflict {
                        key: key.to_owned(),
                        detail: format!(
                            "expected version {expected}, but the current version is {current}"
                        ),
                    });
                }
                Precondition::Version(_) => {}
            }
            if state.live && !state.managed && !options.takeover {
                return Err(SinkError::Unmanaged {
                    key: key.to_owned(),
                });
            }
            let cas = u32::try_from(current).map_err(|_| SinkError::Other {
                detail: format!("version {current} of {path} is beyond what a cas can name"),
                source: None,
            })?;

            let mut custom = state.custom;
            if !state.managed {
                // A secret that is not ours yet (new or adopted) gets the marker and the
                // labels first, so that its data is never written without them (a later
                // write would then refuse it as unmanaged). Other keys are kept.
                for (name, value) in &options.labels {
                    custom.insert(name.clone(), value.clone());
                }
                custom.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.to_owned());
                self.write_metadata(key, &custom).await?;
            }

            let request = || SetSecretRequest {
                mount: self.mount().to_owned(),
                path: key.to_owned(),
                data: Value::Object(document.fields().clone()),
                options: Some(SetSecretRequestOptions { cas }),
            };
            let reply = self.session.call(request, &["create", "update"]).await?;
            if reply.no_route() {
                return Err(self.no_mount());
            }
            if reply.status == 400 && reply.error_mentions("check-and-set parameter") {
                self.forget(key);
                if options.precondition == Precondition::Any && attempt < ANY_WRITE_ATTEMPTS {
                    continue;
                }
                return Err(SinkError::Conflict {
                    key: key.to_owned(),
                    detail: match &options.precondition {
                        Precondition::Absent => {
                            "expected no secret, but another writer created one".to_owned()
                        }
                        Precondition::Version(v) => {
                            format!("expected version {v}, but another writer changed the secret")
                        }
                        Precondition::Any => format!(
                            "other writers changed the secret {ANY_WRITE_ATTEMPTS} times while \
                             this write was retrying"
                        ),
                    },
                });
            }
            if !reply.is_success() {
                return Err(self.unexpected(&reply, "writing", &path));
            }
            let version = reply
                .envelope::<SecretVersionMetadata>()
                .and_then(|e| e.data)
                .map(|m| m.version)
                .ok_or_else(|| SinkError::Other {
                    detail: format!("Vault answered a write of {path} without a version number"),
                    source: None,
                })?;
            self.remember(
                key,
                KeyState {
                    version,
                    live: true,
                    managed: true,
                    custom,
                },
            );
            return Ok(Version::new(version.to_string()));
        }
    }

    // ---- KV version 1 -------------------------------------------------------------------

    async fn read_v1(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        let request = || GetSecretRequest {
            mount: self.mount().to_owned(),
            path: key.to_owned(),
        };
        let path = format!("{}/{key}", self.mount());
        let reply = self.session.call(request, &["read"]).await?;
        if !self.read_found(&reply, &path)? {
            return Ok(None);
        }
        let answer = reply
            .parse::<GetSecretResponse>()
            .ok_or_else(|| self.malformed("reading", &path))?;
        let mut fields = match answer.data {
            Value::Null => return Ok(None),
            Value::Object(fields) => fields,
            _ => {
                return Err(SinkError::InvalidDocument {
                    key: key.to_owned(),
                    detail: "the secret's data is not a JSON object".to_owned(),
                })
            }
        };
        let managed = fields.get(MANAGED_BY_KEY).and_then(Value::as_str) == Some(MANAGED_BY_VALUE);
        let revision = fields
            .get(REVISION_FIELD)
            .and_then(Value::as_str)
            .and_then(|r| r.parse::<u64>().ok());
        let version = match (managed, revision) {
            (true, Some(revision)) => {
                fields.remove(MANAGED_BY_KEY);
                fields.remove(REVISION_FIELD);
                format!("r{revision}")
            }
            // A secret someone else wrote: its version is a digest of its content.
            _ => format!(
                "h{:016x}",
                fnv1a(&serde_json::to_vec(&fields).unwrap_or_default())
            ),
        };
        Ok(Some(Stored {
            document: Document::new(fields),
            version: Version::new(version),
            managed: managed && revision.is_some(),
        }))
    }

    async fn write_v1(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        if document.fields().contains_key(MANAGED_BY_KEY)
            || document.fields().contains_key(REVISION_FIELD)
        {
            return Err(SinkError::InvalidDocument {
                key: key.to_owned(),
                detail: format!(
                    "on KV version 1 the fields {MANAGED_BY_KEY:?} and {REVISION_FIELD:?} are \
                     reserved for the ownership marker"
                ),
            });
        }
        let current = self.read_v1(key).await?;
        match (&options.precondition, &current) {
            (Precondition::Absent, Some(stored)) => {
                return Err(SinkError::Conflict {
                    key: key.to_owned(),
                    detail: format!("expected no secret, but version {} exists", stored.version),
                })
            }
            (Precondition::Version(expected), None) => {
                return Err(SinkError::Conflict {
                    key: key.to_owned(),
                    detail: format!("expected version {expected}, but the key holds no secret"),
                })
            }
            (Precondition::Version(expected), Some(stored)) if &stored.version != expected => {
                return Err(SinkError::Conflict {
                    key: key.to_owned(),
                    detail: format!(
                        "expected version {expected}, but the current version is {}",
                        stored.version
                    ),
                })
            }
            _ => {}
        }
        if let Some(stored) = &current {
            if !stored.managed && !options.takeover {
                return Err(SinkError::Unmanaged {
                    key: key.to_owned(),
                });
            }
        }
        let revision = current
            .as_ref()
            .filter(|s| s.managed)
            .and_then(|s| s.version.as_str().strip_prefix('r'))
            .and_then(|r| r.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        let mut fields: Map<String, Value> = document.fields().clone();
        fields.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.into());
        fields.insert(REVISION_FIELD.to_owned(), revision.to_string().into());
        let body = serde_json::to_vec(&fields).map_err(|_| SinkError::InvalidDocument {
            key: key.to_owned(),
            detail: "the document cannot be written as JSON".to_owned(),
        })?;
        drop(fields);
        let request = || SetV1SecretRequest {
            mount: self.mount().to_owned(),
            path: key.to_owned(),
            data: body.clone(),
        };
        let path = format!("{}/{key}", self.mount());
        let reply = self.session.call(request, &["create", "update"]).await?;
        if reply.no_route() {
            return Err(self.no_mount());
        }
        if !reply.is_success() {
            return Err(self.unexpected(&reply, "writing", &path));
        }
        Ok(Version::new(format!("r{revision}")))
    }
}

/// 64-bit FNV-1a, a stable digest for versions of KV v1 secrets the rotator did not write.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[async_trait]
impl TokenSink for VaultSink {
    fn describe(&self) -> String {
        let mut text = format!(
            "vault:{}/{} (kv v{})",
            self.address,
            self.mount(),
            self.config.kv_version
        );
        if let Some(ns) = self.namespace() {
            text.push_str(&format!(" namespace {ns}"));
        }
        text
    }

    fn capabilities(&self) -> Capabilities {
        if self.v2() {
            Capabilities::new(true, true, true)
        } else {
            Capabilities::new(false, false, false)
        }
    }

    async fn check(&self) -> Result<(), SinkError> {
        self.session.health().await?;
        self.session.login_check().await?;
        self.verify_mount(true).await
    }

    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        validate_key(key)?;
        self.ensure_mount().await?;
        if self.v2() {
            self.read_v2(key, None).await
        } else {
            self.read_v1(key).await
        }
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        validate_key(key)?;
        validate_labels(&options.labels)?;
        self.ensure_mount().await?;
        if self.v2() {
            self.write_v2(key, document, options).await
        } else {
            self.write_v1(key, document, options).await
        }
    }

    async fn read_previous(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        if !self.v2() {
            return Err(SinkError::Unsupported {
                operation: "reading the previous version (KV version 1 keeps none)",
            });
        }
        validate_key(key)?;
        self.ensure_mount().await?;
        let Some(state) = self.read_metadata(key).await? else {
            return Ok(None);
        };
        if state.version < 2 {
            return Ok(None);
        }
        self.read_v2(key, Some(state.version - 1)).await
    }
}

fn validate_labels(labels: &BTreeMap<String, String>) -> Result<(), SinkError> {
    for (name, value) in labels {
        if name.is_empty() || name.len() > 128 || value.len() > 512 || name == MANAGED_BY_KEY {
            return Err(SinkError::Other {
                detail: format!(
                    "label {name:?} cannot be stored as Vault custom_metadata (keys of 1 to \
                     128 characters other than {MANAGED_BY_KEY:?}, values up to 512)"
                ),
                source: None,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_vault_paths() {
        for key in ["alation/tableau-prod", "a", "alation/state/dbt_job.v2"] {
            validate_key(key).unwrap();
        }
        for key in [
            "", "/a", "a/", "a//b", "a/../b", "a/./b", "a b", "a?b", "a%2fb", "ä",
        ] {
            let err = validate_key(key).unwrap_err();
            assert!(
                matches!(err, SinkError::InvalidKey { .. }),
                "{key:?}: {err}"
            );
        }
        assert!(validate_key(&"a".repeat(513)).is_err());
    }

    #[test]
    fn deleted_and_destroyed_versions_are_gone() {
        assert!(!version_gone(false, ""));
        assert!(version_gone(true, ""));
        assert!(version_gone(false, "2020-01-01T00:00:00Z"));
        assert!(!version_gone(false, "2999-01-01T00:00:00Z"));
    }

    #[test]
    fn a_remembered_state_serves_only_the_writes_it_can_decide() {
        let live = KeyState {
            version: 3,
            live: true,
            managed: true,
            custom: HashMap::new(),
        };
        assert!(live.serves(&Precondition::Any));
        assert!(live.serves(&Precondition::Version(Version::new("3"))));
        assert!(!live.serves(&Precondition::Version(Version::new("2"))));
        assert!(!live.serves(&Precondition::Absent));
        let gone = KeyState {
            live: false,
            ..live
        };
        assert!(gone.serves(&Precondition::Absent));
        assert!(!gone.serves(&Precondition::Version(Version::new("3"))));
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
