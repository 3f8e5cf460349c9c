//! Client construction: CA file and base URL checks.

use std::io::Write;

use rotator_alation::{AlationClient, AlationError, ClientConfig};

fn config_with_ca(path: std::path::PathBuf) -> ClientConfig {
    let mut config = ClientConfig::new("https://alation.example.com".parse().unwrap());
    config.ca_file = Some(path);
    config
}

#[test]
fn an_unreadable_ca_file_is_invalid_config_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing-ca.pem");
    let err = AlationClient::new(config_with_ca(path.clone())).unwrap_err();
    assert!(matches!(err, AlationError::InvalidConfig { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_ca_file_without_pem_is_invalid_config_naming_it() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(b"this is not a certificate\n").unwrap();
    let err = AlationClient::new(config_with_ca(file.path().to_owned())).unwrap_err();
    assert!(matches!(err, AlationError::InvalidConfig { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&file.path().display().to_string()),
        "{message}"
    );
    assert!(message.contains("no PEM certificate"), "{message}");
}

#[test]
fn a_base_url_with_credentials_is_refused_without_repeating_them() {
    let config = ClientConfig::new(
        "https://admin:hunter2@alation.example.com/"
            .parse()
            .unwrap(),
    );
    let err = AlationClient::new(config).unwrap_err();
    assert!(matches!(err, AlationError::InvalidConfig { .. }), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[test]
fn only_http_and_https_base_urls_are_accepted() {
    let config = ClientConfig::new("ftp://alation.example.com/".parse().unwrap());
    let err = AlationClient::new(config).unwrap_err();
    assert!(matches!(err, AlationError::InvalidConfig { .. }), "{err:?}");
}
