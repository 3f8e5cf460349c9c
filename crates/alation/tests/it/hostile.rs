//! Servers a proxy or an attacker could put in Alation's place: one that redirects elsewhere,
//! one that streams an endless body, and plain HTTP across the network.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use rotator_alation::{AlationClient, ClientConfig, SecretString};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::*;

/// Serves every connection with `response` after reading the request; counts requests and
/// remembers whether any carried `needle`.
async fn serve(
    response: Vec<u8>,
    needle: &'static str,
) -> (SocketAddr, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let leaks = Arc::new(AtomicUsize::new(0));
    let (seen, leaked) = (requests.clone(), leaks.clone());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let response = response.clone();
            let (seen, leaked) = (seen.clone(), leaked.clone());
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let n = socket.read(&mut request).await.unwrap_or(0);
                seen.fetch_add(1, Ordering::SeqCst);
                if String::from_utf8_lossy(&request[..n]).contains(needle) {
                    leaked.fetch_add(1, Ordering::SeqCst);
                }
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (addr, requests, leaks)
}

#[tokio::test]
async fn a_redirect_to_another_host_is_never_followed_with_the_token() {
    let secret = "redirect-refresh-token-secret";
    let (elsewhere, reached, _) = serve(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec(),
        secret,
    )
    .await;
    let redirect = format!(
        "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://{elsewhere}/integration/v1/createAPIAccessToken/\r\ncontent-length: 0\r\n\r\n"
    );
    let (origin, _, _) = serve(redirect.into_bytes(), secret).await;
    let error = client_for(format!("http://{origin}/").parse().unwrap())
        .create_access_token(&SecretString::from(secret), ALICE)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("redirects to"), "{error}");
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing reached the other host"
    );
}

#[tokio::test]
async fn an_answer_over_one_mebibyte_is_refused() {
    let mut response =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2097152\r\n\r\n"
            .to_vec();
    response.extend(std::iter::repeat_n(b' ', 2 * 1024 * 1024));
    let (addr, _, _) = serve(response, "-").await;
    let error = client_for(format!("http://{addr}/").parse().unwrap())
        .create_access_token(&SecretString::from("t"), ALICE)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("larger than 1024 KiB"),
        "{error}"
    );
}

#[test]
fn plain_http_is_for_loopback_unless_allowed() {
    for url in [
        "http://127.0.0.1:8080/",
        "http://localhost/",
        "http://[::1]/",
    ] {
        AlationClient::new(ClientConfig::new(url.parse().unwrap())).unwrap();
    }
    let remote: url::Url = "http://alation.corp.example.com/".parse().unwrap();
    let error = AlationClient::new(ClientConfig::new(remote.clone()))
        .unwrap_err()
        .to_string();
    assert!(error.contains("alation.allow_insecure_http"), "{error}");
    let mut config = ClientConfig::new(remote);
    config.allow_insecure_http = true;
    AlationClient::new(config).unwrap();
}
