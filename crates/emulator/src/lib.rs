//! A faithful emulator of Alation's token API, for tests and demos.
//!
//! It serves the six token endpoints under `/integration/v1/` exactly as the project's
//! reference (`alation-token-api.md`) describes them: the same paths, status codes, JSON
//! shapes, error envelopes and timestamp format, with bodies accepted as JSON or form
//! fields. One ordinary API, `GET /integration/v1/user/`, proves that a minted access token
//! works: it answers only to a live token in the `TOKEN` header.
//!
//! Where Alation's real behaviour is unknown the emulator picks the least convenient plausible
//! answer (see the crate's `README.md`), so that code passing against it is robust against the
//! real server.
//!
//! Tests drive it in-process through [`Emulator`]: move its clock instead of sleeping, revoke
//! or expire tokens as an admin would, inject faults (status codes, rate limits, HTML pages,
//! latency) and count requests. The same controls exist over HTTP under `/admin/` (see
//! [`Emulator::base_url`]), and the `alation-emulator` binary serves it as a process.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use alation_emulator::{Emulator, EmulatorConfig, User};
//!
//! let emulator = Emulator::start(EmulatorConfig {
//!     users: vec![User::new(102, "etl@example.com", "hunter2")],
//!     ..EmulatorConfig::default()
//! })
//! .await?;
//! let refresh_token = emulator.issue_refresh_token(102, "tableau-prod");
//! println!("POST {}integration/v1/createAPIAccessToken/", emulator.base_url());
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod admin;
mod api;
mod conn;
pub mod endpoints;
mod oauth;
mod state;

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use url::Url;

use state::Shared;

/// How an [`Emulator`] starts.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// The users who exist. [`Default`] gives none.
    pub users: Vec<User>,
    /// Lifetime of new API access tokens (Alation's default: 24 hours).
    pub access_lifetime: Duration,
    /// Lifetime of new refresh tokens (Alation's default: 60 days).
    pub refresh_lifetime: Duration,
    /// Whether `regenRefreshToken` exists. When false it answers 404 with an HTML page, as a
    /// server without the route would.
    pub regen_supported: bool,
    /// How `token_status` is spelled in answers: `ACTIVE` as real servers send it (the
    /// default), or `active` as the vendor's guide shows.
    pub token_status: String,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            users: Vec::new(),
            access_lifetime: Duration::from_secs(24 * 60 * 60),
            refresh_lifetime: Duration::from_secs(60 * 24 * 60 * 60),
            regen_supported: true,
            token_status: "ACTIVE".to_owned(),
        }
    }
}

/// An Alation user who can log in with a password.
#[derive(Clone)]
pub struct User {
    /// The user's id (`user_id` in the API).
    pub id: i64,
    /// The login name.
    pub username: String,
    /// The password `createRefreshToken` checks.
    pub password: String,
}

impl User {
    /// A user with this id, username and password.
    pub fn new(id: i64, username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            id,
            username: username.into(),
            password: password.into(),
        }
    }
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .finish()
    }
}

/// A misbehaviour to inject into the emulator's answers.
///
/// Every fault that matches a request applies: latencies add up, then the first fault that
/// replaces the answer (before or after the work) decides it.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The endpoint it hits, by name (e.g. `"createAPIAccessToken"`, or `"user"` for
    /// `GET /integration/v1/user/`). `None` hits all six token endpoints.
    pub endpoint: Option<String>,
    /// Only requests for this user (by `user_id`, or by `username` on `createRefreshToken`).
    pub user_id: Option<i64>,
    /// How many requests it hits before it disappears; `None` keeps it until
    /// [`Emulator::clear_faults`].
    pub times: Option<u32>,
    /// What happens.
    pub kind: FaultKind,
}

impl Fault {
    /// A fault hitting every token endpoint, for every user, until cleared.
    pub fn new(kind: FaultKind) -> Self {
        Self {
            endpoint: None,
            user_id: None,
            times: None,
            kind,
        }
    }

