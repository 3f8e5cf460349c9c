//! OAuth 2.0 client credentials, as Alation Cloud offers them to service accounts: client
//! applications an admin registers, `POST /oauth/v2/token/`, `POST /oauth/v2/introspect/`,
//! and JWT access tokens the ordinary API accepts as `Authorization: Bearer`.

use std::time::Duration;

use axum::http::{header, HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::state::random_hex;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// A registered client application. No `Debug`: it holds the secret.
pub(crate) struct Client {
    pub(crate) id: String,
    secret: String,
    lifetime: Duration,
    revoked: bool,
}

/// The OAuth side of the emulator's state.
pub(crate) struct OAuth {
    clients: Vec<Client>,
    /// Signs the JWTs; random per emulator.
    key: Vec<u8>,
}

/// An OAuth error as Alation answers it.
pub(crate) struct OAuthError {
    pub(crate) status: StatusCode,
    pub(crate) body: Value,
}

impl OAuthError {
    fn new(status: StatusCode, error: &str, description: &str) -> Self {
        Self {
            status,
            body: json!({
                "error": error,
                "error_description": description,
                "code": status.as_u16().to_string(),
            }),
        }
    }

    fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        )
    }
}

/// Form fields of an OAuth request.
pub(crate) type Form = Map<String, Value>;

pub(crate) fn parse_form(body: &[u8]) -> Form {
    url::form_urlencoded::parse(body)
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect()
}

/// The client id and secret, from HTTP Basic or the form.
fn client_credentials(headers: &HeaderMap, form: &Form) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(basic.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, secret) = text.split_once(':')?;
        return Some((id.to_owned(), secret.to_owned()));
    }
    let field = |name: &str| form.get(name).and_then(Value::as_str).map(str::to_owned);
    Some((field("client_id")?, field("client_secret")?))
}

impl OAuth {
    pub(crate) fn new() -> Self {
        Self {
            clients: Vec::new(),
            key: random_hex(32).into_bytes(),
        }
    }

    pub(crate) fn register(&mut self, lifetime: Duration) -> (String, String) {
        let id = format!("client-{}", random_hex(8));
        let secret = random_hex(24);
        self.clients.push(Client {
            id: id.clone(),
            secret: secret.clone(),
            lifetime,
            revoked: false,
        });
        (id, secret)
    }

    pub(crate) fn rotate_secret(&mut self, id: &str) -> Option<String> {
        let client = self.clients.iter_mut().find(|c| c.id == id)?;
        client.secret = random_hex(24);
        Some(client.secret.clone())
    }

    pub(crate) fn revoke(&mut self, id: &str) -> bool {
        match self.clients.iter_mut().find(|c| c.id == id) {
            Some(client) => {
                client.revoked = true;
                true
            }
            None => false,
        }
    }

    pub(crate) fn set_lifetime(&mut self, id: &str, lifetime: Duration) -> bool {
        match self.clients.iter_mut().find(|c| c.id == id) {
            Some(client) => {
                client.lifetime = lifetime;
                true
            }
            None => false,
        }
    }

    /// The client these credentials authenticate, if any.
    fn authenticate(&self, headers: &HeaderMap, form: &Form) -> Result<&Client, OAuthError> {
        let (id, secret) =
            client_credentials(headers, form).ok_or_else(OAuthError::invalid_client)?;
        self.clients
            .iter()
            .find(|c| c.id == id && c.secret == secret && !c.revoked)
            .ok_or_else(OAuthError::invalid_client)
    }

    fn sign(&self, message: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key length");
        mac.update(message.as_bytes());
        B64.encode(mac.finalize().into_bytes())
    }

    /// `POST /oauth/v2/token/`.
    pub(crate) fn token(
        &self,
        headers: &HeaderMap,
        form: &Form,
        now: Timestamp,
    ) -> Result<Value, OAuthError> {
        match form.get("grant_type").and_then(Value::as_str) {
            Some("client_credentials") => {}
            Some(_) => {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "The authorization grant type is not supported by the authorization server.",
                ))
            }
            None => {
                return Err(OAuthError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "Missing grant_type parameter value.",
                ))
            }
        }
        let client = self.authenticate(headers, form)?;
        let iat = now.as_second();
        let exp = iat + client.lifetime.as_secs() as i64;
        let header = B64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = B64.encode(
            json!({
                "sub": client.id,
                "client_id": client.id,
                "iat": iat,
                "exp": exp,
                "jti": random_hex(12),
            })
            .to_string(),
        );
        let signing_input = format!("{header}.{claims}");
        let token = format!("{signing_input}.{}", self.sign(&signing_input));
        Ok(json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": client.lifetime.as_secs(),
        }))
    }

    /// The claims of a JWT this emulator signed that still works at `now`.
    pub(crate) fn verify(&self, token: &str, now: Timestamp) -> Option<Map<String, Value>> {
        let (signing_input, signature) = token.rsplit_once('.')?;
        if self.sign(signing_input) != signature {
            return None;
        }
        let claims = B64.decode(signing_input.split_once('.')?.1).ok()?;
        let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(&claims) else {
            return None;
        };
        let exp = claims.get("exp")?.as_i64()?;
        let client_id = claims.get("client_id")?.as_str()?;
        let live_client = self.clients.iter().any(|c| c.id == client_id && !c.revoked);
        (exp > now.as_second() && live_client).then_some(claims)
    }

    /// `POST /oauth/v2/introspect/`.
    pub(crate) fn introspect(
        &self,
        headers: &HeaderMap,
        form: &Form,
        now: Timestamp,
    ) -> Result<Value, OAuthError> {
        self.authenticate(headers, form)?;
        let token = form
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(match self.verify(token, now) {
            Some(claims) => {
                let mut answer = claims;
                answer.insert("active".into(), true.into());
                answer.insert("token_type".into(), "Bearer".into());
                Value::Object(answer)
            }
            None => json!({"active": false}),
        })
    }
}
