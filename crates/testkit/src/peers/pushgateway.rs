//! A Prometheus Pushgateway for tests of `run --pushgateway`: the Debian package
//! `prometheus-pushgateway` (binary `/usr/bin/prometheus-pushgateway`), started as a local
//! process on a free port of 127.0.0.1 under the same watchdog as the other peers.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::process::{free_port_pair, http_status, start_with_retries, LocalServer};

/// The environment variable naming the `prometheus-pushgateway` binary.
pub const PUSHGATEWAY_BIN_ENV: &str = "ROTATOR_TEST_PUSHGATEWAY_BIN";

/// A running Pushgateway, stopped when dropped.
pub struct Pushgateway {
    /// Base URL, e.g. `http://127.0.0.1:38123/`.
    pub url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    server: LocalServer,
}

impl std::fmt::Debug for Pushgateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pushgateway")
            .field("url", &self.url)
            .finish()
    }
}

fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os(PUSHGATEWAY_BIN_ENV) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "{PUSHGATEWAY_BIN_ENV}={} is not a file; install Debian's prometheus-pushgateway \
             or run ./scripts/test.sh",
            bin.display()
        );
        return bin;
    }
    [
        "/usr/bin/prometheus-pushgateway",
        "/usr/local/bin/pushgateway",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
    .unwrap_or_else(|| {
        panic!(
            "no Pushgateway binary found for this test peer: set {PUSHGATEWAY_BIN_ENV} or \
                 run ./scripts/test.sh (Debian package prometheus-pushgateway)"
        )
    })
}

impl Pushgateway {
    /// Starts a Pushgateway of the test's own.
    pub fn start() -> Pushgateway {
        let bin = binary();
        start_with_retries("the Pushgateway", &bin, || {
            let port = free_port_pair();
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
            let args = vec![
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--persistence.interval=0s".to_owned(),
            ];
            let server = LocalServer::start(
                &bin,
                &args,
                "pushgateway.log",
                |_, _| {},
                Duration::from_millis(50),
                || http_status(addr, "GET", "/-/ready") == Some(200),
            )?;
            Ok(Pushgateway {
                url: format!("http://{addr}/"),
                addr,
                server,
            })
        })
    }

    /// What the Pushgateway printed so far.
    pub fn output(&self) -> String {
        self.server.output()
    }
}
