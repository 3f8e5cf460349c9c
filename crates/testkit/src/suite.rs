//! The behaviours, one public function per promise of [`TokenSink`].
//!
//! Each function runs one behaviour against a [`ConformanceTarget`] under fresh keys and
//! panics with `conformance behaviour `NAME` failed on STORE: WHAT` when the sink breaks the
//! promise. Every error the sink returns along the way, and the `Debug` output of everything
//! it returns, is searched for the secret values the behaviour wrote. The functions must run
//! inside a Tokio runtime.

use std::fmt::Display;
use std::sync::{Arc, Mutex};

use rotator_core::{Document, Precondition, SinkError, Stored, TokenSink, Version, WriteOptions};
use serde_json::{Map, Value};
use tokio::sync::Barrier;

use crate::fixtures::{assert_no_secrets_in, unique_suffix};
use crate::ConformanceTarget;

/// How many writers race in the concurrent behaviours.
const WRITERS: usize = 8;

/// One behaviour's run: the sink, the keys it used and the secrets it wrote.
struct Run<'a> {
    behaviour: &'static str,
    target: &'a dyn ConformanceTarget,
    sink: Arc<dyn TokenSink>,
    keys: Mutex<Vec<String>>,
    secrets: Mutex<Vec<String>>,
}

impl<'a> Run<'a> {
    fn new(behaviour: &'static str, target: &'a dyn ConformanceTarget) -> Self {
        Self {
            behaviour,
            target,
            sink: target.sink(),
            keys: Mutex::default(),
            secrets: Mutex::default(),
        }
    }

    #[track_caller]
    fn fail(&self, what: impl Display) -> ! {
        panic!(
            "conformance behaviour `{}` failed on {}: {what}",
            self.behaviour,
            self.sink.describe()
        )
    }

    fn key(&self, name: &str) -> String {
        let key = self.target.unique_key(name);
        self.keys.lock().unwrap().push(key.clone());
        key
    }

    /// An access-token-shaped document whose token is a fresh secret.
    fn document(&self, label: &str) -> Document {
        let secret = format!("conformance-secret-{}", unique_suffix());
        self.secrets.lock().unwrap().push(secret.clone());
        let mut fields = Map::new();
        fields.insert("api_access_token".into(), secret.into());
        fields.insert("user_id".into(), 102.into());
        fields.insert("token_expires_at".into(), "2030-01-02T03:04:05Z".into());
        fields.insert("created_at".into(), "2030-01-01T03:04:05Z".into());
        fields.insert("base_url".into(), "https://alation.example.com".into());
        fields.insert("integration".into(), format!("conformance-{label}").into());
        Document::new(fields)
    }

    #[track_caller]
    fn scan(&self, what: &str, text: &str) {
        let secrets = self.secrets.lock().unwrap().clone();
        let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let what = format!(
            "{what} (conformance behaviour `{}` on {})",
            self.behaviour,
            self.sink.describe()
        );
        assert_no_secrets_in(&what, text, &secrets);
    }

