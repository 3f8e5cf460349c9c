//! The error every configuration block's `validate()` returns: store backends, token sources
//! and the runner share it, so a message always has the same shape.

/// A setting that cannot work: the key, relative to its block (`address`,
/// `auth.role_id_env`), and what is wrong and expected. Never holds a value from the file,
/// which may be a secret pasted by mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct ConfigError {
    /// The key, relative to the block it is in.
    pub key: String,
    /// What is wrong and what is expected instead.
    pub message: String,
}

impl ConfigError {
    /// An error about `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }
}
