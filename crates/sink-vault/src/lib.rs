//! HashiCorp Vault / OpenBao KV store for alation-rotator.
//!
//! [`VaultSink`] implements [`TokenSink`] on a KV secrets engine, version 2 (the default:
//! versions, compare-and-set, `custom_metadata`) or version 1. Build it from a [`Config`]
//! (deserialized from the `[stores.NAME]` table); construction never touches the network, it
//! logs in lazily on first use and logs in again when Vault stops accepting its token.
//!
//! # KV version 2
//! A document is the `data` of the secret at `<mount>/data/<key>`. The ownership marker
//! (`managed-by = alation-rotator`) and the write's labels (`integration`,
//! `token-expires-at`) are the secret's `custom_metadata`; other custom metadata keys are
//! kept. Versions are Vault's version numbers; [`Precondition::Absent`] is `cas=0`,
//! [`Precondition::Version`] is `cas=v`, and [`Precondition::Any`] writes with `cas` set to
//! the version it just read (retried when another writer got in between), so it works on
//! mounts with `cas_required = true` and never overwrites a secret whose ownership it did not
//! check. A secret whose latest version is deleted or destroyed reads as absent. The previous
//! version stays readable ([`TokenSink::read_previous`]).
//!
//! # KV version 1
//! Version 1 keeps no versions and no metadata, so the marker is stored as two extra fields
//! of the secret, `managed-by` and `rotator-revision` (a counter that serves as the version);
//! reads remove them again. Preconditions are checked by reading first, which is not atomic:
//! the store declares no compare-and-set, and two rotators must not write the same KV v1 key
//! at the same time.
#![deny(missing_docs)]

mod client;
pub mod config;

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use rotator_core::{
    Capabilities, Document, Precondition, SinkError, Stored, TokenSink, Version, WriteOptions,
    MANAGED_BY_KEY, MANAGED_BY_VALUE,
};
use serde_json::{json, Map, Value};
use tokio::sync::OnceCell;

use crate::client::{Client, Reply};
pub use crate::config::{AuthConfig, Config, ConfigError};

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
    client: Client,
    mount_checked: OnceCell<()>,
}

impl fmt::Debug for VaultSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the cached token; the configuration holds only references to secrets.
        f.debug_struct("VaultSink")
            .field("address", &self.config.address)
            .field("mount", &self.config.mount)
            .field("kv_version", &self.config.kv_version)
            .field("namespace", &self.config.namespace)
            .field("auth_method", &self.config.auth.method())
            .finish_non_exhaustive()
    }
}

/// What the metadata of a KV v2 secret says.
struct Metadata {
    current_version: u64,
    /// The current version exists and is neither deleted nor destroyed.
    live: bool,
    custom: Map<String, Value>,
}

impl Metadata {
    fn managed(&self) -> bool {
        is_managed(&self.custom)
    }
}

fn is_managed(custom: &Map<String, Value>) -> bool {
    custom.get(MANAGED_BY_KEY).and_then(Value::as_str) == Some(MANAGED_BY_VALUE)
}

/// Whether a KV v2 version's metadata says it is deleted (now) or destroyed.
fn version_gone(metadata: &Value) -> bool {
    if metadata.get("destroyed").and_then(Value::as_bool) == Some(true) {
        return true;
    }
    match metadata.get("deletion_time").and_then(Value::as_str) {
        None | Some("") => false,
        Some(time) => time
            .parse::<jiff::Timestamp>()
            .map_or(true, |at| at <= jiff::Timestamp::now()),
    }
}

impl VaultSink {
    /// Builds the sink from a configuration: validates it and prepares the HTTP client
    /// (reading `ca_file`). Does not contact Vault or read credentials.
    pub fn new(config: Config) -> Result<Self, SinkError> {
        config.validate().map_err(|e| SinkError::Other {
            detail: format!("invalid Vault store configuration: {e}"),
            source: None,
        })?;
        let client = Client::new(&config)?;
        Ok(Self {
            config,
            client,
            mount_checked: OnceCell::new(),
        })
    }

    /// The configuration the sink was built from.
    pub fn config(&self) -> &Config {
        &self.config
    }

    fn mount(&self) -> &str {
        &self.config.mount
    }

    fn v2(&self) -> bool {
        self.config.kv_version == 2
    }

    fn data_path(&self, key: &str) -> String {
        if self.v2() {
            format!("{}/data/{key}", self.mount())
        } else {
            format!("{}/{key}", self.mount())
        }
    }

    fn metadata_path(&self, key: &str) -> String {
        format!("{}/metadata/{key}", self.mount())
    }

