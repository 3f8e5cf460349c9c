//! Peers in Docker containers, through the `testcontainers` crate (feature `testcontainers`).
//!
//! Each container is owned by a thread of its own that uses the crate's blocking API, so
//! containers can be started, stopped and dropped from synchronous code and from inside any
//! Tokio runtime alike. A container held in a static is never dropped, so when the `docker`
//! command is available a watchdog shell removes it when the test process ends (the same
//! stdin-pipe trick as the process watchdog).

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::SyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::process::{http_status, resolve};

/// What to start.
pub(crate) struct Spec {
    /// `name:tag`, e.g. `openbao/openbao:2.7.2`.
    pub image: String,
    /// The port the server listens on inside the container.
    pub port: u16,
    /// Environment variables of the container.
    pub env: Vec<(String, String)>,
    /// The command (arguments of the image's entrypoint); empty for the image's own.
    pub cmd: Vec<String>,
    /// A path that answers 200 once the server is ready.
    pub ready_path: &'static str,
    /// What the server is, for messages (e.g. `"OpenBao"`).
    pub what: &'static str,
}

enum Request {
    Stop(mpsc::Sender<Result<(), String>>),
    Logs(mpsc::Sender<String>),
}

/// A running container and the thread that owns it.
pub(crate) struct ContainerPeer {
    /// `host:port` the server is reachable at from this process.
    pub host_port: String,
    /// `host_port`, resolved.
    pub socket: SocketAddr,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    keeper: Mutex<Option<JoinHandle<()>>>,
    // Held open for the life of the peer: closing it makes the watchdog remove the container.
    _reaper: Option<Mutex<Child>>,
}

/// Splits `name:tag` (the tag is after the last `:` that follows the last `/`).
fn split_image(image: &str) -> (String, String) {
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(colon) => (
            image[..slash + colon].to_owned(),
            image[slash + colon + 1..].to_owned(),
        ),
        None => (image.to_owned(), "latest".to_owned()),
    }
}

impl ContainerPeer {
    /// Starts the container and waits until `ready_path` answers 200. Panics with the
    /// container's output when it does not start.
    pub(crate) fn start(spec: Spec) -> ContainerPeer {
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(String, String), String>>();
        let (requests_tx, requests_rx) = mpsc::channel::<Request>();
        let image = spec.image.clone();
        let (ready_path, what) = (spec.ready_path, spec.what);
        let keeper = std::thread::Builder::new()
            .name(format!("testkit-container-{}", spec.port))
            .spawn(move || keep(spec, ready_tx, requests_rx))
            .expect("cannot spawn the container thread");
        let (host_port, id) = match ready_rx.recv() {
            Ok(Ok(started)) => started,
            Ok(Err(error)) => panic!("cannot start a container of {image}: {error}"),
            Err(_) => panic!("the thread starting a container of {image} panicked"),
        };
        let socket = resolve(&host_port)
            .unwrap_or_else(|| panic!("container address {host_port} does not resolve"));
        let peer = ContainerPeer {
            host_port,
            socket,
            requests: Mutex::new(Some(requests_tx)),
            keeper: Mutex::new(Some(keeper)),
            _reaper: reaper(&id).map(Mutex::new),
        };
        peer.wait_ready(ready_path, what);
        peer
    }

