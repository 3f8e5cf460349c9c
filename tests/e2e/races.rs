//! Two runners at once over the same 20 integrations and the same file store, ten times over:
//! rounds where nothing is due, where access tokens are due, and where refresh tokens are due
//! (so both runners try to regenerate the same token). Nothing may be corrupted or lost, and a
//! runner that fails must say which integration and why.

use std::path::Path;
use std::time::{Duration, Instant};

use rotator_alation::ExposeSecret;

use crate::harness::{outcomes, Run, World};

const INTEGRATIONS: usize = 20;

/// Access tokens live an hour (renewed with 15 minutes left), refresh tokens six hours
/// (regenerated with two hours left).
const POLICY: &str = "access_renew_before = \"15m\"\nrefresh_renew_before = \"2h\"\nmin_regenerate_interval = \"0s\"";
const ACCESS_LIFETIME: Duration = Duration::from_secs(3600);
const REFRESH_LIFETIME: Duration = Duration::from_secs(6 * 3600);

const MINUTE: u64 = 60;

/// How far both clocks move before each round, and what is then due.
const ROUNDS: [(u64, &str); 10] = [
    (0, "first tokens"),
    (0, "nothing due"),
    (50 * MINUTE, "access due"),
    (0, "nothing due"),
    (50 * MINUTE, "access due"),
    (250 * MINUTE, "refresh and access due"),
    (50 * MINUTE, "access due"),
    (250 * MINUTE, "refresh and access due"),
    (0, "nothing due"),
    (250 * MINUTE, "refresh and access due"),
];

/// Every document file in the store parses as JSON, and no temporary file is left behind.
fn assert_no_corruption(dir: &Path) -> usize {
    let mut parsed = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if name.ends_with(".lock") {
                continue;
            } else if name.ends_with(".tmp") {
                panic!("a temporary file was left behind: {}", path.display());
            } else {
                let bytes = std::fs::read(&path).unwrap();
                serde_json::from_slice::<serde_json::Value>(&bytes)
                    .unwrap_or_else(|e| panic!("{} is corrupted: {e}", path.display()));
                parsed += 1;
            }
        }
    }
    parsed
}

/// Exit 0 or 1; every failure line names its integration and gives a reason.
fn assert_explained(run: &Run, who: &str, round: usize) -> Vec<String> {
    assert!(
        run.code == 0 || run.code == 1,
        "round {round}: {who} exited {}:\n{}",
        run.code,
        run.all()
    );
    let failed: Vec<&str> = run
        .stdout
        .lines()
        .filter(|line| {
            let mut words = line.split_whitespace();
            words.next().is_some_and(|w| w.starts_with("int")) && words.next() == Some("failed")
        })
        .collect();
    if run.code == 1 {
        assert!(
            !failed.is_empty(),
            "round {round}: {who} exited 1 without naming a failed integration:\n{}",
            run.all()
        );
    } else {
        assert!(
            failed.is_empty(),
            "round {round}: {who} exited 0 with failures:\n{}",
            run.all()
        );
    }
    for line in &failed {
        let reason = line
            .split_once("failed")
            .map(|(_, rest)| rest.trim())
            .unwrap_or_default();
        assert!(
            reason.len() >= 20,
            "round {round}: {who}: a failure without a reason: {line:?}"
        );
        assert!(
            !reason.contains("LOST REFRESH TOKEN"),
            "round {round}: {who}: {line}"
        );
    }
    failed.iter().map(|l| (*l).to_owned()).collect()
}

