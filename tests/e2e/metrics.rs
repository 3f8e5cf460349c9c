//! Prometheus metrics of the real binary: a textfile checked with a real parser (Python's
//! prometheus_client) and with promtool, values compared with what the run stored, the
//! run-level metrics of a configuration error, and a push to a real Pushgateway read back.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rotator_alation::ExposeSecret;
use rotator_testkit::peers::Pushgateway;
use serde_json::Value;

use crate::harness::World;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with `prometheus_client`: ROTATOR_TEST_PYTHON, else the repository's .venv.
fn python() -> PathBuf {
    std::env::var_os("ROTATOR_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv/bin/python"))
}

/// Every sample of an exposition, as Python's prometheus_client parser reads it:
/// (name, labels, value).
pub fn parse(text: &str) -> Vec<(String, Value, f64)> {
    let script = "import json, sys\n\
        from prometheus_client.parser import text_string_to_metric_families\n\
        print(json.dumps([[s.name, s.labels, s.value] for f in \
        text_string_to_metric_families(sys.stdin.read()) for s in f.samples]))";
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {} ({e}): set ROTATOR_TEST_PYTHON to a Python with prometheus_client, \
                 or run ./scripts/test.sh",
                python().display()
            )
        });
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "prometheus_client could not parse the metrics (pip install prometheus-client, or run \
         ./scripts/test.sh): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let samples: Vec<(String, Value, f64)> = serde_json::from_slice(&output.stdout).unwrap();
    samples
}

pub fn value(samples: &[(String, Value, f64)], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v))
        })
        .map(|(_, _, v)| *v)
}

fn promtool() -> PathBuf {
    std::env::var_os("ROTATOR_TEST_PROMTOOL_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"))
}

/// The metric names docs/metrics.md documents (first column of its tables).
fn documented_names() -> Vec<String> {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).expect("docs/metrics.md");
    let mut names: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `alation_rotator_"))
        .map(|rest| {
            format!(
                "alation_rotator_{}",
                rest.split('`').next().unwrap_or_default()
            )
        })
        .collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test]
