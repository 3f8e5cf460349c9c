//! The JSON documents the rotator stores. Field names follow Alation's own responses.

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

/// A JSON object as stored in a sink.
///
/// Its `Debug` output lists the field names only, never values, because documents hold
/// tokens.
#[derive(Clone, PartialEq, Default)]
pub struct Document(Map<String, Value>);

impl Document {
    /// Wraps a JSON object.
    pub fn new(fields: Map<String, Value>) -> Self {
        Self(fields)
    }

    /// Parses a JSON object from bytes. The error never quotes the input.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, DocumentError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(_) => Err(DocumentError::NotAnObject),
            Err(e) => Err(DocumentError::NotJson {
                line: e.line(),
                column: e.column(),
            }),
        }
    }

    /// The fields.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The fields, owned.
    pub fn into_fields(self) -> Map<String, Value> {
        self.0
    }

    /// Serializes the object to JSON bytes.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).unwrap_or_default()
    }

    fn str_field(&self, field: &'static str) -> Result<&str, DocumentError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(DocumentError::Missing { field }),
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(DocumentError::Invalid {
                field,
                expected: "a string",
            }),
        }
    }

    fn user_id(&self) -> Result<i64, DocumentError> {
        match self.0.get("user_id") {
            None | Some(Value::Null) => Err(DocumentError::Missing { field: "user_id" }),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                .ok_or(DocumentError::Invalid {
                    field: "user_id",
                    expected: "an integer",
                }),
        }
    }

    fn timestamp(&self, field: &'static str) -> Result<Timestamp, DocumentError> {
        self.str_field(field)?
            .parse()
            .map_err(|_| DocumentError::Invalid {
                field,
                expected: "an RFC 3339 timestamp",
            })
    }

    fn optional_timestamp(&self, field: &'static str) -> Result<Option<Timestamp>, DocumentError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            _ => self.timestamp(field).map(Some),
        }
    }
}

impl fmt::Debug for Document {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Document")
            .field("fields", &self.0.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Why a stored document could not be read as a token document. Never quotes values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The bytes are not JSON.
    #[error("not valid JSON (line {line}, column {column})")]
    NotJson {
        /// Line of the syntax error.
        line: usize,
        /// Column of the syntax error.
        column: usize,
    },
    /// The JSON is not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("field `{field}` is missing")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong type or format.
    #[error("field `{field}` is not {expected}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
}

/// A typed document that converts to and from a [`Document`].
pub trait TokenDocument: Sized {
    /// The JSON form.
    fn to_document(&self) -> Document;
    /// Parses the JSON form.
    fn from_document(document: &Document) -> Result<Self, DocumentError>;
    /// Non-secret labels for store metadata (integration name, expiry).
    fn labels(&self) -> BTreeMap<String, String>;
}

/// Field-level helpers shared by the typed documents.
impl Document {
    fn optional_str(&self, field: &'static str) -> Result<Option<&str>, DocumentError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            _ => self.str_field(field).map(Some),
        }
    }

    fn optional_user_id(&self) -> Result<Option<i64>, DocumentError> {
        match self.0.get("user_id") {
            None | Some(Value::Null) => Ok(None),
            _ => self.user_id().map(Some),
        }
    }

    fn optional_object(&self, field: &'static str) -> Result<Option<Document>, DocumentError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Document(map.clone()))),
            Some(_) => Err(DocumentError::Invalid {
                field,
                expected: "an object",
            }),
        }
    }
}

fn put_time(map: &mut Map<String, Value>, field: &str, time: Option<Timestamp>) {
    map.insert(
        field.into(),
        time.map_or(Value::Null, |t| t.to_string().into()),
    );
}

fn labels(integration: &str, expires_at: Timestamp) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("integration".to_owned(), integration.to_owned()),
        ("token-expires-at".to_owned(), expires_at.to_string()),
    ])
}

