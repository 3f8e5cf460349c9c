//! The `exec` store: alation-rotator runs a program of yours, in any language, and speaks a
//! small JSON protocol with it over standard input and output. For secret stores we will never
//! ship, written by people who will not write Rust.
//!
//! ```toml
//! [stores.onepassword]
//! type = "exec"
//! command = ["/usr/local/bin/op-store", "--vault", "Integrations"]
//! timeout = "10s"
//! env = ["OP_SERVICE_ACCOUNT_TOKEN"]
//! compare_and_set = false
//! ```
//!
//! # The protocol
//! - **Invocation**: `command` plus `read KEY`, `write KEY` or `check`. No shell. The program
//!   gets an otherwise empty environment: `PATH` and the variables named in `env`. A key is
//!   never a secret; a token or document never appears in the arguments or the environment.
//! - **`read KEY`**: print `{"document": {...}, "version": "V", "managed": true|false}`, or
//!   `null` when the key holds nothing. `managed` says whether the document carries the
//!   ownership marker (`managed-by: alation-rotator`, kept however your store keeps metadata).
//! - **`write KEY`**: standard input is one JSON object
//!   `{"document": {...}, "precondition": "any" | "absent" | {"version": "V"}, "takeover": true|false,
//!   "labels": {"managed-by": "alation-rotator", ...}}`. Check the precondition (exit 3 if it
//!   fails), then refuse a document without the marker unless `takeover` (exit 4), then store
//!   the document and the labels and print `{"version": "V"}` with the new version.
//! - **`check`**: exit 0 when the store is reachable and the credentials work; write nothing.
//! - **Exit codes**: 0 ok; 3 conflict (the precondition failed); 4 unmanaged (refused without
//!   takeover); 5 unauthorized; 6 unavailable (retried like other stores); anything else is an
//!   error. The first line of standard error, cut to 200 characters, goes into the error with
//!   the program's name: never print a secret there. Standard output over 1 MiB, or a program
//!   past `timeout` (killed with its whole process group), is an error.
//!
//! # What a program must promise
//! Set `compare_and_set = true` only if your program checks `absent` and `version`
//! preconditions *atomically* (a lock around read-check-write, or the store's own
//! compare-and-set), so that of two writers with the same precondition exactly one succeeds.
//! Without it the rotator still works, but a state location on this store needs
//! `allow_without_cas = true` and two runners at once could lose a refresh token.
#![deny(missing_docs)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;
use rotator_core::{
    Capabilities, ConfigError, Document, Precondition, SinkError, Stored, TokenSink, Version,
    WriteOptions,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// The most standard output read from the program.
pub const MAX_STDOUT_BYTES: usize = 1024 * 1024;
/// The most characters of the program's first standard error line kept in an error.
const MAX_STDERR_CHARS: usize = 200;
/// The longest key accepted, in bytes.
pub const MAX_KEY_LEN: usize = 512;

/// Settings of an `exec` store (`type = "exec"` in `[stores.NAME]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The program and its fixed arguments, run without a shell, e.g.
    /// `["/usr/local/bin/my-store", "--profile", "prod"]`. The rotator appends `read KEY`,
    /// `write KEY` or `check`.
    pub command: Vec<String>,
    /// Longest a call may take; the program and its process group are killed after it.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Environment variables passed through to the program (besides `PATH`); everything else
    /// is removed. Names only: the values come from the rotator's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// The program enforces `absent` and `version` preconditions atomically. Only then may a
    /// state location live on this store without `allow_without_cas`.
    #[serde(default)]
    pub compare_and_set: bool,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

impl Config {
    /// Offline checks: a program is named, the timeout is sensible, `env` holds names.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let Some(program) = self.command.first() else {
            return Err(ConfigError::new(
                "command",
                "is empty: name the program to run, e.g. [\"/usr/local/bin/my-store\"]",
            ));
        };
        if program.is_empty() {
            return Err(ConfigError::new("command", "names an empty program"));
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(600) {
            return Err(ConfigError::new(
                "timeout",
                "expected a duration between 1ms and 10m, e.g. \"10s\"",
            ));
        }
        for name in &self.env {
            let valid = !name.is_empty()
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !name.as_bytes()[0].is_ascii_digit();
            if !valid {
                return Err(ConfigError::new(
                    "env",
                    format!("{name:?} is not an environment variable name"),
                ));
            }
        }
        Ok(())
    }
}

