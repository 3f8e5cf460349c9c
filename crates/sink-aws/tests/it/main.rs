//! Integration tests of rotator-sink-aws against a real moto server (see `peer.rs`).

mod behaviour;
mod conformance;
mod peer;
mod proxy;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::config::Credentials;
use rotator_sink_aws::{AwsSink, Config};

/// The region every test uses.
pub const REGION: &str = "us-east-1";

/// AWS configuration signed with fake keys, set on the SDK rather than in the environment
/// because tests run in parallel threads.
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            "testing",
            "testing",
            None,
            None,
            "rotator-tests",
        ))
        .load()
        .await
}

/// Settings of a store on the shared moto server.
pub fn moto_config() -> Config {
    Config {
        region: Some(REGION.into()),
        endpoint_url: Some(peer::moto().url.clone()),
        ..Config::default()
    }
}

/// A sink with `config` on the fake-key SDK configuration.
pub async fn sink_with(config: Config) -> AwsSink {
    AwsSink::with_sdk_config(config, &sdk_config().await)
        .await
        .expect("the sink builds")
}

/// The store's own client on moto, for planting and inspecting secrets.
pub async fn raw_client() -> aws_sdk_secretsmanager::Client {
    let sdk = sdk_config().await;
    let config = aws_sdk_secretsmanager::config::Builder::from(&sdk)
        .endpoint_url(peer::moto().url.clone())
        .build();
    aws_sdk_secretsmanager::Client::from_conf(config)
}

/// A secret name no other test uses (the suffix never looks like AWS's `-xxxxxx`).
pub fn unique_name(what: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("rotator-tests/{what}/{}-{nanos:x}.{n}", std::process::id())
}