/// The access-token document consumers read at each destination.
///
/// The token goes in Alation's `TOKEN` header, or, when `token_type` is `Bearer` (OAuth 2.0
/// client credentials), in `Authorization: Bearer <token>`.
#[derive(Clone)]
#[non_exhaustive]
pub struct AccessTokenDocument {
    /// The API access token.
    pub api_access_token: SecretString,
    /// The Alation user the token acts as, where known (always for refresh tokens).
    pub user_id: Option<i64>,
    /// When Alation will stop accepting it.
    pub token_expires_at: Timestamp,
    /// When Alation minted it.
    pub created_at: Timestamp,
    /// The Alation instance it is valid for.
    pub base_url: String,
    /// The integration it belongs to.
    pub integration: String,
    /// How to send it: absent for the `TOKEN` header, `Bearer` for `Authorization: Bearer`.
    pub token_type: Option<String>,
    /// The refresh token it was minted from, by that token's `created_at` (its generation;
    /// never the token itself). Absent for OAuth tokens and for documents written before
    /// generations were recorded.
    pub refresh_token_created_at: Option<Timestamp>,
}

impl AccessTokenDocument {
    /// A document for a token sent in the `TOKEN` header, without a recorded generation.
    pub fn new(
        api_access_token: SecretString,
        user_id: Option<i64>,
        created_at: Timestamp,
        token_expires_at: Timestamp,
        base_url: impl Into<String>,
        integration: impl Into<String>,
    ) -> Self {
        Self {
            api_access_token,
            user_id,
            token_expires_at,
            created_at,
            base_url: base_url.into(),
            integration: integration.into(),
            token_type: None,
            refresh_token_created_at: None,
        }
    }
}

impl fmt::Debug for AccessTokenDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessTokenDocument")
            .field("api_access_token", &"[REDACTED]")
            .field("user_id", &self.user_id)
            .field("token_expires_at", &self.token_expires_at)
            .field("created_at", &self.created_at)
            .field("base_url", &self.base_url)
            .field("integration", &self.integration)
            .field("token_type", &self.token_type)
            .field("refresh_token_created_at", &self.refresh_token_created_at)
            .finish()
    }
}

impl TokenDocument for AccessTokenDocument {
    fn to_document(&self) -> Document {
        let mut map = Map::new();
        map.insert(
            "api_access_token".into(),
            self.api_access_token.expose_secret().into(),
        );
        if let Some(user_id) = self.user_id {
            map.insert("user_id".into(), user_id.into());
        }
        map.insert(
            "token_expires_at".into(),
            self.token_expires_at.to_string().into(),
        );
        map.insert("created_at".into(), self.created_at.to_string().into());
        map.insert("base_url".into(), self.base_url.clone().into());
        map.insert("integration".into(), self.integration.clone().into());
        if let Some(token_type) = &self.token_type {
            map.insert("token_type".into(), token_type.clone().into());
        }
        if let Some(generation) = self.refresh_token_created_at {
            map.insert(
                "refresh_token_created_at".into(),
                generation.to_string().into(),
            );
        }
        Document(map)
    }

    fn from_document(document: &Document) -> Result<Self, DocumentError> {
        Ok(Self {
            api_access_token: SecretString::from(document.str_field("api_access_token")?),
            user_id: document.optional_user_id()?,
            token_expires_at: document.timestamp("token_expires_at")?,
            created_at: document.timestamp("created_at")?,
            base_url: document.str_field("base_url")?.to_owned(),
            integration: document.str_field("integration")?.to_owned(),
            token_type: document.optional_str("token_type")?.map(str::to_owned),
            refresh_token_created_at: document.optional_timestamp("refresh_token_created_at")?,
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        labels(&self.integration, self.token_expires_at)
    }
}

/// Which of an integration's refresh tokens: the one in use, or the optional standby.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The refresh token access tokens are minted from.
    Primary,
    /// The second refresh token kept for when the primary is lost (`standby = true`).
    Standby,
}

impl Slot {
    /// `primary` or `standby`.
    pub fn name(self) -> &'static str {
        match self {
            Slot::Primary => "primary",
            Slot::Standby => "standby",
        }
    }