/// Checks that `key` can be passed as an argument: 1 to 512 bytes of printable ASCII, not
/// starting with `-` (it would look like an option).
pub fn validate_key(key: &str) -> Result<(), SinkError> {
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && !key.starts_with('-')
        && key.bytes().all(|b| b.is_ascii_graphic());
    if valid {
        Ok(())
    } else {
        Err(SinkError::InvalidKey {
            key: key.to_owned(),
            detail: format!(
                "an exec store key is 1 to {MAX_KEY_LEN} printable ASCII characters without \
                 spaces and must not start with `-`"
            ),
        })
    }
}

/// The `exec` store.
pub struct ExecSink {
    config: Config,
    name: String,
}

impl fmt::Debug for ExecSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecSink")
            .field("program", &self.name)
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

/// What a finished call left.
struct Outcome {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr_line: String,
}

impl ExecSink {
    /// A store running `config.command`; nothing is started until a method is called.
    pub fn new(config: Config) -> Result<Self, SinkError> {
        config.validate().map_err(|e| SinkError::Other {
            detail: format!("invalid exec store settings: {e}"),
            source: None,
        })?;
        let name = Path::new(&config.command[0])
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| config.command[0].clone());
        Ok(Self { config, name })
    }

    /// Runs the program with `args`, feeding `input` on standard input.
    async fn call(&self, args: &[&str], input: Option<Vec<u8>>) -> Result<Outcome, SinkError> {
        let mut command = Command::new(&self.config.command[0]);
        command
            .args(&self.config.command[1..])
            .args(args)
            .env_clear()
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a timeout kills whatever it started too.
            .process_group(0)
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        for name in &self.config.env {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        let mut child = command.spawn().map_err(|e| SinkError::Other {
            detail: format!("could not start {} ({e}); check `command`", self.name),
            source: None,
        })?;
        let pid = child.id();
        let mut stdin = child.stdin.take();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let work = async {
            let feed = async {
                if let (Some(pipe), Some(bytes)) = (stdin.as_mut(), input) {
                    // A program that exits without reading is judged by its exit code.
                    let _ = pipe.write_all(&bytes).await;
                }
                drop(stdin.take());
            };
            let read_out = async {
                let mut out = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = stdout.read(&mut chunk).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(Some(out));
                    }
                    if out.len() + n > MAX_STDOUT_BYTES {
                        // Stop it now: blocked on a full pipe, it would never exit.
                        self.kill_group(pid);
                        return Ok(None);
                    }
                    out.extend_from_slice(&chunk[..n]);
                }
            };
            let read_err = async {
                let mut err = Vec::new();
                let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut err).await;
                err
            };
            let ((), out, err) = tokio::join!(feed, read_out, read_err);
            (out, err)
        };
        let (out, err) = match tokio::time::timeout(self.config.timeout, work).await {
            Ok(done) => done,
            Err(_) => {
                self.kill_group(pid);
                let _ = child.wait().await;
                return Err(SinkError::Other {
                    detail: format!(
                        "{} did not finish within {:?} and was killed with its process group",
                        self.name, self.config.timeout
                    ),
                    source: None,
                });
            }
        };
        let out = match out {
            Ok(Some(out)) => out,
            Ok(None) => {
                self.kill_group(pid);
                let _ = child.wait().await;
                return Err(SinkError::Other {
                    detail: format!(
                        "{} printed more than {} KiB on standard output",
                        self.name,
                        MAX_STDOUT_BYTES / 1024
                    ),
                    source: None,
                });
            }
            Err(e) => {
                return Err(SinkError::Other {
                    detail: format!("reading the output of {}: {e}", self.name),
                    source: None,
                })
            }
        };
        let status = match tokio::time::timeout(self.config.timeout, child.wait()).await {
            Ok(status) => status.map_err(|e| SinkError::Other {
                detail: format!("waiting for {}: {e}", self.name),
                source: None,
            })?,
            Err(_) => {
                self.kill_group(pid);
                let _ = child.wait().await;
                return Err(SinkError::Other {
                    detail: format!(
                        "{} did not exit within {:?} and was killed with its process group",
                        self.name, self.config.timeout
                    ),
                    source: None,
                });
            }
        };
        let stderr_line: String = String::from_utf8_lossy(&err)
            .lines()
            .next()
            .unwrap_or_default()
            .chars()
            .take(MAX_STDERR_CHARS)
            .collect();
        Ok(Outcome {
            code: status.code(),
            stdout: out,
            stderr_line,
        })
    }

    fn kill_group(&self, pid: Option<u32>) {
        if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Maps a non-zero exit to the contract's errors.
    fn failure(&self, key: &str, outcome: &Outcome) -> SinkError {
        let said = if outcome.stderr_line.is_empty() {
            String::new()
        } else {
            format!(" ({} said: {})", self.name, outcome.stderr_line)
        };
        match outcome.code {
            Some(3) => SinkError::Conflict {
                key: key.to_owned(),
                detail: format!("{} reported that the precondition failed{said}", self.name),
            },
            Some(4) => SinkError::Unmanaged {
                key: key.to_owned(),
            },
            Some(5) => SinkError::Unauthorized {
                detail: format!("{} was refused by its store{said}", self.name),
            },
            Some(6) => SinkError::Unavailable {
                detail: format!("{} could not reach its store{said}", self.name),
                source: None,
            },
            Some(code) => SinkError::Other {
                detail: format!("{} failed with exit code {code}{said}", self.name),
                source: None,
            },
            None => SinkError::Other {
                detail: format!("{} was ended by a signal{said}", self.name),
                source: None,
            },
        }
    }

    fn bad_output(&self, what: &str) -> SinkError {
        SinkError::Other {
            detail: format!(
                "{} printed {what}; see the protocol in docs/extending.md",
                self.name
            ),
            source: None,
        }
    }
}

