//! The refresh token's life, end to end: bootstrap both ways, regeneration before expiry,
//! "needs bootstrap", `validate = true`, `revoke`, and the escrow that keeps a regenerated
//! token when its state store is down.

use std::time::Duration;

use alation_emulator::{Fault, FaultKind};
use rotator_alation::ExposeSecret;

use crate::harness::{outcomes, Run, World};

/// `bootstrap int{i} --username svc{i} --password-stdin` with `password`, plus `extra`.
async fn bootstrap_with_password(
    world: &mut World,
    i: usize,
    password: &str,
    extra: &[&str],
) -> Run {
    let name = format!("int{i}");
    let username = world.users[i].username.clone();
    let mut args = vec![
        "bootstrap",
        name.as_str(),
        "--username",
        username.as_str(),
        "--password-stdin",
    ];
    args.extend_from_slice(extra);
    world
        .run_with_stdin(&args, &[], &format!("{password}\n"))
        .await
}

/// `bootstrap int{i} --refresh-token-stdin` with `token`, plus `extra`.
async fn bootstrap_with_token(world: &mut World, i: usize, token: &str, extra: &[&str]) -> Run {
    let name = format!("int{i}");
    let mut args = vec!["bootstrap", name.as_str(), "--refresh-token-stdin"];
    args.extend_from_slice(extra);
    world
        .run_with_stdin(&args, &[], &format!("{token}\n"))
        .await
}

/// One integration, bootstrapped with its password (which is returned), and the standard
/// config.
async fn bootstrapped_with_password() -> (World, String) {
    let mut world = World::start(1).await;
    world.write_config(&world.config_text(""));
    let password = world.users[0].password.clone();
    let first = bootstrap_with_password(&mut world, 0, &password, &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    (world, password)
}

fn state_path(world: &World, i: usize) -> std::path::PathBuf {
    world.store_dir().join(format!("state/int{i}.json"))
}

/// The `status` table line of integration `i`.
async fn status_line(world: &mut World, i: usize) -> (Run, String) {
    let status = world.run(&["status"], &[]).await;
    let line = status
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("int{i} ")))
        .unwrap_or_else(|| panic!("no line for int{i} in: {}", status.stdout))
        .to_owned();
    (status, line)
}

#[tokio::test]
async fn bootstrap_with_a_password_stores_a_token_that_run_uses() {
    let mut world = World::start(1).await;
    world.write_config(&world.config_text(""));
    let password = world.users[0].password.clone();

    let boot = bootstrap_with_password(&mut world, 0, &password, &[]).await;
    assert_eq!(boot.code, 0, "{}", boot.all());
    assert!(
        boot.stdout
            .contains("refresh token stored at local:state/int0")
            && boot.stdout.contains("alation-rotator run --only int0"),
        "{}",
        boot.stdout
    );
    assert_eq!(world.emulator.calls("createRefreshToken"), 1);
    let stored = world.refresh(0).await.expect("the refresh token is stored");
    assert_eq!(stored.user_id, world.users[0].id);
    assert_eq!(
        stored.name, "int0",
        "the token is named after the integration"
    );
    assert!(world.refresh_is_valid(0, &stored.refresh_token).await);
    let mode =
        std::os::unix::fs::MetadataExt::mode(&std::fs::metadata(state_path(&world, 0)).unwrap());
    assert_eq!(mode & 0o777, 0o600, "the state file is owner-only");
    world.add_secret(stored.refresh_token.expose_secret());

    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(outcomes(&run), [("int0".to_owned(), "rotated".to_owned())]);
    let access = world.access(0).await.unwrap().0;
    assert!(world.api_accepts(&access.api_access_token).await);
}

