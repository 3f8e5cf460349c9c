//! The template store passes the whole conformance suite.

use std::sync::Arc;

use alation_rotator::StoreType;
use alation_rotator_sink_env_dir::{Config, EnvDir};
use rotator_core::{Document, TokenSink};
use rotator_testkit::{async_trait, ConformanceTarget};

struct Target {
    sink: Arc<dyn TokenSink>,
    dir: tempfile::TempDir,
}

#[async_trait]
impl ConformanceTarget for Target {
    fn sink(&self) -> Arc<dyn TokenSink> {
        self.sink.clone()
    }

    async fn plant_unmanaged(&self, key: &str, document: &Document) {
        // A file written by hand: no marker.
        let path = self.dir.path().join(format!("{key}.env"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut text = String::from("# written by a person\n");
        for (name, value) in document.fields() {
            let value = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            text.push_str(&format!("{}={value}\n", name.to_ascii_uppercase()));
        }
        std::fs::write(path, text).unwrap();
    }
}

async fn target() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let sink = EnvDir::build(&Config {
        directory: dir.path().to_owned(),
    })
    .await
    .unwrap();
    Target { sink, dir }
}

rotator_testkit::conformance_tests!(target);
