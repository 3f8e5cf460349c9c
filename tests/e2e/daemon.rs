//! `alation-rotator daemon` as a process: the endpoints it serves, a SIGHUP with a broken
//! configuration (refused, the old one kept) and with a good one (applied), and SIGTERM.

use std::time::Duration;

use crate::harness::{Spawned, World};
use crate::metrics::{parse, value};

const WAIT: Duration = Duration::from_secs(30);

/// The address the daemon logged in its `daemon started` line.
async fn listen_address(daemon: &mut Spawned) -> String {
    let line = daemon
        .wait_for_line("daemon started", WAIT)
        .await
        .expect("the daemon starts");
    line.split_whitespace()
        .find_map(|word| word.strip_prefix("listen="))
        .unwrap_or_else(|| panic!("no listen= in {line:?}"))
        .to_owned()
}

async fn get(address: &str, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// Polls `path` until it answers `status` (the daemon's passes run on its own schedule).
async fn wait_for_status(address: &str, path: &str, status: u16) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (got, body) = get(address, path).await;
        if got == status {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} still answers {got} ({body:?}), not {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_daemon_serves_health_and_metrics_reloads_on_sighup_and_stops_on_sigterm() {
    let mut world = World::start(3).await;
    let full = world.config_text("");
    world.write_config(&full);
    // int2 is never bootstrapped: its passes fail, so the daemon is alive but not ready.
    let sink = world.sink();
    for i in 0..2 {
        world
            .bootstrap_into(i, &sink, &format!("state/int{i}"), &format!("int{i}"))
            .await;
    }
    let mut daemon = world.spawn(
        &[
            "daemon",
            "--listen",
            "127.0.0.1:0",
            "--min-interval",
            "1s",
            "--max-interval",
            "2s",
            "--max-backoff",
            "2s",
        ],
        &[("RUST_LOG", "info")],
    );
    let address = listen_address(&mut daemon).await;
    assert!(address.starts_with("127.0.0.1:"), "{address}");

    assert_eq!(get(&address, "/healthz").await.0, 200);
    let body = wait_for_status(&address, "/readyz", 503).await;
    assert!(body.contains("failed its last pass"), "{body}");

    // The two bootstrapped integrations were delivered; /metrics shows their expiries as
    // stored, and int2 as needing a bootstrap.
    let metrics = loop {
        let (status, text) = get(&address, "/metrics").await;
        assert_eq!(status, 200);
        if text.contains("integration=\"int2\"") && text.contains("integration=\"int1\"") {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let samples = parse(&metrics);
    for i in 0..2 {
        let (document, _version) = world.access(i).await.expect("an access token delivered");
        assert!(world.api_accepts(&document.api_access_token).await);
        let name = format!("int{i}");
        assert_eq!(
            value(
                &samples,
                "alation_rotator_access_token_expiry_timestamp_seconds",
                &[("integration", &name)]
            ),
            Some(document.token_expires_at.as_millisecond() as f64 / 1000.0),
            "{metrics}"
        );
    }
    assert_eq!(
        value(
            &samples,
            "alation_rotator_integration_state",
            &[("integration", "int2"), ("state", "needs-bootstrap")]
        ),
        Some(1.0)
    );

    // A broken configuration is refused; the daemon keeps serving with the old one.
    world.write_config(&format!("{full}\n[policy_typo]\n"));
    daemon.signal("HUP");
    let refused = daemon
        .wait_for_line("the old one stays in force", WAIT)
        .await
        .expect("the reload is refused");
    assert!(refused.contains("policy_typo"), "{refused}");
    assert_eq!(get(&address, "/healthz").await.0, 200);
    assert!(daemon.is_running());

    // A good one without int2 is applied: int2's series go, and the daemon becomes ready.
    let two = full
        .split("\n[[integrations]]")
        .take(3)
        .collect::<Vec<_>>()
        .join("\n[[integrations]]");
    assert!(!two.contains("int2"));
    world.write_config(&two);
    daemon.signal("HUP");
    daemon
        .wait_for_line("configuration reloaded", WAIT)
        .await
        .expect("the reload is applied");
    wait_for_status(&address, "/readyz", 200).await;
    let (_, metrics) = get(&address, "/metrics").await;
    assert!(!metrics.contains("integration=\"int2\""), "{metrics}");
    assert!(metrics.contains("integration=\"int0\""), "{metrics}");

    daemon.signal("TERM");
    let run = daemon.wait(WAIT).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stderr.contains("daemon stopped"), "{}", run.stderr);
    world.check_output(&run).await;
}

#[tokio::test]
async fn a_daemon_with_a_broken_configuration_exits_2_before_listening() {
    let mut world = World::start(1).await;
    world.write_config(&format!("{}\n[policy_typo]\n", world.config_text("")));
    let run = world.run(&["daemon", "--listen", "127.0.0.1:0"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("policy_typo"), "{}", run.stderr);
    assert!(!run.all().contains("daemon started"), "{}", run.all());
}
