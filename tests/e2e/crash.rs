//! Crash safety, counted by window, against an emulator that finishes every request it
//! received even when the client is gone (as Django and gunicorn do).
//!
//! A refresh token can only be lost by a process that dies while its `regenRefreshToken`
//! request is in flight: Alation replaces the token, and the answer goes to a dead process.
//! Every kill below is classified by where it landed, from what the test saw just before it:
//! - "before the regeneration request": the emulator had not seen it;
//! - "in-flight regenerate request": seen by the emulator, no escrow file yet;
//! - "after the answer reached escrow": an escrow file (raw answer or token) existed, or the
//!   state already held the new token.
//!
//! Losses are allowed only in the in-flight window, and each must be reported by the next run
//! as "lost during regeneration", never as an admin revocation.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use alation_emulator::{endpoints, Fault, FaultKind};
use rand::Rng;
use rotator_alation::{ExposeSecret, SecretString};
use rotator_core::engine::Checkpoint;

use crate::harness::{Run, Spawned, World};

/// Every run regenerates the refresh token and mints an access token.
const ALWAYS_DUE: &str = "access_renew_before = \"100%\"\nrefresh_renew_before = \"100%\"\n\
                          min_regenerate_interval = \"0s\"\nshutdown_grace = \"10s\"";

const REGEN_LATENCY: Duration = Duration::from_millis(150);
const MINT_LATENCY: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Window {
    BeforeRequest,
    InFlight,
    AfterEscrow,
}

