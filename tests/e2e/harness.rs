//! Starting the emulator, writing configs, running the binary, and checking for leaks.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use alation_emulator::{Emulator, EmulatorConfig, User};
use rotator_alation::{AlationClient, ClientConfig, ExposeSecret, SecretString};
use rotator_core::{AccessTokenDocument, Precondition, RefreshTokenDocument, TokenSinkExt};
use rotator_sink_file::FileSink;
use rotator_testkit::fixtures::{assert_no_secrets, unique_suffix};
use tempfile::TempDir;

/// One test's world: an emulator with users, a directory for the file store, a config file.
pub struct World {
    pub emulator: Emulator,
    pub dir: TempDir,
    pub users: Vec<User>,
    /// Every secret value the test has seen; no output may contain any of them.
    pub secrets: Vec<String>,
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

    /// Stores a refresh token for every user, as `bootstrap` would: created through
    /// `createRefreshToken` with the user's password.
    pub async fn bootstrap_all(&mut self) {
        let client = AlationClient::new(ClientConfig::new(self.emulator.base_url())).unwrap();
        let sink = self.sink();
        for (i, user) in self.users.clone().iter().enumerate() {
            let token = client
                .create_refresh_token(
                    &user.username,
                    &SecretString::from(user.password.clone()),
                    &format!("int{i}"),
                )
                .await
                .expect("createRefreshToken");
            self.secrets
                .push(token.refresh_token.expose_secret().to_owned());
            let document = RefreshTokenDocument {
                refresh_token: token.refresh_token,
                user_id: token.user_id,
                name: token.name,
                token_expires_at: token.token_expires_at,
                created_at: token.created_at,
                integration: format!("int{i}"),
                last_regenerated_at: None,
            };
            sink.write_as(
                &format!("state/int{i}"),
                &document,
                Precondition::Absent,
                false,
            )
            .await
            .expect("store the refresh token");
        }
    }

    /// Runs the binary with the world's config and extra environment; records every access
    /// token now stored as a secret to search for.
    pub async fn run(&mut self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_alation-rotator"));
        command
            .args(args)
            .env("ALATION_ROTATOR_CONFIG", self.config_path())
            .env_remove("RUST_LOG")
            .env_remove("ALATION_ROTATOR_TEST_CLOCK_OFFSET");
        for (k, v) in env {
            command.env(k, v);
        }
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("run alation-rotator");
        let run = to_run(output);
        self.collect_access_tokens().await;
        assert_no_secrets(&run.all(), &self.secret_refs());
        run
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
