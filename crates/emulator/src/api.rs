//! The Alation-facing HTTP interface: the six token endpoints and one ordinary API.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::state::{ApiError, Shared};
use crate::{Fault, FaultKind};

/// The token endpoints, by the name that appears in their path.
pub(crate) const TOKEN_ENDPOINTS: [&str; 6] = [
    "createRefreshToken",
    "validateRefreshToken",
    "regenRefreshToken",
    "createAPIAccessToken",
    "validateAPIAccessToken",
    "revokeAPIAccessTokens",
];

/// The name [`Emulator::calls`](crate::Emulator::calls) counts the protected API under.
pub(crate) const USER_ENDPOINT: &str = "user";

pub(crate) fn router() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    for endpoint in TOKEN_ENDPOINTS {
        router = router.route(
            &format!("/integration/v1/{endpoint}/"),
            post(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
                    token_endpoint(shared, endpoint, headers, body)
                },
            ),
        );
    }
    router
        .route("/integration/v1/user/", get(user_endpoint))
        .fallback(|| async { not_found_page() })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

/// Django's plain 404 page, which is what an unknown path gets (unknown: least convenient).
fn not_found_page() -> Response {
    html_page(
        StatusCode::NOT_FOUND,
        "Not Found",
        "<h1>Not Found</h1><p>The requested resource was not found on this server.</p>",
    )
}

fn html_page(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><title>{title}</title></head>\n<body>\n{body}\n</body>\n</html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page,
    )
        .into_response()
}

/// Request fields from a JSON or form body. Form values are all strings.
struct Fields(HashMap<String, Value>);

impl Fields {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, ApiError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("application/json") {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => Ok(Self(map.into_iter().collect())),
                Ok(_) => Err(ApiError::bad_request(
                    "Invalid data. Expected a dictionary.",
                )),
                Err(e) => Err(ApiError::bad_request(format!("JSON parse error - {e}"))),
            }
        } else if content_type.starts_with("application/x-www-form-urlencoded")
            || content_type.is_empty()
        {
            Ok(Self(
                url::form_urlencoded::parse(body)
                    .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
                    .collect(),
            ))
        } else {
            Err(ApiError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                detail: format!("Unsupported media type \"{content_type}\" in request."),
                code: None,
            })
        }
    }

    fn str(&self, field: &str) -> Result<&str, ApiError> {
        match self.0.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(Value::String(_)) => Err(ApiError::bad_request(format!(
                "{field}: This field may not be blank."
            ))),
            Some(Value::Null) | None => {
                Err(ApiError::bad_request(format!("{field} field is required")))
            }
            Some(_) => Err(ApiError::bad_request(format!(
                "{field}: Not a valid string."
            ))),
        }
    }

    fn user_id(&self) -> Result<i64, ApiError> {
        match self.0.get("user_id") {
            None | Some(Value::Null) => Err(ApiError::bad_request("user_id field is required")),
            Some(v) => v
                .as_i64()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| ApiError::bad_request("user_id: A valid integer is required.")),
        }
    }
}

async fn token_endpoint(
    shared: Arc<Shared>,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = Fields::parse(&headers, &body);
    let fault = {
        let mut state = shared.lock();
        state.count_call(endpoint);
        // Faults may target a user, so find out whose request this is first.
        let user_id = parsed.as_ref().ok().and_then(|fields| {
            if endpoint == "createRefreshToken" {
                fields
                    .str("username")
                    .ok()
                    .and_then(|name| state.user_id_by_name(name))
            } else {
                fields.user_id().ok()
            }
        });
        state.take_fault(endpoint, user_id)
    };
    if let Some(response) = apply_fault(fault).await {
        return response;
    }
    let fields = match parsed {
        Ok(fields) => fields,
        Err(e) => return e.into_response(),
    };
    let mut state = shared.lock();
    let result = match endpoint {
        "createRefreshToken" => (|| {
            let (username, password, name) = (
                fields.str("username")?,
                fields.str("password")?,
                fields.str("name")?,
            );
            state
                .create_refresh_token(username, password, name)
                .map(|v| (StatusCode::CREATED, v))
        })(),
        "regenRefreshToken" if !state.regen_supported => return not_found_page(),
        _ => (|| {
            let user_id = fields.user_id()?;
            match endpoint {
                "validateRefreshToken" => state
                    .validate_refresh_token(fields.str("refresh_token")?, user_id)
                    .map(|v| (StatusCode::OK, v)),
                "regenRefreshToken" => state
                    .regen_refresh_token(fields.str("refresh_token")?, user_id)
                    .map(|v| (StatusCode::OK, v)),
                "createAPIAccessToken" => state
                    .create_access_token(fields.str("refresh_token")?, user_id)
                    .map(|v| (StatusCode::CREATED, v)),
                "validateAPIAccessToken" => state
                    .validate_access_token(fields.str("api_access_token")?, user_id)
                    .map(|v| (StatusCode::OK, v)),
                _ => state
                    .revoke_access_tokens_of_refresh(fields.str("refresh_token")?, user_id)
                    .map(|v| (StatusCode::OK, v)),
            }
        })(),
    };
    match result {
        Ok((status, body)) => (status, Json(body)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Plays a fault: `Some` is the response to send instead of the real one; `None` means answer
/// normally (after any injected latency).
async fn apply_fault(fault: Option<Fault>) -> Option<Response> {
    let fault = fault?;
    match fault.kind {
        FaultKind::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let detail = status.canonical_reason().unwrap_or("Error");
            Some((status, Json(json!({ "detail": detail }))).into_response())
        }
        FaultKind::RateLimit { retry_after_secs } => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"detail": "Request was throttled."})),
            )
                .into_response();
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, secs.into());
            }
            Some(response)
        }
        FaultKind::Html { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let title = format!(
                "{} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or_default()
            );
            Some(html_page(
                status,
                &title,
                &format!("<center><h1>{title}</h1></center>\n<hr><center>nginx</center>"),
            ))
        }
        FaultKind::Latency(delay) => {
            tokio::time::sleep(delay).await;
            None
        }
    }
}

/// `GET /integration/v1/user/`: an ordinary Alation API that needs a live access token in the
/// `TOKEN` header.
async fn user_endpoint(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("TOKEN")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let fault = {
        let mut state = shared.lock();
        state.count_call(USER_ENDPOINT);
        let user_id = state.authenticate(token);
        state.take_fault(USER_ENDPOINT, user_id)
    };
    if let Some(response) = apply_fault(fault).await {
        return response;
    }
    let state = shared.lock();
    if state.authenticate(token).is_some() {
        (StatusCode::OK, Json(state.user_list())).into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            Json(json!({"detail": "Authentication credentials were not provided or are invalid."})),
        )
            .into_response()
    }
}
