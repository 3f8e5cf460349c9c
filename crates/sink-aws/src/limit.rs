//! The client-side limit on Secrets Manager's write quotas.
//!
//! AWS counts some operations together in per-second quotas of 50 that it will not raise, per
//! account and region, shared by every application there. A forced pass over a thousand
//! integrations would use them up for a minute and throttle everyone else, so this process
//! keeps below `max_writes_per_second` in each of them on its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

/// The write quotas of Secrets Manager that the rotator uses, as AWS groups them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Bucket {
    /// `PutSecretValue`, `UpdateSecretVersionStage`, `UpdateSecret` (and replication calls).
    Write,
    /// `TagResource`, `UntagResource`.
    Tag,
    /// `CreateSecret`, `DeleteSecret`.
    Create,
}

/// The window the limit is kept over: AWS counts calls per second, and the 100 ms more
/// leave room for the time a call takes to reach AWS, which is not the same for every call.
/// Without it, a call held back to the next second could arrive sooner after the first call
/// of its window than a slower one before it did, and AWS would count both in one second.
pub(crate) const WINDOW: Duration = Duration::from_millis(1100);

/// At most `rate` calls in any window of [`WINDOW`].
///
/// Each caller reserves a time slot and sleeps until it. The slots are kept in order and
/// every slot is at least one window after the slot `rate` places before it, so no window
/// holds more than `rate` of them. A slot is kept even when its caller gives up (a timeout),
/// which can only make the limit stricter.
#[derive(Debug)]
pub(crate) struct RateLimit {
    state: Mutex<Slots>,
}

#[derive(Debug)]
struct Slots {
    rate: usize,
    /// Reserved slots, oldest first; those older than one window are dropped.
    taken: VecDeque<Instant>,
}

impl Slots {
    /// Reserves the earliest slot at or after `now` that keeps the limit.
    fn reserve(&mut self, now: Instant) -> Instant {
        while self.taken.front().is_some_and(|t| *t + WINDOW <= now) {
            self.taken.pop_front();
        }
        let mut slot = now;
        if let Some(last) = self.taken.back() {
            slot = slot.max(*last);
        }
        if self.taken.len() >= self.rate {
            let bound = self.taken[self.taken.len() - self.rate] + WINDOW;
            slot = slot.max(bound);
        }
        self.taken.push_back(slot);
        slot
    }
}

impl RateLimit {
    fn new(rate: u32) -> Self {
        Self {
            state: Mutex::new(Slots {
                rate: rate.max(1) as usize,
                taken: VecDeque::new(),
            }),
        }
    }

    /// Waits until one more call keeps the limit.
    pub(crate) async fn acquire(&self) {
        let slot = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .reserve(Instant::now());
        tokio::time::sleep_until(slot).await;
    }

    fn lower_to(&self, rate: u32) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.rate = state.rate.min(rate.max(1) as usize);
    }

    /// The calls per second this limit allows.
    #[cfg(test)]
    fn rate(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).rate
    }
}

/// Whose quotas a limit stands for: the region and the assumed role, if any.
type Identity = (String, Option<String>);

/// The limits of one account and region: one per [`Bucket`].
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    write: Arc<RateLimit>,
    tag: Arc<RateLimit>,
    create: Arc<RateLimit>,
}

impl Limits {
    /// The limit of `bucket`.
    pub(crate) fn of(&self, bucket: Bucket) -> &RateLimit {
        match bucket {
            Bucket::Write => &self.write,
            Bucket::Tag => &self.tag,
            Bucket::Create => &self.create,
        }
    }

    /// The limits this process shares for `region` and the identity `role_arn` (AWS counts
    /// quotas per calling account and region). A store that asks for a lower rate lowers it
    /// for every store sharing the limits: the most polite setting wins.
    pub(crate) fn shared(region: &str, role_arn: Option<&str>, rate: u32) -> Limits {
        static SHARED: OnceLock<Mutex<HashMap<Identity, Limits>>> = OnceLock::new();
        let mut shared = SHARED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let limits = shared
            .entry((region.to_owned(), role_arn.map(str::to_owned)))
            .or_insert_with(|| Limits {
                write: Arc::new(RateLimit::new(rate)),
                tag: Arc::new(RateLimit::new(rate)),
                create: Arc::new(RateLimit::new(rate)),
            });
        for bucket in [Bucket::Write, Bucket::Tag, Bucket::Create] {
            limits.of(bucket).lower_to(rate);
        }
        limits.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The most slots in any window.
    fn busiest_window(slots: &[Instant]) -> usize {
        slots
            .iter()
            .map(|start| {
                slots
                    .iter()
                    .filter(|t| **t >= *start && **t < *start + WINDOW)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_burst_gets_rate_slots_per_window_and_no_more() {
        let mut slots = Slots {
            rate: 20,
            taken: VecDeque::new(),
        };
        let start = Instant::now();
        let reserved: Vec<Instant> = (0..100).map(|_| slots.reserve(start)).collect();
        assert_eq!(busiest_window(&reserved), 20);
        // The first 20 go at once, then 20 more each window: the 100th waits 4 windows.
        assert_eq!(reserved[19], start);
        assert_eq!(reserved[20], start + WINDOW);
        assert_eq!(reserved[99], start + 4 * WINDOW);
        assert!(reserved.windows(2).all(|w| w[0] <= w[1]), "slots in order");
    }

    #[test]
    fn callers_arriving_over_time_keep_the_limit() {
        let mut slots = Slots {
            rate: 5,
            taken: VecDeque::new(),
        };
        let start = Instant::now();
        let mut reserved = Vec::new();
        // Arrivals every 30 ms, far faster than 5 per second, with pauses in between.
        let mut now = start;
        for i in 0..200u32 {
            now += if i % 50 == 0 {
                3 * WINDOW
            } else {
                Duration::from_millis(30)
            };
            reserved.push(slots.reserve(now));
        }
        assert_eq!(busiest_window(&reserved), 5);
        assert!(slots.taken.len() <= 200, "old slots are dropped");
    }

    #[test]
    fn slow_callers_never_wait() {
        let mut slots = Slots {
            rate: 2,
            taken: VecDeque::new(),
        };
        let start = Instant::now();
        for i in 0..10u32 {
            let now = start + Duration::from_millis(600) * i;
            assert_eq!(slots.reserve(now), now);
        }
        assert!(slots.taken.len() <= 2);
    }

    #[test]
    fn limits_are_shared_per_region_and_identity_and_the_lowest_rate_wins() {
        let a = Limits::shared("limit-test-1", None, 20);
        let b = Limits::shared("limit-test-1", None, 5);
        let other_region = Limits::shared("limit-test-2", None, 20);
        let other_identity =
            Limits::shared("limit-test-1", Some("arn:aws:iam::111122223333:role/x"), 20);
        assert!(Arc::ptr_eq(&a.write, &b.write));
        assert_eq!(a.of(Bucket::Write).rate(), 5);
        assert_eq!(a.of(Bucket::Tag).rate(), 5);
        assert_eq!(other_region.of(Bucket::Write).rate(), 20);
        assert_eq!(other_identity.of(Bucket::Write).rate(), 20);
        assert!(
            !Arc::ptr_eq(&a.write, &a.tag),
            "each bucket has its own limit"
        );
    }
}