#[tokio::test]
async fn bootstrap_with_a_pasted_token_validates_it_then_run_uses_it() {
    let mut world = World::start(1).await;
    world.write_config(&world.config_text(""));
    let token = world.issue_refresh_token(0, "made-in-the-ui");

    let boot = bootstrap_with_token(&mut world, 0, &token, &[]).await;
    assert_eq!(boot.code, 0, "{}", boot.all());
    assert!(
        boot.stdout
            .contains("refresh token stored at local:state/int0"),
        "{}",
        boot.stdout
    );
    assert_eq!(
        world.emulator.calls("createRefreshToken"),
        0,
        "nothing created"
    );
    assert!(
        world.emulator.calls("validateRefreshToken") >= 1,
        "the pasted token is validated"
    );
    let stored = world.refresh(0).await.expect("the refresh token is stored");
    assert_eq!(stored.refresh_token.expose_secret(), token);
    assert_eq!(
        stored.name, "made-in-the-ui",
        "Alation's name for the token is kept"
    );
    assert_eq!(stored.user_id, world.users[0].id);

    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    let access = world.access(0).await.unwrap().0;
    assert!(world.api_accepts(&access.api_access_token).await);
}

#[tokio::test]
async fn bootstrap_over_an_active_token_is_refused_without_force() {
    let (mut world, password) = bootstrapped_with_password().await;
    let before = world.refresh_file(0);
    let created = world.emulator.calls("createRefreshToken");

    // With a password: refused before anything is created at Alation.
    let again = bootstrap_with_password(&mut world, 0, &password, &[]).await;
    assert_eq!(again.code, 1, "{}", again.all());
    assert!(
        again.stderr.contains("already has an active refresh token"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("pass --force"), "{}", again.stderr);
    assert_eq!(
        world.refresh_file(0),
        before,
        "the stored document is byte-identical"
    );
    assert_eq!(
        world.emulator.calls("createRefreshToken"),
        created,
        "no orphan refresh token was created at Alation"
    );

    // A pasted token is refused the same way.
    let pasted = world.issue_refresh_token(0, "pasted");
    let pasted_run = bootstrap_with_token(&mut world, 0, &pasted, &[]).await;
    assert_eq!(pasted_run.code, 1, "{}", pasted_run.all());
    assert!(
        pasted_run.stderr.contains("pass --force"),
        "{}",
        pasted_run.stderr
    );
    assert_eq!(world.refresh_file(0), before);
}

#[tokio::test]
async fn bootstrap_with_force_replaces_an_active_token() {
    let (mut world, _) = bootstrapped_with_password().await;
    let old = world.refresh(0).await.unwrap().refresh_token;
    world.add_secret(old.expose_secret());

    // A pasted replacement.
    let pasted = world.issue_refresh_token(0, "replacement");
    let forced = bootstrap_with_token(&mut world, 0, &pasted, &["--force"]).await;
    assert_eq!(forced.code, 0, "{}", forced.all());
    assert_eq!(
        world
            .refresh(0)
            .await
            .unwrap()
            .refresh_token
            .expose_secret(),
        pasted
    );

    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(world.health(0, &[]).await.is_ok());
}

/// What the runbook tells an operator to do after a leak: `bootstrap NAME --force` with the
/// password, the token name left at its default. The old token (named after the integration)
/// is still active at that moment.
#[tokio::test]
async fn bootstrap_with_force_and_a_password_replaces_an_active_token() {
    let (mut world, password) = bootstrapped_with_password().await;
    let old = world.refresh(0).await.unwrap().refresh_token;
    world.add_secret(old.expose_secret());

    let forced = bootstrap_with_password(&mut world, 0, &password, &["--force"]).await;
    assert_eq!(forced.code, 0, "{}", forced.all());
    let new = world.refresh(0).await.unwrap().refresh_token;
    assert_ne!(
        new.expose_secret(),
        old.expose_secret(),
        "the token was replaced"
    );
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(world.health(0, &[]).await.is_ok());
}

#[tokio::test]
async fn bootstrap_with_force_and_another_token_name_replaces_an_active_token() {
    let (mut world, password) = bootstrapped_with_password().await;
    let old = world.refresh(0).await.unwrap().refresh_token;
    world.add_secret(old.expose_secret());

    let forced = bootstrap_with_password(
        &mut world,
        0,
        &password,
        &["--force", "--token-name", "int0-v2"],
    )
    .await;
    assert_eq!(forced.code, 0, "{}", forced.all());
    let stored = world.refresh(0).await.unwrap();
    assert_ne!(stored.refresh_token.expose_secret(), old.expose_secret());
    assert_eq!(stored.name, "int0-v2");
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(world.health(0, &[]).await.is_ok());
}

#[tokio::test]
async fn a_wrong_password_fails_clearly_and_stores_nothing() {
    let mut world = World::start(1).await;
    world.write_config(&world.config_text(""));
    let wrong = format!("not-{}", world.users[0].password);

    let boot = bootstrap_with_password(&mut world, 0, &wrong, &[]).await;
    assert_eq!(boot.code, 1, "{}", boot.all());
    assert!(
        boot.stderr.contains("creating a refresh token"),
        "{}",
        boot.stderr
    );
    assert!(
        boot.stderr.contains("Invalid username or password"),
        "{}",
        boot.stderr
    );
    assert!(
        boot.stderr.contains("the username, password"),
        "{}",
        boot.stderr
    );
    assert!(world.refresh(0).await.is_none(), "nothing stored");
    assert!(!state_path(&world, 0).exists());
}

#[tokio::test]
async fn a_pasted_token_of_another_user_is_refused_and_nothing_is_stored() {
    let mut world = World::start(2).await;
    world.write_config(&world.config_text(""));
    // A valid token, but user 102's, pasted for int0 (user 101).
    let foreign = world.issue_refresh_token(1, "someone-else");

    let boot = bootstrap_with_token(&mut world, 0, &foreign, &[]).await;
    assert_eq!(boot.code, 1, "{}", boot.all());
    assert!(
        boot.stderr.contains("validating the pasted refresh token"),
        "{}",
        boot.stderr
    );
    assert!(
        boot.stderr
            .contains("does not know this refresh token for this user_id")
            || boot.stderr.contains("belongs to Alation user"),
        "{}",
        boot.stderr
    );
    assert!(boot.stderr.contains("user_id"), "{}", boot.stderr);
    assert!(world.refresh(0).await.is_none(), "nothing stored");

    // Garbage is refused the same way.
    let garbage = bootstrap_with_token(&mut world, 0, "not-a-token-at-all", &[]).await;
    assert_eq!(garbage.code, 1, "{}", garbage.all());
    assert!(world.refresh(0).await.is_none());
}

/// Refresh tokens live one hour and are regenerated when less than 20 minutes remain; access
/// tokens live ten minutes.
const REGEN_POLICY: &str = "access_renew_before = \"2m\"\nrefresh_renew_before = \"20m\"\nmin_regenerate_interval = \"0s\"";

/// One bootstrapped integration with those lifetimes under [`REGEN_POLICY`], after a
/// first successful run (returned).
async fn regen_world() -> (World, Run) {
    let mut world = World::start(1).await;
    world
        .emulator
        .set_lifetimes(Duration::from_secs(10 * 60), Duration::from_secs(60 * 60));
    world.write_config(&world.config_text(REGEN_POLICY));
    world.bootstrap_all().await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    (world, first)
}

#[tokio::test]
async fn regeneration_happens_past_the_threshold_and_the_old_refresh_token_dies() {
    let (mut world, first) = regen_world().await;
    assert!(
        !first.stdout.contains("refresh token regenerated"),
        "{}",
        first.stdout
    );
    assert_eq!(world.emulator.calls("regenRefreshToken"), 0, "not due yet");
    let old_doc = world.refresh(0).await.unwrap();
    let old_bytes = world.refresh_file(0);

    // 39 minutes: 21 left, still outside the 20-minute window.
    world.advance(Duration::from_secs(39 * 60));
    let early = world.run(&["run"], &[]).await;
    assert_eq!(early.code, 0, "{}", early.all());
    assert_eq!(
        world.emulator.calls("regenRefreshToken"),
        0,
        "{}",
        early.stdout
    );
    assert_eq!(world.refresh_file(0), old_bytes);

    // 2 more minutes: 19 left, inside the window.
    world.advance(Duration::from_secs(2 * 60));
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("refresh token regenerated"),
        "{}",
        run.stdout
    );
    assert_eq!(world.emulator.calls("regenRefreshToken"), 1);
    assert_ne!(
        world.refresh_file(0),
        old_bytes,
        "the stored document changed"
    );
    let new_doc = world.refresh(0).await.unwrap();
    assert_ne!(
        new_doc.refresh_token.expose_secret(),
        old_doc.refresh_token.expose_secret()
    );
    assert!(new_doc.token_expires_at > old_doc.token_expires_at);
    assert!(new_doc.last_regenerated_at.is_some());
    assert!(world.refresh_is_valid(0, &new_doc.refresh_token).await);

    // The old refresh token no longer works, for validation or minting.
    let client = world.client();
    let validate = client
        .validate_refresh_token(&old_doc.refresh_token, old_doc.user_id)
        .await
        .expect_err("the old refresh token must be dead");
    assert!(validate.is_token_expired_or_revoked(), "{validate}");
    let mint = client
        .create_access_token(&old_doc.refresh_token, old_doc.user_id)
        .await
        .expect_err("the old refresh token must not mint");
    assert!(mint.is_token_expired_or_revoked(), "{mint}");

    assert!(
        world.health(0, &[]).await.is_ok(),
        "{:?}",
        world.health(0, &[]).await
    );
    let after = world.run(&["run"], &[]).await;
    assert_eq!(after.code, 0, "{}", after.all());
    assert_eq!(
        world.emulator.calls("regenRefreshToken"),
        1,
        "no second regeneration"
    );
}

