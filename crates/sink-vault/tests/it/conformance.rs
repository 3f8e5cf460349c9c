//! The rotator-testkit conformance suite on KV v2, KV v1 and a `cas_required` KV v2 mount.

use std::sync::Arc;

use reqwest::Method;
use rotator_core::{Document, TokenSink};
use rotator_sink_vault::VaultSink;
use rotator_testkit::peers::openbao::OpenBao;
use rotator_testkit::{async_trait, ConformanceTarget};
use serde_json::json;

use crate::support::{cas_required_mount, kv1_mount, token_sink, TokenFile};

pub struct Target {
    sink: Arc<VaultSink>,
    bao: &'static OpenBao,
    mount: &'static str,
    kv_version: u8,
    _token: TokenFile,
}

impl Target {
    fn new(mount: &'static str, kv_version: u8) -> Self {
        let bao = OpenBao::shared();
        let (sink, token) = token_sink(bao, mount, kv_version, &bao.root_token);
        Self {
            sink: Arc::new(sink),
            bao,
            mount,
            kv_version,
            _token: token,
        }
    }
}

#[async_trait]
impl ConformanceTarget for Target {
    fn sink(&self) -> Arc<dyn TokenSink> {
        self.sink.clone()
    }

    async fn plant_unmanaged(&self, key: &str, document: &Document) {
        if self.kv_version == 2 {
            // cas=0 so it also works on cas_required mounts.
            let body = json!({ "options": { "cas": 0 }, "data": document.fields() });
            self.bao
                .root(
                    Method::POST,
                    &format!("{}/data/{key}", self.mount),
                    Some(body),
                )
                .await;
        } else {
            let body = serde_json::Value::Object(document.fields().clone());
            self.bao
                .root(Method::POST, &format!("{}/{key}", self.mount), Some(body))
                .await;
        }
    }

    async fn cleanup(&self, keys: &[String]) {
        for key in keys {
            let path = if self.kv_version == 2 {
                format!("{}/metadata/{key}", self.mount)
            } else {
                format!("{}/{key}", self.mount)
            };
            self.bao.request_as(None, Method::DELETE, &path, None).await;
        }
    }
}

async fn kv2() -> Target {
    Target::new("secret", 2)
}

async fn kv1() -> Target {
    Target::new(kv1_mount().await, 1)
}

async fn kv2_cas_required() -> Target {
    Target::new(cas_required_mount().await, 2)
}

mod kv_v2 {
    rotator_testkit::conformance_tests!(super::kv2);
}

mod kv_v1 {
    rotator_testkit::conformance_tests!(super::kv1);
}

mod kv_v2_cas_required {
    rotator_testkit::conformance_tests!(super::kv2_cas_required);
}
