//! The local, owner-only holding place for refresh tokens that exist nowhere else yet.
//!
//! Alation kills the old refresh token the moment it issues a new one, so the new one must
//! never be dropped. The engine writes, in this order and each with an fsync: an intent
//! record (no token) before it asks Alation, the raw body of Alation's answer before it
//! parses it, and the parsed token; only then the state location. A later run, or a runner
//! recovering from a crash, finds them here.
//!
//! Files are named from a hash of the integration's identity (Alation base URL, user id,
//! state store and key), so two configurations on one host never read each other's tokens,
//! and each file repeats that identity, which recovery checks. Tokens are never deleted: a
//! file that is no longer needed is renamed to `….discarded-<time>`, and removed only once
//! the token in it has expired.
//!
//! Modes: files 0600 in a 0700 directory. Group bits are tolerated (Kubernetes `fsGroup`
//! makes kubelet add them on every mount); bits for others never are.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use jiff::Timestamp;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::document::{RegenerationIntent, Slot};

/// Why the escrow could not be used. Never holds a token.
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
    /// An escrow file is readable or writable by others.
    #[error(
        "refusing to read {path}: its mode {mode:o} gives others access; run `chmod o-rwx {path}` \
         (group bits from a Kubernetes fsGroup are fine)"
    )]
    Insecure {
        /// The path.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// An escrow file does not hold what its name says.
    #[error("{path} is not a readable escrow record: {detail}")]
    Invalid {
        /// The path.
        path: PathBuf,
        /// What is wrong (never a value).
        detail: String,
    },
}

/// Who an escrowed token belongs to. Recovery stores a token only into the integration whose
/// identity matches exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscrowIdentity {
    /// The integration's name (shown in messages; not part of the file name).
    pub integration: String,
    /// The Alation instance.
    pub base_url: String,
    /// The Alation user.
    pub user_id: i64,
    /// The state store's name.
    pub store: String,
    /// The state key.
    pub key: String,
}

impl EscrowIdentity {
    /// The file-name stem: 32 hex digits of SHA-256 over base URL, user id, store and key.
    pub fn stem(&self) -> String {
        let mut hasher = Sha256::new();
        for part in [
            self.base_url.as_str(),
            &self.user_id.to_string(),
            &self.store,
            &self.key,
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        hex::encode(&hasher.finalize()[..16])
    }

    fn to_value(&self) -> Value {
        json!({
            "integration": self.integration,
            "base_url": self.base_url,
            "user_id": self.user_id,
            "store": self.store,
            "key": self.key,
        })
    }

    /// Whether `value` names this identity (the integration's name may differ: renaming an
    /// integration must not strand its token).
    fn matches(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else { return false };
        value.get("base_url").and_then(Value::as_str) == Some(self.base_url.as_str())
            && value.get("user_id").and_then(Value::as_i64) == Some(self.user_id)
            && value.get("store").and_then(Value::as_str) == Some(self.store.as_str())
            && value.get("key").and_then(Value::as_str) == Some(self.key.as_str())
    }
}

/// A refresh token found in escrow. `Debug` never shows the token.
#[derive(Clone)]
pub struct EscrowedToken {
    /// The file it came from.
    pub path: PathBuf,
    /// Which of the integration's tokens it replaces.
    pub slot: Slot,
    /// The token.
    pub refresh_token: SecretString,
    /// Its name in Alation, when known.
    pub name: Option<String>,
    /// When Alation created it, when known.
    pub created_at: Option<Timestamp>,
    /// When it expires, when known.
    pub token_expires_at: Option<Timestamp>,
    /// It may replace a different token that is still alive (`bootstrap --force`).
    pub replace_live: bool,
    /// It came from a raw answer kept before parsing, not from a parsed token.
    pub from_raw_answer: bool,
}

impl std::fmt::Debug for EscrowedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscrowedToken")
            .field("path", &self.path)
            .field("slot", &self.slot)
            .field("refresh_token", &"[REDACTED]")
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .field("token_expires_at", &self.token_expires_at)
            .field("replace_live", &self.replace_live)
            .field("from_raw_answer", &self.from_raw_answer)
            .finish()
    }
}

/// What the escrow holds for one identity.
#[derive(Debug, Default)]
pub struct EscrowContents {
    /// Tokens that can be recovered.
    pub tokens: Vec<EscrowedToken>,
    /// Raw answers kept before parsing from which no token could be read: a person must look.
    pub unreadable_raw: Vec<PathBuf>,
    /// Files named for this identity whose recorded identity differs; left alone.
    pub mismatched: Vec<PathBuf>,
    /// An intent record left by a runner that did not finish.
    pub intent: Option<RegenerationIntent>,
}

