//! The Alation-facing HTTP interface: the six token endpoints and one ordinary API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::endpoints;
use crate::state::{ApiError, Shared, State as Data};
use crate::{Fault, FaultKind};

pub(crate) fn router() -> Router<Arc<Shared>> {
    let mut router = Router::new();
    for endpoint in endpoints::TOKEN_ENDPOINTS {
        router = router.route(
            &format!("/integration/v1/{endpoint}/"),
            post(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
                    token_endpoint(shared, endpoint, headers, body)
                },
            ),
        );
    }
    for (path, endpoint) in [
        ("/oauth/v2/token/", endpoints::OAUTH_TOKEN),
        ("/oauth/v2/introspect/", endpoints::OAUTH_INTROSPECT),
    ] {
        router = router.route(
            path,
            post(
                move |State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes| {
                    oauth_endpoint(shared, endpoint, headers, body)
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
    // The work runs in a task of its own: a client that hangs up drops this handler, not the
    // work, which completes with all its effects, as on a real Django or gunicorn server.
    use std::sync::atomic::Ordering;
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let counter = Arc::clone(&shared);
    tokio::spawn(async move {
        let response = serve_token(shared, endpoint, headers, body).await;
        counter.in_flight.fetch_sub(1, Ordering::SeqCst);
        response
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn serve_token(
    shared: Arc<Shared>,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = Fields::parse(&headers, &body);
    let faults = {
        let mut state = shared.lock();
        state.count_call(endpoint);
        // Faults may target a user, so find out whose request this is first.
        let user_id = parsed.as_ref().ok().and_then(|fields| {
            if endpoint == endpoints::CREATE_REFRESH_TOKEN {
                fields
                    .str("username")
                    .ok()
                    .and_then(|name| state.user_id_by_name(name))
            } else {
                fields.user_id().ok()
            }
        });
        state.take_faults(endpoint, user_id)
    };
    if let Some(response) = before_work(&faults).await {
        return response;
    }
    let fields = match parsed {
        Ok(fields) => fields,
        Err(e) => return e.into_response(),
    };
    let result = {
        let mut state = shared.lock();
        if endpoint == endpoints::REGEN_REFRESH_TOKEN && !state.regen_supported {
            return not_found_page();
        }
        do_work(&mut state, endpoint, &fields)
    };
    match result {
        Ok((status, body)) => after_work(&faults, status, body).await,
        Err(e) => e.into_response(),
    }
}

fn do_work(
    state: &mut Data,
    endpoint: &str,
    fields: &Fields,
) -> Result<(StatusCode, Value), ApiError> {
    if endpoint == endpoints::CREATE_REFRESH_TOKEN {
        let (username, password, name) = (
            fields.str("username")?,
            fields.str("password")?,
            fields.str("name")?,
        );
        return state
            .create_refresh_token(username, password, name)
            .map(|v| (StatusCode::CREATED, v));
    }
    let user_id = fields.user_id()?;
    match endpoint {
        endpoints::VALIDATE_REFRESH_TOKEN => state
            .validate_refresh_token(fields.str("refresh_token")?, user_id)
            .map(|v| (StatusCode::OK, v)),
        endpoints::REGEN_REFRESH_TOKEN => state
            .regen_refresh_token(fields.str("refresh_token")?, user_id)
            .map(|v| (StatusCode::OK, v)),
        endpoints::CREATE_ACCESS_TOKEN => state
            .create_access_token(fields.str("refresh_token")?, user_id)
            .map(|v| (StatusCode::CREATED, v)),
        endpoints::VALIDATE_ACCESS_TOKEN => state
            .validate_access_token(fields.str("api_access_token")?, user_id)
            .map(|v| (StatusCode::OK, v)),
        _ => state
            .revoke_access_tokens_of_refresh(fields.str("refresh_token")?, user_id)
            .map(|v| (StatusCode::OK, v)),
    }
}

/// Plays the faults that come before the work: latency (all of it, added up), then the first
/// fault that answers instead of doing the work.
async fn before_work(faults: &[Fault]) -> Option<Response> {
    let delay: Duration = faults
        .iter()
        .filter_map(|f| match f.kind {
            FaultKind::Latency(delay) => Some(delay),
            _ => None,
        })
        .sum();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let kind = &faults.iter().find(|f| f.kind.replaces_work())?.kind;
    Some(match kind {
        FaultKind::Status(code) => error_status(*code),
        FaultKind::RateLimit { retry_after_secs } => {
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({"detail": "Request was throttled."})),
            )
                .into_response();
            if let Some(secs) = retry_after_secs {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, (*secs).into());
            }
            response
        }
        _ => {
            let status = match kind {
                FaultKind::Html { status } => *status,
                _ => 502,
            };
            proxy_page(status)
        }
    })
}

/// Plays the faults that come after the work (which has happened, effects included).
async fn after_work(faults: &[Fault], status: StatusCode, mut body: Value) -> Response {
    let mut html_type = false;
    for fault in faults {
        match &fault.kind {
            FaultKind::CommitThenStatus(code) => return error_status(*code),
            FaultKind::CommitThenClose => return cut_off(status),
            FaultKind::CommitThenHang(delay) => tokio::time::sleep(*delay).await,
            FaultKind::TokenStatus(spelling) => {
                if let Some(object) = body.as_object_mut() {
                    object.insert("token_status".into(), spelling.clone().into());
                }
            }
            FaultKind::DropField(field) => {
                if let Some(object) = body.as_object_mut() {
                    object.remove(field);
                }
            }
            FaultKind::HtmlContentType => html_type = true,
            _ => {}
        }
    }
    let mut response = (status, Json(body)).into_response();
    if html_type {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/html; charset=utf-8"),
        );
    }
    response
}

fn error_status(code: u16) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let detail = status.canonical_reason().unwrap_or("Error");
    (status, Json(json!({ "detail": detail }))).into_response()
}

fn proxy_page(status: u16) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default()
    );
    html_page(
        status,
        &title,
        &format!("<center><h1>{title}</h1></center>\n<hr><center>nginx</center>"),
    )
}

