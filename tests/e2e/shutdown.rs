//! Graceful termination of the real binary: SIGTERM starts nothing new and lets work in
//! flight finish; the shutdown grace period and a second signal end the wait, never while a
//! regenerated refresh token is only in memory; the run deadline stops a run the same way.

use std::time::{Duration, Instant};

use alation_emulator::{endpoints, Fault, FaultKind};

use crate::harness::{outcomes, World};

/// Waits until the emulator has received `n` more requests of `endpoint`.
async fn requested(world: &World, endpoint: &str, before: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.emulator.calls(endpoint) < before + n {
        assert!(Instant::now() < deadline, "no {endpoint} request");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn sigterm_finishes_the_work_in_flight_and_names_what_it_did_not_reach() {
    let mut world = World::bootstrapped(4, "max_concurrency = 1").await;
    world.emulator.inject(
        Fault::new(FaultKind::Latency(Duration::from_millis(600)))
            .on(endpoints::CREATE_ACCESS_TOKEN),
    );
    let mints = world.emulator.calls(endpoints::CREATE_ACCESS_TOKEN);
    let child = world.spawn(&["run"], &[]);
    requested(&world, endpoints::CREATE_ACCESS_TOKEN, mints, 1).await;
    child.signal("TERM");
    let run = child.wait(Duration::from_secs(30)).await;
    world.check_output(&run).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let outcomes = outcomes(&run);
    assert_eq!(
        outcomes.len(),
        4,
        "one line per integration: {}",
        run.stdout
    );
    assert_eq!(
        outcomes.iter().filter(|(_, o)| o == "rotated").count(),
        1,
        "{}",
        run.stdout
    );
    assert_eq!(
        outcomes.iter().filter(|(_, o)| o == "not-reached").count(),
        3,
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("SIGTERM received"), "{}", run.stdout);
    assert!(run.stderr.contains("stopping"), "{}", run.stderr);
    assert_eq!(
        world.emulator.calls(endpoints::CREATE_ACCESS_TOKEN),
        mints + 1,
        "nothing new started"
    );
    world.emulator.clear_faults();
    let next = world.run(&["run"], &[]).await;
    assert_eq!(next.code, 0, "{}", next.all());
}

#[tokio::test]
async fn the_grace_period_ends_a_wait_on_a_hung_call() {
    let mut world = World::bootstrapped(1, "shutdown_grace = \"1s\"").await;
    world.write_config(
        &world
            .config_text("shutdown_grace = \"1s\"")
            .replace("timeout = \"5s\"", "timeout = \"30s\""),
    );
    world.emulator.inject(
        Fault::new(FaultKind::Latency(Duration::from_secs(20))).on(endpoints::CREATE_ACCESS_TOKEN),
    );
    let mints = world.emulator.calls(endpoints::CREATE_ACCESS_TOKEN);
    let child = world.spawn(&["run"], &[]);
    requested(&world, endpoints::CREATE_ACCESS_TOKEN, mints, 1).await;
    let signalled = Instant::now();
    child.signal("TERM");
    let run = child.wait(Duration::from_secs(15)).await;
    world.check_output(&run).await;
    let waited = signalled.elapsed();
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(
        run.stdout
            .contains("still in flight when the shutdown grace period ended"),
        "{}",
        run.stdout
    );
}

#[tokio::test]
async fn a_second_signal_exits_only_once_a_regenerated_token_is_in_escrow() {
    let policy = "refresh_renew_before = \"100%\"\nmin_regenerate_interval = \"0s\"\nshutdown_grace = \"60s\"";
    let mut world = World::bootstrapped(1, policy).await;
    world.emulator.inject(
        Fault::new(FaultKind::Latency(Duration::from_millis(1500)))
            .on(endpoints::REGEN_REFRESH_TOKEN),
    );
    let old = world.refresh(0).await.unwrap().refresh_token;
    let regens = world.emulator.calls(endpoints::REGEN_REFRESH_TOKEN);
    let child = world.spawn(&["run"], &[]);
    requested(&world, endpoints::REGEN_REFRESH_TOKEN, regens, 1).await;
    child.signal("TERM");
    tokio::time::sleep(Duration::from_millis(100)).await;
    child.signal("TERM");
    let run = child.wait(Duration::from_secs(30)).await;
    world.check_output(&run).await;
    assert!(run.stderr.contains("second signal"), "{}", run.stderr);
    // The regeneration finished and its token is stored or in escrow: never lost.
    let stored = world.refresh(0).await.unwrap().refresh_token;
    let live = world.refresh_is_valid(0, &stored).await
        || match world.escrowed(0) {
            Some(token) => world.refresh_is_valid(0, &token).await,
            None => false,
        };
    assert!(live, "{}", run.all());
    assert!(
        !world.refresh_is_valid(0, &old).await,
        "the regeneration happened"
    );
    world.emulator.clear_faults();
    let next = world.run(&["run"], &[]).await;
    assert_eq!(next.code, 0, "{}", next.all());
    world.health(0, &[]).await.unwrap();
}

#[tokio::test]
async fn the_run_deadline_stops_starting_new_work() {
    let mut world = World::bootstrapped(4, "max_concurrency = 1\nrun_deadline = \"1s\"").await;
    world.emulator.inject(
        Fault::new(FaultKind::Latency(Duration::from_millis(700)))
            .on(endpoints::CREATE_ACCESS_TOKEN),
    );
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    let outcomes = outcomes(&run);
    let rotated = outcomes.iter().filter(|(_, o)| o == "rotated").count();
    assert!((1..4).contains(&rotated), "{}", run.stdout);
    assert_eq!(
        outcomes.iter().filter(|(_, o)| o == "not-reached").count(),
        4 - rotated
    );
    assert!(run.stdout.contains("policy.run_deadline"), "{}", run.stdout);
}
