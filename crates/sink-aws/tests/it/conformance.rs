//! The whole conformance suite of rotator-testkit, on moto.

use std::sync::Arc;

use rotator_core::{Document, TokenSink};
use rotator_sink_aws::AwsSink;
use rotator_testkit::{async_trait, ConformanceTarget};

struct Target {
    sink: Arc<AwsSink>,
    raw: aws_sdk_secretsmanager::Client,
}

#[async_trait]
impl ConformanceTarget for Target {
    fn sink(&self) -> Arc<dyn TokenSink> {
        self.sink.clone()
    }

    async fn plant_unmanaged(&self, key: &str, document: &Document) {
        let text = String::from_utf8(document.to_json_bytes()).unwrap();
        self.raw
            .create_secret()
            .name(key)
            .secret_string(text)
            .send()
            .await
            .unwrap_or_else(|e| panic!("cannot plant {key:?} in moto: {e}"));
    }

    async fn cleanup(&self, keys: &[String]) {
        for key in keys {
            let _ = self
                .raw
                .delete_secret()
                .secret_id(key)
                .force_delete_without_recovery(true)
                .send()
                .await;
        }
    }
}

async fn target() -> Target {
    Target {
        sink: Arc::new(crate::sink_with(crate::moto_config()).await),
        raw: crate::raw_client().await,
    }
}

rotator_testkit::conformance_tests!(target);
