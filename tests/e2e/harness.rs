//! Starting the emulator, writing configs, running the binary, and checking for leaks.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use alation_emulator::{Emulator, EmulatorConfig, User};
use rotator_alation::{AlationClient, AlationError, ClientConfig, ExposeSecret, SecretString};
use rotator_core::engine::{Escrow, EscrowIdentity};
use rotator_core::{
    AccessTokenDocument, Precondition, RefreshTokenDocument, Slot, TokenSink, TokenSinkExt,
};
use rotator_sink_file::FileSink;
use rotator_testkit::fixtures::{assert_no_secrets, unique_suffix};
use tempfile::TempDir;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// One test's world: an emulator with users, a directory for the file store, a config file.
pub struct World {
    pub emulator: Emulator,
    pub dir: TempDir,
    pub users: Vec<User>,
    /// Every secret value the test has seen; no output may contain any of them.
    pub secrets: Vec<String>,
    /// How far [`World::advance`] has moved both clocks (the emulator's and, through
    /// `ALATION_ROTATOR_TEST_CLOCK_OFFSET`, the rotator's).
    pub clock_offset: Duration,
}

/// What a run of the binary printed.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl World {
    /// An emulator with `n` users (ids 101, 102, ...) and random passwords.
    pub async fn start(n: usize) -> World {
        let users: Vec<User> = (0..n)
            .map(|i| {
                User::new(
                    101 + i as i64,
                    format!("svc{i}"),
                    format!("pw-{}", unique_suffix()),
                )
            })
            .collect();
        let emulator = Emulator::start(EmulatorConfig {
            users: users.clone(),
            ..EmulatorConfig::default()
        })
        .await
        .expect("start the emulator");
        let secrets = users.iter().map(|u| u.password.clone()).collect();
        World {
            emulator,
            dir: tempfile::tempdir().unwrap(),
            users,
            secrets,
            clock_offset: Duration::ZERO,
        }
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("alation-rotator.toml")
    }

    pub fn sink(&self) -> FileSink {
        FileSink::new(rotator_sink_file::Config {
            directory: self.store_dir(),
        })
        .unwrap()
    }

    /// The standard config: one file store, integration `int{i}` for user i.
    pub fn config_text(&self, extra_policy: &str) -> String {
        let mut text = format!(
            "[alation]\nbase_url = \"{}\"\ntimeout = \"5s\"\n\n[policy]\n{extra_policy}\n\n\
             [escrow]\ndirectory = \"{}\"\n\n[stores.local]\ntype = \"file\"\ndirectory = \"{}\"\n",
            self.emulator.base_url(),
            self.dir.path().join("escrow").display(),
            self.store_dir().display()
        );
        for (i, user) in self.users.iter().enumerate() {
            text.push_str(&format!(
                "\n[[integrations]]\nname = \"int{i}\"\nuser_id = {}\n\
                 refresh_token = {{ store = \"local\", key = \"state/int{i}\" }}\n\
                 access_token = {{ store = \"local\", key = \"alation/int{i}\" }}\n",
                user.id
            ));
        }
        text
    }

    pub fn write_config(&self, text: &str) {
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// [`World::start`] with `n` users, the standard config with `extra_policy`, and every
    /// refresh token stored ([`World::bootstrap_all`]).
    pub async fn bootstrapped(n: usize, extra_policy: &str) -> World {
        let mut world = World::start(n).await;
        world.write_config(&world.config_text(extra_policy));
        world.bootstrap_all().await;
        world
    }

    /// Stores a refresh token for every user, as `bootstrap` would: created through
    /// `createRefreshToken` with the user's password.
    pub async fn bootstrap_all(&mut self) {
        let sink = self.sink();
        for i in 0..self.users.len() {
            let name = format!("int{i}");
            self.bootstrap_into(i, &sink, &format!("state/int{i}"), &name)
                .await;
        }
    }

    /// Creates a refresh token named `token_name` for user `i` with its password and stores
    /// it at `key` of `sink`.
    pub async fn bootstrap_into(
        &mut self,
        i: usize,
        sink: &dyn TokenSink,
        key: &str,
        token_name: &str,
    ) {
        let client = AlationClient::new(ClientConfig::new(self.emulator.base_url())).unwrap();
        let user = &self.users[i];
        let token = client
            .create_refresh_token(
                &user.username,
                &SecretString::from(user.password.clone()),
                token_name,
            )
            .await
            .expect("createRefreshToken");
        self.secrets
            .push(token.refresh_token.expose_secret().to_owned());
        let document = RefreshTokenDocument::new(
            token.refresh_token,
            token.user_id,
            token.name,
            token.created_at,
            token.token_expires_at,
            format!("int{i}"),
        );
        sink.write_as(key, &document, Precondition::Absent, false)
            .await
            .expect("store the refresh token");
    }

    /// Runs the binary with the world's config and extra environment; records every access
    /// token now stored as a secret to search for.
    pub async fn run(&mut self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args, env);
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("run alation-rotator");
        let run = to_run(output);
        self.check_output(&run).await;
        run
    }

    /// The binary with the world's config and clock offset, no `RUST_LOG` and no test hook,
    /// then `env` on top.
    pub fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_alation-rotator"));
        command
            .args(args)
            .env("ALATION_ROTATOR_CONFIG", self.config_path())
            .env_remove("RUST_LOG")
            .env_remove("ALATION_ROTATOR_TEST_CLOCK_OFFSET")
            .env_remove("ALATION_ROTATOR_TEST_PAUSE_AT");
        if !self.clock_offset.is_zero() {
            command.env(
                "ALATION_ROTATOR_TEST_CLOCK_OFFSET",
                format!("{}ms", self.clock_offset.as_millis()),
            );
        }
        for (k, v) in env {
            command.env(k, v);
        }
        command
    }

    /// Records every token now stored (destinations, state, escrow) as a secret, then checks
    /// that the output holds none of the secrets seen so far.
    pub async fn check_output(&mut self, run: &Run) {
        self.collect_access_tokens().await;
        assert_no_secrets(&run.all(), &self.secret_refs());
    }

    /// Moves the emulator's clock and the rotator's (for every later run) forward together.
    pub fn advance(&mut self, by: Duration) {
        self.emulator.advance_clock(by);
        self.clock_offset += by;
    }

    /// Remembers a value that no output may contain.
    pub fn add_secret(&mut self, secret: &str) {
        if !self.secrets.iter().any(|s| s == secret) {
            self.secrets.push(secret.to_owned());
        }
    }

    /// Runs the binary with `stdin` as its standard input (a password or a pasted token for
    /// `bootstrap`, which is remembered as a secret).
    pub async fn run_with_stdin(
        &mut self,
        args: &[&str],
        env: &[(&str, &str)],
        stdin: &str,
    ) -> Run {
        if let Some(line) = stdin.lines().next().filter(|l| !l.trim().is_empty()) {
            self.add_secret(line.trim());
        }
        let mut command = self.command(args, env);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let input = stdin.to_owned();
        let output = tokio::task::spawn_blocking(move || {
            let mut child = command.spawn()?;
            let mut pipe = child.stdin.take().expect("piped stdin");
            // The child may exit before reading (e.g. a usage error): ignore a broken pipe.
            let _ = pipe.write_all(input.as_bytes());
            drop(pipe);
            child.wait_with_output()
        })
        .await
        .unwrap()
        .expect("run alation-rotator");
        let run = to_run(output);
        self.check_output(&run).await;
        run
    }

    /// Starts the binary without waiting for it, with stdout and stderr captured; see
    /// [`Spawned`]. Call [`World::check_output`] on what it printed.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Spawned {
        let mut command = tokio::process::Command::from(self.command(args, env));
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("start alation-rotator");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let (lines_tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let stderr_task = tokio::spawn(async move {
            let mut all = String::new();
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                all.push_str(&line);
                all.push('\n');
                let _ = lines_tx.send(line);
            }
            all
        });
        let stdout_task = tokio::spawn(async move {
            let mut all = String::new();
            let mut reader = BufReader::new(stdout);
            let _ = reader.read_to_string(&mut all).await;
            all
        });
        Spawned {
            child,
            lines,
            stderr_task,
            stdout_task,
        }
    }

    /// A client for the world's emulator.
    pub fn client(&self) -> AlationClient {
        AlationClient::new(ClientConfig::new(self.emulator.base_url())).unwrap()
    }

    /// A refresh token made "in Alation's UI" for user `i` (as an SSO user would), remembered
    /// as a secret.
    pub fn issue_refresh_token(&mut self, i: usize, name: &str) -> String {
        let token = self.emulator.issue_refresh_token(self.users[i].id, name);
        self.add_secret(&token);
        token
    }

    /// The stored refresh-token document of integration `i`.
    pub async fn refresh(&self, i: usize) -> Option<RefreshTokenDocument> {
        self.sink()
            .read_as::<RefreshTokenDocument>(&format!("state/int{i}"))
            .await
            .unwrap()
            .map(|s| s.document)
    }

    /// Whether Alation accepts this refresh token for user `i` (`validateRefreshToken`).
    /// Panics on anything but a clear yes or a token error.
    pub async fn refresh_is_valid(&self, i: usize, token: &SecretString) -> bool {
        match self
            .client()
            .validate_refresh_token(token, self.users[i].id)
            .await
        {
            Ok(_) => true,
            Err(error)
                if error.is_token_expired_or_revoked()
                    || matches!(error, AlationError::TokenInvalid { .. }) =>
            {
                false
            }
            Err(error) => panic!("validateRefreshToken failed unexpectedly: {error}"),
        }
    }

    /// The escrow directory of the standard config.
    pub fn escrow_dir(&self) -> PathBuf {
        self.dir.path().join("escrow")
    }

    /// Who integration `i`'s escrowed tokens belong to, as the binary names them.
    pub fn escrow_identity(&self, i: usize) -> EscrowIdentity {
        EscrowIdentity {
            integration: format!("int{i}"),
            base_url: self.emulator.base_url().to_string(),
            user_id: self.users[i].id,
            store: "local".into(),
            key: format!("state/int{i}"),
        }
    }

    /// The refresh token waiting in integration `i`'s escrow (parsed, or read from a raw
    /// answer), if any. Panics if the escrow cannot be read.
    pub fn escrowed(&self, i: usize) -> Option<SecretString> {
        self.read_escrow(i).unwrap_or_else(|e| panic!("{e}"))
    }

    fn read_escrow(&self, i: usize) -> Result<Option<SecretString>, String> {
        let contents = Escrow::new(self.escrow_dir())
            .contents(&self.escrow_identity(i))
            .map_err(|e| e.to_string())?;
        Ok(contents
            .tokens
            .into_iter()
            .find(|t| t.slot == Slot::Primary)
            .map(|t| t.refresh_token))
    }

    /// Integration `i`'s escrow file for a parsed primary token (present only while one waits).
    pub fn escrow_file(&self, i: usize) -> PathBuf {
        self.escrow_dir().join(format!(
            "{}.primary.token.json",
            self.escrow_identity(i).stem()
        ))
    }

    /// Whether anything waits in integration `i`'s escrow.
    pub fn escrow_holds(&self, i: usize) -> bool {
        Escrow::new(self.escrow_dir()).holds(&self.escrow_identity(i))
    }

    /// Checks that integration `i` works: the access token at `alation/int{i}` (and at every
    /// extra key in `extra_destinations`, formatted with the index) is accepted by Alation's
    /// API, the stored refresh token is valid, and nothing waits in escrow.
    pub async fn health(&self, i: usize, extra_destinations: &[&str]) -> Result<(), String> {
        let mut keys = vec![format!("alation/int{i}")];
        keys.extend(extra_destinations.iter().map(|k| format!("{k}/int{i}")));
        for key in keys {
            let stored = self
                .sink()
                .read_as::<AccessTokenDocument>(&key)
                .await
                .map_err(|e| format!("int{i}: cannot read {key}: {e}"))?
                .ok_or_else(|| format!("int{i}: no access token at {key}"))?;
            if !self.api_accepts(&stored.document.api_access_token).await {
                return Err(format!("int{i}: the access token at {key} does not work"));
            }
        }
        let refresh = self
            .refresh(i)
            .await
            .ok_or_else(|| format!("int{i}: no refresh token stored"))?;
        if !self.refresh_is_valid(i, &refresh.refresh_token).await {
            return Err(format!("int{i}: the stored refresh token is dead"));
        }
        if self.escrow_holds(i) {
            return Err(format!("int{i}: a refresh token still waits in escrow"));
        }
        Ok(())
    }

    pub fn secret_refs(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }

    async fn collect_access_tokens(&mut self) {
        let sink = self.sink();
        for i in 0..self.users.len() {
            if let Ok(Some(stored)) = sink
                .read_as::<AccessTokenDocument>(&format!("alation/int{i}"))
                .await
            {
                let token = stored.document.api_access_token.expose_secret().to_owned();
                if !self.secrets.contains(&token) {
                    self.secrets.push(token);
                }
            }
            if let Ok(Some(stored)) = sink
                .read_as::<RefreshTokenDocument>(&format!("state/int{i}"))
                .await
            {
                let token = stored.document.refresh_token.expose_secret().to_owned();
                if !self.secrets.contains(&token) {
                    self.secrets.push(token);
                }
            }
            if let Ok(Some(escrowed)) = self.read_escrow(i) {
                let token = escrowed.expose_secret().to_owned();
                if !self.secrets.contains(&token) {
                    self.secrets.push(token);
                }
            }
        }
    }

    /// The stored access token of integration `i` with its version.
    pub async fn access(&self, i: usize) -> Option<(AccessTokenDocument, String)> {
        self.sink()
            .read_as::<AccessTokenDocument>(&format!("alation/int{i}"))
            .await
            .unwrap()
            .map(|s| (s.document, s.version.to_string()))
    }

    /// The raw bytes of integration `i`'s refresh-token file.
    pub fn refresh_file(&self, i: usize) -> Vec<u8> {
        std::fs::read(self.store_dir().join(format!("state/int{i}.json"))).unwrap()
    }

    /// Whether Alation's ordinary API accepts this token in the `TOKEN` header.
    pub async fn api_accepts(&self, token: &SecretString) -> bool {
        let response = reqwest::Client::new()
            .get(
                self.emulator
                    .base_url()
                    .join("integration/v1/user/")
                    .unwrap(),
            )
            .header("TOKEN", token.expose_secret())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .unwrap();
        response.status().is_success()
    }
}

