//! The emulator's data: users, tokens, faults and the shifted clock, plus the token rules.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::StatusCode;
use jiff::Timestamp;
use serde_json::{json, Value};

use crate::{EmulatorConfig, Fault, User};

/// Everything the server knows, behind one lock. No `Debug`: it holds live tokens.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Token requests received and not yet answered (their work may still be running).
    pub(crate) in_flight: std::sync::atomic::AtomicUsize,
    /// Client connections open; shared with the listener that counts them.
    pub(crate) open_connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Shared {
    pub(crate) fn new(config: EmulatorConfig) -> Self {
        Self {
            state: Mutex::new(State {
                users: config.users,
                refresh_tokens: Vec::new(),
                access_tokens: Vec::new(),
                access_lifetime: config.access_lifetime,
                refresh_lifetime: config.refresh_lifetime,
                regen_supported: config.regen_supported,
                token_status: config.token_status,
                clock_offset: Duration::ZERO,
                faults: Vec::new(),
                calls: BTreeMap::new(),
                oauth: crate::oauth::OAuth::new(),
            }),
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            open_connections: Arc::default(),
        }
    }

    /// The state. A panic in another request must not wedge the emulator, so poisoning is
    /// ignored.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a request failed, as Alation would answer it.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) detail: String,
    pub(crate) code: Option<&'static str>,
}

impl ApiError {
    fn new(status: StatusCode, detail: impl Into<String>, code: Option<&'static str>) -> Self {
        Self {
            status,
            detail: detail.into(),
            code,
        }
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail, None)
    }

    fn token(detail: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail, Some("401000"))
    }

    pub(crate) fn body(&self) -> Value {
        match self.code {
            Some(code) => json!({"detail": self.detail, "code": code}),
            None => json!({"detail": self.detail}),
        }
    }
}

const REFRESH_EXPIRED: &str = "Refresh token provided is expired or revoked.";
const REFRESH_INVALID: &str = "Refresh token provided is invalid.";
const ACCESS_EXPIRED: &str = "API Access Token provided is expired or revoked.";
const ACCESS_INVALID: &str = "API Access Token provided is invalid.";

struct RefreshRecord {
    token: String,
    user_id: i64,
    name: String,
    created_at: Timestamp,
    expires_at: Timestamp,
    revoked: bool,
    last_used_at: Option<Timestamp>,
}

impl RefreshRecord {
    fn is_active(&self, now: Timestamp) -> bool {
        !self.revoked && now < self.expires_at
    }

    fn to_json(&self, status: &str) -> Value {
        json!({
            "user_id": self.user_id,
            "name": self.name,
            "refresh_token": self.token,
            "created_at": format_time(self.created_at),
            "token_expires_at": format_time(self.expires_at),
            "token_status": status,
            "last_used_at": self.last_used_at.map(format_time),
        })
    }
}

struct AccessRecord {
    token: String,
    /// Index into `State::refresh_tokens`, which only ever grows.
    parent: usize,
    user_id: i64,
    created_at: Timestamp,
    expires_at: Timestamp,
    revoked: bool,
}

impl AccessRecord {
    fn to_json(&self, status: &str) -> Value {
        json!({
            "user_id": self.user_id,
            "api_access_token": self.token,
            "created_at": format_time(self.created_at),
            "token_expires_at": format_time(self.expires_at),
            "token_status": status,
        })
    }
}

/// A fault and how many more requests it may hit.
struct ArmedFault {
    fault: Fault,
    remaining: Option<u32>,
}

pub(crate) struct State {
    users: Vec<User>,
    refresh_tokens: Vec<RefreshRecord>,
    access_tokens: Vec<AccessRecord>,
    access_lifetime: Duration,
    refresh_lifetime: Duration,
    pub(crate) regen_supported: bool,
    /// How `token_status` is spelled in answers (`ACTIVE`, or the guide's `active`).
    token_status: String,
    clock_offset: Duration,
    faults: Vec<ArmedFault>,
    calls: BTreeMap<String, usize>,
    /// Client applications and their JWTs.
    pub(crate) oauth: crate::oauth::OAuth,
}

/// Alation's timestamp format: UTC, microseconds, `Z`.
pub(crate) fn format_time(t: Timestamp) -> String {
    jiff::fmt::temporal::DateTimePrinter::new()
        .precision(Some(6))
        .timestamp_to_string(&t)
}

/// `t + by`, saturating at the end of time.
fn later(t: Timestamp, by: Duration) -> Timestamp {
    t.checked_add(by).unwrap_or(Timestamp::MAX)
}

