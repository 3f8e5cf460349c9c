//! A real moto server (AWS API emulator, PyPI `moto[server]`), one per test binary.
//!
//! Self-contained so that it can move into `rotator-testkit` unchanged. The binary comes
//! from `ROTATOR_TEST_MOTO_BIN`, else `moto_server` on `PATH`; without either every test that
//! needs it fails with a message saying how to get one. The server listens on an OS-picked
//! port of 127.0.0.1 and is stopped when the test binary exits: it runs under a small shell
//! that holds a pipe from this process and kills moto when the pipe closes.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The environment variable naming the `moto_server` binary.
pub const MOTO_BIN_ENV: &str = "ROTATOR_TEST_MOTO_BIN";

/// A running moto server.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Held open for the life of the process: closing it stops the server.
    _lifeline: Mutex<(Child, ChildStdin)>,
}

/// The moto server of this test binary, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(start)
}

fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os(MOTO_BIN_ENV) {
        let bin = PathBuf::from(bin);
        assert!(
            bin.is_file(),
            "{MOTO_BIN_ENV}={} does not name a file; point it at the moto_server of a \
             virtualenv with `moto[server]`, or run ./scripts/test.sh",
            bin.display()
        );
        return bin;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("moto_server"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "these tests need a real moto server and none was found: set {MOTO_BIN_ENV} to the \
             path of `moto_server` (pip install 'moto[server]') or run ./scripts/test.sh"
        )
    })
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("cannot pick a free port on 127.0.0.1")
        .port()
}

fn start() -> Moto {
    let bin = binary();
    let port = free_port();
    let log = std::env::temp_dir().join(format!("rotator-sink-aws-moto-{port}.log"));
    let log_file = std::fs::File::create(&log).expect("cannot create the moto log file");
    // The shell starts moto, then waits for its stdin to close (this process exiting) and
    // stops moto. No signal handler or unsafe code is needed in the test binary.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" -H 127.0.0.1 -p "$1" & pid=$!; read _ignored; kill "$pid" 2>/dev/null; wait "$pid""#)
        .arg(&bin)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().expect("cannot share the moto log file"))
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let stdin = child.stdin.take().expect("the moto wrapper has a stdin");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if answers(addr) {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            panic!(
                "moto_server ({}) exited with {status} before answering:\n{output}",
                bin.display()
            );
        }
        if Instant::now() > deadline {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("moto_server did not answer on {addr} within 60s; its output:\n{output}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Moto {
        url: format!("http://{addr}"),
        addr,
        _lifeline: Mutex::new((child, stdin)),
    }
}

/// Whether an HTTP server answers on `addr`.
fn answers(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.")
}
