//! Named points in a rotation where crash-safety tests stop the real binary.
//!
//! In debug builds (what `cargo test` builds), when `ALATION_ROTATOR_TEST_PAUSE_AT` names a
//! point (a comma-separated list is allowed), the process prints
//! `test-hook: paused at POINT` to standard error and waits there forever, so a test can kill
//! it with SIGKILL at exactly that point. Release builds compile this to nothing.

/// The points, in the order a rotation passes them.
pub const POINTS: &[&str] = &[
    "before-regen",
    "after-regen",
    "after-escrow",
    "after-persist-refresh",
    "after-mint",
    "after-first-write",
];

/// Pauses here if a test asked for it.
pub(super) async fn checkpoint(point: &'static str) {
    debug_assert!(POINTS.contains(&point), "unknown hook point {point}");
    #[cfg(debug_assertions)]
    if std::env::var("ALATION_ROTATOR_TEST_PAUSE_AT")
        .is_ok_and(|points| points.split(',').any(|p| p.trim() == point))
    {
        eprintln!("test-hook: paused at {point}");
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    }
}
