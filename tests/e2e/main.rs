//! End-to-end tests: the real `alation-rotator` binary against the Alation emulator and real
//! stores. Each test gets its own emulator, directory and keys.

mod commands;
mod config_errors;
mod crash;
mod daemon;
mod harness;
mod lifecycle;
mod metrics;
mod oauth;
mod races;
mod rotation;
mod shards;
mod shutdown;
mod stores;