#[async_trait]
impl TokenSink for ExecSink {
    fn describe(&self) -> String {
        format!("exec:{}", self.name)
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::new(self.config.compare_and_set, false, false)
    }

    async fn check(&self) -> Result<(), SinkError> {
        let outcome = self.call(&["check"], None).await?;
        if outcome.code == Some(0) {
            Ok(())
        } else {
            Err(self.failure("", &outcome))
        }
    }

    async fn read(&self, key: &str) -> Result<Option<Stored>, SinkError> {
        validate_key(key)?;
        let outcome = self.call(&["read", key], None).await?;
        if outcome.code != Some(0) {
            return Err(self.failure(key, &outcome));
        }
        let answer: Value = serde_json::from_slice(&outcome.stdout)
            .map_err(|_| self.bad_output("something that is not JSON on `read`"))?;
        if answer.is_null() {
            return Ok(None);
        }
        let document = match answer.get("document") {
            Some(Value::Object(fields)) => Document::new(fields.clone()),
            Some(_) => {
                return Err(SinkError::InvalidDocument {
                    key: key.to_owned(),
                    detail: "the stored document is not a JSON object".into(),
                })
            }
            None => return Err(self.bad_output("a `read` answer without `document`")),
        };
        let version = match answer.get("version") {
            Some(Value::String(v)) if !v.is_empty() => Version::new(v.clone()),
            Some(Value::Number(n)) => Version::new(n.to_string()),
            _ => return Err(self.bad_output("a `read` answer without a `version` string")),
        };
        let managed = answer
            .get("managed")
            .and_then(Value::as_bool)
            .ok_or_else(|| self.bad_output("a `read` answer without a boolean `managed`"))?;
        Ok(Some(Stored {
            document,
            version,
            managed,
        }))
    }

    async fn write(
        &self,
        key: &str,
        document: &Document,
        options: &WriteOptions,
    ) -> Result<Version, SinkError> {
        validate_key(key)?;
        let precondition = match &options.precondition {
            Precondition::Any => json!("any"),
            Precondition::Absent => json!("absent"),
            Precondition::Version(v) => json!({"version": v.as_str()}),
        };
        let mut labels: BTreeMap<String, String> = options.labels.clone();
        labels.insert(
            rotator_core::MANAGED_BY_KEY.to_owned(),
            rotator_core::MANAGED_BY_VALUE.to_owned(),
        );
        let request = json!({
            "document": Value::Object(document.fields().clone()),
            "precondition": precondition,
            "takeover": options.takeover,
            "labels": labels,
        });
        let outcome = self
            .call(&["write", key], Some(request.to_string().into_bytes()))
            .await?;
        if outcome.code != Some(0) {
            return Err(self.failure(key, &outcome));
        }
        let answer: Value = serde_json::from_slice(&outcome.stdout)
            .map_err(|_| self.bad_output("something that is not JSON on `write`"))?;
        match answer.get("version") {
            Some(Value::String(v)) if !v.is_empty() => Ok(Version::new(v.clone())),
            Some(Value::Number(n)) => Ok(Version::new(n.to_string())),
            _ => Err(self.bad_output("a `write` answer without a `version`")),
        }
    }
}
