//! Crash safety: the real binary killed with SIGKILL at every pause point of regeneration and
//! minting, and at random moments while Alation is slow to answer. After each kill one more
//! normal run must leave the integration healthy (or recover it from escrow, and a second run
//! make it healthy). The only loss allowed is a kill between Alation's `regenRefreshToken`
//! answer and the fsync of the escrow file: the test counts how often it landed there.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alation_emulator::{Fault, FaultKind};
use rand::Rng;
use rotator_alation::ExposeSecret;
use rotator_core::engine::Checkpoint;

use crate::harness::{Run, World};

/// Every run regenerates the refresh token and mints an access token: both thresholds are the
/// whole lifetime.
const ALWAYS_DUE: &str = "access_renew_before = \"100%\"\nrefresh_renew_before = \"100%\"\nmin_regenerate_interval = \"0s\"";

/// The pause point between Alation's answer and the first durable write.
const WINDOW: &str = "after-regen";

/// Kills per pause point.
const KILLS_PER_POINT: usize = 5;
/// Kills at random moments.
const RANDOM_KILLS: usize = 25;

const REGEN_LATENCY: Duration = Duration::from_millis(250);
const MINT_LATENCY: Duration = Duration::from_millis(250);

/// The second destination, so that a kill after the first write leaves one stale.
const MIRROR: &str = "mirror";

#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    /// No live refresh token anywhere after the kill.
    lost: usize,
    /// A live token waited in escrow after the kill.
    escrowed: usize,
    /// The first run after the kill failed and a second one was needed.
    second_runs: usize,
    /// For kills at random moments: when, in milliseconds, relative to the moment Alation's
    /// regenRefreshToken answer was due (request seen + injected latency).
    offsets_ms: Vec<i64>,
}

/// What the kill left behind.
struct Aftermath {
    state_live: bool,
    escrow: Option<bool>,
}

impl Aftermath {
    fn lost(&self) -> bool {
        !self.state_live && self.escrow != Some(true)
    }
}

async fn aftermath(world: &mut World) -> Aftermath {
    let state_live = match world.refresh(0).await {
        Some(document) => world.refresh_is_valid(0, &document.refresh_token).await,
        None => false,
    };
    let escrow = match world.escrowed(0) {
        Some(token) => {
            world.add_secret(token.expose_secret());
            Some(world.refresh_is_valid(0, &token).await)
        }
        None => None,
    };
    Aftermath { state_live, escrow }
}

/// Stores a new refresh token with the CLI (pasted, as an SSO user would) after a loss.
async fn rebootstrap(world: &mut World, n: usize) {
    let token = world.issue_refresh_token(0, &format!("int0-rebootstrap-{n}"));
    let run = world
        .run_with_stdin(
            &["bootstrap", "int0", "--refresh-token-stdin"],
            &[],
            &format!("{token}\n"),
        )
        .await;
    assert_eq!(run.code, 0, "re-bootstrap after a loss: {}", run.all());
}

/// One normal run (two if the first could only recover from escrow), then the health check.
async fn recover(world: &mut World, after: &Aftermath, tally: &mut Tally, what: &str) {
    let run = world.run(&["run"], &[]).await;
    if run.code != 0 {
        assert!(
            after.escrow.is_some(),
            "{what}: the first run after the kill failed and nothing waited in escrow:\n{}",
            run.all()
        );
        tally.second_runs += 1;
        let second = world.run(&["run"], &[]).await;
        assert_eq!(
            second.code,
            0,
            "{what}: the second run after the kill:\n{}\nfirst run:\n{}",
            second.all(),
            run.all()
        );
    }
    if let Err(problem) = world.health(0, &[MIRROR]).await {
        panic!(
            "{what}: not healthy after recovery: {problem}\n{}",
            run.all()
        );
    }
}

async fn kill_at(world: &mut World, point: &str) -> Run {
    let marker = format!("test-hook: paused at {point}");
    let mut child = world.spawn(&["run"], &[("ALATION_ROTATOR_TEST_PAUSE_AT", point)]);
    if !child.wait_for(&marker, Duration::from_secs(30)).await {
        let run = child.wait(Duration::from_secs(30)).await;
        world.check_output(&run).await;
        panic!("the run ended without pausing at {point}:\n{}", run.all());
    }
    let (run, was_running) = child.kill().await;
    assert!(was_running, "paused at {point} but gone before the kill");
    assert_eq!(run.code, -1, "killed by a signal");
    world.check_output(&run).await;
    run
}

