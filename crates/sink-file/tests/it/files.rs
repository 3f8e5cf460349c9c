//! What the store does on disk: layout, permissions, atomic replacement, refusals.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rotator_core::{Precondition, SinkError, TokenSink, Version, WriteOptions};
use serde_json::{json, Value};
use tempfile::TempDir;

use super::{document, mode, sink};

fn any() -> WriteOptions {
    WriteOptions::new(Precondition::Any)
}

/// Writes `bytes` to `path` with `mode`, the way a person would.
fn plant(path: &Path, bytes: &[u8], mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
    // The umask may have narrowed the mode.
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn entries(directory: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn files_are_0600_and_created_directories_0700() {
    let temp = TempDir::new().unwrap();
    let store = temp.path().join("store");
    let sink = sink(&store);
    sink.write("alation/prod/tableau", &document("t-1"), &any())
        .await
        .unwrap();

    for directory in [&store, &store.join("alation"), &store.join("alation/prod")] {
        assert_eq!(mode(directory), 0o700, "{}", directory.display());
    }
    let file = store.join("alation/prod/tableau.json");
    assert_eq!(mode(&file), 0o600);
    assert_eq!(mode(&store.join("alation/prod/.tableau.json.lock")), 0o600);
}

#[tokio::test]
async fn the_file_holds_the_document_with_marker_and_counter() {
    let temp = TempDir::new().unwrap();
    let sink = sink(temp.path());
    let first = sink.write("k", &document("t-1"), &any()).await.unwrap();
    let second = sink
        .write(
            "k",
            &document("t-2"),
            &WriteOptions::new(Precondition::Version(first.clone())),
        )
        .await
        .unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("1", "2"));

    let on_disk: Value =
        serde_json::from_slice(&fs::read(temp.path().join("k.json")).unwrap()).unwrap();
    assert_eq!(
        on_disk,
        json!({
            "api_access_token": "t-2",
            "user_id": 102,
            "integration": "tableau-prod",
            "managed-by": "alation-rotator",
            "rotator-version": 2,
        })
    );
    let stored = sink.read("k").await.unwrap().unwrap();
    assert_eq!(stored.document, document("t-2"));
    assert_eq!(stored.version, second);
    assert!(stored.managed);
}

#[tokio::test]
async fn a_file_others_can_read_is_refused_with_the_fix() {
    let temp = TempDir::new().unwrap();
    let sink = sink(temp.path());
    sink.write("k", &document("secret-token-0644"), &any())
        .await
        .unwrap();
    let path = temp.path().join("k.json");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

    let error = sink.read("k").await.unwrap_err();
    assert!(matches!(error, SinkError::Insecure { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&format!("{} has mode 0644", path.display())),
        "{message}"
    );
    assert!(
        message.contains(&format!("chmod 600 {}", path.display())),
        "{message}"
    );
    assert!(!message.contains("secret-token-0644"), "{message}");

    // A write must not use what it read either; the file stays as it was.
    let error = sink.write("k", &document("t-2"), &any()).await.unwrap_err();
    assert!(matches!(error, SinkError::Insecure { .. }), "{error:?}");
    assert_eq!(mode(&path), 0o644);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(sink.read("k").await.unwrap().is_some());
}

#[tokio::test]
async fn writes_leave_no_temporary_files() {
    let temp = TempDir::new().unwrap();
    let sink = sink(temp.path());
    let mut version = sink.write("a/k", &document("t-0"), &any()).await.unwrap();
    for i in 1..5 {
        version = sink
            .write(
                "a/k",
                &document(&format!("t-{i}")),
                &WriteOptions::new(Precondition::Version(version)),
            )
            .await
            .unwrap();
    }
    // Refused writes leave nothing either.
    sink.write(
        "a/k",
        &document("t-x"),
        &WriteOptions::new(Precondition::Absent),
    )
    .await
    .unwrap_err();
    assert_eq!(entries(&temp.path().join("a")), [".k.json.lock", "k.json"]);
    assert_eq!(entries(temp.path()), ["a"]);
}

#[tokio::test]
async fn keys_that_could_escape_the_directory_are_rejected() {
    let temp = TempDir::new().unwrap();
    let store = temp.path().join("store");
    let sink = sink(&store);
    for key in [
        "../escape",
        "a/../../escape",
        "/etc/passwd",
        "a/./b",
        ".hidden",
    ] {
        let error = sink.write(key, &document("t"), &any()).await.unwrap_err();
        assert!(
            matches!(error, SinkError::InvalidKey { .. }),
            "{key}: {error:?}"
        );
        let error = sink.read(key).await.unwrap_err();
        assert!(
            matches!(error, SinkError::InvalidKey { .. }),
            "{key}: {error:?}"
        );
    }
    assert!(!store.exists(), "a rejected key must not touch the disk");
    assert_eq!(entries(temp.path()), Vec::<String>::new());
}

#[tokio::test]
async fn a_corrupt_file_is_an_invalid_document_that_does_not_quote_it() {
    let temp = TempDir::new().unwrap();
    let sink = sink(temp.path());
    let path = temp.path().join("k.json");
    plant(
        &path,
        b"{\"api_access_token\": \"corrupt-secret-value",
        0o600,
    );

    let error = sink.read("k").await.unwrap_err();
    assert!(
        matches!(error, SinkError::InvalidDocument { .. }),
        "{error:?}"
    );
    let message = format!("{error} {error:?}");
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(!message.contains("corrupt-secret"), "{message}");

    let error = sink.write("k", &document("t"), &any()).await.unwrap_err();
    assert!(
        matches!(error, SinkError::InvalidDocument { .. }),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains("corrupt-secret"));

    fs::write(&path, b"[\"not an object\"]").unwrap();
    let error = sink.read("k").await.unwrap_err();
    assert!(error.to_string().contains("not a JSON object"), "{error}");
}

#[tokio::test]
async fn an_unmanaged_file_is_refused_without_takeover_and_adopted_with_it() {
    let temp = TempDir::new().unwrap();
    let sink = sink(temp.path());
    let path = temp.path().join("team/k.json");
    let planted = br#"{"api_access_token": "hand-made"}"#;
    plant(&path, planted, 0o600);

    let stored = sink.read("team/k").await.unwrap().unwrap();
    assert!(!stored.managed);
    assert_eq!(stored.version.as_str(), "0");

    for precondition in [
        Precondition::Any,
        Precondition::Version(stored.version.clone()),
    ] {
        let error = sink
            .write("team/k", &document("t"), &WriteOptions::new(precondition))
            .await
            .unwrap_err();
        assert!(matches!(error, SinkError::Unmanaged { .. }), "{error:?}");
        assert_eq!(fs::read(&path).unwrap(), planted);
    }

    let options = WriteOptions {
        takeover: true,
        ..WriteOptions::new(Precondition::Version(Version::new("0")))
    };
    let version = sink
        .write("team/k", &document("t"), &options)
        .await
        .unwrap();
    assert_eq!(version.as_str(), "1");
    assert!(sink.read("team/k").await.unwrap().unwrap().managed);
}

#[tokio::test]
async fn documents_may_not_use_the_stores_field_names() {
    let temp = TempDir::new().unwrap();
    let sink = sink(temp.path());
    for field in ["managed-by", "rotator-version"] {
        let mut fields = document("t").into_fields();
        fields.insert(field.into(), json!(1));
        let error = sink
            .write("k", &rotator_core::Document::new(fields), &any())
            .await
            .unwrap_err();
        assert!(
            matches!(error, SinkError::InvalidDocument { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains(field), "{error}");
    }
    assert!(sink.read("k").await.unwrap().is_none());
}

#[tokio::test]
async fn check_creates_the_directory_and_writes_no_document() {
    let temp = TempDir::new().unwrap();
    let store = temp.path().join("a/store");
    let sink = sink(&store);
    sink.check().await.unwrap();
    assert_eq!(mode(&store), 0o700);
    assert_eq!(entries(&store), Vec::<String>::new());
}

#[tokio::test]
async fn check_names_the_path_when_the_directory_is_a_file() {
    let temp = TempDir::new().unwrap();
    let store = temp.path().join("store");
    fs::write(&store, b"").unwrap();
    let error = sink(&store).check().await.unwrap_err();
    assert!(
        error.to_string().contains(&store.display().to_string()),
        "{error}"
    );
}

#[tokio::test]
async fn check_reports_a_read_only_directory_as_unauthorized() {
    let temp = TempDir::new().unwrap();
    let store = temp.path().join("store");
    fs::create_dir(&store).unwrap();
    fs::set_permissions(&store, fs::Permissions::from_mode(0o500)).unwrap();
    // Root ignores permission bits, so the refusal can only be observed as another user.
    if fs::write(store.join("probe"), b"").is_ok() {
        eprintln!("skipped: running with permission to write to a 0500 directory (root?)");
        return;
    }
    let error = sink(&store).check().await.unwrap_err();
    assert!(matches!(error, SinkError::Unauthorized { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&store.display().to_string()),
        "{error}"
    );
}

#[test]
fn debug_and_describe_show_the_directory_only() {
    let sink = sink(Path::new("/var/lib/alation-rotator"));
    assert_eq!(
        format!("{sink:?}"),
        r#"FileSink { directory: "/var/lib/alation-rotator" }"#
    );
    assert_eq!(sink.describe(), "file:/var/lib/alation-rotator");
    let capabilities = sink.capabilities();
    assert!(capabilities.compare_and_set);
    assert!(!capabilities.previous_readable);
}