    fn parse(text: &str) -> Result<Self, DocumentError> {
        match text {
            "primary" => Ok(Slot::Primary),
            "standby" => Ok(Slot::Standby),
            _ => Err(DocumentError::Invalid {
                field: "slot",
                expected: "\"primary\" or \"standby\"",
            }),
        }
    }
}

impl serde::Serialize for Slot {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One refresh token of an integration with what Alation said of it.
#[derive(Clone)]
pub struct RefreshTokenSlot {
    /// The refresh token.
    pub refresh_token: SecretString,
    /// The token's name in Alation.
    pub name: String,
    /// When Alation created it. Also its generation: access tokens minted from it record it.
    pub created_at: Timestamp,
    /// When Alation will stop accepting it.
    pub token_expires_at: Timestamp,
    /// When the rotator last regenerated it, if ever.
    pub last_regenerated_at: Option<Timestamp>,
}

impl fmt::Debug for RefreshTokenSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokenSlot")
            .field("refresh_token", &"[REDACTED]")
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .field("token_expires_at", &self.token_expires_at)
            .field("last_regenerated_at", &self.last_regenerated_at)
            .finish()
    }
}

impl RefreshTokenSlot {
    fn write_into(&self, map: &mut Map<String, Value>) {
        map.insert(
            "refresh_token".into(),
            self.refresh_token.expose_secret().into(),
        );
        map.insert("name".into(), self.name.clone().into());
        map.insert(
            "token_expires_at".into(),
            self.token_expires_at.to_string().into(),
        );
        map.insert("created_at".into(), self.created_at.to_string().into());
        put_time(map, "last_regenerated_at", self.last_regenerated_at);
    }

    fn read_from(document: &Document) -> Result<Self, DocumentError> {
        Ok(Self {
            refresh_token: SecretString::from(document.str_field("refresh_token")?),
            name: document.str_field("name")?.to_owned(),
            token_expires_at: document.timestamp("token_expires_at")?,
            created_at: document.timestamp("created_at")?,
            last_regenerated_at: document.optional_timestamp("last_regenerated_at")?,
        })
    }
}

/// The record a runner writes into the state document, by compare-and-set, before it asks
/// Alation to regenerate a refresh token. It is also a lease: other runners leave the
/// integration's refresh tokens alone while it is young. It never holds a token, only a
/// keyed fingerprint of the one being replaced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegenerationIntent {
    /// The refresh token being replaced.
    pub slot: Slot,
    /// Who is regenerating (host, process, random suffix).
    pub runner: String,
    /// When the runner started.
    pub started_at: Timestamp,
    /// HMAC-SHA256 of the token being replaced, keyed with `salt` (hex).
    pub fingerprint: String,
    /// The random key of the fingerprint (hex).
    pub salt: String,
}

impl RegenerationIntent {
    fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("slot".into(), self.slot.name().into());
        map.insert("runner".into(), self.runner.clone().into());
        map.insert("started_at".into(), self.started_at.to_string().into());
        map.insert("fingerprint".into(), self.fingerprint.clone().into());
        map.insert("salt".into(), self.salt.clone().into());
        Value::Object(map)
    }

    fn read_from(document: &Document) -> Result<Self, DocumentError> {
        Ok(Self {
            slot: Slot::parse(document.str_field("slot")?)?,
            runner: document.str_field("runner")?.to_owned(),
            started_at: document.timestamp("started_at")?,
            fingerprint: document.str_field("fingerprint")?.to_owned(),
            salt: document.str_field("salt")?.to_owned(),
        })
    }
}

/// Why an integration with a standby runs on one refresh token: its primary was lost or
/// died, and the standby took its place. Cleared by `bootstrap`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Degradation {
    /// When the standby took over.
    pub since: Timestamp,
    /// What happened to the primary.
    pub reason: String,
}

