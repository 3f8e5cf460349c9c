//! The testkit's conformance suite over a file store in a temporary directory.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::sync::Arc;

use rotator_core::{Document, TokenSink};
use rotator_sink_file::FileSink;
use rotator_testkit::{async_trait, ConformanceTarget};
use tempfile::TempDir;

struct Target {
    // Kept so the directory lives as long as the test.
    _temp: TempDir,
    sink: Arc<FileSink>,
}

#[async_trait]
impl ConformanceTarget for Target {
    fn sink(&self) -> Arc<dyn TokenSink> {
        self.sink.clone()
    }

    async fn plant_unmanaged(&self, key: &str, document: &Document) {
        let path = self.sink.path(key).unwrap();
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path.parent().unwrap())
            .unwrap();
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        file.write_all(&document.to_json_bytes()).unwrap();
        assert!(fs::metadata(&path).unwrap().is_file());
    }
}

async fn target() -> Target {
    let temp = TempDir::new().unwrap();
    // A directory the sink must create itself.
    let sink = Arc::new(super::sink(&temp.path().join("store")));
    Target { _temp: temp, sink }
}

rotator_testkit::conformance_tests!(target);

/// `run_all` drives the same behaviours from a single test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all_passes() {
    rotator_testkit::run_all(&target().await).await;
}