    /// Searches an error's `Display`, `Debug` and source chain for secrets.
    #[track_caller]
    fn scan_error(&self, operation: &str, error: &SinkError) {
        let mut text = format!("{error}\n{error:?}");
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(&format!("\n{cause}"));
            source = cause.source();
        }
        self.scan(&format!("the error returned by {operation}"), &text);
    }

    async fn read(&self, key: &str) -> Option<Stored> {
        let operation = format!("read({key:?})");
        match self.sink.read(key).await {
            Ok(stored) => {
                self.scan(
                    &format!("Debug of what {operation} returned"),
                    &format!("{stored:?}"),
                );
                stored
            }
            Err(error) => {
                self.scan_error(&operation, &error);
                self.fail(format!("{operation} failed: {error}"))
            }
        }
    }

    async fn read_present(&self, key: &str) -> Stored {
        self.read(key).await.unwrap_or_else(|| {
            self.fail(format!(
                "read({key:?}) returned None for a key that holds a document"
            ))
        })
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        precondition: Precondition,
        takeover: bool,
    ) -> Result<Version, SinkError> {
        let options = WriteOptions {
            takeover,
            ..WriteOptions::new(precondition)
        };
        let result = self.sink.write(key, document, &options).await;
        if let Err(error) = &result {
            self.scan_error(&describe_write(key, &options), error);
        }
        result
    }

    async fn write_ok(
        &self,
        key: &str,
        document: &Document,
        precondition: Precondition,
        takeover: bool,
    ) -> Version {
        let operation = describe_write(
            key,
            &WriteOptions {
                takeover,
                ..WriteOptions::new(precondition.clone())
            },
        );
        self.write(key, document, precondition, takeover)
            .await
            .unwrap_or_else(|error| self.fail(format!("{operation} failed: {error}")))
    }

    /// Asserts that the write fails with a conflict.
    async fn write_conflicts(
        &self,
        key: &str,
        document: &Document,
        precondition: Precondition,
        takeover: bool,
    ) {
        let operation = describe_write(
            key,
            &WriteOptions {
                takeover,
                ..WriteOptions::new(precondition.clone())
            },
        );
        match self.write(key, document, precondition, takeover).await {
            Err(SinkError::Conflict { .. }) => {}
            Err(other) => self.fail(format!("{operation} should fail with SinkError::Conflict, got: {other}")),
            Ok(version) => self.fail(format!(
                "{operation} should fail with SinkError::Conflict, but it succeeded with version {version}"
            )),
        }
    }

    /// Asserts that `key` holds exactly `document` at `version` with the given ownership.
    async fn expect_stored(
        &self,
        key: &str,
        document: &Document,
        version: &Version,
        managed: bool,
        when: &str,
    ) {
        let stored = self.read_present(key).await;
        self.expect_same(key, &stored, document, version, managed, when);
    }

    fn expect_same(
        &self,
        key: &str,
        stored: &Stored,
        document: &Document,
        version: &Version,
        managed: bool,
        when: &str,
    ) {
        if &stored.document != document {
            self.fail(format!(
                "{when}, {key:?} holds a different document: {}",
                difference(document, &stored.document)
            ));
        }
        if &stored.version != version {
            self.fail(format!(
                "{when}, {key:?} has version {:?}, expected {:?}",
                stored.version.as_str(),
                version.as_str()
            ));
        }
        if stored.managed != managed {
            self.fail(format!(
                "{when}, {key:?} reads as managed: {}, expected managed: {managed}",
                stored.managed
            ));
        }
    }

    /// Hands the keys to the target's cleanup; called only when the behaviour passed.
    async fn finish(self) {
        let keys = self.keys.lock().unwrap().clone();
        self.target.cleanup(&keys).await;
    }
}

fn describe_write(key: &str, options: &WriteOptions) -> String {
    let precondition = match &options.precondition {
        Precondition::Any => "Any".to_owned(),
        Precondition::Absent => "Absent".to_owned(),
        Precondition::Version(version) => format!("Version({:?})", version.as_str()),
    };
    format!(
        "write({key:?}, {precondition}, takeover: {})",
        options.takeover
    )
}

/// Names the fields that differ between two documents, never their values.
fn difference(expected: &Document, actual: &Document) -> String {
    let (expected, actual) = (expected.fields(), actual.fields());
    fn names(map: &Map<String, Value>, keep: impl Fn(&String, &Value) -> bool) -> Vec<&str> {
        map.iter()
            .filter(|(name, value)| keep(name, value))
            .map(|(name, _)| name.as_str())
            .collect()
    }
    let missing = names(expected, |name, _| !actual.contains_key(name));
    let extra = names(actual, |name, _| !expected.contains_key(name));
    let changed = names(expected, |name, value| {
        actual.get(name).is_some_and(|a| a != value)
    });
    format!("fields missing: {missing:?}, unexpected fields: {extra:?}, fields with other values: {changed:?}")
}