/// Regenerating kills the access tokens minted from the old refresh token (the emulator's
/// least convenient guess). A run that regenerates while the access token is otherwise fresh
/// must not leave that dead token in the destinations.
#[tokio::test]
async fn regeneration_while_the_access_token_is_fresh_leaves_a_working_access_token() {
    let mut world = World::start(1).await;
    world.emulator.set_lifetimes(
        Duration::from_secs(60 * 60),
        Duration::from_secs(2 * 60 * 60),
    );
    world.write_config(
        &world.config_text("access_renew_before = \"5m\"\nrefresh_renew_before = \"90m\"\nmin_regenerate_interval = \"0s\""),
    );
    world.bootstrap_all().await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());

    // 31 minutes: the refresh token has 89 of 120 minutes left (due), the access token 29 of
    // 60 (fresh).
    world.advance(Duration::from_secs(31 * 60));
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stdout.contains("refresh token regenerated"),
        "{}",
        run.stdout
    );
    let health = world.health(0, &[]).await;
    assert!(
        health.is_ok(),
        "after a successful run the delivered token must work: {health:?}\n{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_bootstrap_until_one_is_stored() {
    let (mut world, _) = regen_world().await;
    world.emulator.revoke_refresh_tokens(world.users[0].id);
    let before = world.refresh_file(0);

    // The access token is due, so the run needs the refresh token and finds it revoked.
    world.advance(Duration::from_secs(9 * 60));
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("needs bootstrap"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("`alation-rotator bootstrap int0 --username USER`"),
        "{}",
        run.stdout
    );
    assert_eq!(
        world.refresh_file(0),
        before,
        "the stored document is untouched"
    );

    let (status, line) = status_line(&mut world, 0).await;
    assert!(
        line.contains("needs-bootstrap"),
        "status must say so: {}",
        status.stdout
    );
    assert_eq!(status.code, 1, "{}", status.all());

    // The fix the message names: bootstrap (no --force needed: the stored token is dead).
    let password = world.users[0].password.clone();
    let boot = bootstrap_with_password(&mut world, 0, &password, &[]).await;
    assert_eq!(boot.code, 0, "{}", boot.all());
    let fixed = world.run(&["run"], &[]).await;
    assert_eq!(fixed.code, 0, "{}", fixed.all());
    assert!(world.health(0, &[]).await.is_ok());
    let (_, line) = status_line(&mut world, 0).await;
    assert!(line.contains(" ok "), "{line}");
}