    /// Restricts the fault to one endpoint.
    pub fn on(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Restricts the fault to requests for one user.
    pub fn for_user(mut self, user_id: i64) -> Self {
        self.user_id = Some(user_id);
        self
    }

    /// Makes the fault hit only the next `times` matching requests.
    pub fn times(mut self, times: u32) -> Self {
        self.times = Some(times);
        self
    }
}

/// What an injected [`Fault`] does.
#[derive(Clone, Debug)]
pub enum FaultKind {
    /// Answer with this status and a JSON body `{"detail": "<reason phrase>"}`.
    Status(u16),
    /// Answer 429, with a `Retry-After` header when `retry_after_secs` is set.
    RateLimit {
        /// The `Retry-After` value in seconds.
        retry_after_secs: Option<u64>,
    },
    /// Answer with an HTML page (as a proxy or load balancer would) and this status.
    Html {
        /// The status code.
        status: u16,
    },
    /// Wait this long, then do the work and answer normally. The work happens even if the
    /// client has gone away meanwhile, as on a real Django or gunicorn server.
    Latency(Duration),
    /// Do the work (a regeneration really replaces the token), then answer with this status
    /// and a JSON error body, as a proxy that failed on the way back would.
    CommitThenStatus(u16),
    /// Do the work, then send the status line and cut the answer off mid-body: the
    /// connection closes before the client has read an answer.
    CommitThenClose,
    /// Do the work, then wait this long before answering, so a client with a shorter timeout
    /// gives up after the work was done.
    CommitThenHang(Duration),
    /// Do the work and answer 2xx, with `token_status` spelled like this (e.g. `EXPIRED` on a
    /// 200: a token the client must treat as dead).
    TokenStatus(String),
    /// Do the work and answer 2xx without this field of the usual body.
    DropField(String),
    /// Do the work and answer the usual JSON, labelled `Content-Type: text/html`.
    HtmlContentType,
}

impl FaultKind {
    /// Whether the fault answers instead of doing the work.
    pub(crate) fn replaces_work(&self) -> bool {
        matches!(
            self,
            FaultKind::Status(_) | FaultKind::RateLimit { .. } | FaultKind::Html { .. }
        )
    }
}

/// A running emulator. It stops when dropped or by [`shutdown`](Emulator::shutdown).
///
/// Its `Debug` shows only the address: the state holds live tokens.
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Starts an emulator on `127.0.0.1` with a port the OS picks.
    pub async fn start(config: EmulatorConfig) -> std::io::Result<Emulator> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts an emulator listening on `addr` (port 0: the OS picks one).
    pub async fn start_on(addr: SocketAddr, config: EmulatorConfig) -> std::io::Result<Emulator> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let listener = conn::CountingListener {
            inner: listener,
            open: Arc::clone(&shared.open_connections),
        };
        let app = api::router()
            .merge(admin::router())
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // Serving only ends by the stop signal; an accept error has nobody to go to.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Emulator {
            shared,
            addr,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL to give clients, `http://127.0.0.1:PORT/`. The admin interface is under
    /// `admin/` below it: unauthenticated, for tests only.
    pub fn base_url(&self) -> Url {
        Url::parse(&format!("http://{}/", self.addr)).expect("a socket address makes a valid URL")
    }

    /// Creates a refresh token as if the user clicked "Create Refresh Token" in the UI (how
    /// SSO users, who have no password, get one) and returns its value.
    ///
    /// # Panics
    /// If no user has this id: that is a mistake in the test.
    pub fn issue_refresh_token(&self, user_id: i64, name: &str) -> String {
        self.shared
            .lock()
            .issue_refresh_token(user_id, name)
            .unwrap_or_else(|| panic!("the emulator has no user with id {user_id}"))
    }

    /// Admin: revokes all the user's refresh tokens and the access tokens minted from them.
    pub fn revoke_refresh_tokens(&self, user_id: i64) {
        self.shared.lock().revoke_refresh_tokens(user_id);
    }

    /// Admin: revokes all the user's access tokens.
    pub fn revoke_access_tokens(&self, user_id: i64) {
        self.shared.lock().revoke_access_tokens(user_id);
    }