/// The refresh-token document in an integration's state location. Consumers must not be able
/// to read it.
///
/// The primary token's fields sit at the top level (as Alation names them); the optional
/// standby, an unfinished regeneration and a degradation are nested objects.
#[derive(Clone)]
#[non_exhaustive]
pub struct RefreshTokenDocument {
    /// The refresh token access tokens are minted from.
    pub refresh_token: SecretString,
    /// The Alation user that owns it.
    pub user_id: i64,
    /// The token's name in Alation.
    pub name: String,
    /// When Alation will stop accepting it.
    pub token_expires_at: Timestamp,
    /// When Alation created it.
    pub created_at: Timestamp,
    /// The integration it belongs to.
    pub integration: String,
    /// When the rotator last regenerated it, if ever.
    pub last_regenerated_at: Option<Timestamp>,
    /// The standby refresh token, when the integration keeps one.
    pub standby: Option<RefreshTokenSlot>,
    /// A regeneration that was started and not yet finished.
    pub regenerating: Option<RegenerationIntent>,
    /// Set while the integration runs on its former standby alone.
    pub degraded: Option<Degradation>,
}

impl fmt::Debug for RefreshTokenDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshTokenDocument")
            .field("refresh_token", &"[REDACTED]")
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("token_expires_at", &self.token_expires_at)
            .field("created_at", &self.created_at)
            .field("integration", &self.integration)
            .field("last_regenerated_at", &self.last_regenerated_at)
            .field("standby", &self.standby)
            .field("regenerating", &self.regenerating)
            .field("degraded", &self.degraded)
            .finish()
    }
}

impl RefreshTokenDocument {
    /// A document holding one refresh token (no standby, nothing pending).
    pub fn new(
        refresh_token: SecretString,
        user_id: i64,
        name: impl Into<String>,
        created_at: Timestamp,
        token_expires_at: Timestamp,
        integration: impl Into<String>,
    ) -> Self {
        Self {
            refresh_token,
            user_id,
            name: name.into(),
            token_expires_at,
            created_at,
            integration: integration.into(),
            last_regenerated_at: None,
            standby: None,
            regenerating: None,
            degraded: None,
        }
    }

    /// The primary token as a slot.
    pub fn primary(&self) -> RefreshTokenSlot {
        RefreshTokenSlot {
            refresh_token: self.refresh_token.clone(),
            name: self.name.clone(),
            created_at: self.created_at,
            token_expires_at: self.token_expires_at,
            last_regenerated_at: self.last_regenerated_at,
        }
    }

    /// The token in `slot`, if the document holds one there.
    pub fn slot(&self, slot: Slot) -> Option<RefreshTokenSlot> {
        match slot {
            Slot::Primary => Some(self.primary()),
            Slot::Standby => self.standby.clone(),
        }
    }

    /// Puts `token` in `slot`, replacing what was there.
    pub fn set_slot(&mut self, slot: Slot, token: RefreshTokenSlot) {
        match slot {
            Slot::Primary => {
                self.refresh_token = token.refresh_token;
                self.name = token.name;
                self.created_at = token.created_at;
                self.token_expires_at = token.token_expires_at;
                self.last_regenerated_at = token.last_regenerated_at;
            }
            Slot::Standby => self.standby = Some(token),
        }
    }

    /// The generations (`created_at`) of the tokens held: access tokens minted from any of
    /// them are current.
    pub fn generations(&self) -> Vec<Timestamp> {
        std::iter::once(self.created_at)
            .chain(self.standby.as_ref().map(|s| s.created_at))
            .collect()
    }
}

impl TokenDocument for RefreshTokenDocument {
    fn to_document(&self) -> Document {
        let mut map = Map::new();
        self.primary().write_into(&mut map);
        map.insert("user_id".into(), self.user_id.into());
        map.insert("integration".into(), self.integration.clone().into());
        if let Some(standby) = &self.standby {
            let mut inner = Map::new();
            standby.write_into(&mut inner);
            map.insert("standby".into(), Value::Object(inner));
        }
        if let Some(intent) = &self.regenerating {
            map.insert("regenerating".into(), intent.to_value());
        }
        if let Some(degraded) = &self.degraded {
            let mut inner = Map::new();
            inner.insert("since".into(), degraded.since.to_string().into());
            inner.insert("reason".into(), degraded.reason.clone().into());
            map.insert("degraded".into(), Value::Object(inner));
        }
        Document(map)
    }

