//! `status`, `check-config`, `demo` and the log formats.

use crate::harness::{run_plain, World};

#[tokio::test]
async fn status_shows_expiry_and_locations_as_table_and_json_without_secrets() {
    let mut world = World::bootstrapped(2, "").await;

    let before = world.run(&["status"], &[]).await;
    assert_eq!(before.code, 0, "{}", before.all());
    assert!(
        before.stdout.starts_with("INTEGRATION"),
        "{}",
        before.stdout
    );
    assert!(before.stdout.contains("access-due"), "{}", before.stdout);

    let rotated = world.run(&["run"], &[]).await;
    assert_eq!(rotated.code, 0, "{}", rotated.all());
    let table = world.run(&["status"], &[]).await;
    assert_eq!(table.code, 0, "{}", table.all());
    let int0 = table
        .stdout
        .lines()
        .find(|l| l.starts_with("int0"))
        .unwrap();
    assert!(int0.contains(" ok "), "{int0}");
    assert!(
        int0.contains("local:state/int0") && int0.contains("local:alation/int0"),
        "{int0}"
    );

    let json = world.run(&["status", "--format", "json"], &[]).await;
    assert_eq!(json.code, 0, "{}", json.all());
    let rows: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let expires = world.access(0).await.unwrap().0.token_expires_at;
    assert_eq!(rows[0]["integration"], "int0");
    assert_eq!(rows[0]["health"], "ok");
    assert_eq!(
        rows[0]["access_expires_at"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap(),
        expires
    );
    assert_eq!(rows[1]["state_at"], "local:state/int1");
    assert_eq!(rows[1]["credential"], "refresh-token");
}

#[tokio::test]
async fn status_reports_needs_bootstrap_and_exits_1() {
    let mut world = World::start(1).await;
    world.write_config(&world.config_text(""));
    let run = world.run(&["status"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("needs bootstrap"), "{}", run.stdout);
    assert!(
        run.stdout.contains("alation-rotator bootstrap int0"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn check_config_accepts_a_good_file_offline() {
    let mut world = World::start(2).await;
    world.write_config(&world.config_text(""));
    let run = world.run(&["check-config"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("OK (2 integrations, 1 stores)"),
        "{}",
        run.stdout
    );
    assert!(!world.store_dir().exists());
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let mut world = World::bootstrapped(1, "").await;
    let run = world.run(&["run", "--log-format", "json"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert!(!lines.is_empty());
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
    assert!(
        run.stderr.contains("\"access token rotated\""),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn demo_rotates_shows_status_and_is_fresh_the_second_time() {
    let run = tokio::task::spawn_blocking(|| run_plain(&["demo"], None))
        .await
        .unwrap();
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout
            .contains("3 integrations: 0 fresh, 3 rotated, 0 failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("3 integrations: 3 fresh, 0 rotated, 0 failed"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("INTEGRATION"), "{}", run.stdout);
    assert_eq!(
        run.stdout.matches("-> accepted").count(),
        3,
        "{}",
        run.stdout
    );
    // The demo's tokens are random hex strings of 56 (access) or 64 (refresh) characters;
    // none may be printed.
    let leaked = run
        .all()
        .split(|c: char| !c.is_ascii_hexdigit())
        .any(|w| w.len() >= 40);
    assert!(!leaked, "a token-like value was printed: {}", run.all());
}
