//! The exec store against real programs: the example store passes the conformance suite, and
//! purpose-built programs check every rule of the protocol.

mod conformance;
mod protocol;

use std::path::PathBuf;

/// The example store from the repository (`examples/exec-store/file-store.py`).
pub fn example_store() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/exec-store/file-store.py")
}

/// The Python interpreter: `ROTATOR_TEST_PYTHON`, else `python3` on PATH.
pub fn python() -> String {
    std::env::var("ROTATOR_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}
