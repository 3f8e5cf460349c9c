//! The admin HTTP interface under `/admin/`: the [`Emulator`](crate::Emulator) methods over
//! JSON, for tests that drive the emulator as a separate process. Unauthenticated: tests only.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::state::{format_time, ApiError, Shared};
use crate::{Fault, FaultKind};

pub(crate) fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/admin/faults", post(add_fault).delete(clear_faults))
        .route(
            "/admin/users/{id}/revoke-refresh-tokens",
            post(revoke_refresh_tokens),
        )
        .route(
            "/admin/users/{id}/revoke-access-tokens",
            post(revoke_access_tokens),
        )
        .route("/admin/users/{id}/expire", post(expire))
        .route(
            "/admin/users/{id}/refresh-tokens",
            post(issue_refresh_token),
        )
        .route("/admin/clock", get(clock).post(advance_clock))
        .route("/admin/lifetimes", post(set_lifetimes))
        .route("/admin/calls", get(calls))
        .route("/admin/oauth-clients", post(register_oauth_client))
        .route(
            "/admin/oauth-clients/{id}/rotate-secret",
            post(rotate_oauth_secret),
        )
        .route(
            "/admin/oauth-clients/{id}/revoke",
            post(revoke_oauth_client),
        )
        .route(
            "/admin/oauth-clients/{id}/lifetime",
            post(set_oauth_lifetime),
        )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClient {
    lifetime: HumanDuration,
}

async fn register_oauth_client(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<NewClient>,
) -> Response {
    let (client_id, client_secret) = shared.lock().oauth.register(body.lifetime.0);
    (
        StatusCode::CREATED,
        Json(json!({"client_id": client_id, "client_secret": client_secret})),
    )
        .into_response()
}

fn no_client(id: &str) -> Response {
    ApiError {
        status: StatusCode::NOT_FOUND,
        detail: format!("no OAuth client with id {id}"),
        code: None,
    }
    .into_response()
}

async fn rotate_oauth_secret(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    match shared.lock().oauth.rotate_secret(&id) {
        Some(secret) => Json(json!({"client_secret": secret})).into_response(),
        None => no_client(&id),
    }
}

async fn revoke_oauth_client(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Response {
    if shared.lock().oauth.revoke(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_client(&id)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientLifetime {
    lifetime: HumanDuration,
}

async fn set_oauth_lifetime(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    Json(body): Json<ClientLifetime>,
) -> Response {
    if shared.lock().oauth.set_lifetime(&id, body.lifetime.0) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        no_client(&id)
    }
}

/// A humantime duration such as `"25h"` or `"500ms"`.
#[derive(Debug)]
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(serde::de::Error::custom)
    }
}

/// `{"endpoint"?, "user_id"?, "times"?, "kind": {"status": 503} | {"rate_limit":
/// {"retry_after_secs": 1}} | {"html": {"status": 502}} | {"latency": "2s"} |
/// {"commit_then_status": 502} | "commit_then_close" | {"commit_then_hang": "2s"} |
/// {"token_status": "EXPIRED"} | {"drop_field": "refresh_token"} | "html_content_type"}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultSpec {
    endpoint: Option<String>,
    user_id: Option<i64>,
    times: Option<u32>,
    kind: KindSpec,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum KindSpec {
    Status(u16),
    RateLimit { retry_after_secs: Option<u64> },
    Html { status: u16 },
    Latency(HumanDuration),
    CommitThenStatus(u16),
    CommitThenClose,
    CommitThenHang(HumanDuration),
    TokenStatus(String),
    DropField(String),
    HtmlContentType,
}

async fn add_fault(State(shared): State<Arc<Shared>>, Json(spec): Json<FaultSpec>) -> StatusCode {
    let kind = match spec.kind {
        KindSpec::Status(status) => FaultKind::Status(status),
        KindSpec::RateLimit { retry_after_secs } => FaultKind::RateLimit { retry_after_secs },
        KindSpec::Html { status } => FaultKind::Html { status },
        KindSpec::Latency(HumanDuration(delay)) => FaultKind::Latency(delay),
        KindSpec::CommitThenStatus(status) => FaultKind::CommitThenStatus(status),
        KindSpec::CommitThenClose => FaultKind::CommitThenClose,
        KindSpec::CommitThenHang(HumanDuration(delay)) => FaultKind::CommitThenHang(delay),
        KindSpec::TokenStatus(spelling) => FaultKind::TokenStatus(spelling),
        KindSpec::DropField(field) => FaultKind::DropField(field),
        KindSpec::HtmlContentType => FaultKind::HtmlContentType,
    };
    shared.lock().add_fault(Fault {
        endpoint: spec.endpoint,
        user_id: spec.user_id,
        times: spec.times,
        kind,
    });
    StatusCode::NO_CONTENT
}

async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.lock().clear_faults();
    StatusCode::NO_CONTENT
}

fn no_user(id: i64) -> Response {
    ApiError {
        status: StatusCode::NOT_FOUND,
        detail: format!("no user with id {id}"),
        code: None,
    }
    .into_response()
}

async fn revoke_refresh_tokens(State(shared): State<Arc<Shared>>, Path(id): Path<i64>) -> Response {
    let mut state = shared.lock();
    if !state.has_user(id) {
        return no_user(id);
    }
    state.revoke_refresh_tokens(id);
    StatusCode::NO_CONTENT.into_response()
}

async fn revoke_access_tokens(State(shared): State<Arc<Shared>>, Path(id): Path<i64>) -> Response {
    let mut state = shared.lock();
    if !state.has_user(id) {
        return no_user(id);
    }
    state.revoke_access_tokens(id);
    StatusCode::NO_CONTENT.into_response()
}

async fn expire(State(shared): State<Arc<Shared>>, Path(id): Path<i64>) -> Response {
    let mut state = shared.lock();
    if !state.has_user(id) {
        return no_user(id);
    }
    state.expire_tokens(id);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewRefreshToken {
    name: String,
}

async fn issue_refresh_token(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<i64>,
    Json(body): Json<NewRefreshToken>,
) -> Response {
    match shared.lock().issue_refresh_token(id, &body.name) {
        Some(token) => (StatusCode::CREATED, Json(json!({"refresh_token": token}))).into_response(),
        None => no_user(id),
    }
}

async fn clock(State(shared): State<Arc<Shared>>) -> Response {
    Json(json!({"now": format_time(shared.lock().now())})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Advance {
    advance: HumanDuration,
}

async fn advance_clock(State(shared): State<Arc<Shared>>, Json(body): Json<Advance>) -> Response {
    let mut state = shared.lock();
    state.advance_clock(body.advance.0);
    Json(json!({"now": format_time(state.now())})).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Lifetimes {
    access: Option<HumanDuration>,
    refresh: Option<HumanDuration>,
}

async fn set_lifetimes(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<Lifetimes>,
) -> StatusCode {
    shared
        .lock()
        .set_lifetimes(body.access.map(|d| d.0), body.refresh.map(|d| d.0));
    StatusCode::NO_CONTENT
}

async fn calls(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.lock().calls().clone()).into_response()
}
