//! Every rule of the protocol, with small programs written for each test.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rotator_core::{Document, Precondition, SinkError, TokenSink, WriteOptions};
use rotator_sink_exec::{Config, ExecSink};

/// Writes an executable shell script and a store running it.
fn store_with(dir: &Path, script: &str, timeout: Duration, env: &[&str]) -> ExecSink {
    let path: PathBuf = dir.join("program.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    ExecSink::new(Config {
        command: vec![path.display().to_string(), "fixed-arg".into()],
        timeout,
        env: env.iter().map(|s| (*s).to_owned()).collect(),
        compare_and_set: false,
    })
    .unwrap()
}

fn document(token: &str) -> Document {
    let mut fields = serde_json::Map::new();
    fields.insert("api_access_token".into(), token.into());
    Document::new(fields)
}

#[tokio::test]
async fn exit_codes_map_onto_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    for (code, check) in [
        (3, "conflict"),
        (4, "unmanaged"),
        (5, "unauthorized"),
        (6, "unavailable"),
        (9, "other"),
    ] {
        let store = store_with(
            dir.path(),
            &format!("cat >/dev/null; echo 'the reason' >&2; exit {code}"),
            Duration::from_secs(5),
            &[],
        );
        let error = store
            .write(
                "k",
                &document("t"),
                &WriteOptions::new(Precondition::Absent),
            )
            .await
            .unwrap_err();
        let matches = match check {
            "conflict" => error.is_conflict(),
            "unmanaged" => matches!(error, SinkError::Unmanaged { .. }),
            "unauthorized" => matches!(error, SinkError::Unauthorized { .. }),
            "unavailable" => error.is_retryable(),
            _ => {
                matches!(error, SinkError::Other { .. })
                    && error.to_string().contains("exit code 9")
            }
        };
        assert!(matches, "exit {code}: {error:?}");
        if code != 4 {
            assert!(
                error.to_string().contains("program.sh said: the reason"),
                "{error}"
            );
        }
    }
}

#[tokio::test]
async fn a_first_stderr_line_is_cut_to_200_characters() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(500);
    let store = store_with(
        dir.path(),
        &format!("echo {long} >&2; echo second >&2; exit 9"),
        Duration::from_secs(5),
        &[],
    );
    let error = store.check().await.unwrap_err().to_string();
    assert!(error.contains(&"x".repeat(200)), "{error}");
    assert!(
        !error.contains(&"x".repeat(201)) && !error.contains("second"),
        "{error}"
    );
}

#[tokio::test]
async fn a_program_past_its_timeout_is_killed_with_its_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("child.pid");
    let store = store_with(
        dir.path(),
        &format!("sleep 60 & echo $! > {}; wait", pid_file.display()),
        Duration::from_millis(500),
        &[],
    );
    let started = Instant::now();
    let error = store.check().await.unwrap_err().to_string();
    assert!(error.contains("killed with its process group"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let child = std::fs::read_to_string(&pid_file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{}", child.trim())).exists() {
        // A killed process may linger as a zombie until reaped; its state says so.
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.trim())).unwrap_or_default();
        if status.contains("State:\tZ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the program's child survived the timeout"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn more_than_a_mebibyte_of_output_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(
        dir.path(),
        "head -c 2000000 /dev/zero | tr '\\0' 'a'",
        Duration::from_secs(10),
        &[],
    );
    let error = store.read("k").await.unwrap_err().to_string();
    assert!(error.contains("more than 1024 KiB"), "{error}");
}

#[tokio::test]
async fn documents_never_reach_arguments_or_environment() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("dump");
    std::env::set_var("ROTATOR_EXEC_TEST_PASSED", "passed-value");
    std::env::set_var("ROTATOR_EXEC_TEST_HIDDEN", "hidden-value");
    let store = store_with(
        dir.path(),
        &format!(
            "echo \"$@\" > {d}; env >> {d}; cat > {d}.stdin; echo '{{\"version\": \"7\"}}'",
            d = dump.display()
        ),
        Duration::from_secs(5),
        &["ROTATOR_EXEC_TEST_PASSED"],
    );
    let version = store
        .write(
            "alation/k",
            &document("secret-token-value"),
            &WriteOptions::new(Precondition::Any),
        )
        .await
        .unwrap();
    assert_eq!(version.as_str(), "7");
    let seen = std::fs::read_to_string(&dump).unwrap();
    assert!(seen.starts_with("fixed-arg write alation/k\n"), "{seen}");
    assert!(!seen.contains("secret-token-value"), "{seen}");
    assert!(
        seen.contains("ROTATOR_EXEC_TEST_PASSED=passed-value"),
        "{seen}"
    );
    assert!(!seen.contains("hidden-value"), "{seen}");
    let vars: Vec<&str> = seen
        .lines()
        .skip(1)
        .filter_map(|l| l.split('=').next())
        .collect();
    for var in vars {
        assert!(
            ["PATH", "ROTATOR_EXEC_TEST_PASSED", "PWD", "SHLVL", "_"].contains(&var),
            "unexpected variable {var} in {seen}"
        );
    }
    let stdin = std::fs::read_to_string(format!("{}.stdin", dump.display())).unwrap();
    let request: serde_json::Value = serde_json::from_str(&stdin).unwrap();
    assert_eq!(
        request["document"]["api_access_token"],
        "secret-token-value"
    );
    assert_eq!(request["precondition"], "any");
    assert_eq!(request["takeover"], false);
    assert_eq!(request["labels"]["managed-by"], "alation-rotator");
}

#[tokio::test]
async fn read_answers_null_or_a_document_and_bad_answers_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), "echo null", Duration::from_secs(5), &[]);
    assert!(store.read("k").await.unwrap().is_none());
    let store = store_with(
        dir.path(),
        r#"echo '{"document": {"a": 1}, "version": "3", "managed": false}'"#,
        Duration::from_secs(5),
        &[],
    );
    let stored = store.read("k").await.unwrap().unwrap();
    assert_eq!((stored.version.as_str(), stored.managed), ("3", false));
    let store = store_with(dir.path(), "echo not json", Duration::from_secs(5), &[]);
    assert!(store
        .read("k")
        .await
        .unwrap_err()
        .to_string()
        .contains("not JSON"));
    assert!(rotator_sink_exec::validate_key("-rf").is_err());
}