/// A refresh token whose `token_expires_at` has passed is dead: `status` can say so without
/// asking anyone.
#[tokio::test]
async fn status_says_needs_bootstrap_once_the_stored_refresh_token_has_expired() {
    let (mut world, _) = regen_world().await;

    world.advance(Duration::from_secs(61 * 60));
    let (status, line) = status_line(&mut world, 0).await;
    assert!(line.contains("needs-bootstrap"), "{}", status.stdout);
    assert!(
        status.stdout.contains("alation-rotator bootstrap int0"),
        "{}",
        status.stdout
    );
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("needs bootstrap"), "{}", run.stdout);
}

#[tokio::test]
async fn validate_notices_an_admins_revocation_before_expiry_and_rotates() {
    let mut world = World::bootstrapped(1, "validate = true").await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let validations = world.emulator.calls("validateAPIAccessToken");

    let fresh = world.run(&["run"], &[]).await;
    assert_eq!(fresh.code, 0, "{}", fresh.all());
    assert_eq!(outcomes(&fresh), [("int0".to_owned(), "fresh".to_owned())]);
    assert!(
        world.emulator.calls("validateAPIAccessToken") > validations,
        "it asked Alation"
    );

    world.emulator.revoke_access_tokens(world.users[0].id);
    let (old, old_version) = world.access(0).await.unwrap();
    assert!(!world.api_accepts(&old.api_access_token).await);
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(outcomes(&run), [("int0".to_owned(), "rotated".to_owned())]);
    let (new, new_version) = world.access(0).await.unwrap();
    assert_ne!(new_version, old_version);
    assert!(world.api_accepts(&new.api_access_token).await);
}