/// The escrow directory.
#[derive(Debug, Clone)]
pub struct Escrow {
    directory: PathBuf,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EscrowError {
    let path = path.to_owned();
    move |source| EscrowError::Io {
        action,
        path,
        source,
    }
}

fn compact_time(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

impl Escrow {
    /// An escrow in `directory` (created 0700 on first use).
    pub fn new(directory: impl Into<PathBuf>) -> Self {
        Self {
            directory: directory.into(),
        }
    }

    /// The directory.
    pub fn directory(&self) -> &Path {
        &self.directory
    }

    fn path(&self, name: String) -> PathBuf {
        self.directory.join(name)
    }

    fn token_path(&self, identity: &EscrowIdentity, slot: Slot) -> PathBuf {
        self.path(format!("{}.{slot}.token.json", identity.stem()))
    }

    fn raw_path(&self, identity: &EscrowIdentity, slot: Slot) -> PathBuf {
        self.path(format!("{}.{slot}.raw.json", identity.stem()))
    }

    fn intent_path(&self, identity: &EscrowIdentity) -> PathBuf {
        self.path(format!("{}.intent.json", identity.stem()))
    }

    /// The file of the first wave, keyed by integration name only.
    fn legacy_path(&self, identity: &EscrowIdentity) -> PathBuf {
        self.path(format!("{}.json", identity.integration))
    }

    fn create_directory(&self) -> Result<(), EscrowError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.directory)
            .map_err(io_error("create directory", &self.directory))
    }