async fn a_metrics_file_from_a_run_with_one_failing_integration() {
    let mut world = World::bootstrapped(2, "").await;
    world.emulator.revoke_refresh_tokens(world.users[1].id);
    let file = world.dir.path().join("textfile/alation-rotator.prom");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let run = world
        .run(&["run", "--metrics-file", file.to_str().unwrap()], &[])
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    let text = std::fs::read_to_string(&file).unwrap();
    eprintln!("metrics file of a run with one failing integration:\n{text}");
    for secret in world.secret_refs() {
        assert!(!text.contains(secret), "a secret in the metrics");
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644, "readable by node_exporter");

    let samples = parse(&text);
    let access = world.access(0).await.unwrap().0;
    let refresh = world.refresh(0).await.unwrap();
    let secs = |t: jiff::Timestamp| t.as_millisecond() as f64 / 1000.0;
    assert_eq!(
        value(
            &samples,
            "alation_rotator_access_token_expiry_timestamp_seconds",
            &[("integration", "int0")]
        ),
        Some(secs(access.token_expires_at))
    );
    assert_eq!(
        value(
            &samples,
            "alation_rotator_refresh_token_expiry_timestamp_seconds",
            &[("integration", "int0"), ("slot", "primary")]
        ),
        Some(secs(refresh.token_expires_at))
    );
    assert!(!access.api_access_token.expose_secret().is_empty());
    let outcome = |i: &str, o: &str| {
        value(
            &samples,
            "alation_rotator_integration_outcome",
            &[("integration", i), ("outcome", o)],
        )
    };
    assert_eq!(
        (outcome("int0", "rotated"), outcome("int0", "failed")),
        (Some(1.0), Some(0.0))
    );
    assert_eq!(
        (outcome("int1", "failed"), outcome("int1", "rotated")),
        (Some(1.0), Some(0.0))
    );
    let state = |i: &str, s: &str| {
        value(
            &samples,
            "alation_rotator_integration_state",
            &[("integration", i), ("state", s)],
        )
    };
    assert_eq!(state("int0", "ok"), Some(1.0));
    assert_eq!(state("int1", "needs-bootstrap"), Some(1.0));
    assert_eq!(state("int1", "ok"), Some(0.0));
    assert_eq!(
        value(
            &samples,
            "alation_rotator_integration_outcomes_total",
            &[("integration", "int0"), ("outcome", "rotated")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(&samples, "alation_rotator_run_exit_code", &[]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "alation_rotator_run_integrations",
            &[("outcome", "failed")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "alation_rotator_run_integrations",
            &[("outcome", "rotated")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "alation_rotator_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "alation_rotator_integration_info",
            &[
                ("integration", "int1"),
                ("credential", "refresh-token"),
                ("state_store", "local")
            ]
        ),
        Some(1.0)
    );
    assert!(value(
        &samples,
        "alation_rotator_last_success_timestamp_seconds",
        &[("integration", "int0")]
    )
    .is_some());

    // The names the binary emits are exactly the ones docs/metrics.md documents.
    let mut emitted: Vec<String> = samples.iter().map(|(n, _, _)| n.clone()).collect();
    emitted.sort();
    emitted.dedup();
    assert_eq!(
        emitted,
        documented_names(),
        "docs/metrics.md and the binary disagree"
    );

    let check = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's prometheus package or set \
                 ROTATOR_TEST_PROMTOOL_BIN"
            )
        });
    assert!(
        check.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test]
async fn a_configuration_error_writes_only_the_run_metrics() {
    let mut world = World::start(1).await;
    world.write_config(
        &world
            .config_text("")
            .replace("timeout = \"5s\"", "timeout = \"soon\""),
    );
    let file = world.dir.path().join("alation-rotator.prom");
    let run = world
        .run(&["run", "--metrics-file", file.to_str().unwrap()], &[])
        .await;
    assert_eq!(run.code, 2, "{}", run.all());
    let samples = parse(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        value(&samples, "alation_rotator_run_exit_code", &[]),
        Some(2.0)
    );
    assert!(value(&samples, "alation_rotator_run_start_timestamp_seconds", &[]).is_some());
    assert!(
        samples
            .iter()
            .all(|(_, labels, _)| labels.get("integration").is_none()),
        "no integration was handled"
    );
}

#[tokio::test]
async fn a_push_to_the_pushgateway_reads_back_and_an_unreachable_one_is_only_a_warning() {
    let gateway = Pushgateway::start();
    let mut world = World::bootstrapped(1, "").await;
    let run = world
        .run(
            &[
                "run",
                "--pushgateway",
                &gateway.url,
                "--metrics-instance",
                "shard-0",
            ],
            &[],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    let groups: Value = reqwest::get(format!("{}api/v1/metrics", gateway.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let group = groups["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["labels"]["job"] == "alation-rotator" && g["labels"]["instance"] == "shard-0")
        .unwrap_or_else(|| panic!("no alation-rotator/shard-0 group: {groups}"));
    let exit = &group["alation_rotator_run_exit_code"]["metrics"][0]["value"];
    assert_eq!(exit, "0", "{group}");
    let expiry = group["alation_rotator_access_token_expiry_timestamp_seconds"]["metrics"][0]
        ["value"]
        .as_str()
        .unwrap()
        .parse::<f64>()
        .unwrap();
    let access = world.access(0).await.unwrap().0;
    assert_eq!(
        expiry,
        access.token_expires_at.as_millisecond() as f64 / 1000.0
    );
    eprintln!(
        "Pushgateway read-back of job=alation-rotator instance=shard-0: exit code {exit}, \
         int0 access expiry {expiry}"
    );

    // Nothing listens there: a warning, and the run still succeeds.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "http://user:hunter2-push-password@{}/",
        listener.local_addr().unwrap()
    );
    drop(listener);
    let run = world
        .run(&["run", "--force", "--pushgateway", &dead], &[])
        .await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(
        run.stderr.contains("could not push the metrics"),
        "{}",
        run.stderr
    );
    assert!(
        !run.all().contains("hunter2-push-password"),
        "{}",
        run.all()
    );
}