#[tokio::test]
async fn sigkill_at_every_point_and_at_random_moments_loses_nothing_outside_the_window() {
    let started = Instant::now();
    let mut world = World::start(1).await;
    let config = world.config_text(ALWAYS_DUE).replace(
        "access_token = { store = \"local\", key = \"alation/int0\" }",
        "access_token = [\n  { store = \"local\", key = \"alation/int0\" },\n  \
         { store = \"local\", key = \"mirror/int0\" },\n]",
    );
    assert!(config.contains("mirror/int0"), "{config}");
    world.write_config(&config);
    world.bootstrap_all().await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    world.health(0, &[MIRROR]).await.unwrap();

    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut rebootstraps = 0;

    // Every pause point, several times over.
    for round in 0..KILLS_PER_POINT {
        for point in Checkpoint::ALL.map(Checkpoint::name) {
            let what = format!("kill at {point} (round {round})");
            let regens = world.emulator.calls("regenRefreshToken");
            kill_at(&mut world, point).await;
            if point != "before-regen" {
                assert_eq!(
                    world.emulator.calls("regenRefreshToken"),
                    regens + 1,
                    "{what}: the run regenerated"
                );
            }
            let after = aftermath(&mut world).await;
            let tally = tallies.entry(point.to_owned()).or_default();
            tally.kills += 1;
            if after.escrow == Some(true) {
                tally.escrowed += 1;
            }
            if after.lost() {
                tally.lost += 1;
                assert_eq!(
                    point, WINDOW,
                    "{what}: the refresh token was lost outside the window"
                );
                assert!(
                    after.escrow.is_none(),
                    "{what}: lost, yet an escrow file exists"
                );
                rebootstraps += 1;
                rebootstrap(&mut world, rebootstraps).await;
            }
            recover(&mut world, &after, tally, &what).await;
        }
    }

    // Random moments, with Alation slow to answer regenRefreshToken and createAPIAccessToken.
    // Odd attempts pick a moment anywhere in the run; even ones aim at a few milliseconds
    // around Alation's regenRefreshToken answer, where the window is.
    let mut rng = rand::rng();
    let max_delay =
        Duration::from_millis(100) + REGEN_LATENCY + MINT_LATENCY + Duration::from_millis(100);
    let mut random_kills = 0;
    let mut attempts = 0;
    while random_kills < RANDOM_KILLS {
        attempts += 1;
        assert!(
            attempts <= RANDOM_KILLS * 3,
            "too few runs could be killed in time"
        );
        let aimed = attempts % 2 == 0;
        let user = world.users[0].id;
        world.emulator.inject(
            Fault::new(FaultKind::Latency(REGEN_LATENCY))
                .on("regenRefreshToken")
                .for_user(user)
                .times(1),
        );
        world.emulator.inject(
            Fault::new(FaultKind::Latency(MINT_LATENCY))
                .on("createAPIAccessToken")
                .for_user(user)
                .times(1),
        );
        let regens = world.emulator.calls("regenRefreshToken");
        let before = world
            .refresh(0)
            .await
            .expect("a refresh token")
            .refresh_token;
        let mut delay = Duration::from_millis(rng.random_range(0..=max_delay.as_millis() as u64));
        let spawned_at = Instant::now();
        let mut child = world.spawn(&["run"], &[]);
        let mut regen_requested_at = None;
        loop {
            let elapsed = spawned_at.elapsed();
            if regen_requested_at.is_none() && world.emulator.calls("regenRefreshToken") > regens {
                regen_requested_at = Some(elapsed);
                if aimed {
                    // From 5 ms before the answer to 15 ms after it.
                    let offset = rng.random_range(0..=20u64);
                    delay = elapsed + REGEN_LATENCY + Duration::from_millis(offset)
                        - Duration::from_millis(5);
                }
            }
            let waiting_for_request = aimed && regen_requested_at.is_none();
            if (!waiting_for_request && elapsed >= delay) || !child.is_running() {
                break;
            }
            if waiting_for_request || delay - elapsed > Duration::from_millis(2) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            } else {
                tokio::task::yield_now().await;
            }
        }
        let killed_at = spawned_at.elapsed();
        let (run, was_running) = child.kill().await;
        world.check_output(&run).await;
        if regen_requested_at.is_none() && world.emulator.calls("regenRefreshToken") > regens {
            regen_requested_at = Some(killed_at);
        }
        // A request in flight may still be answered (into a dead socket): let the emulator
        // finish it before judging. Time is what is under test here.
        if let Some(at) = regen_requested_at {
            let settled = at + REGEN_LATENCY + Duration::from_millis(200);
            if killed_at < settled {
                tokio::time::sleep(settled - killed_at).await;
            }
        }
        world.emulator.clear_faults();
        let what =
            format!("random kill after {killed_at:?} (regen requested at {regen_requested_at:?})");
        let after = aftermath(&mut world).await;
        let state_changed = world
            .refresh(0)
            .await
            .is_some_and(|d| d.refresh_token.expose_secret() != before.expose_secret());
        let landed = if !was_running {
            assert_eq!(
                run.code,
                0,
                "{what}: the run ended by itself but failed:\n{}",
                run.all()
            );
            "ended before the kill (not counted)"
        } else if regen_requested_at.is_none() {
            "before the regenRefreshToken request"
        } else if after.lost() {
            "in the window: regenerated, escrow not yet synced"
        } else if after.escrow == Some(true) {
            "after the escrow fsync, before the state write"
        } else if state_changed {
            "after the state write"
        } else {
            "regenRefreshToken cut off before Alation acted"
        };
        let key = format!(
            "random ({}): {landed}",
            if aimed { "aimed" } else { "uniform" }
        );
        random_kills += usize::from(was_running);
        let tally = tallies.entry(key.clone()).or_default();
        tally.kills += usize::from(was_running);
        if let (true, Some(at)) = (was_running, regen_requested_at) {
            let answer = (at + REGEN_LATENCY).as_millis() as i64;
            tally.offsets_ms.push(killed_at.as_millis() as i64 - answer);
        }
        if after.escrow == Some(true) {
            tally.escrowed += 1;
        }
        if after.lost() {
            tally.lost += 1;
            assert!(
                regen_requested_at.is_some(),
                "{what}: the refresh token was lost before any regenRefreshToken request"
            );
            assert!(
                after.escrow.is_none(),
                "{what}: lost, yet an escrow file exists"
            );
            rebootstraps += 1;
            rebootstrap(&mut world, rebootstraps).await;
        }
        recover(&mut world, &after, tally, &format!("{what} ({key})")).await;
    }

    let total_kills: usize = tallies.values().map(|t| t.kills).sum();
    let window_losses = tallies.get(WINDOW).map_or(0, |t| t.lost);
    let random_losses: usize = tallies
        .iter()
        .filter(|(k, _)| k.starts_with("random"))
        .map(|(_, t)| t.lost)
        .sum();
    eprintln!("crash test: {total_kills} kills in {:?}", started.elapsed());
    eprintln!(
        "{:<70} {:>5} {:>5} {:>8} {:>10}  ms after the regen answer was due",
        "where", "kills", "lost", "escrowed", "second run"
    );
    for (key, t) in &tallies {
        let offsets = match (t.offsets_ms.iter().min(), t.offsets_ms.iter().max()) {
            (Some(min), Some(max)) => format!("{min}..{max}"),
            _ => "-".to_owned(),
        };
        eprintln!(
            "{key:<70} {:>5} {:>5} {:>8} {:>10}  {offsets}",
            t.kills, t.lost, t.escrowed, t.second_runs
        );
    }
    eprintln!(
        "losses: {window_losses} of {KILLS_PER_POINT} kills at the {WINDOW} pause point, \
         {random_losses} of {random_kills} kills at random moments (each one after Alation's \
         regenRefreshToken answer and before the escrow fsync); none elsewhere; {rebootstraps} \
         re-bootstraps"
    );

    assert!(total_kills >= 50, "only {total_kills} kills");
    for point in Checkpoint::ALL.map(Checkpoint::name) {
        let tally = &tallies[point];
        assert_eq!(tally.kills, KILLS_PER_POINT, "{point}");
        if point == WINDOW {
            assert_eq!(
                tally.lost, tally.kills,
                "a kill at {WINDOW} always loses the token: Alation killed the old one and the new \
                 one was never written"
            );
        } else {
            assert_eq!(tally.lost, 0, "{point}: losses outside the window");
        }
    }
    assert!(
        tallies["after-escrow"].escrowed == KILLS_PER_POINT,
        "a kill at after-escrow leaves the token in escrow"
    );
}