    /// Stores bytes durably: a unique temporary file (0600), fsync, rename, fsync of the
    /// directory.
    fn write_durably(&self, path: &Path, bytes: &[u8]) -> Result<(), EscrowError> {
        self.create_directory()?;
        let mut temp = tempfile::Builder::new()
            .prefix(".escrow.")
            .suffix(".tmp")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.directory)
            .map_err(io_error("create a temporary file in", &self.directory))?;
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(io_error("write", temp.path()))?;
        temp.persist(path)
            .map_err(|e| e.error)
            .map_err(io_error("rename into", path))?;
        self.sync_directory()
    }

    fn sync_directory(&self) -> Result<(), EscrowError> {
        File::open(&self.directory)
            .and_then(|dir| dir.sync_all())
            .map_err(io_error("sync directory", &self.directory))
    }

    /// Proves the escrow can take a token now: creates, fsyncs and removes a file in it.
    pub fn preflight(&self) -> Result<(), EscrowError> {
        self.create_directory()?;
        let mut probe = tempfile::Builder::new()
            .prefix(".preflight.")
            .permissions(fs::Permissions::from_mode(0o600))
            .tempfile_in(&self.directory)
            .map_err(io_error("create a file in", &self.directory))?;
        probe
            .write_all(b"preflight")
            .and_then(|()| probe.as_file().sync_all())
            .map_err(io_error("write", probe.path()))?;
        probe
            .close()
            .map_err(io_error("remove the preflight file in", &self.directory))?;
        self.sync_directory()
    }

    /// Keeps the raw body of a regeneration answer, before anything parses it.
    pub fn put_raw(
        &self,
        identity: &EscrowIdentity,
        slot: Slot,
        body: &[u8],
        received_at: Timestamp,
    ) -> Result<PathBuf, EscrowError> {
        let path = self.raw_path(identity, slot);
        let record = json!({
            "identity": identity.to_value(),
            "slot": slot.name(),
            "received_at": received_at.to_string(),
            "body_base64": base64::engine::general_purpose::STANDARD.encode(body),
        });
        self.write_durably(&path, record.to_string().as_bytes())?;
        Ok(path)
    }

    /// Keeps a parsed refresh token. `replace_live` lets recovery put it over a different
    /// token that still works (a forced bootstrap).
    #[allow(clippy::too_many_arguments)]
    pub fn put_token(
        &self,
        identity: &EscrowIdentity,
        slot: Slot,
        refresh_token: &SecretString,
        name: &str,
        created_at: Timestamp,
        token_expires_at: Timestamp,
        replace_live: bool,
    ) -> Result<PathBuf, EscrowError> {
        let path = self.token_path(identity, slot);
        let record = json!({
            "identity": identity.to_value(),
            "slot": slot.name(),
            "refresh_token": refresh_token.expose_secret(),
            "name": name,
            "created_at": created_at.to_string(),
            "token_expires_at": token_expires_at.to_string(),
            "replace_live": replace_live,
        });
        self.write_durably(&path, record.to_string().as_bytes())?;
        Ok(path)
    }

    /// Records that a regeneration is about to start. Holds no token.
    pub fn put_intent(
        &self,
        identity: &EscrowIdentity,
        intent: &RegenerationIntent,
    ) -> Result<PathBuf, EscrowError> {
        let path = self.intent_path(identity);
        let record = json!({
            "identity": identity.to_value(),
            "slot": intent.slot.name(),
            "runner": intent.runner,
            "started_at": intent.started_at.to_string(),
            "fingerprint": intent.fingerprint,
            "salt": intent.salt,
        });
        self.write_durably(&path, record.to_string().as_bytes())?;
        Ok(path)
    }

    /// Removes the intent record once its regeneration is settled. (An intent holds no token,
    /// so it may be deleted.)
    pub fn remove_intent(&self, identity: &EscrowIdentity) -> Result<(), EscrowError> {
        let path = self.intent_path(identity);
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

    /// Renames a file that is no longer needed to `….discarded-<time>`.
    pub fn discard(&self, path: &Path, now: Timestamp) -> Result<PathBuf, EscrowError> {
        let mut target = path.as_os_str().to_owned();
        target.push(format!(".discarded-{}", compact_time(now)));
        let target = PathBuf::from(target);
        match fs::rename(path, &target) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(target),
            Err(source) => {
                return Err(EscrowError::Io {
                    action: "rename",
                    path: path.to_owned(),
                    source,
                })
            }
        }
        self.sync_directory()?;
        Ok(target)
    }

    /// Whether anything waits for this identity.
    pub fn holds(&self, identity: &EscrowIdentity) -> bool {
        [Slot::Primary, Slot::Standby].iter().any(|&slot| {
            self.token_path(identity, slot).exists() || self.raw_path(identity, slot).exists()
        }) || self.legacy_path(identity).exists()
    }

    /// Everything kept for this identity.
    pub fn contents(&self, identity: &EscrowIdentity) -> Result<EscrowContents, EscrowError> {
        let mut contents = EscrowContents::default();
        for slot in [Slot::Primary, Slot::Standby] {
            let token_path = self.token_path(identity, slot);
            if let Some(record) = read_record(&token_path)? {
                if !identity.matches(record.get("identity")) {
                    contents.mismatched.push(token_path);
                } else {
                    contents
                        .tokens
                        .push(token_from_record(&token_path, slot, &record)?);
                }
            }
            let raw_path = self.raw_path(identity, slot);
            if let Some(record) = read_record(&raw_path)? {
                if !identity.matches(record.get("identity")) {
                    contents.mismatched.push(raw_path);
                } else if contents.tokens.iter().all(|t| t.slot != slot) {
                    match token_from_raw(&raw_path, slot, &record) {
                        Some(token) => contents.tokens.push(token),
                        None => contents.unreadable_raw.push(raw_path),
                    }
                }
            }
        }
        let legacy = self.legacy_path(identity);
        if let Some(record) = read_record(&legacy)? {
            if record.get("user_id").and_then(Value::as_i64) == Some(identity.user_id)
                && contents.tokens.iter().all(|t| t.slot != Slot::Primary)
            {
                contents
                    .tokens
                    .push(token_from_record(&legacy, Slot::Primary, &record)?);
            } else {
                contents.mismatched.push(legacy);
            }
        }
        let intent_path = self.intent_path(identity);
        if let Some(record) = read_record(&intent_path)? {
            if identity.matches(record.get("identity")) {
                contents.intent = Some(intent_from_record(&intent_path, &record)?);
            } else {
                contents.mismatched.push(intent_path);
            }
        }
        Ok(contents)
    }

    /// The raw and token files kept for `slot`, so a stored token's copies can be discarded.
    pub fn files_of(&self, identity: &EscrowIdentity, slot: Slot) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = [
            self.token_path(identity, slot),
            self.raw_path(identity, slot),
        ]
        .into_iter()
        .filter(|p| p.exists())
        .collect();
        let legacy = self.legacy_path(identity);
        if slot == Slot::Primary && legacy.exists() {
            files.push(legacy);
        }
        files
    }

    /// Removes discarded copies whose token expired more than a day before `now`: they can
    /// never be used again.
    pub fn prune_discarded(&self, now: Timestamp) {
        let Ok(entries) = fs::read_dir(&self.directory) else {
            return;
        };
        let cutoff = now - jiff::SignedDuration::from_hours(24);
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if !name.to_string_lossy().contains(".discarded-") {
                continue;
            }
            let expired = read_object(&path).ok().is_some_and(|record| {
                record
                    .get("token_expires_at")
                    .and_then(Value::as_str)
                    .and_then(|t| t.parse::<Timestamp>().ok())
                    .is_some_and(|expires| expires < cutoff)
            });
            if expired {
                let _ = fs::remove_file(&path);
            }
        }
    }
}