/// `check()` succeeds on a working store.
pub async fn check_succeeds(target: &dyn ConformanceTarget) {
    let run = Run::new("check_succeeds", target);
    if let Err(error) = run.sink.check().await {
        run.scan_error("check()", &error);
        run.fail(format!("check() failed on a working store: {error}"));
    }
    run.finish().await;
}

/// A written document reads back with the same fields, the version the write returned and
/// `managed: true`; a second write (`Precondition::Any`) replaces it with a new version.
pub async fn round_trip(target: &dyn ConformanceTarget) {
    let run = Run::new("round_trip", target);
    let key = run.key("round-trip");
    let first = run.document("first");
    let v1 = run.write_ok(&key, &first, Precondition::Any, false).await;
    run.expect_stored(&key, &first, &v1, true, "after the first write")
        .await;

    let second = run.document("second");
    let v2 = run.write_ok(&key, &second, Precondition::Any, false).await;
    if v2 == v1 {
        run.fail(format!(
            "the second write returned the same version {:?} as the first",
            v1.as_str()
        ));
    }
    run.expect_stored(&key, &second, &v2, true, "after the second write")
        .await;
    run.finish().await;
}

/// Reading a key that was never written returns `Ok(None)`.
pub async fn absent_key_reads_none(target: &dyn ConformanceTarget) {
    let run = Run::new("absent_key_reads_none", target);
    let key = run.key("never-written");
    if run.read(&key).await.is_some() {
        run.fail(format!(
            "read({key:?}) of a key never written returned a document, expected None"
        ));
    }
    run.finish().await;
}

/// Written documents carry the ownership marker (read returns `managed: true`), so the
/// rotator may overwrite its own documents without takeover.
pub async fn writes_carry_ownership_marker(target: &dyn ConformanceTarget) {
    let run = Run::new("writes_carry_ownership_marker", target);
    let key = run.key("marker");
    let first = run.document("first");
    let v1 = run
        .write_ok(&key, &first, Precondition::Absent, false)
        .await;
    let stored = run.read_present(&key).await;
    if !stored.managed {
        run.fail(format!("read({key:?}) after our own write returned managed: false; the ownership marker was not written"));
    }
    let second = run.document("second");
    let v2 = run
        .write_ok(&key, &second, Precondition::Version(v1), false)
        .await;
    run.expect_stored(
        &key,
        &second,
        &v2,
        true,
        "after overwriting our own document",
    )
    .await;
    run.finish().await;
}

/// `Precondition::Absent` succeeds on a fresh key and conflicts when the key holds a document,
/// leaving that document unchanged.
pub async fn absent_conflicts_when_present(target: &dyn ConformanceTarget) {
    let run = Run::new("absent_conflicts_when_present", target);
    let key = run.key("absent");
    let first = run.document("first");
    let v1 = run
        .write_ok(&key, &first, Precondition::Absent, false)
        .await;
    run.write_conflicts(&key, &run.document("second"), Precondition::Absent, false)
        .await;
    run.expect_stored(&key, &first, &v1, true, "after the conflicting write")
        .await;
    run.finish().await;
}

/// `Precondition::Version` with the current version succeeds and yields a new, different
/// version.
pub async fn current_version_succeeds(target: &dyn ConformanceTarget) {
    let run = Run::new("current_version_succeeds", target);
    let key = run.key("current-version");
    let v1 = run
        .write_ok(&key, &run.document("first"), Precondition::Any, false)
        .await;
    let read = run.read_present(&key).await.version;
    if read != v1 {
        run.fail(format!(
            "write returned version {:?} but read returned {:?}",
            v1.as_str(),
            read.as_str()
        ));
    }
    let second = run.document("second");
    let v2 = run
        .write_ok(&key, &second, Precondition::Version(v1.clone()), false)
        .await;
    if v2 == v1 {
        run.fail(format!(
            "compare-and-set write returned the old version {:?} again",
            v1.as_str()
        ));
    }
    run.expect_stored(&key, &second, &v2, true, "after the compare-and-set write")
        .await;
    run.finish().await;
}

