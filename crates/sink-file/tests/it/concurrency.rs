//! Writers in several tasks and several processes are serialized by the lock.
//!
//! Each writer adds one to a counter in the document with a read-then-compare-and-set loop.
//! If two writers could both pass the check for the same version, one increment would be
//! lost and the final count would fall short of the number of successful writes.

use std::path::Path;
use std::process::{Command, Stdio};

use rotator_core::{Document, Precondition, SinkError, TokenSink, WriteOptions};
use serde_json::{json, Value};
use tempfile::TempDir;

use super::sink;

const KEY: &str = "shared/counter";
const CHILD_DIRECTORY: &str = "ROTATOR_SINK_FILE_TEST_CHILD_DIRECTORY";
const INCREMENTS: u64 = 25;

fn counter_document(count: u64) -> Document {
    let Value::Object(fields) = json!({ "count": count }) else {
        unreachable!("a JSON object literal")
    };
    Document::new(fields)
}

/// Adds one to the shared counter `times` times, retrying on conflicts.
async fn increment(sink: &dyn TokenSink, times: u64) {
    for _ in 0..times {
        loop {
            let (count, precondition) = match sink.read(KEY).await.unwrap() {
                None => (0, Precondition::Absent),
                Some(stored) => (
                    stored.document.fields()["count"].as_u64().unwrap(),
                    Precondition::Version(stored.version),
                ),
            };
            let options = WriteOptions::new(precondition);
            match sink
                .write(KEY, &counter_document(count + 1), &options)
                .await
            {
                Ok(_) => break,
                Err(SinkError::Conflict { .. }) => continue,
                Err(error) => panic!("unexpected error: {error}"),
            }
        }
    }
}

/// Asserts that every increment landed: the count and the version both equal `total`.
async fn assert_total(directory: &Path, total: u64) {
    let stored = sink(directory).read(KEY).await.unwrap().unwrap();
    assert_eq!(
        stored.document,
        counter_document(total),
        "an increment was lost"
    );
    assert_eq!(stored.version.as_str(), total.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_on_two_sink_instances_are_serialized() {
    let temp = TempDir::new().unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            // Each task has its own instance, as two runners would.
            let sink = sink(temp.path());
            tokio::spawn(async move { increment(&sink, 10).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert_total(temp.path(), 160).await;
}

/// The other side of `writers_in_separate_processes_are_serialized`; does nothing unless that
/// test started this binary with the directory in the environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "helper process of writers_in_separate_processes_are_serialized"]
async fn child_writer() {
    if let Ok(directory) = std::env::var(CHILD_DIRECTORY) {
        increment(&sink(Path::new(&directory)), INCREMENTS).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_in_separate_processes_are_serialized() {
    let temp = TempDir::new().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "concurrency::child_writer",
                    "--ignored",
                    "--quiet",
                ])
                .env(CHILD_DIRECTORY, temp.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    increment(&sink(temp.path()), INCREMENTS).await;
    for child in children {
        let output = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .unwrap();
        assert!(
            output.status.success(),
            "a child writer failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_total(temp.path(), 3 * INCREMENTS).await;
}
