//! When a token is due for renewal.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

/// How long before expiry a token is renewed: a fixed duration, or a share of the token's
/// real lifetime (`token_expires_at - created_at`, as Alation reported it).
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum RenewBefore {
    /// Renew when less than this remains.
    Duration(Duration),
    /// Renew when less than this percentage (0 to 100) of the lifetime remains.
    Percent(f64),
}

impl RenewBefore {
    /// The remaining time below which a token created at `created_at` and expiring at
    /// `expires_at` must be renewed.
    pub fn threshold(&self, created_at: Timestamp, expires_at: Timestamp) -> SignedDuration {
        match *self {
            RenewBefore::Duration(d) => SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX),
            RenewBefore::Percent(p) => {
                let lifetime = expires_at
                    .duration_since(created_at)
                    .max(SignedDuration::ZERO);
                lifetime.mul_f64(p / 100.0)
            }
        }
    }

    /// Whether a token is due: less than the threshold remains at `now`.
    pub fn is_due(&self, now: Timestamp, created_at: Timestamp, expires_at: Timestamp) -> bool {
        expires_at.duration_since(now) <= self.threshold(created_at, expires_at)
    }
}

impl fmt::Display for RenewBefore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenewBefore::Duration(d) => write!(f, "{}", humantime::format_duration(*d)),
            RenewBefore::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Why a renewal threshold did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected a duration like \"8h\" or \"14d\", or a percentage of the token lifetime like \"33%\": {reason}")]
pub struct ParseRenewBeforeError {
    reason: String,
}

impl FromStr for RenewBefore {
    type Err = ParseRenewBeforeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if let Some(number) = s.strip_suffix('%') {
            let p: f64 = number.trim().parse().map_err(|_| ParseRenewBeforeError {
                reason: format!("{number:?} is not a number"),
            })?;
            if !(0.0..=100.0).contains(&p) {
                return Err(ParseRenewBeforeError {
                    reason: format!("{p}% is outside 0% to 100%"),
                });
            }
            return Ok(RenewBefore::Percent(p));
        }
        humantime::parse_duration(s)
            .map(RenewBefore::Duration)
            .map_err(|e| ParseRenewBeforeError {
                reason: format!("{s:?}: {e}"),
            })
    }
}

impl<'de> serde::Deserialize<'de> for RenewBefore {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for RenewBefore {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// The renewal rules for one integration. Start from [`Policy::default`] and set fields.
#[derive(Clone, Copy, PartialEq, Debug)]
#[non_exhaustive]
pub struct Policy {
    /// Renew the access token when less than this remains.
    pub access_renew_before: RenewBefore,
    /// Regenerate the refresh token when less than this remains.
    pub refresh_renew_before: RenewBefore,
    /// Ask Alation whether stored access tokens are still active before calling them fresh.
    pub validate: bool,
    /// Keep a second (standby) refresh token to mint from when the primary is lost.
    pub standby: bool,
    /// The shortest time between two regenerations of one refresh token, whatever
    /// `refresh_renew_before` says.
    pub min_regenerate_interval: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            access_renew_before: RenewBefore::Duration(Duration::from_secs(8 * 3600)),
            refresh_renew_before: RenewBefore::Duration(Duration::from_secs(14 * 86400)),
            validate: false,
            standby: false,
            min_regenerate_interval: Duration::from_secs(3600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn parses_durations_and_percentages() {
        assert_eq!(
            "8h".parse::<RenewBefore>().unwrap(),
            RenewBefore::Duration(Duration::from_secs(8 * 3600))
        );
        assert_eq!(
            "33%".parse::<RenewBefore>().unwrap(),
            RenewBefore::Percent(33.0)
        );
        let err = "eight hours"
            .parse::<RenewBefore>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("expected a duration"), "{err}");
        assert!("150%".parse::<RenewBefore>().is_err());
    }

    #[test]
    fn duration_threshold_is_due_only_inside_the_window() {
        let created = ts("2026-01-01T00:00:00Z");
        let expires = ts("2026-01-02T00:00:00Z");
        let policy: RenewBefore = "8h".parse().unwrap();
        assert!(!policy.is_due(ts("2026-01-01T15:59:00Z"), created, expires));
        assert!(policy.is_due(ts("2026-01-01T16:00:00Z"), created, expires));
        assert!(policy.is_due(ts("2026-01-03T00:00:00Z"), created, expires));
    }

    #[test]
    fn percentage_uses_the_real_lifetime() {
        let created = ts("2026-01-01T00:00:00Z");
        let expires = ts("2026-01-01T00:00:10Z");
        let policy: RenewBefore = "50%".parse().unwrap();
        assert_eq!(
            policy.threshold(created, expires),
            SignedDuration::from_secs(5)
        );
        assert!(!policy.is_due(ts("2026-01-01T00:00:04Z"), created, expires));
        assert!(policy.is_due(ts("2026-01-01T00:00:05Z"), created, expires));
    }
}