/// `Precondition::Version` with a version that is no longer current conflicts and leaves the
/// stored document unchanged.
pub async fn stale_version_conflicts(target: &dyn ConformanceTarget) {
    let run = Run::new("stale_version_conflicts", target);
    let key = run.key("stale-version");
    let v1 = run
        .write_ok(&key, &run.document("first"), Precondition::Any, false)
        .await;
    let second = run.document("second");
    let v2 = run
        .write_ok(&key, &second, Precondition::Version(v1.clone()), false)
        .await;
    run.write_conflicts(
        &key,
        &run.document("third"),
        Precondition::Version(v1),
        false,
    )
    .await;
    run.expect_stored(
        &key,
        &second,
        &v2,
        true,
        "after the write with a stale version",
    )
    .await;
    run.finish().await;
}

/// `Precondition::Version` on a key that holds nothing conflicts and writes nothing.
pub async fn version_on_absent_key_conflicts(target: &dyn ConformanceTarget) {
    let run = Run::new("version_on_absent_key_conflicts", target);
    // A version this store really issues, taken from another key.
    let other = run.key("version-source");
    let version = run
        .write_ok(&other, &run.document("source"), Precondition::Any, false)
        .await;
    let key = run.key("version-absent");
    run.write_conflicts(
        &key,
        &run.document("absent"),
        Precondition::Version(version),
        false,
    )
    .await;
    if run.read(&key).await.is_some() {
        run.fail(format!("the failed write created a document under {key:?}"));
    }
    run.finish().await;
}

/// A document without the ownership marker reads as `managed: false` and is not overwritten
/// without takeover: `Any` and `Version` fail with [`SinkError::Unmanaged`], `Absent` with
/// [`SinkError::Conflict`] (the precondition is checked first); the document stays unchanged.
pub async fn unmanaged_not_overwritten_without_takeover(target: &dyn ConformanceTarget) {
    let run = Run::new("unmanaged_not_overwritten_without_takeover", target);
    let key = run.key("unmanaged");
    let foreign = run.document("foreign");
    target.plant_unmanaged(&key, &foreign).await;
    let planted = run.read_present(&key).await;
    run.expect_same(
        &key,
        &planted,
        &foreign,
        &planted.version,
        false,
        "after planting an unmanaged document",
    );

    let ours = run.document("ours");
    for precondition in [
        Precondition::Any,
        Precondition::Version(planted.version.clone()),
    ] {
        let operation = describe_write(&key, &WriteOptions::new(precondition.clone()));
        match run.write(&key, &ours, precondition, false).await {
            Err(SinkError::Unmanaged { .. }) => {}
            Err(other) => run.fail(format!("{operation} over an unmanaged document should fail with SinkError::Unmanaged, got: {other}")),
            Ok(_) => run.fail(format!("{operation} overwrote an unmanaged document without takeover")),
        }
        run.expect_stored(
            &key,
            &foreign,
            &planted.version,
            false,
            &format!("after the refused {operation}"),
        )
        .await;
    }
    run.write_conflicts(&key, &ours, Precondition::Absent, false)
        .await;
    run.expect_stored(
        &key,
        &foreign,
        &planted.version,
        false,
        "after the refused Absent write",
    )
    .await;
    run.finish().await;
}

