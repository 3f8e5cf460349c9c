//! Network edges: no redirect is followed with a token or login credentials, answers are
//! capped at 1 MiB, plain http:// only for this machine unless the store block allows it.

use axum::body::Bytes;
use rotator_core::{SinkError, TokenSink};
use rotator_sink_vault::{AuthConfig, Config, VaultSink, MAX_RESPONSE_BYTES};
use serde_json::json;

use crate::proxy::{fixed_answer_server, redirecting_server, Framing, RecordingServer};
use crate::support::{error_text, unique, TokenFile};

fn token_config(address: &str, token: &TokenFile) -> Config {
    let mut config = Config::new(address, token.auth());
    config.namespace = Some(String::new());
    config
}

#[tokio::test]
async fn a_redirect_is_never_followed_with_the_token() {
    let elsewhere = RecordingServer::start().await;
    // Another host name for the same machine: the redirect leaves 127.0.0.1.
    let vault = redirecting_server(format!("http://localhost:{}", elsewhere.addr.port())).await;
    let token_value = unique("redirected-token");
    let token = TokenFile::new(&token_value);
    let sink = VaultSink::new(token_config(&vault, &token)).unwrap();

    for err in [
        sink.read("alation/x").await.unwrap_err(),
        sink.check().await.unwrap_err(),
    ] {
        let text = error_text(&err);
        assert!(
            text.contains("with a redirect (HTTP 307)") && text.contains("never follows"),
            "{text}"
        );
        assert!(
            text.contains(&format!("to http://localhost:{}", elsewhere.addr.port())),
            "{text}"
        );
        assert!(!text.contains(&token_value), "{text}");
    }
    assert!(
        elsewhere.requests().is_empty(),
        "a request reached the redirect's target: {:?}",
        elsewhere.requests()
    );
}

#[tokio::test]
async fn a_redirected_login_sends_its_credentials_nowhere_else() {
    let elsewhere = RecordingServer::start().await;
    let vault = redirecting_server(format!("http://localhost:{}", elsewhere.addr.port())).await;
    let secret_id = unique("redirected-secret-id");
    let (role, secret) = (TokenFile::new("some-role-id"), TokenFile::new(&secret_id));
    let auth = AuthConfig::Approle {
        role_id_env: None,
        role_id_file: Some(role.path.clone()),
        secret_id_env: None,
        secret_id_file: Some(secret.path.clone()),
        mount: "approle".into(),
    };
    let mut config = Config::new(&vault, auth);
    config.namespace = Some(String::new());
    let err = VaultSink::new(config)
        .unwrap()
        .read("alation/x")
        .await
        .unwrap_err();
    let text = error_text(&err);
    assert!(
        text.contains("answered auth/approle/login with a redirect"),
        "{text}"
    );
    assert!(!text.contains(&secret_id), "{text}");
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}

#[tokio::test]
async fn an_answer_over_one_mib_is_refused_with_or_without_a_length() {
    let huge = Bytes::from(vec![b' '; 2 * MAX_RESPONSE_BYTES]);
    let token = TokenFile::new("capped-token");
    for framing in [Framing::Length, Framing::Chunked] {
        let vault = fixed_answer_server(huge.clone(), framing).await;
        let sink = VaultSink::new(token_config(&vault, &token)).unwrap();
        for err in [
            sink.read("alation/x").await.unwrap_err(),
            sink.check().await.unwrap_err(),
        ] {
            assert!(matches!(err, SinkError::Other { .. }), "{err}");
            assert!(err.to_string().contains("larger than 1 MiB"), "{err}");
            assert!(err.to_string().contains("not at a proxy"), "{err}");
        }
    }
}

#[tokio::test]
async fn a_large_answer_under_the_cap_is_read() {
    // A KV v2 read of 900 KiB: big, but a real answer.
    let padding = "p".repeat(900 * 1024);
    let answer = json!({
        "request_id": "", "lease_id": "", "renewable": false, "lease_duration": 0,
        "data": {
            "data": { "api_access_token": "under-the-cap", "padding": padding },
            "metadata": {
                "created_time": "2030-01-01T00:00:00Z", "deletion_time": "",
                "destroyed": false, "version": 4,
                "custom_metadata": { "managed-by": "alation-rotator" },
            },
        },
    });
    let body = Bytes::from(serde_json::to_vec(&answer).unwrap());
    assert!(body.len() > 900 * 1024 && body.len() < MAX_RESPONSE_BYTES);
    let token = TokenFile::new("capped-token");
    for framing in [Framing::Length, Framing::Chunked] {
        let vault = fixed_answer_server(body.clone(), framing).await;
        let sink = VaultSink::new(token_config(&vault, &token)).unwrap();
        let stored = sink.read("alation/big").await.unwrap().unwrap();
        assert_eq!(stored.version.as_str(), "4");
        assert!(stored.managed);
        assert_eq!(
            stored.document.fields()["api_access_token"],
            "under-the-cap"
        );
    }
}