    /// Waits until `path` answers 200, or panics with the container's output.
    fn wait_ready(&self, path: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while http_status(self.socket, "GET", path) != Some(200) {
            if Instant::now() > deadline {
                panic!(
                    "{what} in a container did not answer {path} on {} within 180s; its output:\n{}",
                    self.host_port,
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn send(&self, request: Request) -> bool {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|tx| tx.send(request).is_ok())
    }

    /// The container's stdout and stderr so far (empty once it was removed).
    pub(crate) fn logs(&self) -> String {
        let (tx, rx) = mpsc::channel();
        if !self.send(Request::Logs(tx)) {
            return String::new();
        }
        rx.recv().unwrap_or_default()
    }

    /// Stops the container (`docker stop`), keeping it for its logs. Panics if Docker
    /// refuses.
    pub(crate) fn stop(&self) {
        let (tx, rx) = mpsc::channel();
        if !self.send(Request::Stop(tx)) {
            return;
        }
        if let Ok(Err(error)) = rx.recv() {
            panic!("cannot stop the container at {}: {error}", self.host_port);
        }
    }
}

impl Drop for ContainerPeer {
    fn drop(&mut self) {
        // Closing the channel makes the keeper drop (remove) the container.
        drop(
            self.requests
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
        if let Some(keeper) = self.keeper.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = keeper.join();
        }
    }
}

/// The body of the thread that owns a container.
fn keep(
    spec: Spec,
    ready: mpsc::Sender<Result<(String, String), String>>,
    requests: mpsc::Receiver<Request>,
) {
    let (name, tag) = split_image(&spec.image);
    let mut request = GenericImage::new(name, tag)
        .with_exposed_port(spec.port.tcp())
        .with_wait_for(WaitFor::Nothing)
        .with_label("org.alation-rotator.testkit", "peer")
        .with_startup_timeout(Duration::from_secs(300));
    for (key, value) in &spec.env {
        request = request.with_env_var(key, value);
    }
    if !spec.cmd.is_empty() {
        request = request.with_cmd(spec.cmd.clone());
    }
    let container = match request.start() {
        Ok(container) => container,
        Err(error) => {
            let _ = ready.send(Err(format!(
                "{error} (is a Docker engine running? ROTATOR_TEST_PEERS=process needs none)"
            )));
            return;
        }
    };
    let address = container.get_host().and_then(|host| {
        let port = container.get_host_port_ipv4(spec.port)?;
        Ok(format!("{host}:{port}"))
    });
    match address {
        Ok(address) => {
            let _ = ready.send(Ok((address, container.id().to_owned())));
        }
        Err(error) => {
            let _ = ready.send(Err(error.to_string()));
            return;
        }
    }
    while let Ok(request) = requests.recv() {
        match request {
            Request::Stop(reply) => {
                let _ = reply.send(container.stop().map_err(|e| e.to_string()));
            }
            Request::Logs(reply) => {
                let mut text = String::new();
                for (name, output) in [
                    ("stdout", container.stdout_to_vec()),
                    ("stderr", container.stderr_to_vec()),
                ] {
                    match output {
                        Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                        Err(error) => text.push_str(&format!("<cannot read {name}: {error}>\n")),
                    }
                }
                let _ = reply.send(text);
            }
        }
    }
    // The peer was dropped: removing the container is the blocking API's Drop.
    drop(container);
}

/// A shell that removes container `id` with the `docker` command when this process ends;
/// `None` (with a note on stderr) without a `docker` command.
fn reaper(id: &str) -> Option<Child> {
    if !docker_cli_exists() {
        let _ = writeln!(
            std::io::stderr(),
            "note: no `docker` command on PATH; container {id} of a shared test peer may \
             outlive the tests (remove it with the label org.alation-rotator.testkit=peer)"
        );
        return None;
    }
    let script = r#"cat >/dev/null; docker rm -f -v "$1" >/dev/null 2>&1"#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

fn docker_cli_exists() -> bool {
    Command::new("docker")
        .arg("--version")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success() && out.stdout.lines().next().is_some())
}

#[cfg(test)]
mod tests {
    use super::split_image;

    #[test]
    fn images_split_into_name_and_tag() {
        let split = |s: &str| {
            let (name, tag) = split_image(s);
            format!("{name} {tag}")
        };
        assert_eq!(split("openbao/openbao:2.7.2"), "openbao/openbao 2.7.2");
        assert_eq!(
            split("localstack/localstack"),
            "localstack/localstack latest"
        );
        assert_eq!(
            split("registry.local:5000/team/openbao:1"),
            "registry.local:5000/team/openbao 1"
        );
    }
}
