//! The `alation-emulator` binary prints its URL and serves.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::json;

/// Kills the child even when an assertion fails.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_its_url_and_serves_the_configured_users() {
    let mut child = Child(
        Command::new(env!("CARGO_BIN_EXE_alation-emulator"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--user",
                "7:carol:pa:ss",
                "--access-lifetime",
                "1h",
                "--no-regen",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with('/'),
        "{base}"
    );

    let http = reqwest::Client::new();
    let response = http
        .post(format!("{base}integration/v1/createRefreshToken/"))
        .form(&[("username", "carol"), ("password", "pa:ss"), ("name", "rt")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], 7);

    let response = http
        .post(format!("{base}integration/v1/createAPIAccessToken/"))
        .json(&json!({"refresh_token": body["refresh_token"], "user_id": 7}))
        .send()
        .await
        .unwrap();
    let access: serde_json::Value = response.json().await.unwrap();
    let created: jiff::Timestamp = access["created_at"].as_str().unwrap().parse().unwrap();
    let expires: jiff::Timestamp = access["token_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        created.duration_until(expires),
        jiff::SignedDuration::from_hours(1)
    );

    let response = http
        .post(format!("{base}integration/v1/regenRefreshToken/"))
        .json(&json!({"refresh_token": body["refresh_token"], "user_id": 7}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

#[test]
fn binary_rejects_a_malformed_user() {
    let output = Command::new(env!("CARGO_BIN_EXE_alation-emulator"))
        .args(["--user", "seven:carol:pw"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not an integer"));
}
