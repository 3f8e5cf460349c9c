//! The example exec store passes the whole conformance suite.

use std::path::PathBuf;
use std::sync::Arc;

use rotator_core::{Document, TokenSink};
use rotator_sink_exec::{Config, ExecSink};
use rotator_testkit::{async_trait, ConformanceTarget};

struct Target {
    sink: Arc<ExecSink>,
    dir: tempfile::TempDir,
}

impl Target {
    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }
}

#[async_trait]
impl ConformanceTarget for Target {
    fn sink(&self) -> Arc<dyn TokenSink> {
        self.sink.clone()
    }

    async fn plant_unmanaged(&self, key: &str, document: &Document) {
        // As a person would: the store's file, without the ownership label.
        std::fs::create_dir_all(self.root()).unwrap();
        let path = self.root().join(format!("{}.json", hex(key)));
        let entry = serde_json::json!({
            "document": serde_json::Value::Object(document.fields().clone()),
            "version": "1",
            "labels": {},
        });
        std::fs::write(path, entry.to_string()).unwrap();
    }
}

fn hex(key: &str) -> String {
    key.bytes().map(|b| format!("{b:02x}")).collect()
}

async fn target() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        command: vec![
            crate::python(),
            crate::example_store().display().to_string(),
            dir.path().join("store").display().to_string(),
        ],
        timeout: std::time::Duration::from_secs(20),
        env: Vec::new(),
        compare_and_set: true,
    };
    Target {
        sink: Arc::new(ExecSink::new(config).unwrap()),
        dir,
    }
}

rotator_testkit::conformance_tests!(target);
