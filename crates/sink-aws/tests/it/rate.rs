//! The client-side write limit, measured at the wire by the counting proxy over 1,000
//! rotations against moto.
//!
//! A rotation here is what the engine writes per access document: one compare-and-set write
//! over the version last written (`PutSecretValue` + `UpdateSecretVersionStage`). To keep the
//! test short, two runs share it, each in a region of its own (the limit is per region):
//!
//! - 100 rotations with `max_writes_per_second = 25`, from 16 writers at once that could go
//!   ten times faster: 200 writes that must never exceed 25 in a second;
//! - 900 rotations with the limit at 1,000, far above what moto serves: they measure
//!   moto's own pace, which must be several times the limit above, or the first run proved
//!   nothing and the test says so.
//!
//! Every rotation must succeed, and every key must end with its last document.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rotator_core::{Precondition, TokenSink};
use rotator_sink_aws::{AwsSink, Config};

use crate::behaviour::{document, labelled};
use crate::proxy::{Proxy, Seen};
use crate::{moto, sink_with, unique_name};

/// The limit the first run must hold.
const LIMIT: usize = 25;

struct Run {
    proxy: Proxy,
    rotations: usize,
    elapsed: Duration,
}

/// `rotations` rotations over `keys` keys by `writers` tasks, in `region`, with the limit
/// at `limit`, through a new counting proxy.
async fn run(region: &str, limit: u32, keys: usize, writers: usize, rotations: usize) -> Run {
    let proxy = Proxy::start(moto().addr, &[]).await;
    let sink = Arc::new(
        sink_with(Config {
            region: Some(region.into()),
            endpoint_url: Some(proxy.url.clone()),
            max_writes_per_second: limit,
            ..Config::default()
        })
        .await,
    );
    let keys: Vec<String> = (0..keys).map(|_| unique_name("rate")).collect();
    let mut versions = Vec::new();
    for key in &keys {
        let version = sink
            .write(key, &document("0"), &labelled(Precondition::Absent))
            .await
            .unwrap();
        versions.push((key.clone(), version));
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let sink: Arc<AwsSink> = sink.clone();
        let mut mine: Vec<_> = versions
            .iter()
            .skip(writer)
            .step_by(writers)
            .cloned()
            .collect();
        let count = rotations / writers + usize::from(writer < rotations % writers);
        tasks.push(tokio::spawn(async move {
            for round in 0..count {
                let slot = round % mine.len();
                let (key, version) = &mine[slot];
                let written = sink
                    .write(
                        key,
                        &document(&format!("{key}/{round}")),
                        &labelled(Precondition::Version(version.clone())),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("rotation {round} of {key}: {e}"));
                mine[slot].1 = written;
            }
            (mine, count)
        }));
    }
    let mut done = 0;
    let mut last = Vec::new();
    for task in tasks {
        let (mine, count) = task.await.unwrap();
        done += count;
        last.extend(mine);
    }
    let elapsed = started.elapsed();
    // Every key ends with the version its writer made last.
    for (key, version) in last {
        assert_eq!(sink.read(&key).await.unwrap().unwrap().version, version);
    }
    Run {
        proxy,
        rotations: done,
        elapsed,
    }
}

/// The writes in the rotation quota (`PutSecretValue`, `UpdateSecretVersionStage`), in order.
fn writes(run: &Run) -> Vec<Seen> {
    run.proxy
        .seen()
        .into_iter()
        .filter(|c| c.operation == "PutSecretValue" || c.operation == "UpdateSecretVersionStage")
        .collect()
}

/// The most writes seen in any window of `window` that starts at a write.
fn busiest(writes: &[Seen], window: Duration) -> usize {
    (0..writes.len())
        .map(|i| {
            writes[i..]
                .iter()
                .take_while(|w| w.at < writes[i].at + window)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_rotations_keep_the_write_limit() {
    let (limited, free) = tokio::join!(
        run("eu-north-1", LIMIT as u32, 16, 16, 100),
        run("ap-southeast-2", 1000, 32, 32, 900),
    );
    assert_eq!(limited.rotations + free.rotations, 1000);

    let limited_writes = writes(&limited);
    let free_writes = writes(&free);
    assert_eq!(
        limited_writes.len(),
        200,
        "two writes per rotation, no retries"
    );
    assert_eq!(
        free_writes.len(),
        1800,
        "two writes per rotation, no retries"
    );

    let held = busiest(&limited_writes, Duration::from_secs(1));
    // How soon a call followed the one LIMIT places before it, as the wire saw them.
    let closest = (0..limited_writes.len() - LIMIT)
        .map(|i| limited_writes[i + LIMIT].at - limited_writes[i].at)
        .min()
        .unwrap();
    let span = limited_writes.last().unwrap().at - limited_writes[0].at;
    let free_span = free_writes.last().unwrap().at - free_writes[0].at;
    let moto_pace = free_writes.len() as f64 / free_span.as_secs_f64();
    println!(
        "limit {LIMIT}/s: {} writes in {span:.2?} (run {:.2?}), at most {held} in any \
         second, the closest {LIMIT} apart {closest:.2?}; unlimited: {} writes in \
         {free_span:.2?} (run {:.2?}) = {moto_pace:.0} writes/s",
        limited_writes.len(),
        limited.elapsed,
        free_writes.len(),
        free.elapsed,
    );
    assert!(
        held <= LIMIT,
        "{held} writes within one second, over the limit of {LIMIT}"
    );
    // The first LIMIT go at once, then LIMIT every 1.1 seconds.
    let least = Duration::from_millis(1000 * ((limited_writes.len() - LIMIT) / LIMIT) as u64);
    assert!(
        span >= least,
        "200 writes took {span:?}, less than {least:?}"
    );
    assert!(
        moto_pace >= 4.0 * LIMIT as f64,
        "moto served only {moto_pace:.0} writes/s without a limit, too close to {LIMIT}/s for \
         the limited run to prove the limit held; run on a less loaded machine"
    );
}