/// With `takeover: true` an unmanaged document is overwritten (compare-and-set on the version
/// read) and is managed afterwards.
pub async fn takeover_adopts_unmanaged(target: &dyn ConformanceTarget) {
    let run = Run::new("takeover_adopts_unmanaged", target);
    let key = run.key("takeover");
    target.plant_unmanaged(&key, &run.document("foreign")).await;
    let planted = run.read_present(&key).await;
    let ours = run.document("ours");
    let version = run
        .write_ok(
            &key,
            &ours,
            Precondition::Version(planted.version.clone()),
            true,
        )
        .await;
    if version == planted.version {
        run.fail(format!(
            "the takeover write returned the planted version {:?} again",
            version.as_str()
        ));
    }
    run.expect_stored(&key, &ours, &version, true, "after the takeover")
        .await;
    let next = run.document("next");
    let next_version = run
        .write_ok(&key, &next, Precondition::Version(version), false)
        .await;
    run.expect_stored(
        &key,
        &next,
        &next_version,
        true,
        "after writing the adopted document without takeover",
    )
    .await;
    run.finish().await;
}

/// No secret value shows in `describe()`, in `Debug` of the sink, of what `read` returns or
/// of a document, or in the errors of refused writes (conflicts and unmanaged documents).
/// (Every other behaviour also searches the errors it meets.)
pub async fn no_secrets_in_debug_or_errors(target: &dyn ConformanceTarget) {
    let run = Run::new("no_secrets_in_debug_or_errors", target);
    let key = run.key("secrets");
    let document = run.document("secret");
    run.scan("Debug of a Document", &format!("{document:?}"));
    let v1 = run
        .write_ok(&key, &document, Precondition::Any, false)
        .await;
    let stored = run.read_present(&key).await;
    run.scan("Debug of a Stored", &format!("{stored:?}"));
    run.scan(
        "Debug of a Stored's document",
        &format!("{:?}", stored.document),
    );
    run.scan(
        "Debug of the sink after writing",
        &format!("{:?}", run.sink),
    );
    run.scan("describe()", &run.sink.describe());

    // Refused writes, whose errors are searched by the run.
    run.write_conflicts(&key, &run.document("absent"), Precondition::Absent, false)
        .await;
    run.write_ok(
        &key,
        &run.document("second"),
        Precondition::Version(v1.clone()),
        false,
    )
    .await;
    run.write_conflicts(
        &key,
        &run.document("stale"),
        Precondition::Version(v1),
        false,
    )
    .await;
    let foreign = run.key("secrets-foreign");
    target
        .plant_unmanaged(&foreign, &run.document("foreign"))
        .await;
    // The kind of error is other behaviours' business; this one only searches its text.
    let _ = run
        .write(&foreign, &run.document("refused"), Precondition::Any, false)
        .await;
    let _ = run
        .write(
            &foreign,
            &run.document("absent-foreign"),
            Precondition::Absent,
            false,
        )
        .await;
    run.scan("Debug of the sink at the end", &format!("{:?}", run.sink));
    run.finish().await;
}

/// `WRITERS` tasks write one key at once with the same `Version` precondition: exactly one
/// succeeds, the others get [`SinkError::Conflict`], and the key holds the winner's document.
/// Needs `compare_and_set`.
pub async fn concurrent_version_writers_one_wins(target: &dyn ConformanceTarget) {
    let run = Run::new("concurrent_version_writers_one_wins", target);
    if !compare_and_set(&run) {
        return run.finish().await;
    }
    let key = run.key("race-version");
    let version = run
        .write_ok(&key, &run.document("base"), Precondition::Any, false)
        .await;
    race(&run, &key, Precondition::Version(version)).await;
    run.finish().await;
}

/// `WRITERS` tasks write one fresh key at once with `Precondition::Absent`: exactly one
/// succeeds, the others get [`SinkError::Conflict`], and the key holds the winner's document.
/// Needs `compare_and_set`.
pub async fn concurrent_absent_writers_one_wins(target: &dyn ConformanceTarget) {
    let run = Run::new("concurrent_absent_writers_one_wins", target);
    if !compare_and_set(&run) {
        return run.finish().await;
    }
    let key = run.key("race-absent");
    race(&run, &key, Precondition::Absent).await;
    run.finish().await;
}

