//! The blocking file-system work behind [`FileSink`](crate::FileSink).

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use fs4::FileExt;
use rotator_core::{
    Document, Precondition, SinkError, Stored, Version, MANAGED_BY_KEY, MANAGED_BY_VALUE,
};
use serde_json::Value;

use crate::VERSION_KEY;

/// What a write needs to know about the file it replaces.
pub(crate) struct Current {
    pub(crate) stored: Stored,
    counter: u64,
}

/// Maps an I/O error to the sink's error, naming what was attempted on which path.
fn io_error(action: &str, path: &Path, error: io::Error) -> SinkError {
    if error.kind() == ErrorKind::PermissionDenied {
        SinkError::Unauthorized {
            detail: format!(
                "permission denied to {action} {}: the rotator's user needs access to it",
                path.display()
            ),
        }
    } else {
        SinkError::unavailable(format!("cannot {action} {}", path.display()), error)
    }
}

/// Reads the document at `path`, refusing files that group or others can read.
pub(crate) fn read(path: &Path, key: &str) -> Result<Option<Current>, SinkError> {
    let file = match File::open(path) {
        Ok(file) => file,
        // A missing parent directory, or a file where one is expected, also means "nothing".
        Err(error) if matches!(error.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(None)
        }
        Err(error) => return Err(io_error("read", path, error)),
    };
    let invalid = |detail: String| SinkError::InvalidDocument {
        key: key.to_owned(),
        detail: format!("{}: {detail}", path.display()),
    };
    let metadata = file.metadata().map_err(|e| io_error("inspect", path, e))?;
    if !metadata.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SinkError::Insecure {
            detail: format!(
                "{path} has mode {mode:04o}, so group or others can read it; treat its token \
                 as exposed and run `chmod 600 {path}`",
                path = path.display()
            ),
        });
    }
    // Sized from the metadata already in hand; `take` keeps `read_to_end` from asking the
    // file system for the size and position again.
    let mut bytes = Vec::with_capacity(metadata.len() as usize + 1);
    file.take(metadata.len() + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error("read", path, e))?;
    let mut fields = Document::from_slice(&bytes)
        .map_err(|error| invalid(error.to_string()))?
        .into_fields();
    let managed = fields
        .remove(MANAGED_BY_KEY)
        .as_ref()
        .and_then(Value::as_str)
        == Some(MANAGED_BY_VALUE);
    let counter = match fields.remove(VERSION_KEY) {
        None => 0,
        Some(value) => value.as_u64().ok_or_else(|| {
            invalid(format!(
                "the field `{VERSION_KEY}` is not a non-negative integer"
            ))
        })?,
    };
    Ok(Some(Current {
        stored: Stored {
            document: Document::new(fields),
            version: Version::new(counter.to_string()),
            managed,
        },
        counter,
    }))
}

/// Writes `document` to `path` under the key's lock, after checking the precondition and
/// ownership against the current file.
pub(crate) fn write(
    path: &Path,
    key: &str,
    document: Document,
    precondition: &Precondition,
    takeover: bool,
) -> Result<Version, SinkError> {
    let (parent, name) = split(path);
    let lock_path = parent.join(format!(".{name}.lock"));
    let open_lock = || {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
    };
    // The directory usually exists: create it only when the lock file cannot be made.
    let lock = match open_lock() {
        Err(error) if error.kind() == ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|e| io_error("create the directory", parent, e))?;
            open_lock()
        }
        other => other,
    }
    .map_err(|e| io_error("open the lock file", &lock_path, e))?;
    // Fully qualified: newer std has an inherent `File::lock`, beyond our rust-version.
    FileExt::lock(&lock).map_err(|e| io_error("lock", &lock_path, e))?;

    let current = read(path, key)?;
    let conflict = |detail: String| {
        Err(SinkError::Conflict {
            key: key.to_owned(),
            detail,
        })
    };
    match (precondition, &current) {
        (Precondition::Any, _) | (Precondition::Absent, None) => {}
        (Precondition::Absent, Some(current)) => {
            return conflict(format!(
                "expected no document, found version {}",
                current.stored.version
            ))
        }
        (Precondition::Version(expected), None) => {
            return conflict(format!("expected version {expected}, found no document"))
        }
        (Precondition::Version(expected), Some(current)) if *expected != current.stored.version => {
            return conflict(format!(
                "expected version {expected}, found version {}",
                current.stored.version
            ))
        }
        (Precondition::Version(_), Some(_)) => {}
    }
    if let Some(current) = &current {
        if !current.stored.managed && !takeover {
            return Err(SinkError::Unmanaged {
                key: key.to_owned(),
            });
        }
    }
    let counter = current
        .map_or(0, |current| current.counter)
        .checked_add(1)
        .ok_or_else(|| SinkError::InvalidDocument {
            key: key.to_owned(),
            detail: format!(
                "{}: the field `{VERSION_KEY}` is at its maximum",
                path.display()
            ),
        })?;

    let mut fields = document.into_fields();
    fields.insert(MANAGED_BY_KEY.into(), MANAGED_BY_VALUE.into());
    fields.insert(VERSION_KEY.into(), counter.into());
    let mut bytes = serde_json::to_vec_pretty(&fields)
        .map_err(|e| SinkError::other("cannot serialize the document", e))?;
    bytes.push(b'\n');
    replace(parent, &name, path, &bytes)?;

    // Held until the new file is in place, so the next writer's check sees it.
    drop(lock);
    Ok(Version::new(counter.to_string()))
}

/// Atomically replaces `path` with `bytes`: temporary file, fsync, rename, fsync directory.
fn replace(parent: &Path, name: &str, path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(parent)
        .map_err(|e| io_error("create a temporary file in", parent, e))?;
    temp.write_all(bytes)
        .and_then(|()| temp.as_file().sync_all())
        .map_err(|e| io_error("write", temp.path(), e))?;
    // On failure the temporary file is removed when `temp` drops.
    temp.persist(path)
        .map_err(|e| io_error("replace", path, e.error))?;
    File::open(parent)
        .and_then(|directory| directory.sync_all())
        .map_err(|e| io_error("sync the directory", parent, e))
}

/// The directory and file name of a document path (which always has both).
fn split(path: &Path) -> (&Path, String) {
    let parent = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    (parent, name)
}

/// Checks that `directory` exists (creating it, 0700, if missing) and that we may create
/// files in it, by creating and removing a temporary file.
pub(crate) fn check(directory: &Path) -> Result<(), SinkError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .map_err(|e| io_error("create the directory", directory, e))?;
    let metadata = fs::metadata(directory).map_err(|e| io_error("inspect", directory, e))?;
    if !metadata.is_dir() {
        return Err(SinkError::NotFound {
            detail: format!("{} is not a directory", directory.display()),
        });
    }
    tempfile::Builder::new()
        .prefix(".check.")
        .suffix(".tmp")
        .tempfile_in(directory)
        .and_then(|temp| temp.close())
        .map_err(|e| io_error("create files in", directory, e))
}
