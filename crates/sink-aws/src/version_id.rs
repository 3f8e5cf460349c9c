//! The `VersionId`s the rotator gives the versions it writes.
//!
//! Every `CreateSecret` and `PutSecretValue` carries a `ClientRequestToken`, which becomes the
//! new version's `VersionId`. The rotator makes it
//!
//! ```text
//! alation-rotator-<tags>-<random>
//! ```
//!
//! - `<random>`: 128 random bits (32 hex digits), drawn once per write and sent unchanged
//!   with every retry of that write, so that a retried request never creates a second
//!   version, while two writes (even of the same document) never share a token.
//! - `<tags>`: 8 hex digits of the SHA-256 of the tags the secret was given before this
//!   version was written (marker, configured tags, labels).
//! - the prefix says who wrote the version.
//!
//! So `GetSecretValue` alone tells whether the rotator wrote the current version, and with
//! which tags: the rotator writes only to secrets that carry its marker and have no rotation
//! of their own, so a read needs no `DescribeSecret` while the version is its own. Nothing in
//! it is derived from the document.

use std::collections::BTreeMap;

use rand::Rng;
use sha2::{Digest, Sha256};

const PREFIX: &str = "alation-rotator-";

/// A new version id for a write to a secret that carries `tags` (see [`tags_fingerprint`]).
pub(crate) fn new(tags_fingerprint: &str) -> String {
    let random: [u8; 16] = rand::rng().random();
    format!("{PREFIX}{tags_fingerprint}-{}", hex(&random))
}

/// The tags fingerprint of a version id the rotator made, `None` for any other version id.
pub(crate) fn ours(version_id: &str) -> Option<&str> {
    let rest = version_id.strip_prefix(PREFIX)?;
    let (tags, random) = rest.split_once('-')?;
    let hex_digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex_digits(tags, 8) && hex_digits(random, 32)).then_some(tags)
}

/// 8 hex digits that change when `tags` change.
pub(crate) fn tags_fingerprint(tags: &BTreeMap<String, String>) -> String {
    let mut hasher = Sha256::new();
    for (key, value) in tags {
        hasher.update(key.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hex(&hasher.finalize()[..4])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn version_ids_are_random_fit_aws_limits_and_carry_the_tags() {
        let fingerprint = tags_fingerprint(&tags(&[("managed-by", "alation-rotator")]));
        let a = new(&fingerprint);
        let b = new(&fingerprint);
        assert_ne!(a, b, "every write draws its own token");
        // AWS: a ClientRequestToken / VersionId is 32 to 64 characters.
        assert!((32..=64).contains(&a.len()), "{a}");
        assert_eq!(ours(&a), Some(fingerprint.as_str()));
    }

    #[test]
    fn other_version_ids_are_not_ours() {
        for foreign in [
            "e9d3b2a4-6f1c-4c8e-9b7a-1d2e3f4a5b6c",
            "alation-rotator-0123abcd",
            "alation-rotator-0123abcd-not-hex-at-all-not-hex-at-al",
            "alation-rotator-0123abc-0123456789abcdef0123456789abcdef",
            "xalation-rotator-0123abcd-0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(ours(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn the_fingerprint_follows_the_tags() {
        let base = tags(&[("managed-by", "alation-rotator"), ("team", "data")]);
        let fingerprint = tags_fingerprint(&base);
        assert_eq!(fingerprint.len(), 8);
        assert_eq!(fingerprint, tags_fingerprint(&base.clone()));
        for changed in [
            tags(&[("managed-by", "alation-rotator")]),
            tags(&[("managed-by", "alation-rotator"), ("team", "data2")]),
            tags(&[("managed-by", "alation-rotator"), ("teamdata", "")]),
        ] {
            assert_ne!(fingerprint, tags_fingerprint(&changed), "{changed:?}");
        }
    }
}