    fn from_document(document: &Document) -> Result<Self, DocumentError> {
        let primary = RefreshTokenSlot::read_from(document)?;
        let degraded = match document.optional_object("degraded")? {
            Some(inner) => Some(Degradation {
                since: inner.timestamp("since")?,
                reason: inner.str_field("reason")?.to_owned(),
            }),
            None => None,
        };
        Ok(Self {
            refresh_token: primary.refresh_token,
            user_id: document.user_id()?,
            name: primary.name,
            token_expires_at: primary.token_expires_at,
            created_at: primary.created_at,
            integration: document
                .optional_str("integration")?
                .unwrap_or_default()
                .to_owned(),
            last_regenerated_at: primary.last_regenerated_at,
            standby: document
                .optional_object("standby")?
                .map(|inner| RefreshTokenSlot::read_from(&inner))
                .transpose()?,
            regenerating: document
                .optional_object("regenerating")?
                .map(|inner| RegenerationIntent::read_from(&inner))
                .transpose()?,
            degraded,
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        labels(&self.integration, self.token_expires_at)
    }
}

/// The state document of an integration that authenticates as an OAuth 2.0 client
/// application (Alation Cloud service account). Consumers must not be able to read it.
#[derive(Clone)]
pub struct OAuthClientDocument {
    /// The client id (not a secret).
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
    /// The integration it belongs to.
    pub integration: String,
    /// When it was stored by `bootstrap`.
    pub stored_at: Timestamp,
}

impl fmt::Debug for OAuthClientDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientDocument")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("integration", &self.integration)
            .field("stored_at", &self.stored_at)
            .finish()
    }
}

impl TokenDocument for OAuthClientDocument {
    fn to_document(&self) -> Document {
        let mut map = Map::new();
        map.insert("client_id".into(), self.client_id.clone().into());
        map.insert(
            "client_secret".into(),
            self.client_secret.expose_secret().into(),
        );
        map.insert("integration".into(), self.integration.clone().into());
        map.insert("stored_at".into(), self.stored_at.to_string().into());
        Document(map)
    }