/// Reads a JSON object, refusing a file that others may read. `None` when absent.
fn read_record(path: &Path) -> Result<Option<Map<String, Value>>, EscrowError> {
    match fs::metadata(path) {
        Ok(_) => read_object(path).map(Some),
        // No escrow directory (or something else in its place) holds nothing to recover;
        // writing there fails later, loudly, in the regeneration preflight.
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(source) => Err(EscrowError::Io {
            action: "inspect",
            path: path.to_owned(),
            source,
        }),
    }
}

fn read_object(path: &Path) -> Result<Map<String, Value>, EscrowError> {
    let metadata = fs::metadata(path).map_err(io_error("inspect", path))?;
    let mode = metadata.permissions().mode() & 0o7777;
    if mode & 0o007 != 0 {
        return Err(EscrowError::Insecure {
            path: path.to_owned(),
            mode,
        });
    }
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(EscrowError::Invalid {
            path: path.to_owned(),
            detail: "not a JSON object".into(),
        }),
    }
}

fn invalid(path: &Path, detail: &str) -> EscrowError {
    EscrowError::Invalid {
        path: path.to_owned(),
        detail: detail.to_owned(),
    }
}

fn time_field(record: &Map<String, Value>, field: &str) -> Option<Timestamp> {
    record
        .get(field)
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

fn token_from_record(
    path: &Path,
    slot: Slot,
    record: &Map<String, Value>,
) -> Result<EscrowedToken, EscrowError> {
    let token = record
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| invalid(path, "field `refresh_token` is missing"))?;
    Ok(EscrowedToken {
        path: path.to_owned(),
        slot,
        refresh_token: SecretString::from(token),
        name: record
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_owned),
        created_at: time_field(record, "created_at"),
        token_expires_at: time_field(record, "token_expires_at"),
        replace_live: record
            .get("replace_live")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        from_raw_answer: false,
    })
}

/// Reads a token out of a raw regeneration answer as leniently as possible: any JSON object
/// with a non-empty string `refresh_token`.
fn token_from_raw(path: &Path, slot: Slot, record: &Map<String, Value>) -> Option<EscrowedToken> {
    let body = record.get("body_base64").and_then(Value::as_str)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(&bytes) else {
        return None;
    };
    let mut token = token_from_record(path, slot, &answer).ok()?;
    token.from_raw_answer = true;
    Some(token)
}

