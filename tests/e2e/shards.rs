//! Sharded runs of the real binary: three shards together rotate every integration exactly
//! once, `--shard-from-env` reads an Indexed Job's variables, `status` takes the same flags,
//! and a bad shard is a usage error.

use std::collections::BTreeMap;

use crate::harness::{outcomes, World};

const N: usize = 12;
const SHARDS: usize = 3;

#[tokio::test]
async fn three_shards_rotate_every_integration_exactly_once() {
    let mut world = World::bootstrapped(N, "").await;
    let mut rotated: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut listed: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for shard in 0..SHARDS {
        let spec = format!("{shard}/{SHARDS}");
        let run = world.run(&["run", "--shard", &spec], &[]).await;
        assert_eq!(run.code, 0, "{}", run.all());
        for (name, outcome) in outcomes(&run) {
            assert_eq!(outcome, "rotated", "{}", run.all());
            rotated.entry(name).or_default().push(shard);
        }
        // status with the same flag lists the same integrations (offline: no Alation call).
        let status = world
            .run(&["status", "--offline", "--shard", &spec], &[])
            .await;
        assert_eq!(status.code, 0, "{}", status.all());
        for (name, _) in outcomes(&status) {
            listed.entry(name).or_default().push(shard);
        }
    }
    assert_eq!(rotated.len(), N, "every integration rotated: {rotated:?}");
    assert!(
        rotated.values().all(|shards| shards.len() == 1),
        "each exactly once: {rotated:?}"
    );
    assert_eq!(
        listed, rotated,
        "status --shard lists what run --shard handled"
    );
    let mut sizes = [0usize; SHARDS];
    for shards in rotated.values() {
        sizes[shards[0]] += 1;
    }
    assert!(
        sizes.iter().all(|&n| n > 0),
        "every shard got work: {sizes:?}"
    );
    for i in 0..N {
        let (document, _) = world.access(i).await.expect("delivered");
        assert!(world.api_accepts(&document.api_access_token).await);
    }

    // An Indexed Job's pod: --shard-from-env picks the same integrations as --shard 1/3.
    let forced = world
        .run(
            &["run", "--force", "--shard-from-env"],
            &[("JOB_COMPLETION_INDEX", "1"), ("JOB_COMPLETIONS", "3")],
        )
        .await;
    assert_eq!(forced.code, 0, "{}", forced.all());
    let from_env: Vec<String> = outcomes(&forced).into_iter().map(|(n, _)| n).collect();
    let expected: Vec<String> = rotated
        .iter()
        .filter(|(_, shards)| shards[0] == 1)
        .map(|(name, _)| name.clone())
        .collect();
    let mut sorted = from_env.clone();
    sorted.sort();
    assert_eq!(sorted, expected);
}

#[tokio::test]
async fn a_bad_shard_is_a_usage_error_that_names_the_fix() {
    let mut world = World::bootstrapped(1, "").await;
    let run = world.run(&["run", "--shard", "3/3"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("3/3"), "{}", run.stderr);
    let run = world
        .run(
            &["run", "--shard-from-env"],
            &[("JOB_COMPLETION_INDEX", "0")],
        )
        .await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("JOB_COMPLETIONS"), "{}", run.stderr);
    assert!(world.access(0).await.is_none(), "nothing ran");
}