    fn from_document(document: &Document) -> Result<Self, DocumentError> {
        Ok(Self {
            client_id: document.str_field("client_id")?.to_owned(),
            client_secret: SecretString::from(document.str_field("client_secret")?),
            integration: document
                .optional_str("integration")?
                .unwrap_or_default()
                .to_owned(),
            stored_at: document.timestamp("stored_at")?,
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("integration".to_owned(), self.integration.clone())])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> AccessTokenDocument {
        AccessTokenDocument {
            api_access_token: SecretString::from("at-secret-value-1"),
            user_id: Some(102),
            token_expires_at: "2026-01-02T00:00:00.123456Z".parse().unwrap(),
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            base_url: "https://alation.example.com".into(),
            integration: "tableau".into(),
            token_type: None,
            refresh_token_created_at: None,
        }
    }

    #[test]
    fn access_document_round_trips_with_alation_field_names() {
        let doc = access().to_document();
        let keys: Vec<_> = doc.fields().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "api_access_token",
                "base_url",
                "created_at",
                "integration",
                "token_expires_at",
                "user_id"
            ]
        );
        assert_eq!(
            doc.fields()["token_expires_at"],
            "2026-01-02T00:00:00.123456Z"
        );
        let back = AccessTokenDocument::from_document(&doc).unwrap();
        assert_eq!(back.api_access_token.expose_secret(), "at-secret-value-1");
        assert_eq!(back.token_expires_at, access().token_expires_at);
    }

    fn refresh() -> RefreshTokenDocument {
        RefreshTokenDocument {
            refresh_token: SecretString::from("rt-secret-value-2"),
            user_id: 1,
            name: "n".into(),
            token_expires_at: "2026-03-01T00:00:00Z".parse().unwrap(),
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            integration: "i".into(),
            last_regenerated_at: None,
            standby: Some(RefreshTokenSlot {
                refresh_token: SecretString::from("sb-secret-value-3"),
                name: "n-standby".into(),
                created_at: "2026-01-31T00:00:00Z".parse().unwrap(),
                token_expires_at: "2026-04-01T00:00:00Z".parse().unwrap(),
                last_regenerated_at: Some("2026-01-31T00:00:00Z".parse().unwrap()),
            }),
            regenerating: Some(RegenerationIntent {
                slot: Slot::Standby,
                runner: "host:1:ab".into(),
                started_at: "2026-02-01T00:00:00Z".parse().unwrap(),
                fingerprint: "00ff".into(),
                salt: "11ee".into(),
            }),
            degraded: Some(Degradation {
                since: "2026-02-02T00:00:00Z".parse().unwrap(),
                reason: "lost".into(),
            }),
        }
    }

    #[test]
    fn refresh_document_round_trips_standby_intent_and_degradation() {
        let doc = refresh().to_document();
        let back = RefreshTokenDocument::from_document(&doc).unwrap();
        let standby = back.standby.clone().unwrap();
        assert_eq!(standby.refresh_token.expose_secret(), "sb-secret-value-3");
        assert_eq!(standby.name, "n-standby");
        assert_eq!(back.regenerating, refresh().regenerating);
        assert_eq!(back.degraded, refresh().degraded);
        assert_eq!(
            back.generations(),
            vec![refresh().created_at, standby.created_at]
        );
        // A first-wave document (no nested objects) still parses.
        let mut fields = doc.into_fields();
        for nested in ["standby", "regenerating", "degraded"] {
            fields.remove(nested);
        }
        let plain = RefreshTokenDocument::from_document(&Document::new(fields)).unwrap();
        assert!(plain.standby.is_none() && plain.regenerating.is_none());
    }

    #[test]
    fn oauth_access_documents_say_bearer_and_omit_unknown_user() {
        let mut access = access();
        access.user_id = None;
        access.token_type = Some("Bearer".into());
        let doc = access.to_document();
        assert_eq!(doc.fields()["token_type"], "Bearer");
        assert!(!doc.fields().contains_key("user_id"));
        assert!(!doc.fields().contains_key("refresh_token_created_at"));
        let back = AccessTokenDocument::from_document(&doc).unwrap();
        assert_eq!(back.user_id, None);
        assert_eq!(back.token_type.as_deref(), Some("Bearer"));
    }

    #[test]
    fn debug_output_never_shows_token_values() {
        let access = access();
        let refresh = refresh();
        let oauth = OAuthClientDocument {
            client_id: "client-1".into(),
            client_secret: SecretString::from("cs-secret-value-4"),
            integration: "i".into(),
            stored_at: access.created_at,
        };
        let text = format!(
            "{access:?} {refresh:?} {oauth:?} {:?} {:?} {:?}",
            access.to_document(),
            refresh.to_document(),
            oauth.to_document()
        );
        for secret in [
            "at-secret-value-1",
            "rt-secret-value-2",
            "sb-secret-value-3",
            "cs-secret-value-4",
        ] {
            assert!(!text.contains(secret), "{text}");
        }
    }

    #[test]
    fn parse_errors_name_the_field_not_the_value() {
        let mut fields = access().to_document().into_fields();
        fields.insert("token_expires_at".into(), "tomorrow".into());
        let err = AccessTokenDocument::from_document(&Document::new(fields)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "field `token_expires_at` is not an RFC 3339 timestamp"
        );
        let err = Document::from_slice(b"{\"api_access_token\": \"at-secret").unwrap_err();
        assert!(!err.to_string().contains("at-secret"));
    }
}