/// The status line and a few bytes of JSON, then the body breaks off: the client sees its
/// connection close before a complete answer.
fn cut_off(status: StatusCode) -> Response {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from_static(b"{\"refresh_tok")),
        Err(std::io::Error::other(
            "the connection was closed mid-answer",
        )),
    ];
    let mut response = Response::new(Body::from_stream(futures::stream::iter(chunks)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

async fn oauth_endpoint(
    shared: Arc<Shared>,
    endpoint: &'static str,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::spawn(async move {
        let form = crate::oauth::parse_form(&body);
        let faults = {
            let mut state = shared.lock();
            state.count_call(endpoint);
            state.take_faults(endpoint, None)
        };
        if let Some(response) = before_work(&faults).await {
            return response;
        }
        let result = {
            let state = shared.lock();
            let now = state.now();
            if endpoint == endpoints::OAUTH_TOKEN {
                state.oauth.token(&headers, &form, now)
            } else {
                state.oauth.introspect(&headers, &form, now)
            }
        };
        match result {
            Ok(body) => after_work(&faults, StatusCode::OK, body).await,
            Err(error) => (error.status, Json(error.body)).into_response(),
        }
    })
    .await
    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// `GET /integration/v1/user/`: an ordinary Alation API that needs a live access token in the
/// `TOKEN` header.
async fn user_endpoint(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    // An access token in `TOKEN`, or an OAuth JWT as `Authorization: Bearer` or in `TOKEN`.
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let token = bearer
        .or_else(|| headers.get("TOKEN").and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    let faults = {
        let mut state = shared.lock();
        state.count_call(endpoints::USER);
        let user_id = state.authenticate(token);
        state.take_faults(endpoints::USER, user_id)
    };
    if let Some(response) = before_work(&faults).await {
        return response;
    }
    let state = shared.lock();
    if state.authenticate(token).is_some() || state.bearer_is_active(token) {
        (StatusCode::OK, Json(state.user_list())).into_response()
    } else {
        (
            StatusCode::FORBIDDEN,
            Json(json!({"detail": "Authentication credentials were not provided or are invalid."})),
        )
            .into_response()
    }
}