    fn no_mount(&self) -> SinkError {
        SinkError::NotFound {
            detail: format!(
                "no KV secrets engine is mounted at {}/ on {}; enable one (`vault secrets \
                 enable -path={} kv-v{}`) or fix `mount`",
                self.mount(),
                self.config.address,
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
                self.config.address,
                reply.status.as_u16()
            ),
            source: None,
        }
    }

    /// The `data` of Vault's answer to a read of `path` (`Null` when it has none); `None`
    /// when nothing is stored there.
    async fn read_data(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Option<Value>, SinkError> {
        let mut reply = self
            .client
            .send(Method::GET, path, query, None, &["read"])
            .await?;
        if reply.no_route() {
            return Err(self.no_mount());
        }
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(self.unexpected(&reply, "reading", path));
        }
        Ok(Some(
            reply.body.get_mut("data").map_or(Value::Null, Value::take),
        ))
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
        let path = format!("sys/internal/ui/mounts/{}", self.mount());
        let reply = match self
            .client
            .send(Method::GET, &path, &[], None, &["read"])
            .await
        {
            Ok(reply) => reply,
            Err(SinkError::Unauthorized { .. }) if !strict => return Ok(()),
            Err(SinkError::Unauthorized { .. }) => {
                return Err(SinkError::Unauthorized {
                    detail: format!(
                        "permission denied: the Vault policy grants nothing under {}/ on {}; \
                         grant the rotator's policy (see docs/stores/vault.md)",
                        self.mount(),
                        self.config.address
                    ),
                })
            }
            Err(e) => return Err(e),
        };
        if reply.status == StatusCode::BAD_REQUEST || reply.status == StatusCode::NOT_FOUND {
            return Err(self.no_mount());
        }
        if !reply.status.is_success() {
            return Err(self.unexpected(&reply, "reading", &path));
        }
        let data = reply.body.get("data").cloned().unwrap_or(Value::Null);
        let kind = data.get("type").and_then(Value::as_str).unwrap_or("");
        if !matches!(kind, "kv" | "generic") {
            return Err(SinkError::NotFound {
                detail: format!(
                    "the secrets engine at {}/ is of type {kind:?}, not a KV engine; fix `mount`",
                    self.mount()
                ),
            });
        }
        let version = match data.pointer("/options/version").and_then(Value::as_str) {
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

    async fn read_metadata(&self, key: &str) -> Result<Option<Metadata>, SinkError> {
        let Some(data) = self.read_data(&self.metadata_path(key), &[]).await? else {
            return Ok(None);
        };
        let current_version = data
            .get("current_version")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let live = current_version > 0
            && data
                .get("versions")
                .and_then(|v| v.get(current_version.to_string()))
                .is_some_and(|v| !version_gone(v));
        let custom = match data.get("custom_metadata") {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        Ok(Some(Metadata {
            current_version,
            live,
            custom,
        }))
    }

    /// Reads one version (`None`: the current one) of a KV v2 secret.
    async fn read_v2(&self, key: &str, version: Option<u64>) -> Result<Option<Stored>, SinkError> {
        let path = self.data_path(key);
        let query: Vec<(&str, String)> = version
            .map(|v| vec![("version", v.to_string())])
            .unwrap_or_default();
        let Some(data) = self.read_data(&path, &query).await? else {
            return Ok(None);
        };
        let metadata = data.get("metadata").cloned().unwrap_or(Value::Null);
        if version_gone(&metadata) {
            return Ok(None);
        }
        let document = match data.get("data") {
            None | Some(Value::Null) => return Ok(None),
            Some(Value::Object(fields)) => Document::new(fields.clone()),
            Some(_) => {
                return Err(SinkError::InvalidDocument {
                    key: key.to_owned(),
                    detail: "the secret's data is not a JSON object".to_owned(),
                })
            }
        };
        let number = metadata
            .get("version")
            .and_then(Value::as_u64)
            .ok_or_else(|| SinkError::Other {
                detail: format!("Vault answered a read of {path} without a version number"),
                source: None,
            })?;
        let managed = match metadata.get("custom_metadata") {
            Some(Value::Object(custom)) => is_managed(custom),
            _ => false,
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
        custom: &Map<String, Value>,
    ) -> Result<(), SinkError> {
        let path = self.metadata_path(key);
        let body = json!({ "custom_metadata": custom });
        let reply = self
            .client
            .send(Method::POST, &path, &[], Some(&body), &["create", "update"])
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.unexpected(&reply, "writing the custom_metadata of", &path))
        }
    }

    async fn write_v2(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let metadata = self.read_metadata(key).await?;
            let (current, live, managed, mut custom) = match metadata {
                Some(m) => (m.current_version, m.live, m.managed(), m.custom),
                None => (0, false, false, Map::new()),
            };
            let cas = match &options.precondition {
                Precondition::Any => current,
                Precondition::Absent => {
                    if live {
                        return Err(SinkError::Conflict {
                            key: key.to_owned(),
                            detail: format!("expected no secret, but version {current} exists"),
                        });
                    }
                    current
                }
                Precondition::Version(expected) => {
                    if !live {
                        return Err(SinkError::Conflict {
                            key: key.to_owned(),
                            detail: format!(
                                "expected version {expected}, but the key holds no secret"
                            ),
                        });
                    }
                    if expected.as_str() != current.to_string() {
                        return Err(SinkError::Conflict {
                            key: key.to_owned(),
                            detail: format!(
                                "expected version {expected}, but the current version is \
                                 {current}"
                            ),
                        });
                    }
                    current
                }
            };
            if live && !managed && !options.takeover {
                return Err(SinkError::Unmanaged {
                    key: key.to_owned(),
                });
            }

            let before = custom.clone();
            for (name, value) in &options.labels {
                custom.insert(name.clone(), Value::String(value.clone()));
            }
            custom.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.into());
            // A secret that is not ours yet gets the marker first, so that its data is never
            // written without it (a later write would then refuse it as unmanaged).
            if !managed {
                self.write_metadata(key, &custom).await?;
            }

            let path = self.data_path(key);
            let body = json!({
                "options": { "cas": cas },
                "data": document.fields(),
            });
            let reply = self
                .client
                .send(Method::POST, &path, &[], Some(&body), &["create", "update"])
                .await?;
            drop(body);
            if reply.no_route() {
                return Err(self.no_mount());
            }
            if reply.status == StatusCode::BAD_REQUEST
                && reply.error_mentions("check-and-set parameter")
            {
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
            if !reply.status.is_success() {
                return Err(self.unexpected(&reply, "writing", &path));
            }
            let version = reply
                .body
                .pointer("/data/version")
                .and_then(Value::as_u64)
                .ok_or_else(|| SinkError::Other {
                    detail: format!("Vault answered a write of {path} without a version number"),
                    source: None,
                })?;
            if managed && custom != before {
                // The document is written; labels are informative, so a failure to update
                // them must not turn a successful write into an error.
                if let Err(e) = self.write_metadata(key, &custom).await {
                    tracing::warn!(
                        key,
                        error = %e,
                        "wrote the secret but could not update its custom_metadata labels"
                    );
                }
            }
            return Ok(Version::new(version.to_string()));
        }
    }

    // ---- KV version 1 -------------------------------------------------------------------

    async fn read_v1(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        let Some(data) = self.read_data(&self.data_path(key), &[]).await? else {
            return Ok(None);
        };
        let mut fields = match data {
            Value::Null => return Ok(None),
            Value::Object(fields) => fields,
            _ => {
                return Err(SinkError::InvalidDocument {
                    key: key.to_owned(),
                    detail: "the secret's data is not a JSON object".to_owned(),
                })
            }
        };
        let managed = is_managed(&fields);
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
        let mut fields = document.fields().clone();
        fields.insert(MANAGED_BY_KEY.to_owned(), MANAGED_BY_VALUE.into());
        fields.insert(REVISION_FIELD.to_owned(), revision.to_string().into());
        let path = self.data_path(key);
        let body = Value::Object(fields);
        let reply = self
            .client
            .send(Method::POST, &path, &[], Some(&body), &["create", "update"])
            .await?;
        drop(body);
        if reply.no_route() {
            return Err(self.no_mount());
        }
        if !reply.status.is_success() {
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
            self.config.address.trim_end_matches('/'),
            self.mount(),
            self.config.kv_version
        );
        if let Some(ns) = &self.config.namespace {
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
        self.client.health().await?;
        self.client.login_check().await?;
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
        let Some(metadata) = self.read_metadata(key).await? else {
            return Ok(None);
        };
        if metadata.current_version < 2 {
            return Ok(None);
        }
        self.read_v2(key, Some(metadata.current_version - 1)).await
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
        assert!(!version_gone(
            &json!({"deletion_time": "", "destroyed": false})
        ));
        assert!(version_gone(
            &json!({"deletion_time": "", "destroyed": true})
        ));
        assert!(version_gone(
            &json!({"deletion_time": "2020-01-01T00:00:00Z", "destroyed": false})
        ));
        assert!(!version_gone(
            &json!({"deletion_time": "2999-01-01T00:00:00Z", "destroyed": false})
        ));
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
