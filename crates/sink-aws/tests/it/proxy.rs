//! A recording TCP proxy in front of moto: it counts every Secrets Manager call by operation,
//! with the time it arrived and its `ClientRequestToken`, and can misbehave on purpose the way
//! a network or AWS does and moto does not:
//!
//! - drop the response to a call after moto applied it (the client sees a lost response and
//!   retries, exactly as after a network failure in production);
//! - answer a call with `ThrottlingException` without passing it on;
//! - answer with a body over 1 MiB (with or without `Content-Length`), as a broken proxy
//!   might.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy does to the calls of one operation.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Pass the first `n` calls to moto, then drop the connection instead of answering.
    DropResponse(usize),
    /// Answer the first `n` calls with HTTP 400 `ThrottlingException`; moto never sees them.
    Throttle(usize),
    /// Answer every call with a 2 MiB body that declares its `Content-Length`.
    HugeBody,
    /// Answer every call with a 2 MiB chunked body, without `Content-Length`.
    HugeChunkedBody,
    /// Never answer (the connection stays open until the client gives up).
    Hang,
}

/// One call that reached the proxy.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The operation, e.g. `PutSecretValue`.
    pub operation: String,
    /// When the request arrived.
    pub at: Instant,
    /// The request's `ClientRequestToken`, if it had one.
    pub token: Option<String>,
}

/// A running proxy.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// Proxies to `upstream`, applying `faults` by operation name.
    pub async fn start(upstream: SocketAddr, faults: &[(&'static str, Fault)]) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let faults: Arc<Mutex<Vec<(&'static str, Fault)>>> = Arc::new(Mutex::new(faults.into()));
        let record = seen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (seen, faults) = (record.clone(), faults.clone());
                tokio::spawn(async move {
                    let _ = serve(client, upstream, seen, faults).await;
                });
            }
        });
        Proxy { url, seen }
    }

    /// Every call so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Calls so far by operation.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for call in self.seen() {
            *counts.entry(call.operation).or_default() += 1;
        }
        counts
    }
}

/// `[(operation, count)]` as the map [`Proxy::counts`] returns, for assertions.
pub fn counts(expected: &[(&str, usize)]) -> BTreeMap<String, usize> {
    expected
        .iter()
        .map(|(op, n)| ((*op).to_owned(), *n))
        .collect()
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    faults: Arc<Mutex<Vec<(&'static str, Fault)>>>,
) -> std::io::Result<()> {
    // Connected on the first request that goes through, so that a call's arrival time is
    // taken before any work of the proxy's own.
    let mut server: Option<TcpStream> = None;
    loop {
        let Some(request) = read_message(&mut client).await? else {
            return Ok(());
        };
        let (operation, token) = describe(&request);
        seen.lock().unwrap().push(Seen {
            operation: operation.clone(),
            at: Instant::now(),
            token,
        });
        // Take the fault for this call, counting down the ones that apply a number of times.
        let fault = {
            let mut faults = faults.lock().unwrap();
            faults
                .iter_mut()
                .find(|(op, _)| *op == operation)
                .and_then(|(_, fault)| match fault {
                    Fault::DropResponse(0) | Fault::Throttle(0) => None,
                    Fault::DropResponse(n) => {
                        *n -= 1;
                        Some(Fault::DropResponse(1))
                    }
                    Fault::Throttle(n) => {
                        *n -= 1;
                        Some(Fault::Throttle(1))
                    }
                    other => Some(*other),
                })
        };
        match fault {
            Some(Fault::Throttle(_)) => {
                let body = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;
                client
                    .write_all(
                        format!(
                            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.1\r\n\
                             x-amzn-requestid: 00000000-0000-0000-0000-000000000000\r\n\
                             content-length: {}\r\n\r\n{body}",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await?;
                continue;
            }
            Some(Fault::HugeBody) => {
                let body = huge_json();
                client
                    .write_all(
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                             content-length: {}\r\n\r\n",
                            body.len()
                        )
                        .as_bytes(),
                    )
                    .await?;
                // The client may hang up once it has seen the length: that is the point.
                let _ = client.write_all(body.as_bytes()).await;
                return Ok(());
            }
            Some(Fault::Hang) => {
                let mut rest = Vec::new();
                let _ = client.read_to_end(&mut rest).await;
                return Ok(());
            }
            Some(Fault::HugeChunkedBody) => {
                client
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.1\r\n\
                          transfer-encoding: chunked\r\n\r\n",
                    )
                    .await?;
                for chunk in huge_json().as_bytes().chunks(64 * 1024) {
                    let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
                    frame.extend_from_slice(chunk);
                    frame.extend_from_slice(b"\r\n");
                    if client.write_all(&frame).await.is_err() {
                        return Ok(());
                    }
                }
                let _ = client.write_all(b"0\r\n\r\n").await;
                return Ok(());
            }
            _ => {}
        }
        let server = match &mut server {
            Some(server) => server,
            None => server.insert(TcpStream::connect(upstream).await?),
        };
        server.write_all(&request).await?;
        let Some(response) = read_message(server).await? else {
            return Ok(());
        };
        if matches!(fault, Some(Fault::DropResponse(_))) {
            // moto has applied the request; the client never hears of it.
            return Ok(());
        }
        client.write_all(&response).await?;
    }
}

/// A 2 MiB JSON object that looks like a `GetSecretValue` answer.
fn huge_json() -> String {
    format!(
        r#"{{"Name":"x","VersionId":"v","SecretString":"{}"}}"#,
        "a".repeat(2 * 1024 * 1024)
    )
}

/// The operation (from `X-Amz-Target: secretsmanager.Operation`) and the
/// `ClientRequestToken` of a request.
fn describe(request: &[u8]) -> (String, Option<String>) {
    let text = String::from_utf8_lossy(request);
    let operation = text
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("x-amz-target").then(|| {
                value
                    .trim()
                    .rsplit('.')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
        })
        .unwrap_or_else(|| "(none)".to_owned());
    let token = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok())
        .and_then(|body| body["ClientRequestToken"].as_str().map(str::to_owned));
    (operation, token)
}

/// Reads one HTTP/1.1 message with a `Content-Length` body (or none). `None` at EOF.
async fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(pos) = find(&buffer, b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buffer.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Ok(Some(buffer))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