fn compare_and_set(run: &Run<'_>) -> bool {
    let declared = run.sink.capabilities().compare_and_set;
    if !declared {
        eprintln!(
            "conformance behaviour `{}` skipped on {}: compare_and_set is not declared",
            run.behaviour,
            run.sink.describe()
        );
    }
    declared
}

async fn race(run: &Run<'_>, key: &str, precondition: Precondition) {
    let documents: Vec<Document> = (0..WRITERS)
        .map(|i| run.document(&format!("writer-{i}")))
        .collect();
    let barrier = Arc::new(Barrier::new(WRITERS));
    let tasks: Vec<_> = documents
        .iter()
        .map(|document| {
            let (sink, barrier) = (run.sink.clone(), barrier.clone());
            let (key, document) = (key.to_owned(), document.clone());
            let options = WriteOptions::new(precondition.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                sink.write(&key, &document, &options).await
            })
        })
        .collect();

    let mut winners = Vec::new();
    for (index, task) in tasks.into_iter().enumerate() {
        let result = task.await.unwrap_or_else(|error| {
            run.fail(format!("writer {index} panicked or was cancelled: {error}"))
        });
        match result {
            Ok(version) => winners.push((index, version)),
            Err(SinkError::Conflict { .. }) => {}
            Err(error) => {
                run.scan_error(&format!("concurrent writer {index}"), &error);
                run.fail(format!("concurrent writer {index} should succeed or get SinkError::Conflict, got: {error}"));
            }
        }
    }
    let [(winner, version)] = winners.as_slice() else {
        let indices: Vec<_> = winners.iter().map(|(index, _)| index).collect();
        run.fail(format!(
            "{WRITERS} writers raced with the same precondition; exactly one must succeed, but writers {indices:?} did"
        ));
    };
    run.expect_stored(key, &documents[*winner], version, true, "after the race")
        .await;
}

/// With `previous_readable`, `read_previous` returns `None` after one write and the first
/// document and version after two; without it, `read_previous` fails with
/// [`SinkError::Unsupported`].
pub async fn previous_version(target: &dyn ConformanceTarget) {
    let run = Run::new("previous_version", target);
    let key = run.key("previous");
    let first = run.document("first");
    let v1 = run.write_ok(&key, &first, Precondition::Any, false).await;
    let readable = run.sink.capabilities().previous_readable;
    let previous = run.sink.read_previous(&key).await;
    if let Err(error) = &previous {
        run.scan_error(&format!("read_previous({key:?})"), error);
    }
    match (readable, previous) {
        (false, Err(SinkError::Unsupported { .. })) => return run.finish().await,
        (false, Err(other)) => run.fail(format!(
            "previous_readable is not declared, so read_previous should fail with SinkError::Unsupported, got: {other}"
        )),
        (false, Ok(_)) => run.fail("previous_readable is not declared, but read_previous succeeded"),
        (true, Ok(None)) => {}
        (true, Ok(Some(_))) => run.fail("read_previous after a single write returned a document, expected None"),
        (true, Err(error)) => run.fail(format!("read_previous after a single write failed: {error}")),
    }
    run.write_ok(
        &key,
        &run.document("second"),
        Precondition::Version(v1.clone()),
        false,
    )
    .await;
    match run.sink.read_previous(&key).await {
        Ok(Some(stored)) => {
            run.scan(
                "Debug of what read_previous returned",
                &format!("{stored:?}"),
            );
            run.expect_same(
                &key,
                &stored,
                &first,
                &v1,
                true,
                "after two writes, read_previous",
            );
        }
        Ok(None) => {
            run.fail("read_previous after two writes returned None, expected the first document")
        }
        Err(error) => {
            run.scan_error(&format!("read_previous({key:?})"), &error);
            run.fail(format!("read_previous after two writes failed: {error}"));
        }
    }
    run.finish().await;
}