    /// Admin: makes all the user's tokens expire now.
    pub fn expire_tokens(&self, user_id: i64) {
        self.shared.lock().expire_tokens(user_id);
    }

    /// Sets the lifetimes of tokens created from now on (existing tokens keep theirs, as in
    /// Alation).
    pub fn set_lifetimes(&self, access: Duration, refresh: Duration) {
        self.shared
            .lock()
            .set_lifetimes(Some(access), Some(refresh));
    }

    /// Moves the emulator's clock forward.
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().advance_clock(by);
    }

    /// The emulator's current time (system time plus every advance).
    pub fn now(&self) -> jiff::Timestamp {
        self.shared.lock().now()
    }

    /// Injects a fault; faults are checked in the order they were added.
    pub fn inject(&self, fault: Fault) {
        self.shared.lock().add_fault(fault);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.shared.lock().clear_faults();
    }

    /// How many requests an endpoint has seen (faulted ones included), by name, e.g.
    /// `"createAPIAccessToken"` or `"user"`.
    pub fn calls(&self, endpoint: &str) -> usize {
        self.shared
            .lock()
            .calls()
            .get(endpoint)
            .copied()
            .unwrap_or(0)
    }

    /// Admin: registers an OAuth 2.0 client application whose tokens live `lifetime` (any
    /// duration; Alation offers 5 minutes to 72 hours). Returns its client id and secret.
    pub fn register_oauth_client(&self, lifetime: Duration) -> (String, String) {
        self.shared.lock().oauth.register(lifetime)
    }

    /// Admin: gives a client application a new secret (tokens already issued stay valid).
    /// `None` for an unknown client.
    pub fn rotate_oauth_secret(&self, client_id: &str) -> Option<String> {
        self.shared.lock().oauth.rotate_secret(client_id)
    }

    /// Admin: revokes a client application: its secret stops working and so do its tokens.
    /// `false` for an unknown client.
    pub fn revoke_oauth_client(&self, client_id: &str) -> bool {
        self.shared.lock().oauth.revoke(client_id)
    }

    /// Admin: changes the lifetime of tokens issued to a client from now on.
    pub fn set_oauth_lifetime(&self, client_id: &str, lifetime: Duration) -> bool {
        self.shared.lock().oauth.set_lifetime(client_id, lifetime)
    }

    /// Whether an OAuth access token (JWT) would be accepted by an Alation API now.
    pub fn bearer_token_is_active(&self, token: &str) -> bool {
        self.shared.lock().bearer_is_active(token)
    }

    /// How many token requests were received and are not answered yet (their work may still be
    /// running even if the client left). Tests wait for zero before judging the aftermath of
    /// a crash.
    pub fn requests_in_flight(&self) -> usize {
        self.shared
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many client connections are open (accepted and not yet closed by the server).
    pub fn open_connections(&self) -> usize {
        self.shared
            .open_connections
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Waits until no connection is open and no request is in flight: after a client was
    /// killed, every request it had sent has then been read and finished. Panics after
    /// `timeout`, naming what is still open (a live client's keep-alive connection keeps this
    /// waiting).
    pub async fn quiescent(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.open_connections() > 0 || self.requests_in_flight() > 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "after {timeout:?} the emulator still has {} connection(s) open and {} \
                 request(s) in flight",
                self.open_connections(),
                self.requests_in_flight()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The user's refresh tokens that Alation accepts now (for tests to find a token that a
    /// lost answer carried).
    pub fn live_refresh_tokens(&self, user_id: i64) -> Vec<String> {
        self.shared.lock().live_refresh_tokens(user_id)
    }

    /// Whether this access token would be accepted by an Alation API now.
    pub fn access_token_is_active(&self, token: &str) -> bool {
        self.shared.lock().access_token_is_active(token)
    }

    /// Stops accepting connections and waits for requests in flight to finish.
    pub async fn shutdown(mut self) {
        self.stop.take().map(|stop| stop.send(()));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // The server task finishes its graceful shutdown on its own.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