#[tokio::test]
async fn two_runners_at_once_corrupt_nothing_and_lose_nothing() {
    let started = Instant::now();
    let mut world = World::start(INTEGRATIONS).await;
    world
        .emulator
        .set_lifetimes(ACCESS_LIFETIME, REFRESH_LIFETIME);
    world.write_config(&world.config_text(POLICY));
    world.bootstrap_all().await;
    let mut failures = Vec::new();

    for (round, (advance, what)) in ROUNDS.iter().enumerate() {
        world.advance(Duration::from_secs(*advance));
        let regens = world.emulator.calls("regenRefreshToken");
        let mints = world.emulator.calls("createAPIAccessToken");

        let a = world.spawn(&["run"], &[]);
        let b = world.spawn(&["run"], &[]);
        let (a, b) = tokio::join!(
            a.wait(Duration::from_secs(120)),
            b.wait(Duration::from_secs(120))
        );
        world.check_output(&a).await;
        world.check_output(&b).await;
        for (who, run) in [("runner A", &a), ("runner B", &b)] {
            for line in assert_explained(run, who, round) {
                failures.push(format!("round {round} ({what}), {who}: {line}"));
            }
        }

        let files = assert_no_corruption(&world.store_dir());
        assert!(
            files >= INTEGRATIONS,
            "round {round}: only {files} documents"
        );
        if world.escrow_dir().exists() {
            assert_no_corruption(&world.escrow_dir());
        }
        for i in 0..INTEGRATIONS {
            let stored = world.refresh(i).await.expect("a refresh document");
            let escrowed = world.escrowed(i);
            let live = world.refresh_is_valid(i, &stored.refresh_token).await
                || match &escrowed {
                    Some(token) => world.refresh_is_valid(i, token).await,
                    None => false,
                };
            assert!(
                live,
                "round {round} ({what}): int{i}'s refresh token was lost\nA:\n{}\nB:\n{}",
                a.all(),
                b.all()
            );
            if let Err(problem) = world.health(i, &[]).await {
                panic!(
                    "round {round} ({what}): {problem}\nA:\n{}\nB:\n{}",
                    a.all(),
                    b.all()
                );
            }
        }

        for run in [&a, &b] {
            assert!(
                !run.all().contains("needs bootstrap") && !run.all().contains("lost during"),
                "round {round} ({what}): a race is never reported as a dead token:\n{}",
                run.all()
            );
        }
        let regenerated = world.emulator.calls("regenRefreshToken") - regens;
        let minted = world.emulator.calls("createAPIAccessToken") - mints;
        eprintln!(
            "round {round} ({what}): exit {} and {}, {} + {} rotated, {regenerated} regen calls, \
             {minted} mints",
            a.code,
            b.code,
            outcomes(&a).iter().filter(|(_, o)| o == "rotated").count(),
            outcomes(&b).iter().filter(|(_, o)| o == "rotated").count(),
        );
        match *what {
            "nothing due" => {
                assert_eq!(regenerated, 0, "round {round}");
                assert_eq!(minted, 0, "round {round}");
            }
            "access due" | "first tokens" => {
                assert_eq!(regenerated, 0, "round {round}");
                assert!(minted >= INTEGRATIONS, "round {round}: {minted} mints");
            }
            _ => {
                // The intent record is a lease: the second runner waits instead of
                // regenerating the same token again.
                assert_eq!(
                    regenerated, INTEGRATIONS,
                    "round {round}: one regeneration per integration"
                );
                assert!(minted >= INTEGRATIONS, "round {round}: {minted} mints");
            }
        }
    }

    eprintln!(
        "races: {} rounds in {:?}; {} failure lines:",
        ROUNDS.len(),
        started.elapsed(),
        failures.len()
    );
    for failure in &failures {
        eprintln!("  {failure}");
    }
    for i in 0..INTEGRATIONS {
        world.health(i, &[]).await.unwrap();
    }
}

/// Runner A reads the stored token's version and gets its token minted, but its answer is
/// slow; meanwhile runner B rotates the same integration to the end with a newer token. A's
/// compare-and-set write then fails; A must re-read, find B's token at least as new as its own
/// and keep it, not overwrite it.
#[tokio::test]
async fn the_loser_of_a_write_race_keeps_the_winners_token() {
    let mut world = World::bootstrapped(1, "").await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let mints_before = world.emulator.calls("createAPIAccessToken");
    world.emulator.inject(
        alation_emulator::Fault::new(alation_emulator::FaultKind::CommitThenHang(
            Duration::from_secs(2),
        ))
        .on("createAPIAccessToken")
        .times(1),
    );
    let slow = world.spawn(&["run", "--force"], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.emulator.calls("createAPIAccessToken") == mints_before {
        assert!(
            Instant::now() < deadline,
            "runner A never asked for a token"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let fast = world.run(&["run", "--force"], &[]).await;
    assert_eq!(fast.code, 0, "{}", fast.all());
    assert_eq!(outcomes(&fast), [("int0".to_owned(), "rotated".to_owned())]);
    let (winner, winner_version) = world.access(0).await.expect("runner B wrote");

    let slow = slow.wait(Duration::from_secs(30)).await;
    world.check_output(&slow).await;
    assert_eq!(slow.code, 0, "{}", slow.all());
    assert!(
        slow.stderr
            .contains("another runner wrote a token at least as new first; keeping it"),
        "{}",
        slow.stderr
    );
    let (stored, version) = world.access(0).await.unwrap();
    assert_eq!(
        version, winner_version,
        "the loser must not write over the winner"
    );
    assert_eq!(
        stored.api_access_token.expose_secret(),
        winner.api_access_token.expose_secret()
    );
    assert!(world.api_accepts(&stored.api_access_token).await);
}

/// The other way round: A's token is minted after B's (Alation was slow before minting it), so
/// when A's write conflicts, B's older token is overwritten with A's newer one.
#[tokio::test]
async fn a_conflicting_older_token_is_overwritten_by_the_newer_one() {
    let mut world = World::bootstrapped(1, "").await;
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let mints_before = world.emulator.calls("createAPIAccessToken");
    world.emulator.inject(
        alation_emulator::Fault::new(alation_emulator::FaultKind::Latency(Duration::from_secs(2)))
            .on("createAPIAccessToken")
            .times(1),
    );
    let slow = world.spawn(&["run", "--force"], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.emulator.calls("createAPIAccessToken") == mints_before {
        assert!(
            Instant::now() < deadline,
            "runner A never asked for a token"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fast = world.run(&["run", "--force"], &[]).await;
    assert_eq!(fast.code, 0, "{}", fast.all());
    let (older, _) = world.access(0).await.expect("runner B wrote");
    let slow = slow.wait(Duration::from_secs(30)).await;
    world.check_output(&slow).await;
    assert_eq!(slow.code, 0, "{}", slow.all());
    let (stored, _) = world.access(0).await.unwrap();
    assert!(stored.created_at > older.created_at, "the newer token won");
    assert!(world.api_accepts(&stored.api_access_token).await);
}