fn intent_from_record(
    path: &Path,
    record: &Map<String, Value>,
) -> Result<RegenerationIntent, EscrowError> {
    let text = |field: &str| {
        record
            .get(field)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid(path, "an intent field is missing"))
    };
    Ok(RegenerationIntent {
        slot: match text("slot")?.as_str() {
            "standby" => Slot::Standby,
            _ => Slot::Primary,
        },
        runner: text("runner")?,
        started_at: time_field(record, "started_at")
            .ok_or_else(|| invalid(path, "field `started_at` is missing"))?,
        fingerprint: text("fingerprint")?,
        salt: text("salt")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(key: &str) -> EscrowIdentity {
        EscrowIdentity {
            integration: "i".into(),
            base_url: "https://alation.example.com/".into(),
            user_id: 7,
            store: "vault".into(),
            key: key.into(),
        }
    }

    fn now() -> Timestamp {
        "2026-02-01T00:00:00Z".parse().unwrap()
    }

    fn put(escrow: &Escrow, identity: &EscrowIdentity, secret: &str) -> PathBuf {
        escrow
            .put_token(
                identity,
                Slot::Primary,
                &SecretString::from(secret),
                "n",
                "2026-01-01T00:00:00Z".parse().unwrap(),
                "2026-03-01T00:00:00Z".parse().unwrap(),
                false,
            )
            .unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn tokens_are_kept_owner_only_and_found_by_identity_alone() {
        let dir = tempfile::tempdir().unwrap();
        let escrow = Escrow::new(dir.path().join("escrow"));
        let mine = identity("state/a");
        let other = identity("state/b");
        let path = put(&escrow, &mine, "escrowed-secret-a");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("escrow")), 0o700);
        assert!(escrow.holds(&mine));
        assert!(!escrow.holds(&other), "another state key sees nothing");
        let found = escrow.contents(&mine).unwrap();
        assert_eq!(found.tokens.len(), 1);
        assert_eq!(
            found.tokens[0].refresh_token.expose_secret(),
            "escrowed-secret-a"
        );
        assert!(!format!("{found:?}").contains("escrowed-secret-a"));
        assert!(!path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .contains("state"));
    }

    #[test]
    fn a_file_whose_recorded_identity_differs_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let escrow = Escrow::new(dir.path());
        let mine = identity("state/a");
        let path = put(&escrow, &mine, "secret-a");
        // Another configuration's file copied under this name by hand.
        let mut record = read_object(&path).unwrap();
        record.insert("identity".into(), identity("state/elsewhere").to_value());
        fs::write(&path, Value::Object(record).to_string()).unwrap();
        let found = escrow.contents(&mine).unwrap();
        assert!(found.tokens.is_empty());
        assert_eq!(found.mismatched, vec![path.clone()]);
        assert!(path.exists());
    }

    #[test]
    fn discarding_renames_and_pruning_removes_only_expired_copies() {
        let dir = tempfile::tempdir().unwrap();
        let escrow = Escrow::new(dir.path());
        let mine = identity("state/a");
        let path = put(&escrow, &mine, "secret-a");
        let discarded = escrow.discard(&path, now()).unwrap();
        assert!(!path.exists() && discarded.exists());
        assert!(discarded
            .to_string_lossy()
            .ends_with(".discarded-20260201T000000Z"));
        assert!(!escrow.holds(&mine));
        escrow.prune_discarded(now());
        assert!(discarded.exists(), "the token in it has not expired yet");
        escrow.prune_discarded("2026-03-03T00:00:00Z".parse().unwrap());
        assert!(!discarded.exists(), "expired tokens are pruned");
    }

    #[test]
    fn kubelet_fsgroup_bits_are_accepted_but_others_never() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("escrow");
        let escrow = Escrow::new(&root);
        let mine = identity("state/a");
        let path = put(&escrow, &mine, "secret-a");
        // What kubelet does for `fsGroup`: setgid and group rwx on the directory, group rw on
        // every file.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o2770)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o660)).unwrap();
        assert_eq!(escrow.contents(&mine).unwrap().tokens.len(), 1);
        escrow.preflight().unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
        let err = escrow.contents(&mine).unwrap_err().to_string();
        assert!(err.contains("chmod o-rwx"), "{err}");
        assert!(!err.contains("secret-a"));
    }

    #[test]
    fn a_raw_answer_yields_its_token_or_is_reported_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let escrow = Escrow::new(dir.path());
        let mine = identity("state/a");
        escrow
            .put_raw(
                &mine,
                Slot::Primary,
                br#"{"refresh_token": "raw-secret", "user_id": 7}"#,
                now(),
            )
            .unwrap();
        escrow
            .put_raw(&mine, Slot::Standby, b"<html>oops</html>", now())
            .unwrap();
        let found = escrow.contents(&mine).unwrap();
        assert_eq!(found.tokens.len(), 1);
        assert!(found.tokens[0].from_raw_answer);
        assert_eq!(found.tokens[0].refresh_token.expose_secret(), "raw-secret");
        assert_eq!(found.tokens[0].created_at, None);
        assert_eq!(found.unreadable_raw.len(), 1);
    }

    #[test]
    fn intents_round_trip_and_first_wave_files_are_recovered() {
        let dir = tempfile::tempdir().unwrap();
        let escrow = Escrow::new(dir.path());
        let mine = identity("state/a");
        let intent = RegenerationIntent {
            slot: Slot::Standby,
            runner: "host:1:ab".into(),
            started_at: now(),
            fingerprint: "f".into(),
            salt: "s".into(),
        };
        escrow.put_intent(&mine, &intent).unwrap();
        assert_eq!(escrow.contents(&mine).unwrap().intent, Some(intent));
        escrow.remove_intent(&mine).unwrap();
        assert_eq!(escrow.contents(&mine).unwrap().intent, None);

        let legacy = dir.path().join("i.json");
        fs::write(
            &legacy,
            r#"{"refresh_token": "legacy-secret", "user_id": 7, "name": "n"}"#,
        )
        .unwrap();
        fs::set_permissions(&legacy, fs::Permissions::from_mode(0o600)).unwrap();
        let found = escrow.contents(&mine).unwrap();
        assert_eq!(
            found.tokens[0].refresh_token.expose_secret(),
            "legacy-secret"
        );
        assert_eq!(escrow.files_of(&mine, Slot::Primary), vec![legacy]);
    }
}