impl Window {
    fn name(self) -> &'static str {
        match self {
            Window::BeforeRequest => "before the regeneration request",
            Window::InFlight => "in-flight regenerate request",
            Window::AfterEscrow => "after the answer reached escrow",
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    kills: usize,
    lost: usize,
    reported_lost: usize,
}

/// What one integration looks like after a kill, once Alation finished its work.
struct Aftermath {
    state_live: bool,
    escrow_live: bool,
}

impl Aftermath {
    fn lost(&self) -> bool {
        !self.state_live && !self.escrow_live
    }
}

async fn aftermath(world: &mut World, i: usize) -> Aftermath {
    let state_live = match world.refresh(i).await {
        Some(document) => world.refresh_is_valid(i, &document.refresh_token).await,
        None => false,
    };
    let escrow_live = match world.escrowed(i) {
        Some(token) => {
            world.add_secret(token.expose_secret());
            world.refresh_is_valid(i, &token).await
        }
        None => false,
    };
    Aftermath {
        state_live,
        escrow_live,
    }
}

/// Waits until the emulator has finished every request it received: the work goes on after
/// the client is gone.
/// After a kill: waits until the emulator has read every connection of the dead process to
/// its end and finished every request it had sent.
async fn settle(world: &World) {
    world.emulator.quiescent(Duration::from_secs(15)).await;
}

fn slow_alation(world: &World, user: i64) {
    world.emulator.inject(
        Fault::new(FaultKind::Latency(REGEN_LATENCY))
            .on(endpoints::REGEN_REFRESH_TOKEN)
            .for_user(user)
            .times(1),
    );
    world.emulator.inject(
        Fault::new(FaultKind::Latency(MINT_LATENCY))
            .on(endpoints::CREATE_ACCESS_TOKEN)
            .for_user(user)
            .times(1),
    );
}

/// Stores new refresh tokens with the CLI (pasted, as an SSO user would): one, or two for an
/// integration with a standby.
async fn rebootstrap(world: &mut World, i: usize, tokens: usize, n: usize) {
    let pasted: Vec<String> = (0..tokens)
        .map(|t| world.issue_refresh_token(i, &format!("int{i}-rebootstrap-{n}-{t}")))
        .collect();
    for token in &pasted {
        world.add_secret(token);
    }
    let run = world
        .run_with_stdin(
            &[
                "bootstrap",
                &format!("int{i}"),
                "--refresh-token-stdin",
                "--force",
            ],
            &[],
            &format!("{}\n", pasted.join("\n")),
        )
        .await;
    assert_eq!(run.code, 0, "re-bootstrap: {}", run.all());
}

/// Where a kill is about to land, from what the test sees now.
async fn window_now(world: &World, i: usize, regens_before: usize, old: &SecretString) -> Window {
    if world.emulator.calls(endpoints::REGEN_REFRESH_TOKEN) == regens_before {
        return Window::BeforeRequest;
    }
    let stored_new = world
        .refresh(i)
        .await
        .is_some_and(|d| d.refresh_token.expose_secret() != old.expose_secret());
    if world.escrow_holds(i) || stored_new {
        Window::AfterEscrow
    } else {
        Window::InFlight
    }
}

/// Runs `run` for one integration and kills it (SIGKILL) at a random moment while it
/// regenerates. Returns where the kill landed, or `None` if the run ended first.
async fn kill_at_random(world: &mut World, i: usize, rng: &mut impl Rng) -> Option<Window> {
    slow_alation(world, world.users[i].id);
    let regens = world.emulator.calls(endpoints::REGEN_REFRESH_TOKEN);
    let old = world
        .refresh(i)
        .await
        .expect("a refresh token")
        .refresh_token;
    let max = Duration::from_millis(60) + REGEN_LATENCY + MINT_LATENCY + Duration::from_millis(60);
    let delay = Duration::from_millis(rng.random_range(0..=max.as_millis() as u64));
    let child = world.spawn(&["run", "--only", &format!("int{i}")], &[]);
    let started = Instant::now();
    let mut child = child;
    while started.elapsed() < delay && child.is_running() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let (run, was_running) = child.kill().await;
    world.check_output(&run).await;
    world.emulator.clear_faults();
    if !was_running {
        assert_eq!(run.code, 0, "a run that ended by itself: {}", run.all());
        return None;
    }
    settle(world).await;
    // Classified by what had happened when the process died: a request it had sent reaches
    // the emulator (which finishes it) even if the kill came first in our clock.
    Some(window_now(world, i, regens, &old).await)
}

/// After a kill: the next run either recovers (exit 0, healthy) or, for a loss, says
/// "lost during regeneration"; then a person re-bootstraps.
async fn recover(
    world: &mut World,
    i: usize,
    lost: bool,
    tokens: usize,
    n: usize,
    what: &str,
) -> bool {
    let run = world.run(&["run", "--only", &format!("int{i}")], &[]).await;
    if lost {
        assert_eq!(
            run.code,
            1,
            "{what}: a lost token fails the run: {}",
            run.all()
        );
        assert!(
            !run.stdout.contains("needs bootstrap"),
            "{what}: a loss in flight is never reported as needs bootstrap: {}",
            run.stdout
        );
        let reported = run.stdout.contains("lost during regeneration at");
        let status = world.run(&["status", "--format", "json"], &[]).await;
        assert!(
            status
                .stdout
                .contains("\"health\": \"lost-during-regeneration\""),
            "{what}: status agrees: {}",
            status.stdout
        );
        rebootstrap(world, i, tokens, n).await;
        let again = world.run(&["run", "--only", &format!("int{i}")], &[]).await;
        assert_eq!(again.code, 0, "{what}: after re-bootstrap: {}", again.all());
        return reported;
    }
    assert_eq!(
        run.code,
        0,
        "{what}: the first run after the kill: {}",
        run.all()
    );
    if let Err(problem) = world.health(i, &[]).await {
        panic!(
            "{what}: not healthy after recovery: {problem}\n{}",
            run.all()
        );
    }
    false
}

fn print_tallies(title: &str, tallies: &BTreeMap<Window, Tally>, started: Instant) {
    eprintln!("{title} ({:?}):", started.elapsed());
    eprintln!(
        "  {:<36} {:>5} {:>5} {:>14}",
        "window", "kills", "lost", "reported lost"
    );
    for (window, t) in tallies {
        eprintln!(
            "  {:<36} {:>5} {:>5} {:>14}",
            window.name(),
            t.kills,
            t.lost,
            t.reported_lost
        );
    }
}

/// At least 50 SIGKILLs at random moments of runs that regenerate: losses only in flight,
/// each reported as "lost during regeneration".
#[tokio::test]
async fn sigkill_at_random_moments_loses_only_in_flight_and_says_so() {
    let started = Instant::now();
    let mut world = World::bootstrapped(1, ALWAYS_DUE).await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let mut rng = rand::rng();
    let mut tallies: BTreeMap<Window, Tally> = BTreeMap::new();
    let mut kills = 0;
    let mut attempts = 0;
    while kills < 50 {
        attempts += 1;
        assert!(attempts < 150, "too few runs could be killed in time");
        let Some(window) = kill_at_random(&mut world, 0, &mut rng).await else {
            continue;
        };
        kills += 1;
        let lost = aftermath(&mut world, 0).await.lost();
        let what = format!("kill {kills} ({})", window.name());
        let reported = recover(&mut world, 0, lost, 1, kills, &what).await;
        let tally = tallies.entry(window).or_default();
        tally.kills += 1;
        tally.lost += usize::from(lost);
        tally.reported_lost += usize::from(reported);
    }
    print_tallies("SIGKILL at random moments", &tallies, started);
    for (window, tally) in &tallies {
        if *window != Window::InFlight {
            assert_eq!(tally.lost, 0, "losses {}", window.name());
        }
        assert_eq!(
            tally.reported_lost,
            tally.lost,
            "{}: every loss reported",
            window.name()
        );
    }
    assert!(
        tallies.get(&Window::InFlight).is_some_and(|t| t.kills >= 5),
        "the kills must reach the dangerous window often enough to prove anything: {tallies:?}"
    );
}

/// SIGKILL at every named checkpoint, five times each: none is in flight, so nothing is lost.
#[tokio::test]
async fn sigkill_at_every_checkpoint_loses_nothing() {
    let started = Instant::now();
    let mut world = World::bootstrapped(1, ALWAYS_DUE).await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let mut counts: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for round in 0..5 {
        for point in Checkpoint::ALL.map(Checkpoint::name) {
            let marker = format!("test-hook: paused at {point}");
            let mut child = world.spawn(&["run"], &[("ALATION_ROTATOR_TEST_PAUSE_AT", point)]);
            assert!(
                child.wait_for(&marker, Duration::from_secs(30)).await,
                "never paused at {point}"
            );
            let (run, was_running) = child.kill().await;
            assert!(was_running, "paused at {point} but gone before the kill");
            world.check_output(&run).await;
            let lost = aftermath(&mut world, 0).await.lost();
            let entry = counts.entry(point).or_default();
            entry.0 += 1;
            entry.1 += usize::from(lost);
            recover(
                &mut world,
                0,
                lost,
                1,
                round * 10,
                &format!("kill at {point}"),
            )
            .await;
        }
    }
    eprintln!(
        "SIGKILL at checkpoints ({:?}): {counts:?}",
        started.elapsed()
    );
    for (point, (kills, lost)) in counts {
        assert_eq!(kills, 5);
        assert_eq!(lost, 0, "{point}");
    }
}

/// At least 20 SIGTERMs at random moments: the run finishes what is in flight, exits, and
/// nothing is ever lost.
#[tokio::test]
async fn sigterm_never_loses_a_token() {
    let started = Instant::now();
    let mut world = World::bootstrapped(1, ALWAYS_DUE).await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let mut rng = rand::rng();
    let mut by_window: BTreeMap<Window, usize> = BTreeMap::new();
    let (mut terms, mut early) = (0, 0);
    while terms < 20 {
        slow_alation(&world, world.users[0].id);
        let regens = world.emulator.calls(endpoints::REGEN_REFRESH_TOKEN);
        let old = world.refresh(0).await.unwrap().refresh_token;
        let delay = Duration::from_millis(rng.random_range(0..=350));
        let mut child = world.spawn(&["run"], &[]);
        let start = Instant::now();
        while start.elapsed() < delay && child.is_running() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if !child.is_running() {
            let run = child.wait(Duration::from_secs(5)).await;
            world.check_output(&run).await;
            continue;
        }
        let window = window_now(&world, 0, regens, &old).await;
        child.signal("TERM");
        let signalled = Instant::now();
        let run = child.wait(Duration::from_secs(15)).await;
        world.check_output(&run).await;
        assert!(
            signalled.elapsed() < Duration::from_secs(11),
            "exited within the grace period"
        );
        if run.code == -1 {
            // The signal came before the process had installed its handler (the first
            // milliseconds after exec): it had started nothing.
            assert!(run.stdout.is_empty(), "{}", run.all());
            assert_eq!(window, Window::BeforeRequest, "{}", run.all());
            early += 1;
        } else {
            assert!(matches!(run.code, 0 | 1), "{}", run.all());
        }
        world.emulator.clear_faults();
        settle(&world).await;
        let after = aftermath(&mut world, 0).await;
        assert!(
            !after.lost(),
            "SIGTERM {} lost the token:\n{}",
            window.name(),
            run.all()
        );
        if run.code == 1 {
            assert!(run.stdout.contains("not-reached"), "{}", run.all());
        }
        let next = world.run(&["run"], &[]).await;
        assert_eq!(next.code, 0, "{}", next.all());
        world.health(0, &[]).await.unwrap();
        *by_window.entry(window).or_default() += 1;
        terms += 1;
    }
    eprintln!(
        "SIGTERM ({:?}): 0 lost of {terms}, by window {by_window:?}; {early} came before the \
         handler was installed",
        started.elapsed()
    );
    assert!(
        by_window.get(&Window::InFlight).is_some_and(|n| *n >= 3),
        "{by_window:?}"
    );
}

/// Eight integrations due at once, concurrency 8: one regeneration in flight per process, so
/// no single kill loses more than one token.
#[tokio::test]
async fn one_kill_loses_at_most_one_of_eight() {
    let started = Instant::now();
    let mut world = World::bootstrapped(8, &format!("{ALWAYS_DUE}\nmax_concurrency = 8")).await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let mut rng = rand::rng();
    let mut worst = 0;
    let mut total_lost = 0;
    let mut in_flight_at_kill = 0;
    for kill in 0..12 {
        for i in 0..8 {
            slow_alation(&world, world.users[i].id);
        }
        let olds: Vec<SecretString> = futures::future::join_all((0..8).map(|i| world.refresh(i)))
            .await
            .into_iter()
            .map(|d| d.unwrap().refresh_token)
            .collect();
        // Kill while regenerations are in flight: after the first request reached the
        // emulator, within the latency of one answer.
        let regens = world.emulator.calls(endpoints::REGEN_REFRESH_TOKEN);
        let child: Spawned = world.spawn(&["run"], &[]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while world.emulator.calls(endpoints::REGEN_REFRESH_TOKEN) == regens {
            assert!(Instant::now() < deadline, "no regenRefreshToken request");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let delay = Duration::from_millis(rng.random_range(0..=120));
        tokio::time::sleep(delay).await;
        in_flight_at_kill += world.emulator.requests_in_flight();
        let (run, was_running) = child.kill().await;
        assert!(was_running, "the run ended before the kill");
        world.check_output(&run).await;
        world.emulator.clear_faults();
        settle(&world).await;
        let mut lost = Vec::new();
        settle(&world).await;
        for i in 0..olds.len() {
            if aftermath(&mut world, i).await.lost() {
                lost.push(i);
            }
        }
        worst = worst.max(lost.len());
        total_lost += lost.len();
        assert!(lost.len() <= 1, "kill {kill} after {delay:?} lost {lost:?}");
        let next: Run = world.run(&["run"], &[]).await;
        for &i in &lost {
            let name = format!("int{i} ");
            assert!(
                next.stdout
                    .lines()
                    .any(|l| l.starts_with(&name) && l.contains("lost during regeneration at")),
                "int{i}: {}",
                next.all()
            );
            rebootstrap(&mut world, i, 1, 1000 + kill).await;
        }
        let healthy = world.run(&["run"], &[]).await;
        assert_eq!(healthy.code, 0, "{}", healthy.all());
    }
    eprintln!(
        "8 integrations, 12 kills during regeneration ({:?}): at most {worst} lost per kill, \
         {total_lost} in all; {in_flight_at_kill} requests in flight at the kills",
        started.elapsed()
    );
    assert!(
        total_lost >= 6,
        "the kills must land in flight often: {total_lost}"
    );
}

/// Alation carries the regeneration out, then the answer is lost: a 502 from a proxy, a
/// timeout, a connection that closes. The token cannot be recovered from anywhere (Alation
/// has no way to list it), so the only correct outcome is the report: "lost during
/// regeneration", never "needs bootstrap" and never a blind second request. With a standby,
/// delivery goes on.
#[tokio::test]
async fn answers_lost_after_the_work_are_reported_and_a_standby_carries_on() {
    for standby in [false, true] {
        let policy = format!("{ALWAYS_DUE}\nstandby = {standby}");
        let mut world = World::start(1).await;
        world.write_config(&world.config_text(&policy));
        rebootstrap(&mut world, 0, if standby { 2 } else { 1 }, 0).await;
        let first = world.run(&["run"], &[]).await;
        assert_eq!(first.code, 0, "{}", first.all());
        for (n, kind) in [
            FaultKind::CommitThenStatus(502),
            FaultKind::CommitThenClose,
            FaultKind::CommitThenHang(Duration::from_secs(8)),
        ]
        .into_iter()
        .enumerate()
        {
            let regens = world.emulator.calls(endpoints::REGEN_REFRESH_TOKEN);
            world.emulator.inject(
                Fault::new(kind.clone())
                    .on(endpoints::REGEN_REFRESH_TOKEN)
                    .times(1),
            );
            let run = world.run(&["run"], &[]).await;
            assert_eq!(
                world.emulator.calls(endpoints::REGEN_REFRESH_TOKEN),
                regens + 1,
                "{kind:?}: sent once"
            );
            assert!(
                !run.stdout.contains("needs bootstrap"),
                "{kind:?}: {}",
                run.all()
            );
            if standby {
                assert_eq!(run.code, 0, "{kind:?}: the standby delivers: {}", run.all());
                assert!(run.stdout.contains("degraded"), "{kind:?}: {}", run.all());
                world.health(0, &[]).await.unwrap();
                let status = world.run(&["status", "--format", "json"], &[]).await;
                assert!(
                    status.stdout.contains("\"health\": \"degraded\""),
                    "{}",
                    status.stdout
                );
                rebootstrap(&mut world, 0, 2, 10 + n).await;
            } else {
                assert_eq!(run.code, 1, "{kind:?}: {}", run.all());
                assert!(
                    run.stdout.contains("lost during regeneration at"),
                    "{kind:?}: {}",
                    run.all()
                );
                rebootstrap(&mut world, 0, 1, 10 + n).await;
            }
            let after = world.run(&["run"], &[]).await;
            assert_eq!(after.code, 0, "{kind:?}: {}", after.all());
        }
    }
}

/// With a standby, at least 30 SIGKILLs at random moments: every next run delivers.
#[tokio::test]
async fn with_a_standby_no_kill_stops_delivery() {
    let started = Instant::now();
    let mut world = World::start(1).await;
    world.write_config(&world.config_text(&format!("{ALWAYS_DUE}\nstandby = true")));
    rebootstrap(&mut world, 0, 2, 0).await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let mut rng = rand::rng();
    let (mut kills, mut attempts, mut degraded) = (0, 0, 0);
    let mut by_window: BTreeMap<Window, usize> = BTreeMap::new();
    while kills < 30 {
        attempts += 1;
        assert!(attempts < 100, "too few runs could be killed in time");
        let Some(window) = kill_at_random(&mut world, 0, &mut rng).await else {
            continue;
        };
        kills += 1;
        *by_window.entry(window).or_default() += 1;
        let run = world.run(&["run"], &[]).await;
        assert_eq!(
            run.code,
            0,
            "kill {kills} ({}): delivery stopped: {}",
            window.name(),
            run.all()
        );
        world.health(0, &[]).await.unwrap();
        if run.stdout.contains("degraded") {
            degraded += 1;
            rebootstrap(&mut world, 0, 2, kills).await;
        }
    }
    eprintln!(
        "standby, {kills} SIGKILLs ({:?}): 0 runs without delivery, {degraded} fell back to the \
         standby; by window {by_window:?}",
        started.elapsed()
    );
}
