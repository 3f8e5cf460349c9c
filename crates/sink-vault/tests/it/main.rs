//! Integration tests of the Vault store against real OpenBao dev servers (see `peer.rs`).

mod auth;
mod config;
mod conformance;
mod failures;
mod peer;
mod policies;
mod support;
