//! Test support compiled only with the `test-hooks` cargo feature, which `cargo test` switches
//! on for the end-to-end tests (through the crate's dev-dependency on itself) and no release
//! or container build does:
//! - `ALATION_ROTATOR_TEST_PAUSE_AT=POINT[,POINT]`: at a named engine checkpoint the process
//!   prints `test-hook: paused at POINT` to standard error and waits there, so a crash test
//!   can kill it exactly there;
//! - `ALATION_ROTATOR_TEST_CLOCK_OFFSET=DURATION`: added to the clock, so tests move time
//!   instead of sleeping.
//!
//! Without the feature both functions return the production values and read nothing.

use std::sync::Arc;

use jiff::SignedDuration;
use rotator_core::engine::{Hooks, NoHooks};

/// The hooks the engine reports to.
pub fn hooks() -> Arc<dyn Hooks> {
    #[cfg(feature = "test-hooks")]
    if let Ok(points) = std::env::var("ALATION_ROTATOR_TEST_PAUSE_AT") {
        return Arc::new(pause::PauseAt(
            points.split(',').map(|p| p.trim().to_owned()).collect(),
        ));
    }
    Arc::new(NoHooks)
}

/// How far the clock is shifted.
pub fn clock_offset() -> SignedDuration {
    #[cfg(feature = "test-hooks")]
    if let Ok(offset) = std::env::var("ALATION_ROTATOR_TEST_CLOCK_OFFSET") {
        if let Ok(offset) = humantime::parse_duration(&offset) {
            if let Ok(offset) = SignedDuration::try_from(offset) {
                return offset;
            }
        }
    }
    SignedDuration::ZERO
}

#[cfg(feature = "test-hooks")]
mod pause {
    use rotator_core::engine::{Checkpoint, Hooks};

    /// Stops forever at the named points.
    #[derive(Debug)]
    pub(super) struct PauseAt(pub(super) Vec<String>);

    #[async_trait::async_trait]
    impl Hooks for PauseAt {
        async fn reached(&self, point: Checkpoint) {
            if self.0.iter().any(|p| p == point.name()) {
                eprintln!("test-hook: paused at {}", point.name());
                std::future::pending::<()>().await;
            }
        }
    }
}
