//! A template store for alation-rotator: each document is a file of `KEY=value` lines that
//! systemd's `EnvironmentFile=` and `docker run --env-file` read as they are.
//!
//! ```toml
//! [stores.env]
//! type = "env_dir"
//! directory = "/etc/alation-tokens"
//! ```
//!
//! The key `alation/tableau-prod` is the file `/etc/alation-tokens/alation/tableau-prod.env`:
//!
//! ```text
//! # alation-rotator version=3 managed-by=alation-rotator json=user_id
//! API_ACCESS_TOKEN=…
//! USER_ID=102
//! TOKEN_EXPIRES_AT=2026-12-05T03:18:05Z
//! ```
//!
//! The first line carries what the [`TokenSink`] contract needs besides the document: a
//! version (a counter), the ownership marker, and which fields hold JSON rather than text.
//! Files are 0600 in 0700 directories and replaced atomically (temp file, fsync, rename);
//! one lock file per directory makes compare-and-set atomic among processes on this host.
//!
//! It is written only against the public API of `rotator-core` and the runner library; its
//! tests use `rotator-testkit`. Copy it, rename it, and replace the file handling with your
//! store's client.
#![deny(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use rotator_core::{
    Capabilities, ConfigError, Document, Precondition, SinkError, Stored, TokenSink, Version,
    WriteOptions, MANAGED_BY_KEY, MANAGED_BY_VALUE,
};
use serde::Deserialize;
use serde_json::{Map, Value};

/// `[stores.NAME]` with `type = "env_dir"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The directory that holds the env files, e.g. `/etc/alation-tokens`. Created 0700.
    pub directory: PathBuf,
}

/// The store type the runner registers (`App::new().with_store::<EnvDir>()`).
#[derive(Debug)]
pub struct EnvDir;

impl alation_rotator::StoreType for EnvDir {
    const TYPE: &'static str = "env_dir";
    type Config = Config;

    fn validate(config: &Config) -> Result<(), ConfigError> {
        if !config.directory.is_absolute() {
            return Err(ConfigError::new(
                "directory",
                "expected an absolute path, e.g. \"/etc/alation-tokens\"",
            ));
        }
        Ok(())
    }

    fn validate_key(_config: &Config, key: &str) -> Result<(), SinkError> {
        validate_key(key)
    }

    async fn build(config: &Config) -> Result<Arc<dyn TokenSink>, SinkError> {
        Ok(Arc::new(EnvDirSink {
            directory: config.directory.clone(),
        }))
    }
}

/// Keys are `/`-separated segments of letters, digits, `_` and `-`.
pub fn validate_key(key: &str) -> Result<(), SinkError> {
    let valid = !key.is_empty()
        && key.len() <= 256
        && key.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    if valid {
        Ok(())
    } else {
        Err(SinkError::InvalidKey {
            key: key.to_owned(),
            detail: "expected `/`-separated segments of letters, digits, `_` and `-`".into(),
        })
    }
}

/// The sink: documents as env files under `directory`.
#[derive(Debug)]
pub struct EnvDirSink {
    directory: PathBuf,
}

/// What the first line of a file says.
struct Header {
    ours: bool,
    version: u64,
    managed: bool,
    json_fields: Vec<String>,
}

fn io_error(what: &str, path: &Path, error: std::io::Error) -> SinkError {
    SinkError::Unavailable {
        detail: format!("{what} {}: {error}", path.display()),
        source: None,
    }
}

impl EnvDirSink {
    fn path_of(&self, key: &str) -> PathBuf {
        self.directory.join(format!("{key}.env"))
    }

