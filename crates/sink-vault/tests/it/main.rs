//! Integration tests of the Vault store against real OpenBao dev servers (started by `rotator_testkit::peers`).

mod auth;
mod calls;
mod config;
mod conformance;
mod failures;
mod hardening;
mod policies;
mod proxy;
mod support;
