//! Where the engine gets "now" from, so tests can move time instead of sleeping.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use jiff::{SignedDuration, Timestamp};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current instant.
    fn now(&self) -> Timestamp;
}

/// The operating system's clock, optionally shifted by a fixed offset.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    offset: SignedDuration,
}

impl SystemClock {
    /// The real system clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The system clock shifted by `offset` (used by test builds to jump ahead in time).
    pub fn with_offset(offset: SignedDuration) -> Self {
        Self { offset }
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
            .checked_add(self.offset)
            .unwrap_or(Timestamp::MAX)
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Timestamp>>,
}

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: SignedDuration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.checked_add(by).unwrap_or(Timestamp::MAX);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: Timestamp) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let start: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = ManualClock::new(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        clock.advance(SignedDuration::from_hours(25));
        assert_eq!(shared.now(), "2026-01-02T01:00:00Z".parse().unwrap());
    }

    #[test]
    fn system_clock_offset_shifts_now() {
        let shifted = SystemClock::with_offset(SignedDuration::from_hours(48)).now();
        let real = SystemClock::new().now();
        let gap = shifted.duration_since(real);
        assert!(gap > SignedDuration::from_hours(47), "gap was {gap:?}");
    }
}
