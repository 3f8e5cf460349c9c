//! A local, owner-only holding place for a regenerated refresh token whose state store could
//! not take it. Alation kills the old token the moment it issues a new one, so the new one
//! must never be dropped: it waits here until a later run stores it.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::document::{Document, RefreshTokenDocument, TokenDocument};

/// Why the escrow could not be used. Never holds the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EscrowError {
    /// A file system operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we tried.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The escrow file is readable by others.
    #[error(
        "refusing to read {path}: its mode {mode:o} lets others read it; run `chmod 600 {path}`"
    )]
    Insecure {
        /// The path.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The escrow file does not hold a refresh-token document.
    #[error("{path} is not a refresh-token document: {detail}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// A directory of escrowed refresh-token documents, one file per integration, mode 0600 in a
/// 0700 directory.
#[derive(Debug, Clone)]
pub struct Escrow {
    directory: PathBuf,
}

impl Escrow {
    /// An escrow in `directory` (created on first use).
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
        }
    }

    /// The escrow file for an integration.
    pub fn path_of(&self, integration: &str) -> PathBuf {
        self.directory.join(format!("{integration}.json"))
    }

    /// Whether a token waits for this integration.
    pub fn holds(&self, integration: &str) -> bool {
        self.path_of(integration).exists()
    }

    /// Stores a document durably (temp file, fsync, rename, fsync directory).
    pub fn put(
        &self,
        integration: &str,
        document: &RefreshTokenDocument,
    ) -> Result<PathBuf, EscrowError> {
        let io_err = |action, path: &Path| {
            let path = path.to_owned();
            move |source| EscrowError::Io {
                action,
                path,
                source,
            }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.directory)
            .map_err(io_err("create directory", &self.directory))?;
        let path = self.path_of(integration);
        // A unique temporary name: two runners on one machine may escrow at once.
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{integration}."))
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.directory)
            .map_err(io_err("create a temporary file in", &self.directory))?;
        temp.write_all(&document.to_document().to_json_bytes())
            .and_then(|()| temp.as_file().sync_all())
            .map_err(io_err("write", temp.path()))?;
        temp.persist(&path)
            .map_err(|e| e.error)
            .map_err(io_err("rename into", &path))?;
        File::open(&self.directory)
            .and_then(|dir| dir.sync_all())
            .map_err(io_err("sync directory", &self.directory))?;
        Ok(path)
    }

    /// Reads the document waiting for an integration, if any.
    pub fn get(&self, integration: &str) -> Result<Option<RefreshTokenDocument>, EscrowError> {
        let path = self.path_of(integration);
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(EscrowError::Io {
                    action: "inspect",
                    path,
                    source,
                })
            }
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(EscrowError::Insecure { path, mode });
        }
        let bytes = fs::read(&path).map_err(|source| EscrowError::Io {
            action: "read",
            path: path.clone(),
            source,
        })?;
        Document::from_slice(&bytes)
            .and_then(|doc| RefreshTokenDocument::from_document(&doc))
            .map(Some)
            .map_err(|e| EscrowError::Invalid {
                path,
                detail: e.to_string(),
            })
    }

    /// Deletes the escrow file of an integration once its token is stored.
    pub fn remove(&self, integration: &str) -> Result<(), EscrowError> {
        let path = self.path_of(integration);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(EscrowError::Io {
                action: "remove",
                path,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::{ExposeSecret, SecretString};

    fn document() -> RefreshTokenDocument {
        RefreshTokenDocument {
            refresh_token: SecretString::from("escrowed-secret"),
            user_id: 7,
            name: "n".into(),
            token_expires_at: "2026-03-01T00:00:00Z".parse().unwrap(),
            created_at: "2026-01-01T00:00:00Z".parse().unwrap(),
            integration: "i".into(),
            last_regenerated_at: None,
        }
    }

    #[test]
    fn put_get_remove_with_owner_only_modes() {
        let dir = std::env::temp_dir().join(format!("escrow-test-{}", std::process::id()));
        let escrow = Escrow::new(dir.join("escrow"));
        assert!(escrow.get("i").unwrap().is_none());
        let path = escrow.put("i", &document()).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(dir.join("escrow"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert!(escrow.holds("i"));
        let back = escrow.get("i").unwrap().unwrap();
        assert_eq!(back.refresh_token.expose_secret(), "escrowed-secret");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = escrow.get("i").unwrap_err().to_string();
        assert!(err.contains("chmod 600"), "{err}");
        assert!(!err.contains("escrowed-secret"));

        escrow.remove("i").unwrap();
        assert!(!escrow.holds("i"));
        fs::remove_dir_all(dir).unwrap();
    }
}
