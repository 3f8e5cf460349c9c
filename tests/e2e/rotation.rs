//! The rotation pass, end to end: fresh vs rotated, retries, failures kept apart.

use std::time::Duration;

use alation_emulator::{Fault, FaultKind};

use crate::harness::{outcomes, World};

const SHORT_POLICY: &str = "access_renew_before = \"10s\"\nrefresh_renew_before = \"10m\"\nmin_regenerate_interval = \"0s\"";

#[tokio::test]
async fn first_run_rotates_second_writes_nothing_and_expiry_brings_rotation_back() {
    let mut world = World::start(3).await;
    world
        .emulator
        .set_lifetimes(Duration::from_secs(30), Duration::from_secs(3600));
    world.write_config(&world.config_text(SHORT_POLICY));
    world.bootstrap_all().await;

    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    assert_eq!(
        outcomes(&first),
        [
            ("int0", "rotated"),
            ("int1", "rotated"),
            ("int2", "rotated")
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let mut versions = Vec::new();
    for i in 0..3 {
        let (document, version) = world.access(i).await.expect("access token written");
        assert_eq!(document.user_id, Some(world.users[i].id));
        assert_eq!(document.integration, format!("int{i}"));
        assert!(
            world.api_accepts(&document.api_access_token).await,
            "minted token must work"
        );
        versions.push(version);
    }
    let mints = world.emulator.calls("createAPIAccessToken");
    assert_eq!(mints, 3);

    let second = world.run(&["run"], &[]).await;
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        outcomes(&second).iter().all(|(_, o)| o == "fresh"),
        "{}",
        second.stdout
    );
    for (i, version) in versions.iter().enumerate() {
        assert_eq!(
            &world.access(i).await.unwrap().1,
            version,
            "int{i} was rewritten"
        );
    }
    assert_eq!(
        world.emulator.calls("createAPIAccessToken"),
        mints,
        "a fresh run mints nothing"
    );

    // 30 seconds later the tokens are dead, for Alation and for the rotator's clock.
    world.emulator.advance_clock(Duration::from_secs(30));
    let old = world.access(0).await.unwrap().0;
    assert!(!world.api_accepts(&old.api_access_token).await);
    let third = world
        .run(&["run"], &[("ALATION_ROTATOR_TEST_CLOCK_OFFSET", "30s")])
        .await;
    assert_eq!(third.code, 0, "{}", third.all());
    assert!(
        outcomes(&third).iter().all(|(_, o)| o == "rotated"),
        "{}",
        third.stdout
    );
    for (i, version) in versions.iter().enumerate() {
        let (document, new_version) = world.access(i).await.unwrap();
        assert_ne!(&new_version, version);
        assert!(world.api_accepts(&document.api_access_token).await);
    }
}

#[tokio::test]
async fn injected_503s_and_429s_are_retried_and_succeed() {
    let mut world = World::bootstrapped(2, "").await;
    let (u0, u1) = (world.users[0].id, world.users[1].id);
    world.emulator.inject(
        Fault::new(FaultKind::Status(503))
            .on("createAPIAccessToken")
            .for_user(u0)
            .times(2),
    );
    world.emulator.inject(
        Fault::new(FaultKind::RateLimit {
            retry_after_secs: Some(1),
        })
        .on("createAPIAccessToken")
        .for_user(u1)
        .times(1),
    );

    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        outcomes(&run).iter().all(|(_, o)| o == "rotated"),
        "{}",
        run.stdout
    );
    assert_eq!(world.emulator.calls("createAPIAccessToken"), 2 + 1 + 1 + 1);
    for i in 0..2 {
        let document = world.access(i).await.unwrap().0;
        assert!(world.api_accepts(&document.api_access_token).await);
    }
}

