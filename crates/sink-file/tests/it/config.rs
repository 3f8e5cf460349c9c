//! Configuration and key validation, offline.

use std::path::PathBuf;

use rotator_core::SinkError;
use rotator_sink_file::{validate_key, Config, FileSink};

#[test]
fn config_parses_from_toml_and_rejects_unknown_fields() {
    let config: Config = toml::from_str(r#"directory = "/var/lib/alation-rotator""#).unwrap();
    assert_eq!(config.directory, PathBuf::from("/var/lib/alation-rotator"));
    config.validate().unwrap();

    let error = toml::from_str::<Config>("directory = \"/x\"\ndirectry = \"/y\"").unwrap_err();
    assert!(
        error.to_string().contains("unknown field `directry`"),
        "{error}"
    );
    assert!(toml::from_str::<Config>("").is_err());
}

#[test]
fn config_works_inside_a_store_table_tagged_by_type() {
    // How the CLI reads `[stores.NAME]`: the tag is removed before `Config` sees the table.
    #[derive(serde::Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum Store {
        File(Config),
    }
    let Store::File(config) = toml::from_str("type = \"file\"\ndirectory = \"/x\"").unwrap();
    assert_eq!(config.directory, PathBuf::from("/x"));
    assert!(toml::from_str::<Store>("type = \"file\"\ndirectory = \"/x\"\nmode = 1").is_err());
}

#[test]
fn an_empty_directory_is_refused() {
    let config = Config {
        directory: PathBuf::new(),
    };
    let error = config.validate().unwrap_err();
    assert_eq!(error.key, "directory");
    let error = FileSink::new(config).unwrap_err();
    assert!(
        error.to_string().contains("`directory`: is empty"),
        "{error}"
    );
    Config {
        directory: "relative/dir".into(),
    }
    .validate()
    .unwrap();
}

#[test]
fn keys_are_checked_segment_by_segment() {
    for key in [
        "k",
        "alation/tableau-prod",
        "a/b/c.d_e-F9",
        "v1.2",
        "a/b.json",
    ] {
        validate_key(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    }
    let long = "a".repeat(513);
    for (key, expected) in [
        ("", "empty"),
        ("/abs", "must not start with '/'"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("..", "starts with '.'"),
        ("a/../b", "starts with '.'"),
        ("a/./b", "starts with '.'"),
        (".k", "starts with '.'"),
        ("a b", "contains ' '"),
        ("a\\b", "contains '\\\\'"),
        ("ä", "contains 'ä'"),
        ("a.json/b", "ending in \".json\""),
        (long.as_str(), "longer than 512 bytes"),
    ] {
        match validate_key(key) {
            Err(SinkError::InvalidKey { key: named, detail }) => {
                assert_eq!(named, key);
                assert!(detail.contains(expected), "{key:?}: {detail}");
            }
            other => panic!("{key:?}: {other:?}"),
        }
    }
    validate_key(&"a".repeat(512)).unwrap();
}