/// Runs the binary with only a config path (no world), for config errors and `demo`.
pub fn run_plain(args: &[&str], config: Option<&Path>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alation-rotator"));
    command
        .args(args)
        .env_remove("RUST_LOG")
        .env_remove("ALATION_ROTATOR_CONFIG");
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    to_run(command.output().expect("run alation-rotator"))
}

fn to_run(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Integration names and outcome words from `run`'s stdout, e.g. ("int0", "rotated").
pub fn outcomes(run: &Run) -> Vec<(String, String)> {
    run.stdout
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let outcome = words.next()?;
            name.starts_with("int")
                .then(|| (name.to_owned(), outcome.to_owned()))
        })
        .collect()
}

/// A running binary whose standard error is read line by line, so a test can wait for a
/// test-hook marker and then kill it.
pub struct Spawned {
    child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    stderr_task: tokio::task::JoinHandle<String>,
    stdout_task: tokio::task::JoinHandle<String>,
}

impl Spawned {
    /// Waits until a line of standard error contains `marker`. `false` if the process closed
    /// standard error (ended) first; panics after `timeout`.
    pub async fn wait_for(&mut self, marker: &str, timeout: Duration) -> bool {
        self.wait_for_line(marker, timeout).await.is_some()
    }

    /// Waits until a line of standard error contains `marker` and returns that line; `None`
    /// if the process closed standard error first; panics after `timeout`.
    pub async fn wait_for_line(&mut self, marker: &str, timeout: Duration) -> Option<String> {
        tokio::time::timeout(timeout, async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(marker) {
                    return Some(line);
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("no {marker:?} on stderr within {timeout:?}"))
    }

    /// Sends a signal by name (`TERM`, `INT`) without waiting.
    pub fn signal(&self, name: &str) {
        let pid = self
            .child
            .id()
            .expect("the process has not been reaped")
            .to_string();
        let status = std::process::Command::new("kill")
            .args(["-s", name, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -s {name} {pid}");
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills the process with SIGKILL (if it still runs) and returns what it printed, with
    /// code -1 when it was killed. The second value says whether it was still running.
    pub async fn kill(mut self) -> (Run, bool) {
        let was_running = self.is_running();
        if was_running {
            self.child.kill().await.expect("SIGKILL alation-rotator");
        }
        (self.finish().await, was_running)
    }

    /// Waits for the process to end by itself (at most `timeout`) and returns what it printed.
    pub async fn wait(mut self, timeout: Duration) -> Run {
        tokio::time::timeout(timeout, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("alation-rotator still runs after {timeout:?}"))
            .expect("wait for alation-rotator");
        self.finish().await
    }

    async fn finish(mut self) -> Run {
        let status = self.child.wait().await.expect("wait for alation-rotator");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: self.stdout_task.await.unwrap(),
            stderr: self.stderr_task.await.unwrap(),
        }
    }
}