#[tokio::test]
async fn a_persistent_500_fails_one_integration_and_the_others_still_rotate() {
    let mut world = World::bootstrapped(3, "").await;
    let broken = world.users[1].id;
    world.emulator.inject(
        Fault::new(FaultKind::Status(500))
            .on("createAPIAccessToken")
            .for_user(broken),
    );

    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let outcomes = outcomes(&run);
    assert_eq!(outcomes[0], ("int0".to_owned(), "rotated".to_owned()));
    assert_eq!(outcomes[1].1, "failed");
    assert_eq!(outcomes[2], ("int2".to_owned(), "rotated".to_owned()));
    assert!(
        run.stdout.contains("500"),
        "the failure names the status: {}",
        run.stdout
    );
    assert!(
        world.access(1).await.is_none(),
        "nothing written for the failed integration"
    );
    assert!(world.access(0).await.is_some() && world.access(2).await.is_some());
}

#[tokio::test]
async fn a_revoked_refresh_token_says_so_and_leaves_the_state_untouched() {
    let mut world = World::bootstrapped(1, "").await;
    let before = world.refresh_file(0);
    world.emulator.revoke_refresh_tokens(world.users[0].id);

    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        run.stdout.contains("refresh token is expired or revoked"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("alation-rotator bootstrap int0"),
        "the message names the fix: {}",
        run.stdout
    );
    assert_eq!(
        world.refresh_file(0),
        before,
        "the stored refresh document is untouched"
    );
    assert!(world.access(0).await.is_none());
}

#[tokio::test]
async fn an_html_answer_gets_a_plain_message() {
    let mut world = World::bootstrapped(1, "").await;
    world
        .emulator
        .inject(Fault::new(FaultKind::Html { status: 200 }).on("createAPIAccessToken"));

    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let expected = format!(
        "the server at {}integration/v1/createAPIAccessToken/ answered with an HTML page \
         (status 200): is base_url right?",
        world.emulator.base_url()
    );
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
    assert!(
        !run.all().to_lowercase().contains("json"),
        "no JSON parse jargon: {}",
        run.all()
    );
}

#[tokio::test]
async fn dry_run_mints_nothing_and_writes_nothing() {
    let mut world = World::bootstrapped(2, "").await;
    let calls_before = world.emulator.calls("createAPIAccessToken")
        + world.emulator.calls("validateRefreshToken")
        + world.emulator.calls("regenRefreshToken");

    let run = world.run(&["run", "--dry-run"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        outcomes(&run).iter().all(|(_, o)| o == "would-rotate"),
        "{}",
        run.stdout
    );
    assert!(world.access(0).await.is_none() && world.access(1).await.is_none());
    let calls_after = world.emulator.calls("createAPIAccessToken")
        + world.emulator.calls("validateRefreshToken")
        + world.emulator.calls("regenRefreshToken");
    assert_eq!(calls_before, calls_after);
}

#[tokio::test]
async fn only_and_force_select_what_is_rotated() {
    let mut world = World::bootstrapped(2, "").await;

    let run = world.run(&["run", "--only", "int1"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(outcomes(&run), [("int1".to_owned(), "rotated".to_owned())]);
    assert!(world.access(0).await.is_none());
    let version = world.access(1).await.unwrap().1;

    let forced = world.run(&["run", "--only", "int1", "--force"], &[]).await;
    assert_eq!(forced.code, 0, "{}", forced.all());
    assert_eq!(
        outcomes(&forced),
        [("int1".to_owned(), "rotated".to_owned())]
    );
    assert_ne!(world.access(1).await.unwrap().1, version);

    let unknown = world.run(&["run", "--only", "nope"], &[]).await;
    assert_eq!(unknown.code, 2, "{}", unknown.all());
    assert!(
        unknown.stderr.contains("no integration is named \"nope\""),
        "{}",
        unknown.stderr
    );
}

#[tokio::test]
async fn a_wrong_base_url_gets_the_html_message() {
    let mut world = World::start(1).await;
    world.bootstrap_all().await;
    // Every endpoint under a path the server does not have answers with an HTML 404 page.
    let text = world.config_text("").replace(
        &format!("base_url = \"{}\"", world.emulator.base_url()),
        &format!("base_url = \"{}wrong/\"", world.emulator.base_url()),
    );
    world.write_config(&text);
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let expected = format!(
        "the server at {}wrong/integration/v1/createAPIAccessToken/ answered with an HTML page \
         (status 404): is base_url right?",
        world.emulator.base_url()
    );
    assert!(run.stdout.contains(&expected), "{}", run.stdout);
}
