//! Small HTTP servers for what a real OpenBao cannot show by itself:
//!
//! - [`CountingProxy`]: a reverse proxy in front of OpenBao that records every request
//!   (method and path), so that tests count the calls each sink operation makes. With
//!   [`AwsLogin`] it also stands in for Vault's AWS auth method, which OpenBao does not ship:
//!   it checks the signed `sts:GetCallerIdentity` request exactly as Vault's server does and
//!   sends it to moto's STS, which verifies the SigV4 signature; on success it answers with a
//!   real OpenBao token.
//! - [`redirecting_server`] and [`RecordingServer`]: a server that redirects every request
//!   elsewhere, and one that records whatever reaches it.
//! - [`fixed_answer_server`]: answers every request with a body of a chosen size.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine;
use serde_json::{json, Value};

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// What the AWS auth stand-in accepts.
#[derive(Clone)]
pub struct AwsLogin {
    /// The auth mount, e.g. `aws`.
    pub mount: String,
    /// The role the login must name.
    pub role: String,
    /// The STS endpoint to send the signed request to (moto).
    pub sts_url: String,
    /// The IAM principal the role is bound to.
    pub bound_arn: String,
    /// The required `X-Vault-AWS-IAM-Server-ID` value.
    pub server_id: String,
    /// Policies of the token a successful login gets.
    pub policies: Vec<String>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    root_token: String,
    calls: Arc<Mutex<Vec<String>>>,
    aws: Option<AwsLogin>,
    http: reqwest::Client,
}

/// A recording reverse proxy in front of OpenBao.
pub struct CountingProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    calls: Arc<Mutex<Vec<String>>>,
}

impl CountingProxy {
    /// Proxies to `upstream` (an OpenBao base URL).
    pub async fn start(upstream: &str) -> Self {
        Self::start_with(upstream, "", None).await
    }

    /// Proxies to `upstream` and answers logins at the [`AwsLogin`]'s mount itself, minting
    /// tokens with `root_token`.
    pub async fn start_with(upstream: &str, root_token: &str, aws: Option<AwsLogin>) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            root_token: root_token.to_owned(),
            calls: calls.clone(),
            aws,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .no_proxy()
                .build()
                .unwrap(),
        };
        let router = Router::new().fallback(forward).with_state(state);
        let addr = serve(router).await;
        Self {
            url: format!("http://{addr}"),
            calls,
        }
    }

    /// The requests since the last call (`"GET secret/data/k"`, without `/v1/` and query),
    /// and forgets them.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

async fn forward(State(state): State<ProxyState>, request: Request) -> Response {
    let method = request.method().clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let path = request.uri().path().trim_start_matches("/v1/").to_owned();
    state.calls.lock().unwrap().push(format!("{method} {path}"));
    let headers = request.headers().clone();
    let body = axum::body::to_bytes(request.into_body(), usize::MAX)
        .await
        .unwrap();
    if let Some(aws) = &state.aws {
        if method == Method::POST && path == format!("auth/{}/login", aws.mount) {
            return aws_login(&state, aws, &body).await;
        }
    }
    let mut upstream = state
        .http
        .request(method, format!("{}{path_and_query}", state.upstream));
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let answer = upstream.body(body).send().await.unwrap();
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
    let mut response_headers = HeaderMap::new();
    for (name, value) in answer.headers() {
        if name != "transfer-encoding" && name != "connection" && name != "content-length" {
            response_headers.insert(name, value.clone());
        }
    }
    let bytes = answer.bytes().await.unwrap();
    (status, response_headers, bytes).into_response()
}

fn refuse(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(json!({ "errors": [message] })),
    )
        .into_response()
}

