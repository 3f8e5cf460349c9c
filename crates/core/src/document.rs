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

/// The access-token document consumers read at each destination.
#[derive(Clone)]
pub struct AccessTokenDocument {
    /// The API access token, sent as the `TOKEN` header.
    pub api_access_token: SecretString,
    /// The Alation user the token acts as.
    pub user_id: i64,
    /// When Alation will stop accepting it.
    pub token_expires_at: Timestamp,
    /// When Alation minted it.
    pub created_at: Timestamp,
    /// The Alation instance it is valid for.
    pub base_url: String,
    /// The integration it belongs to.
    pub integration: String,
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
        map.insert("user_id".into(), self.user_id.into());
        map.insert(
            "token_expires_at".into(),
            self.token_expires_at.to_string().into(),
        );
        map.insert("created_at".into(), self.created_at.to_string().into());
        map.insert("base_url".into(), self.base_url.clone().into());
        map.insert("integration".into(), self.integration.clone().into());
        Document(map)
    }

    fn from_document(document: &Document) -> Result<Self, DocumentError> {
        Ok(Self {
            api_access_token: SecretString::from(document.str_field("api_access_token")?),
            user_id: document.user_id()?,
            token_expires_at: document.timestamp("token_expires_at")?,
            created_at: document.timestamp("created_at")?,
            base_url: document.str_field("base_url")?.to_owned(),
            integration: document.str_field("integration")?.to_owned(),
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("integration".to_owned(), self.integration.clone()),
            (
                "token-expires-at".to_owned(),
                self.token_expires_at.to_string(),
            ),
        ])
    }
}

/// The refresh-token document in an integration's state location. Consumers must not be able
/// to read it.
#[derive(Clone)]
pub struct RefreshTokenDocument {
    /// The refresh token.
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
            .finish()
    }
}

impl TokenDocument for RefreshTokenDocument {
    fn to_document(&self) -> Document {
        let mut map = Map::new();
        map.insert(
            "refresh_token".into(),
            self.refresh_token.expose_secret().into(),
        );
        map.insert("user_id".into(), self.user_id.into());
        map.insert("name".into(), self.name.clone().into());
        map.insert(
            "token_expires_at".into(),
            self.token_expires_at.to_string().into(),
        );
        map.insert("created_at".into(), self.created_at.to_string().into());
        map.insert("integration".into(), self.integration.clone().into());
        map.insert(
            "last_regenerated_at".into(),
            self.last_regenerated_at
                .map_or(Value::Null, |t| t.to_string().into()),
        );
        Document(map)
    }

    fn from_document(document: &Document) -> Result<Self, DocumentError> {
        Ok(Self {
            refresh_token: SecretString::from(document.str_field("refresh_token")?),
            user_id: document.user_id()?,
            name: document.str_field("name")?.to_owned(),
            token_expires_at: document.timestamp("token_expires_at")?,
            created_at: document.timestamp("created_at")?,
            integration: document
                .0
                .get("integration")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            last_regenerated_at: document.optional_timestamp("last_regenerated_at")?,
        })
    }

    fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("integration".to_owned(), self.integration.clone()),
            (
                "token-expires-at".to_owned(),
                self.token_expires_at.to_string(),
            ),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> AccessTokenDocument {
        AccessTokenDocument {
            api_access_token: SecretString::from("at-secret-value-1"),
            user_id: 102,
            token_expires_at: "2026-01-02T00:00:00.123456Z".parse().unwrap(),
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            base_url: "https://alation.example.com".into(),
            integration: "tableau".into(),
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

    #[test]
    fn debug_output_never_shows_token_values() {
        let access = access();
        let refresh = RefreshTokenDocument {
            refresh_token: SecretString::from("rt-secret-value-2"),
            user_id: 1,
            name: "n".into(),
            token_expires_at: access.token_expires_at,
            created_at: access.created_at,
            integration: "i".into(),
            last_regenerated_at: None,
        };
        let text = format!(
            "{access:?} {refresh:?} {:?} {:?}",
            access.to_document(),
            refresh.to_document()
        );
        assert!(!text.contains("at-secret-value-1"), "{text}");
        assert!(!text.contains("rt-secret-value-2"), "{text}");
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
