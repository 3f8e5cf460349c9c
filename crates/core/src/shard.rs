//! Splitting a fleet of integrations over several runners (a Kubernetes Indexed Job): each
//! integration belongs to exactly one shard, chosen from its name alone, so adding or removing
//! an integration never moves another one.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// One shard of `count`: the runner that handles it takes the integrations whose names hash
/// to `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Why a shard specification is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShardError(String);

/// The variables a Kubernetes Indexed Job sets: the pod's index (set by Kubernetes) and the
/// number of completions (set by the Job's own `env`, to the same value as
/// `spec.completions`).
pub const KUBERNETES_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// See [`KUBERNETES_INDEX_ENV`].
pub const KUBERNETES_COUNT_ENV: &str = "JOB_COMPLETIONS";

impl Shard {
    /// Shard `index` of `count` (`index < count`).
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 {
            return Err(ShardError("the shard count must be at least 1".into()));
        }
        if index >= count {
            return Err(ShardError(format!(
                "shard index {index} is out of range: indexes run from 0 to {}",
                count - 1
            )));
        }
        Ok(Self { index, count })
    }

    /// The whole fleet: one shard.
    pub fn all() -> Self {
        Self { index: 0, count: 1 }
    }

    /// Reads the shard of a Kubernetes Indexed Job from `JOB_COMPLETION_INDEX` and
    /// `JOB_COMPLETIONS`, through `var` (pass `|name| std::env::var(name).ok()`).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ShardError> {
        let read = |name: &str| -> Result<u32, ShardError> {
            let value = var(name).ok_or_else(|| {
                ShardError(format!(
                    "{name} is not set; --shard-from-env is for Kubernetes Indexed Jobs, which \
                     set {KUBERNETES_INDEX_ENV}; set {KUBERNETES_COUNT_ENV} in the pod's env to \
                     the Job's spec.completions"
                ))
            })?;
            value
                .trim()
                .parse()
                .map_err(|_| ShardError(format!("{name} must be a whole number, not {value:?}")))
        };
        Self::new(read(KUBERNETES_INDEX_ENV)?, read(KUBERNETES_COUNT_ENV)?)
    }

    /// The shard an integration name belongs to among `count`: the first eight bytes of the
    /// name's SHA-256, modulo `count`. Stable across versions and machines.
    pub fn of(name: &str, count: u32) -> u32 {
        let digest = Sha256::digest(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(count.max(1))) as u32
    }

    /// Whether this shard handles the integration named `name`.
    pub fn owns(&self, name: &str) -> bool {
        Self::of(name, self.count) == self.index
    }

    /// This shard's index.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> u32 {
        self.count
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    /// `I/N`, e.g. `0/3`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || ShardError(format!("expected I/N such as 0/3, not {text:?}"));
        let (index, count) = text.split_once('/').ok_or_else(invalid)?;
        Self::new(
            index.trim().parse().map_err(|_| invalid())?,
            count.trim().parse().map_err(|_| invalid())?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_belongs_to_exactly_one_shard_for_every_count() {
        let names: Vec<String> = (0..5_000).map(|i| format!("integration-{i}")).collect();
        for count in 1..=16 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            let mut sizes = vec![0usize; count as usize];
            for name in &names {
                let owners: Vec<_> = shards.iter().filter(|s| s.owns(name)).collect();
                assert_eq!(owners.len(), 1, "{name} with {count} shards: {owners:?}");
                sizes[owners[0].index() as usize] += 1;
            }
            // Roughly even: no shard gets less than half or more than twice its share.
            let share = names.len() / count as usize;
            for size in sizes {
                assert!(
                    size > share / 2 && size < share * 2,
                    "{count}: {size} vs {share}"
                );
            }
        }
    }

    #[test]
    fn adding_an_integration_moves_no_other() {
        let before: Vec<(String, u32)> = (0..1_000)
            .map(|i| format!("int-{i}"))
            .map(|n| (n.clone(), Shard::of(&n, 7)))
            .collect();
        let _added = Shard::of("a-new-integration", 7);
        for (name, shard) in before {
            assert_eq!(Shard::of(&name, 7), shard);
        }
    }

    #[test]
    fn parses_flags_and_kubernetes_env() {
        assert_eq!("1/3".parse::<Shard>().unwrap(), Shard::new(1, 3).unwrap());
        assert!("3/3"
            .parse::<Shard>()
            .unwrap_err()
            .to_string()
            .contains("0 to 2"));
        assert!("x".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        let env = |name: &str| match name {
            "JOB_COMPLETION_INDEX" => Some("2".to_owned()),
            "JOB_COMPLETIONS" => Some("4".to_owned()),
            _ => None,
        };
        assert_eq!(Shard::from_env(env).unwrap(), Shard::new(2, 4).unwrap());
        let missing = Shard::from_env(|_| None).unwrap_err().to_string();
        assert!(missing.contains("JOB_COMPLETION_INDEX"), "{missing}");
        // A stable assignment: these values (from Python's hashlib) must never change between
        // releases, or a rolling upgrade would hand integrations to two shards at once.
        for (name, of_3, of_7) in [
            ("tableau-prod", 0, 6),
            ("dbt-nightly", 2, 1),
            ("airflow", 2, 5),
        ] {
            assert_eq!(
                (Shard::of(name, 3), Shard::of(name, 7)),
                (of_3, of_7),
                "{name}"
            );
        }
    }
}