#[tokio::test]
async fn revoke_kills_the_old_access_token_and_delivers_a_fresh_one() {
    let mut world = World::bootstrapped(2, "").await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let (old, old_version) = world.access(0).await.unwrap();
    let other = world.access(1).await.unwrap().0;
    assert!(world.api_accepts(&old.api_access_token).await);

    let revoke = world.run(&["revoke", "int0"], &[]).await;
    assert_eq!(revoke.code, 0, "{}", revoke.all());
    assert_eq!(
        outcomes(&revoke),
        [("int0".to_owned(), "rotated".to_owned())]
    );
    assert_eq!(world.emulator.calls("revokeAPIAccessTokens"), 1);
    assert!(
        !world.api_accepts(&old.api_access_token).await,
        "the old token is dead"
    );
    let (new, new_version) = world.access(0).await.unwrap();
    assert_ne!(new_version, old_version);
    assert!(
        world.api_accepts(&new.api_access_token).await,
        "the new token works"
    );
    assert!(
        world.api_accepts(&other.api_access_token).await,
        "other integrations untouched"
    );

    let unknown = world.run(&["revoke", "nope"], &[]).await;
    assert_eq!(unknown.code, 2, "{}", unknown.all());
}

/// The state store breaks while Alation is answering `regenRefreshToken` (it answers after 1.5
/// seconds; the test swaps the state directory for a plain file as soon as the request
/// arrives). The regenerated token must land in escrow and the next run must store it.
#[tokio::test]
async fn a_regenerated_token_waits_in_escrow_while_the_state_store_is_down() {
    let (mut world, _) = regen_world().await;
    let old = world.refresh(0).await.unwrap().refresh_token;

    world.advance(Duration::from_secs(45 * 60));
    world.emulator.inject(
        Fault::new(FaultKind::Latency(Duration::from_millis(1500)))
            .on("regenRefreshToken")
            .times(1),
    );
    let child = world.spawn(&["run"], &[]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while world.emulator.calls("regenRefreshToken") == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no regenRefreshToken request"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The state store goes down: its directory becomes a file.
    let state_dir = world.store_dir().join("state");
    let away = world.store_dir().join("state-away");
    std::fs::rename(&state_dir, &away).unwrap();
    std::fs::write(&state_dir, b"not a directory").unwrap();

    let run = child.wait(Duration::from_secs(60)).await;
    world.check_output(&run).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("kept in escrow at"), "{}", run.stdout);
    assert!(
        run.stdout
            .contains(&world.escrow_file(0).display().to_string()),
        "the message names the escrow file: {}",
        run.stdout
    );
    let escrowed = world.escrowed(0).expect("the token waits in escrow");
    world.add_secret(escrowed.expose_secret());
    assert_ne!(escrowed.expose_secret(), old.expose_secret());
    assert!(
        world.refresh_is_valid(0, &escrowed).await,
        "the escrowed token is the live one"
    );
    assert!(
        !world.refresh_is_valid(0, &old).await,
        "the old one died at regeneration"
    );
    let meta = std::fs::metadata(world.escrow_file(0)).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::mode(&meta) & 0o777, 0o600);
    let dir_meta = std::fs::metadata(world.escrow_dir()).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::mode(&dir_meta) & 0o777,
        0o700
    );

    // The store comes back.
    std::fs::remove_file(&state_dir).unwrap();
    std::fs::rename(&away, &state_dir).unwrap();
    let (status, line) = status_line(&mut world, 0).await;
    assert!(line.contains("escrow-waiting"), "{}", status.stdout);

    let next = world.run(&["run"], &[]).await;
    assert_eq!(next.code, 0, "{}", next.all());
    let stored = world.refresh(0).await.unwrap();
    assert_eq!(
        stored.refresh_token.expose_secret(),
        escrowed.expose_secret(),
        "the state document holds the escrowed token"
    );
    assert!(!world.escrow_file(0).exists(), "the escrow file is gone");
    assert_eq!(
        world.emulator.calls("regenRefreshToken"),
        1,
        "no second regeneration"
    );
    let health = world.health(0, &[]).await;
    assert!(health.is_ok(), "{health:?}");
    let (_, line) = status_line(&mut world, 0).await;
    assert!(line.contains(" ok "), "{line}");
}

