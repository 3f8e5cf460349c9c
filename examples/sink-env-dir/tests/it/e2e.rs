//! This crate's own binary, end to end: bootstrap a refresh token, run, and read the env file
//! it delivered; the token in it works on Alation's API (the project's emulator).

use std::io::Write;
use std::process::{Command, Stdio};

use alation_emulator::{Emulator, EmulatorConfig, User};

const BINARY: &str = env!("CARGO_BIN_EXE_alation-rotator-env-dir");

fn rotator(config: &std::path::Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(BINARY)
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

// The emulator serves from this runtime's other thread while the test waits on the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_delivers_a_working_token_into_an_env_file() {
    let emulator = Emulator::start(EmulatorConfig {
        users: vec![User::new(102, "svc-etl", "a-password")],
        ..EmulatorConfig::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alation-rotator.toml");
    std::fs::write(
        &config,
        format!(
            "[alation]\nbase_url = \"{}\"\n\n[escrow]\ndirectory = \"{}\"\n\n\
             [stores.state]\ntype = \"file\"\ndirectory = \"{}\"\n\n\
             [stores.env]\ntype = \"env_dir\"\ndirectory = \"{}\"\n\n\
             [[integrations]]\nname = \"etl\"\nuser_id = 102\n\
             refresh_token = {{ store = \"state\", key = \"state/etl\" }}\n\
             access_token = {{ store = \"env\", key = \"alation/etl\" }}\n",
            emulator.base_url(),
            dir.path().join("escrow").display(),
            dir.path().join("state").display(),
            dir.path().join("env").display(),
        ),
    )
    .unwrap();
    let check = rotator(&config, &["check-config"], None);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let pasted = emulator.issue_refresh_token(102, "etl");
    let bootstrap = rotator(
        &config,
        &["bootstrap", "etl", "--refresh-token-stdin"],
        Some(&format!("{pasted}\n")),
    );
    assert!(
        bootstrap.status.success(),
        "{}",
        String::from_utf8_lossy(&bootstrap.stderr)
    );

    let run = rotator(&config, &["run"], None);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("etl") && stdout.contains("rotated"),
        "{stdout}"
    );

    let env_file = dir.path().join("env/alation/etl.env");
    let text = std::fs::read_to_string(&env_file).unwrap();
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("API_ACCESS_TOKEN="))
        .expect("the env file has API_ACCESS_TOKEN");
    assert!(
        emulator.access_token_is_active(token),
        "the delivered token works"
    );
    assert!(
        text.contains("USER_ID=102"),
        "{}",
        text.replace(token, "<token>")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    for output in [&check, &bootstrap, &run] {
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            !all.contains(token) && !all.contains(&pasted),
            "a secret was printed"
        );
    }

    let again = rotator(&config, &["run"], None);
    assert!(String::from_utf8_lossy(&again.stdout).contains("fresh"));
}
