//! A TCP proxy in front of moto that forwards one request, lets moto apply it, and then
//! drops the connection instead of returning the answer: the client sees a lost response
//! and its SDK retries, exactly as after a network failure in production.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy.
pub struct LossyProxy {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// How many responses were dropped.
    pub dropped: Arc<AtomicUsize>,
}

/// Proxies to `upstream`, dropping the response to the first `drop` requests whose
/// `X-Amz-Target` ends with `.{operation}`.
pub async fn lossy_proxy(upstream: SocketAddr, operation: &'static str, drop: usize) -> LossyProxy {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let counter = dropped.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let _ = serve(client, upstream, operation, drop, counter).await;
            });
        }
    });
    LossyProxy { url, dropped }
}

async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    operation: &str,
    drop: usize,
    dropped: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    let target = format!(
        "x-amz-target: secretsmanager.{}",
        operation.to_ascii_lowercase()
    );
    loop {
        let Some(request) = read_message(&mut client).await? else {
            return Ok(());
        };
        server.write_all(&request).await?;
        let Some(response) = read_message(&mut server).await? else {
            return Ok(());
        };
        let head = String::from_utf8_lossy(&request).to_ascii_lowercase();
        if head.contains(&target)
            && dropped
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < drop).then_some(n + 1)
                })
                .is_ok()
        {
            // moto has applied the request; the client never hears of it.
            return Ok(());
        }
        client.write_all(&response).await?;
    }
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
