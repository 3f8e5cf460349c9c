//! The crate's integration tests, in one binary (one link instead of one per file).

mod conformance;
mod e2e;
