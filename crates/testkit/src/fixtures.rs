//! Helpers for tests that run sinks and the rotator against real peers.
//!
//! # Test peers
//!
//! The servers these helpers are used with (OpenBao, moto, LocalStack) are started by
//! [`peers`](crate::peers); they are chosen by environment variables, listed in the
//! [crate documentation](crate#choosing-how-peers-run):
//!
//! | Variable | Meaning |
//! |---|---|
//! | `ROTATOR_TEST_PEERS` | `process` (default) or `testcontainers` (Docker images, cargo feature `testcontainers`) |
//! | `ROTATOR_TEST_BAO_BIN` | the `bao` binary to start (default: `bao` on `PATH`) |
//! | `ROTATOR_TEST_MOTO_BIN` | the `moto_server` binary to start (default: on `PATH`) |
//! | `ROTATOR_TEST_OPENBAO_IMAGE`, `ROTATOR_TEST_LOCALSTACK_IMAGE` | the images under `testcontainers` |
//!
//! A test whose peer cannot be found fails with a message naming the variable to set, rather
//! than passing silently; there is no mode that skips. Because every conformance key carries
//! [`unique_suffix`], runs against a shared server never collide.

/// A random suffix, 16 lowercase hex digits, for keys, names and secret values that must be
/// unique to one test run. It uses only characters every store accepts in a key.
pub fn unique_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Panics if `haystack` contains any of `secrets`.
///
/// Meant for end-to-end tests that search a process's stdout, stderr or log files for the
/// token values they planted. The panic message names which secret appeared (`secret #i`, its
/// index in `secrets`) and the byte offset, and quotes the surrounding text with every secret
/// replaced by `<secret #i>`, so the failure report itself never leaks a value.
///
/// ```
/// rotator_testkit::fixtures::assert_no_secrets("rotated tableau-prod", &["at-123", "rt-456"]);
/// ```
#[track_caller]
pub fn assert_no_secrets(haystack: &str, secrets: &[&str]) {
    assert_no_secrets_in("the text searched", haystack, secrets);
}

/// Like [`assert_no_secrets`], naming what was searched (e.g. `"stderr of alation-rotator run"`)
/// in the panic message.
#[track_caller]
pub fn assert_no_secrets_in(what: &str, haystack: &str, secrets: &[&str]) {
    // Empty secrets would match everywhere and mean a broken test, not a leak.
    let found = secrets
        .iter()
        .enumerate()
        .filter(|(_, secret)| !secret.is_empty())
        .filter_map(|(index, secret)| haystack.find(secret).map(|offset| (offset, index)))
        .min();
    if let Some((offset, index)) = found {
        let start = floor_char_boundary(haystack, offset.saturating_sub(80));
        let end = floor_char_boundary(haystack, offset + secrets[index].len() + 80);
        panic!(
            "secret #{index} (of {}) appears in {what} at byte offset {offset}; context: {:?}",
            secrets.len(),
            redact(&haystack[start..end], secrets),
        );
    }
}

/// `text` with every secret replaced by `<secret #i>`.
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .enumerate()
        .filter(|(_, secret)| !secret.is_empty())
        .fold(text.to_owned(), |text, (index, secret)| {
            text.replace(secret, &format!("<secret #{index}>"))
        })
}

/// The largest char boundary at or below `index` (`str::floor_char_boundary` is unstable).
fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_unique_and_key_safe() {
        let (a, b) = (unique_suffix(), unique_suffix());
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn clean_text_passes() {
        assert_no_secrets("nothing to see", &["s3cret", ""]);
    }

    #[test]
    fn a_leak_is_named_by_index_and_offset_without_its_value() {
        let haystack = format!("{}token=s3cret-two é", "é".repeat(60));
        let panic = std::panic::catch_unwind(|| {
            assert_no_secrets_in("stderr", &haystack, &["s3cret-one", "s3cret-two"]);
        })
        .unwrap_err();
        let message = panic.downcast_ref::<String>().unwrap();
        assert!(
            message.starts_with("secret #1 (of 2) appears in stderr at byte offset 126"),
            "{message}"
        );
        assert!(message.contains("token=<secret #1>"), "{message}");
        assert!(!message.contains("s3cret-two"), "{message}");
    }
}
