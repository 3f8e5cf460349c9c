//! Integration tests of the file store, compiled into one binary.

mod concurrency;
mod config;
mod conformance;
mod files;

use std::path::Path;

use rotator_core::Document;
use rotator_sink_file::{Config, FileSink};
use serde_json::{json, Value};

/// A store over `directory`.
fn sink(directory: &Path) -> FileSink {
    FileSink::new(Config {
        directory: directory.to_owned(),
    })
    .unwrap()
}

/// A document holding `token` as its access token.
fn document(token: &str) -> Document {
    let Value::Object(fields) = json!({
        "api_access_token": token,
        "user_id": 102,
        "integration": "tableau-prod",
    }) else {
        unreachable!("a JSON object literal")
    };
    Document::new(fields)
}

/// The permission bits of `path`.
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}
