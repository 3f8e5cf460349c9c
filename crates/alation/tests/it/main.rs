//! Integration tests of the client against the emulator over real HTTP.

mod config;
mod errors;
mod hostile;
mod oauth;
mod regeneration;
mod retries;
mod secrets;
mod success;
mod tls;

use std::time::Duration;

use alation_emulator::{Emulator, EmulatorConfig, User};
use rotator_alation::{AlationClient, ClientConfig, RetryConfig};

pub const ALICE: i64 = 102;
pub const BOB: i64 = 103;
pub const ALICE_PASSWORD: &str = "correct horse battery staple";

pub fn users() -> Vec<User> {
    vec![
        User::new(ALICE, "alice@example.com", ALICE_PASSWORD),
        User::new(BOB, "bob@example.com", "bob-pw"),
    ]
}

/// Retries fast enough for tests; three attempts in all.
pub fn fast_retry() -> RetryConfig {
    RetryConfig {
        max_attempts: 3,
        initial_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(5),
    }
}

pub fn client_for(base_url: url::Url) -> AlationClient {
    let mut config = ClientConfig::new(base_url);
    config.retry = fast_retry();
    config.timeout = Duration::from_secs(10);
    AlationClient::new(config).unwrap()
}

pub async fn start_with(config: EmulatorConfig) -> (Emulator, AlationClient) {
    let emulator = Emulator::start(config).await.unwrap();
    let client = client_for(emulator.base_url());
    (emulator, client)
}

pub async fn start() -> (Emulator, AlationClient) {
    start_with(EmulatorConfig {
        users: users(),
        ..EmulatorConfig::default()
    })
    .await
}