/// Whether some string in `value`, outside the free-text `message` and `error`, is exactly
/// `wanted`.
fn has_field_value(value: &serde_json::Value, wanted: &str) -> bool {
    match value {
        serde_json::Value::String(s) => s == wanted,
        serde_json::Value::Array(items) => items.iter().any(|v| has_field_value(v, wanted)),
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| k.as_str() != "message" && k.as_str() != "error")
            .any(|(_, v)| has_field_value(v, wanted)),
        _ => false,
    }
}

/// The runbook tells operators to alert on failed outcomes in the JSON logs: the failure's
/// log line must say which integration failed in a field a log pipeline can read (a JSON
/// parser keeps only one of two duplicate keys).
#[tokio::test]
async fn json_logs_of_a_failure_name_the_integration_in_a_field() {
    let mut world = World::bootstrapped(2, "").await;
    world.emulator.revoke_refresh_tokens(world.users[1].id);

    let run = world.run(&["run", "--log-format", "json"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let failures: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .filter(|v: &serde_json::Value| v["message"] == "rotation failed")
        .collect();
    assert_eq!(failures.len(), 1, "{}", run.stderr);
    assert_eq!(failures[0]["level"], "WARN");
    assert!(
        has_field_value(&failures[0], "int1"),
        "no field of the failure's log line names int1 (parsed: {})\nraw:\n{}",
        failures[0],
        run.stderr
    );
}