pub(crate) fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl State {
    /// The emulator's clock: system time plus the admin's offset, cut to microseconds so
    /// that what is stored is exactly what is printed.
    pub(crate) fn now(&self) -> Timestamp {
        let t = later(Timestamp::now(), self.clock_offset);
        Timestamp::from_microsecond(t.as_microsecond()).unwrap_or(t)
    }

    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.clock_offset = self.clock_offset.saturating_add(by);
    }

    pub(crate) fn set_lifetimes(&mut self, access: Option<Duration>, refresh: Option<Duration>) {
        if let Some(access) = access {
            self.access_lifetime = access;
        }
        if let Some(refresh) = refresh {
            self.refresh_lifetime = refresh;
        }
    }

    pub(crate) fn count_call(&mut self, endpoint: &str) {
        *self.calls.entry(endpoint.to_owned()).or_default() += 1;
    }

    pub(crate) fn calls(&self) -> &BTreeMap<String, usize> {
        &self.calls
    }

    pub(crate) fn add_fault(&mut self, fault: Fault) {
        let remaining = fault.times;
        self.faults.push(ArmedFault { fault, remaining });
    }

    pub(crate) fn clear_faults(&mut self) {
        self.faults.clear();
    }

    /// Every fault that applies to this request, in the order they were added, each
    /// consuming one of its uses.
    pub(crate) fn take_faults(&mut self, endpoint: &str, user_id: Option<i64>) -> Vec<Fault> {
        let is_token_endpoint = crate::endpoints::TOKEN_ENDPOINTS.contains(&endpoint)
            || crate::endpoints::OAUTH_ENDPOINTS.contains(&endpoint);
        let mut taken = Vec::new();
        for armed in &mut self.faults {
            let f = &armed.fault;
            let endpoint_matches = match &f.endpoint {
                Some(e) => e == endpoint,
                None => is_token_endpoint,
            };
            let user_matches = f.user_id.is_none() || f.user_id == user_id;
            if endpoint_matches && user_matches {
                taken.push(f.clone());
                if let Some(remaining) = &mut armed.remaining {
                    *remaining = remaining.saturating_sub(1);
                }
            }
        }
        self.faults.retain(|armed| armed.remaining != Some(0));
        taken
    }

    pub(crate) fn user_id_by_name(&self, username: &str) -> Option<i64> {
        self.users
            .iter()
            .find(|u| u.username == username)
            .map(|u| u.id)
    }

    pub(crate) fn has_user(&self, user_id: i64) -> bool {
        self.users.iter().any(|u| u.id == user_id)
    }

    fn mint_refresh(&mut self, user_id: i64, name: &str) -> usize {
        let now = self.now();
        let expires_at = later(now, self.refresh_lifetime);
        self.refresh_tokens.push(RefreshRecord {
            token: random_hex(32),
            user_id,
            name: name.to_owned(),
            created_at: now,
            expires_at,
            revoked: false,
            last_used_at: None,
        });
        self.refresh_tokens.len() - 1
    }

    /// As if the user created a refresh token in the UI. `None` if there is no such user.
    pub(crate) fn issue_refresh_token(&mut self, user_id: i64, name: &str) -> Option<String> {
        if !self.has_user(user_id) {
            return None;
        }
        let index = self.mint_refresh(user_id, name);
        Some(self.refresh_tokens[index].token.clone())
    }

    pub(crate) fn create_refresh_token(
        &mut self,
        username: &str,
        password: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let user_id = self
            .users
            .iter()
            .find(|u| u.username == username && u.password == password)
            .map(|u| u.id)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Invalid username or password.",
                    Some("401001"),
                )
            })?;
        let now = self.now();
        // Guess (least convenient): names are unique among a user's live refresh tokens.
        if self
            .refresh_tokens
            .iter()
            .any(|r| r.user_id == user_id && r.name == name && r.is_active(now))
        {
            return Err(ApiError::bad_request(format!(
                "A refresh token with name {name} already exists for this user."
            )));
        }
        let index = self.mint_refresh(user_id, name);
        Ok(self.refresh_tokens[index].to_json(&self.token_status))
    }

    /// The live refresh token `token` owned by `user_id`, or Alation's 401.
    fn live_refresh(&self, token: &str, user_id: i64) -> Result<usize, ApiError> {
        let index = self
            .refresh_tokens
            .iter()
            .position(|r| r.token == token && r.user_id == user_id)
            .ok_or_else(|| ApiError::token(REFRESH_INVALID))?;
        if self.refresh_tokens[index].is_active(self.now()) {
            Ok(index)
        } else {
            Err(ApiError::token(REFRESH_EXPIRED))
        }
    }

    pub(crate) fn validate_refresh_token(
        &self,
        token: &str,
        user_id: i64,
    ) -> Result<Value, ApiError> {
        let index = self.live_refresh(token, user_id)?;
        Ok(self.refresh_tokens[index].to_json(&self.token_status))
    }

    pub(crate) fn regen_refresh_token(
        &mut self,
        token: &str,
        user_id: i64,
    ) -> Result<Value, ApiError> {
        let old = self.live_refresh(token, user_id)?;
        self.refresh_tokens[old].revoked = true;
        // Guess (least convenient): access tokens minted from the old refresh token die with it.
        self.revoke_access_of(|parent| parent == old);
        let name = self.refresh_tokens[old].name.clone();
        let new = self.mint_refresh(user_id, &name);
        Ok(self.refresh_tokens[new].to_json(&self.token_status))
    }

    pub(crate) fn create_access_token(
        &mut self,
        token: &str,
        user_id: i64,
    ) -> Result<Value, ApiError> {
        let parent = self.live_refresh(token, user_id)?;
        let now = self.now();
        self.refresh_tokens[parent].last_used_at = Some(now);
        // Guess (least convenient): an access token never outlives its refresh token.
        let expires_at =
            later(now, self.access_lifetime).min(self.refresh_tokens[parent].expires_at);
        self.access_tokens.push(AccessRecord {
            token: random_hex(28),
            parent,
            user_id,
            created_at: now,
            expires_at,
            revoked: false,
        });
        Ok(self.access_tokens[self.access_tokens.len() - 1].to_json(&self.token_status))
    }

    /// Whether an access token works now: not revoked, not expired, and its refresh token
    /// still live.
    fn access_is_active(&self, record: &AccessRecord, now: Timestamp) -> bool {
        !record.revoked
            && now < record.expires_at
            && self.refresh_tokens[record.parent].is_active(now)
    }

    pub(crate) fn validate_access_token(
        &self,
        token: &str,
        user_id: i64,
    ) -> Result<Value, ApiError> {
        let record = self
            .access_tokens
            .iter()
            .find(|a| a.token == token && a.user_id == user_id)
            .ok_or_else(|| ApiError::token(ACCESS_INVALID))?;
        if self.access_is_active(record, self.now()) {
            Ok(record.to_json(&self.token_status))
        } else {
            Err(ApiError::token(ACCESS_EXPIRED))
        }
    }

    pub(crate) fn revoke_access_tokens_of_refresh(
        &mut self,
        token: &str,
        user_id: i64,
    ) -> Result<Value, ApiError> {
        let parent = self.live_refresh(token, user_id)?;
        self.refresh_tokens[parent].last_used_at = Some(self.now());
        self.revoke_access_of(|p| p == parent);
        Ok(json!({
            "detail": format!(
                "Revoked active access tokens for refresh token {}",
                self.refresh_tokens[parent].name
            )
        }))
    }

    fn revoke_access_of(&mut self, parent_matches: impl Fn(usize) -> bool) {
        for access in &mut self.access_tokens {
            if parent_matches(access.parent) {
                access.revoked = true;
            }
        }
    }

    /// The user an access token acts as, if it works now.
    pub(crate) fn authenticate(&self, token: &str) -> Option<i64> {
        let now = self.now();
        self.access_tokens
            .iter()
            .find(|a| a.token == token && self.access_is_active(a, now))
            .map(|a| a.user_id)
    }

    /// Whether an OAuth JWT works now.
    pub(crate) fn bearer_is_active(&self, token: &str) -> bool {
        self.oauth.verify(token, self.now()).is_some()
    }

    pub(crate) fn user_list(&self) -> Value {
        self.users
            .iter()
            .map(|u| json!({"id": u.id, "username": u.username, "email": u.username}))
            .collect()
    }

    pub(crate) fn revoke_refresh_tokens(&mut self, user_id: i64) {
        let mut revoked = Vec::new();
        for (index, refresh) in self.refresh_tokens.iter_mut().enumerate() {
            if refresh.user_id == user_id {
                refresh.revoked = true;
                revoked.push(index);
            }
        }
        self.revoke_access_of(|parent| revoked.contains(&parent));
    }

    pub(crate) fn revoke_access_tokens(&mut self, user_id: i64) {
        for access in &mut self.access_tokens {
            if access.user_id == user_id {
                access.revoked = true;
            }
        }
    }

    pub(crate) fn expire_tokens(&mut self, user_id: i64) {
        let now = self.now();
        for refresh in &mut self.refresh_tokens {
            if refresh.user_id == user_id {
                refresh.expires_at = refresh.expires_at.min(now);
            }
        }
        for access in &mut self.access_tokens {
            if access.user_id == user_id {
                access.expires_at = access.expires_at.min(now);
            }
        }
    }

    /// The refresh tokens of a user that work now.
    pub(crate) fn live_refresh_tokens(&self, user_id: i64) -> Vec<String> {
        let now = self.now();
        self.refresh_tokens
            .iter()
            .filter(|r| r.user_id == user_id && r.is_active(now))
            .map(|r| r.token.clone())
            .collect()
    }

    pub(crate) fn access_token_is_active(&self, token: &str) -> bool {
        self.authenticate(token).is_some()
    }
}
