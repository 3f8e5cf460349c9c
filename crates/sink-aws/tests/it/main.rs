//! Integration tests of rotator-sink-aws against a real moto server (started by
//! `rotator_testkit::peers::moto`).

mod behaviour;
mod calls;
mod conformance;
mod hardening;
mod proxy;
mod rate;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use rotator_sink_aws::{AwsSink, Config};
use rotator_testkit::peers::moto::{self, Moto, REGION};

/// The moto server of this test binary, started on first use.
pub fn moto() -> &'static Moto {
    Moto::shared()
}

/// AWS configuration signed with fake keys and without an endpoint, set on the SDK rather
/// than in the environment because tests run in parallel threads.
pub async fn sdk_config() -> SdkConfig {
    moto::fake_sdk_config().await
}

/// Settings of a store on the shared moto server.
///
/// The write limit is set far above moto's pace, because every store of this process in
/// one region shares one limit and the lowest setting wins: a test of the limit itself
/// uses a region of its own.
pub fn moto_config() -> Config {
    Config {
        region: Some(REGION.into()),
        endpoint_url: Some(moto().endpoint().to_owned()),
        max_writes_per_second: 1000,
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
    aws_sdk_secretsmanager::Client::new(&moto().sdk_config().await)
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