#[test]
fn plain_http_is_for_this_machine_unless_the_store_allows_it() {
    let auth = AuthConfig::Token {
        token_env: None,
        token_file: None,
    };
    for address in [
        "http://127.0.0.1:8200",
        "http://127.9.9.9:8200",
        "http://localhost:8200",
        "http://[::1]:8200",
        "https://vault.example.com",
    ] {
        Config::new(address, auth.clone())
            .validate()
            .unwrap_or_else(|e| panic!("{address}: {e}"));
    }
    for address in [
        "http://vault.example.com:8200",
        "http://10.0.0.5:8200",
        "http://localhost.example.com",
    ] {
        let mut config = Config::new(address, auth.clone());
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, "address");
        assert!(
            err.message.contains("unencrypted")
                && err.message.contains("`allow_insecure_http = true`"),
            "{err}"
        );
        // The CLI shows it as "store stores.NAME: `address`: ...".
        assert!(err.to_string().starts_with("`address`: "), "{err}");
        assert!(VaultSink::new(config.clone()).is_err());
        config.allow_insecure_http = true;
        config.validate().unwrap();
    }
    // From the store block's TOML, too.
    let config: Config =
        toml::from_str("address = \"http://vault.internal:8200\"\nallow_insecure_http = true\n")
            .unwrap();
    config.validate().unwrap();
}

#[test]
fn a_cert_login_needs_https() {
    let auth = AuthConfig::Cert {
        cert_file: "/etc/rotator/client.pem".into(),
        key_file: "/etc/rotator/client-key.pem".into(),
        name: None,
        mount: "cert".into(),
    };
    let err = Config::new("http://127.0.0.1:8200", auth.clone())
        .validate()
        .unwrap_err();
    assert_eq!(err.key, "address");
    assert!(err.message.contains("use an https:// address"), "{err}");
    Config::new("https://vault:8200", auth).validate().unwrap();
}

std::thread_local! {
    /// The log of the test running on this thread, while it captures.
    static CAPTURED: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Where the capturing subscriber writes: the current thread's capture.
struct ThreadLog;

impl std::io::Write for ThreadLog {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURED.with(|log| {
            if let Some(log) = log.borrow_mut().as_mut() {
                log.extend_from_slice(bytes);
            }
        });
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` on this thread with every event, at `trace`, written into a buffer, and returns
/// the buffer. The subscriber is global and asks about each event anew, and records only
/// events of the capturing thread: a `#[tokio::test]` runtime, which runs on it.
async fn capture_log<F: std::future::Future<Output = ()>>(f: F) -> String {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| ThreadLog)
            // A dynamic filter: asked at every event, never cached per callsite (a plain
            // `filter_fn` would cache the answer of whichever thread hit a callsite first).
            .with_filter(tracing_subscriber::filter::dynamic_filter_fn(|_, _| {
                CAPTURED.with(|log| log.borrow().is_some())
            }));
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .expect("no other global subscriber in this test binary");
    });
    // A callsite first hit by another test before the subscriber was installed cached "no
    // subscriber"; ask every callsite again.
    tracing::callsite::rebuild_interest_cache();
    CAPTURED.with(|log| *log.borrow_mut() = Some(Vec::new()));
    f.await;
    let bytes = CAPTURED
        .with(|log| log.borrow_mut().take())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[tokio::test]
async fn nothing_secret_is_logged_at_trace_and_an_absent_key_is_no_error() {
    use rotator_core::{Precondition, WriteOptions};
    use rotator_testkit::peers::openbao::OpenBao;

    let bao = OpenBao::shared();
    let policy = unique("logged");
    bao.put_policy(
        &policy,
        r#"path "secret/*" { capabilities = ["create", "read", "update"] }"#,
    )
    .await;
    let mount = unique("approle");
    let (role_id, secret_id) = bao.approle(&mount, "rotator", &[&policy], "1h").await;
    let (role, secret) = (TokenFile::new(&role_id), TokenFile::new(&secret_id));
    let auth = AuthConfig::Approle {
        role_id_env: None,
        role_id_file: Some(role.path.clone()),
        secret_id_env: None,
        secret_id_file: Some(secret.path.clone()),
        mount: mount.clone(),
    };
    let sink = VaultSink::new(crate::support::config(bao, "secret", 2, auth)).unwrap();
    let token_value = unique("logged-token");
    bao.create_token(&[&policy], Some(&token_value)).await;
    let token_file = TokenFile::new(&token_value);
    let token_sink =
        VaultSink::new(crate::support::config(bao, "secret", 2, token_file.auth())).unwrap();

    let document_secret = unique("logged-document-secret");
    let text = capture_log(async {
        let key = format!("alation/{}", unique("logged"));
        assert!(sink.read(&key).await.unwrap().is_none());
        let version = crate::support::write_new(&sink, &key, &document_secret).await;
        sink.write(
            &key,
            &crate::support::document(&document_secret),
            &WriteOptions::new(Precondition::Version(version)),
        )
        .await
        .unwrap();
        assert!(sink.read(&key).await.unwrap().is_some());
        assert!(token_sink.read(&key).await.unwrap().is_some());
    })
    .await;
    assert!(
        text.contains("vault request"),
        "nothing was captured: {text}"
    );
    for secret in [&secret_id, &role_id, &document_secret, &token_value] {
        assert!(
            !text.contains(secret.as_str()),
            "{secret} in the log:\n{text}"
        );
    }
    // Reading an absent key is normal: no library logs it as an error.
    assert!(!text.contains("ERROR"), "{text}");
}