    /// Takes the directory's lock for the rest of the scope.
    fn lock(&self) -> Result<File, SinkError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.directory)
            .map_err(|e| io_error("create", &self.directory, e))?;
        let path = self.directory.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_error("open", &path, e))?;
        file.lock().map_err(|e| io_error("lock", &path, e))?;
        Ok(file)
    }

    fn load(&self, key: &str) -> Result<Option<(Header, Document)>, SinkError> {
        let path = self.path_of(key);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        let invalid = |detail: &str| SinkError::InvalidDocument {
            key: key.to_owned(),
            detail: detail.to_owned(),
        };
        let mut lines = text.lines();
        let header = parse_header(lines.next().unwrap_or_default());
        let mut fields = Map::new();
        for line in lines.filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
            let (name, value) = line
                .split_once('=')
                .ok_or_else(|| invalid("a line without `=`"))?;
            let name = name.to_ascii_lowercase();
            let value = if header.json_fields.contains(&name) {
                serde_json::from_str(value).map_err(|_| invalid("a JSON field does not parse"))?
            } else if !header.ours && value.parse::<i64>().is_ok() {
                // A file written by hand has no types: whole numbers read as numbers.
                Value::from(value.parse::<i64>().unwrap_or_default())
            } else {
                Value::String(value.to_owned())
            };
            fields.insert(name, value);
        }
        Ok(Some((header, Document::new(fields))))
    }
}

fn parse_header(line: &str) -> Header {
    let mut header = Header {
        ours: line.starts_with("# alation-rotator "),
        version: 0,
        managed: false,
        json_fields: Vec::new(),
    };
    for word in line.trim_start_matches('#').split_whitespace() {
        match word.split_once('=') {
            Some(("version", v)) => header.version = v.parse().unwrap_or(0),
            Some((MANAGED_BY_KEY, v)) => header.managed = v == MANAGED_BY_VALUE,
            Some(("json", v)) => header.json_fields = v.split(',').map(str::to_owned).collect(),
            _ => {}
        }
    }
    header
}

/// The file's text; a value with a line break cannot be an env value.
fn render(key: &str, document: &Document, version: u64) -> Result<String, SinkError> {
    let mut body = String::new();
    let mut json_fields = Vec::new();
    for (name, value) in document.fields() {
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let text = match value {
            Value::String(text) => text.clone(),
            other => {
                json_fields.push(name.clone());
                other.to_string()
            }
        };
        if !valid_name || text.contains(['\n', '\r']) {
            return Err(SinkError::InvalidDocument {
                key: key.to_owned(),
                detail: format!(
                    "field `{name}` cannot be an env file line (lowercase names, one-line values)"
                ),
            });
        }
        body.push_str(&format!("{}={text}\n", name.to_ascii_uppercase()));
    }
    Ok(format!(
        "# alation-rotator version={version} {MANAGED_BY_KEY}={MANAGED_BY_VALUE} json={}\n{body}",
        json_fields.join(",")
    ))
}

#[async_trait]
impl TokenSink for EnvDirSink {
    fn describe(&self) -> String {
        format!("env_dir:{}", self.directory.display())
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(true, false, false)
    }

    async fn check(&self) -> Result<(), SinkError> {
        self.lock().map(drop)
    }

    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        validate_key(key)?;
        Ok(self.load(key)?.map(|(header, document)| Stored {
            document,
            version: Version::new(header.version.to_string()),
            managed: header.managed,
        }))
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        validate_key(key)?;
        let _lock = self.lock()?;
        let current = self.load(key)?;
        let conflict = |detail: &str| SinkError::Conflict {
            key: key.to_owned(),
            detail: detail.to_owned(),
        };
        match (&options.precondition, &current) {
            (Precondition::Absent, Some(_)) => return Err(conflict("the key holds a document")),
            (Precondition::Version(_), None) => return Err(conflict("the key holds nothing")),
            (Precondition::Version(expected), Some((header, _)))
                if expected.as_str() != header.version.to_string() =>
            {
                return Err(conflict("another version is stored"))
            }
            _ => {}
        }
        if current.as_ref().is_some_and(|(h, _)| !h.managed) && !options.takeover {
            return Err(SinkError::Unmanaged {
                key: key.to_owned(),
            });
        }
        let version = current.map_or(1, |(header, _)| header.version + 1);
        let text = render(key, document, version)?;
        let path = self.path_of(key);
        let parent = path.parent().expect("a key has a file name");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| io_error("create", parent, e))?;
        let temp = parent.join(format!(".{}.tmp", version));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| io_error("create", &temp, e))?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error("write", &temp, e))?;
        fs::rename(&temp, &path).map_err(|e| io_error("rename into", &path, e))?;
        Ok(Version::new(version.to_string()))
    }
}