/// Vault's AWS auth, IAM flavour, as its server side checks a login (path_login.go):
/// decode the request, check method, body and server-ID header, send it to STS, compare the
/// caller's ARN with the role's bound principal.
async fn aws_login(state: &ProxyState, aws: &AwsLogin, body: &[u8]) -> Response {
    let login: Value = match serde_json::from_slice(body) {
        Ok(login) => login,
        Err(_) => return refuse("invalid JSON"),
    };
    let decode = |field: &str| -> Option<String> {
        let text = login.get(field)?.as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        String::from_utf8(bytes).ok()
    };
    if login.get("role").and_then(Value::as_str) != Some(aws.role.as_str()) {
        return refuse("entry for role not found");
    }
    if login.get("iam_http_request_method").and_then(Value::as_str) != Some("POST") {
        return refuse("invalid iam_http_request_method; currently only 'POST' is supported");
    }
    let (Some(url), Some(sts_body), Some(headers)) = (
        decode("iam_request_url"),
        decode("iam_request_body"),
        decode("iam_request_headers"),
    ) else {
        return refuse("missing or undecodable iam_request_* fields");
    };
    if sts_body != "Action=GetCallerIdentity&Version=2011-06-15" {
        return refuse("invalid request body");
    }
    let headers: serde_json::Map<String, Value> = match serde_json::from_str(&headers) {
        Ok(headers) => headers,
        Err(_) => return refuse("invalid iam_request_headers"),
    };
    let header = |name: &str| -> Option<String> {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_array()?.first()?.as_str().map(str::to_owned))
    };
    if header("x-vault-aws-iam-server-id").as_deref() != Some(aws.server_id.as_str()) {
        return refuse("expected X-Vault-AWS-IAM-Server-ID header value");
    }
    let signed = header("authorization")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if !signed.contains("x-vault-aws-iam-server-id") {
        return refuse("X-Vault-AWS-IAM-Server-ID header is not signed");
    }
    // Vault sends the request to its own configured STS endpoint, with the path the
    // client signed.
    let path = url::Url::parse(&url).map(|u| u.path().to_owned());
    let Ok(path) = path else {
        return refuse("invalid iam_request_url");
    };
    let mut request = state
        .http
        .post(format!("{}{path}", aws.sts_url.trim_end_matches('/')))
        .body(sts_body);
    for (name, values) in &headers {
        if name.eq_ignore_ascii_case("host") {
            continue;
        }
        for value in values.as_array().into_iter().flatten() {
            if let Some(value) = value.as_str() {
                request = request.header(name.as_str(), value);
            }
        }
    }
    let answer = request.send().await.unwrap();
    let ok = answer.status().is_success();
    let text = answer.text().await.unwrap();
    if !ok {
        return refuse("error making upstream request: STS refused the signed request");
    }
    let arn = text
        .split("<Arn>")
        .nth(1)
        .and_then(|rest| rest.split("</Arn>").next())
        .unwrap_or_default();
    if arn != aws.bound_arn {
        return refuse("IAM Principal does not belong to the role's bound principal");
    }
    let token = state
        .http
        .post(format!("{}/v1/auth/token/create", state.upstream))
        .header("X-Vault-Token", &state.root_token)
        .json(&json!({ "policies": aws.policies, "ttl": "1h" }))
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(token.status().as_u16()).unwrap();
    (status, token.bytes().await.unwrap()).into_response()
}

/// A server that records every request (method, path, whether it carried a Vault token,
/// body) and answers `200 {}`.
pub struct RecordingServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl RecordingServer {
    pub async fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let router = Router::new().fallback(move |request: Request| {
            let seen = seen.clone();
            async move {
                let line = format!(
                    "{} {} token={}",
                    request.method(),
                    request.uri().path(),
                    request.headers().contains_key("x-vault-token")
                );
                let body = axum::body::to_bytes(request.into_body(), usize::MAX)
                    .await
                    .unwrap();
                seen.lock()
                    .unwrap()
                    .push(format!("{line} body={}", String::from_utf8_lossy(&body)));
                axum::Json(json!({}))
            }
        });
        let addr = serve(router).await;
        Self { addr, requests }
    }

    /// What reached the server, one line per request.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// A server at 127.0.0.1 that answers every request with `307 Temporary Redirect` to the
/// same path under `target` (a redirect that keeps method and body).
pub async fn redirecting_server(target: String) -> String {
    let router = Router::new().fallback(move |request: Request| {
        let target = target.clone();
        async move {
            let location = format!(
                "{}{}",
                target.trim_end_matches('/'),
                request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
            );
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(
                    axum::http::header::LOCATION,
                    HeaderValue::from_str(&location).unwrap(),
                )],
            )
        }
    });
    format!("http://{}", serve(router).await)
}

/// How [`fixed_answer_server`] sends its body.
#[derive(Clone, Copy)]
pub enum Framing {
    /// With a `Content-Length` header.
    Length,
    /// Chunked, without a length, in 64 KiB pieces.
    Chunked,
}

/// A server at 127.0.0.1 that answers a mount lookup as a KV v2 mount and every other
/// request `200` with `body`.
pub async fn fixed_answer_server(body: Bytes, framing: Framing) -> String {
    let router = Router::new().fallback(move |request: Request| {
        let body = body.clone();
        async move {
            if request
                .uri()
                .path()
                .starts_with("/v1/sys/internal/ui/mounts/")
            {
                return axum::Json(json!({
                    "request_id": "", "lease_id": "", "renewable": false, "lease_duration": 0,
                    "data": { "type": "kv", "options": { "version": "2" } },
                }))
                .into_response();
            }
            match framing {
                Framing::Length => (StatusCode::OK, body).into_response(),
                Framing::Chunked => {
                    let pieces: Vec<Result<Bytes, std::io::Error>> = body
                        .chunks(64 * 1024)
                        .map(|c| Ok(Bytes::copy_from_slice(c)))
                        .collect();
                    Response::new(Body::from_stream(futures::stream::iter(pieces)))
                }
            }
        }
    });
    format!("http://{}", serve(router).await)
}
