//! Integration tests of the Vault store against real OpenBao dev servers (started by `rotator_testkit::peers`).

mod auth;
mod config;
mod conformance;
mod failures;
mod policies;
mod support;
