//! Helpers shared by the tests: sinks pointed at an OpenBao server.

use std::path::PathBuf;

use rotator_core::{Precondition, SinkError, TokenSink, Version, WriteOptions};
use rotator_sink_vault::{AuthConfig, Config, VaultSink};
use rotator_testkit::fixtures::unique_suffix;
use rotator_testkit::peers::openbao::OpenBao;

/// `name` with a suffix unique to this test run, for keys, mounts, roles and token values.
pub fn unique(name: &str) -> String {
    format!("{name}-{}", unique_suffix())
}

/// A token written to a file of a temporary directory, kept alive with the sink.
pub struct TokenFile {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl TokenFile {
    pub fn new(token: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, format!("{token}\n")).unwrap();
        Self { _dir: dir, path }
    }

    pub fn replace(&self, token: &str) {
        std::fs::write(&self.path, token).unwrap();
    }

    pub fn auth(&self) -> AuthConfig {
        AuthConfig::Token {
            token_env: None,
            token_file: Some(self.path.clone()),
        }
    }
}

/// A configuration for `bao` with the given mount, KV version and auth.
pub fn config(bao: &OpenBao, mount: &str, kv_version: u8, auth: AuthConfig) -> Config {
    let mut config = Config::new(bao.addr.clone(), auth);
    // The root namespace, whatever VAULT_NAMESPACE the person running the tests has set.
    config.namespace = Some(String::new());
    config.mount = mount.to_owned();
    config.kv_version = kv_version;
    config
}

/// A sink logged in with `token` (through a token file).
pub fn token_sink(
    bao: &OpenBao,
    mount: &str,
    kv_version: u8,
    token: &str,
) -> (VaultSink, TokenFile) {
    let file = TokenFile::new(token);
    let sink = VaultSink::new(config(bao, mount, kv_version, file.auth())).unwrap();
    (sink, file)
}

/// The error of `check()` on a new sink for `bao` (mount `secret`, KV v2) with `auth`.
pub async fn check_error(bao: &OpenBao, auth: AuthConfig) -> SinkError {
    VaultSink::new(config(bao, "secret", 2, auth))
        .unwrap()
        .check()
        .await
        .unwrap_err()
}

/// Writes a document holding `secret` to the empty `key` (`Precondition::Absent`), which
/// must succeed.
pub async fn write_new(sink: &VaultSink, key: &str, secret: &str) -> Version {
    sink.write(
        key,
        &document(secret),
        &WriteOptions::new(Precondition::Absent),
    )
    .await
    .unwrap()
}

/// A document with one distinctive secret value.
pub fn document(secret: &str) -> rotator_core::Document {
    let mut fields = serde_json::Map::new();
    fields.insert("api_access_token".into(), secret.into());
    fields.insert("user_id".into(), 7.into());
    rotator_core::Document::new(fields)
}

/// Text of an error with its whole source chain, for leak searches.
pub fn error_text(error: &SinkError) -> String {
    let mut text = format!("{error}\n{error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!("\n{cause}"));
        source = cause.source();
    }
    text
}

/// The shared server's KV v1 mount, `kv1`, enabled once per test binary.
pub async fn kv1_mount() -> &'static str {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| OpenBao::shared().enable_kv1("kv1"))
        .await;
    "kv1"
}

/// The shared server's KV v2 mount with `cas_required = true`, `kvcas`, set up once.
pub async fn cas_required_mount() -> &'static str {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| OpenBao::shared().enable_kv2_cas_required("kvcas"))
        .await;
    "kvcas"
}
