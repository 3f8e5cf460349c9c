//! Each broken sink fails the behaviour that checks the promise it breaks, with a message
//! that names the behaviour and never a secret value.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use rotator_testkit::{suite, ConformanceTarget};

use crate::memory::{Faults, Target};

/// Runs `behaviour` against a sink with `faults` and returns its panic message.
async fn failure<F>(faults: Faults, behaviour: F) -> String
where
    F: for<'a> FnOnce(&'a dyn ConformanceTarget) -> futures::future::BoxFuture<'a, ()>,
{
    let target = Target::new(faults);
    let panic = AssertUnwindSafe(behaviour(&target))
        .catch_unwind()
        .await
        .expect_err("the suite should reject this sink");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_else(|| panic.downcast_ref::<&str>().unwrap().to_string());
    assert!(!message.contains("conformance-secret-"), "{message}");
    message
}

fn assert_contains(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "expected {part:?} in: {message}");
    }
}

#[tokio::test]
async fn ignoring_absent_fails_absent_conflicts_when_present() {
    let faults = Faults {
        ignore_absent: true,
        ..Faults::default()
    };
    let message = failure(faults, |t| suite::absent_conflicts_when_present(t).boxed()).await;
    assert_contains(
        &message,
        &[
            "conformance behaviour `absent_conflicts_when_present` failed on memory:",
            "Absent, takeover: false) should fail with SinkError::Conflict, but it succeeded",
        ],
    );
}

#[tokio::test]
async fn ignoring_versions_fails_stale_version_and_the_race() {
    let faults = Faults {
        ignore_version: true,
        ..Faults::default()
    };
    let message = failure(faults, |t| suite::stale_version_conflicts(t).boxed()).await;
    assert_contains(
        &message,
        &[
            "`stale_version_conflicts`",
            "should fail with SinkError::Conflict",
        ],
    );
    let message = failure(faults, |t| {
        suite::version_on_absent_key_conflicts(t).boxed()
    })
    .await;
    assert_contains(&message, &["`version_on_absent_key_conflicts`"]);
    let message = failure(faults, |t| {
        suite::concurrent_version_writers_one_wins(t).boxed()
    })
    .await;
    assert_contains(
        &message,
        &["exactly one must succeed, but writers [0, 1, 2, 3, 4, 5, 6, 7] did"],
    );
}

#[tokio::test]
async fn a_missing_marker_fails_writes_carry_ownership_marker() {
    let faults = Faults {
        no_marker: true,
        ..Faults::default()
    };
    let message = failure(faults, |t| suite::writes_carry_ownership_marker(t).boxed()).await;
    assert_contains(
        &message,
        &["managed: false; the ownership marker was not written"],
    );
}

#[tokio::test]
async fn ignoring_ownership_fails_unmanaged_not_overwritten_without_takeover() {
    let faults = Faults {
        ignore_ownership: true,
        ..Faults::default()
    };
    let message = failure(faults, |t| {
        suite::unmanaged_not_overwritten_without_takeover(t).boxed()
    })
    .await;
    assert_contains(
        &message,
        &["Any, takeover: false) overwrote an unmanaged document without takeover"],
    );
}

#[tokio::test]
async fn a_secret_in_an_error_is_reported_by_index_not_value() {
    let faults = Faults {
        leak_in_conflict: true,
        ..Faults::default()
    };
    let message = failure(faults, |t| suite::absent_conflicts_when_present(t).boxed()).await;
    // Secret #0 is the stored document's token, quoted by the conflict.
    assert_contains(
        &message,
        &[
            "secret #0 (of 2) appears in the error returned by write(",
            "conformance behaviour `absent_conflicts_when_present` on memory:",
            "<secret #0>",
        ],
    );
}
