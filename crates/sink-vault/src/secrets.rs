//! Reading credentials from the environment variables and files the configuration names.
//! Errors name the variable or file and the configuration key, never the content.

use std::path::{Path, PathBuf};

use rotator_core::SinkError;
use secrecy::SecretString;

/// The secret from the environment variable `env` or else the file `file`.
pub(crate) fn read_ref(
    env: &Option<String>,
    file: &Option<PathBuf>,
    env_key: &str,
    file_key: &str,
    what: &str,
) -> Result<SecretString, SinkError> {
    match (env, file) {
        (Some(env), _) => read_env(env, env_key, what),
        (None, Some(file)) => read_file(file, file_key, what),
        (None, None) => Err(SinkError::Unauthorized {
            detail: format!("no source for {what}: set `{env_key}` or `{file_key}`"),
        }),
    }
}

/// The trimmed, non-empty value of the environment variable `name` (configuration key
/// `key`), which must hold `what`.
pub(crate) fn read_env(name: &str, key: &str, what: &str) -> Result<SecretString, SinkError> {
    let value = std::env::var(name).map_err(|e| SinkError::Unauthorized {
        detail: match e {
            std::env::VarError::NotPresent => {
                format!("environment variable {name} ({key}) is not set; it must hold {what}")
            }
            std::env::VarError::NotUnicode(_) => {
                format!("environment variable {name} ({key}) is not valid UTF-8")
            }
        },
    })?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SinkError::Unauthorized {
            detail: format!("environment variable {name} ({key}) is empty; it must hold {what}"),
        });
    }
    Ok(SecretString::from(trimmed))
}

/// The trimmed, non-empty content of the file `path` (configuration key `key`), which must
/// hold `what`.
pub(crate) fn read_file(path: &Path, key: &str, what: &str) -> Result<SecretString, SinkError> {
    let value = std::fs::read_to_string(path).map_err(|e| SinkError::Unauthorized {
        detail: format!(
            "cannot read {key} {} ({what}): {}",
            path.display(),
            io_reason(&e)
        ),
    })?;
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SinkError::Unauthorized {
            detail: format!("{key} {} is empty; it must hold {what}", path.display()),
        });
    }
    Ok(SecretString::from(trimmed))
}

/// Why a file could not be read, by kind only: a message about invalid UTF-8 could quote
/// content.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        std::io::ErrorKind::InvalidData => "not valid UTF-8".to_owned(),
        kind => kind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn secret_files_are_trimmed_and_errors_never_quote_content() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "s.supersecret\n").unwrap();
        let token = read_file(&file, "auth.token_file", "the Vault token").unwrap();
        assert_eq!(token.expose_secret(), "s.supersecret");
        std::fs::write(&file, [0xff, 0xfe, b's']).unwrap();
        let err = read_file(&file, "auth.token_file", "the Vault token")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not valid UTF-8"), "{err}");
        let err = read_file(&dir.path().join("missing"), "auth.token_file", "the token")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
    }
}
