//! `ca_file` is honoured by reqwest 0.13's rustls stack (aws-lc-rs with the platform
//! verifier): a server whose certificate a private CA signed is trusted with that CA's file
//! and refused without it. The server is a tiny TLS front (tokio-rustls, certificates made
//! by rcgen) that passes the connection on to the emulator.

use std::net::SocketAddr;
use std::sync::Arc;

use alation_emulator::Emulator;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rotator_alation::{AlationClient, ClientConfig, SecretString};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::*;

/// A private CA (its PEM) and a leaf certificate for `localhost` that it signed.
struct PrivatePki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

fn private_pki() -> PrivatePki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "alation-rotator test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    PrivatePki {
        ca_pem,
        leaf: leaf_cert.der().clone(),
        leaf_key: PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
    }
}

/// Serves TLS on a port the OS picks and passes every connection on to `backend`.
async fn tls_front(pki: &PrivatePki, backend: SocketAddr) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to pass on.
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut upstream) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    addr
}

async fn emulator_behind_tls(pki: &PrivatePki) -> (Emulator, url::Url) {
    let emulator = Emulator::start(alation_emulator::EmulatorConfig {
        users: users(),
        ..Default::default()
    })
    .await
    .unwrap();
    let front = tls_front(pki, emulator.local_addr()).await;
    let base_url = format!("https://localhost:{}/", front.port())
        .parse()
        .unwrap();
    (emulator, base_url)
}

fn client(base_url: url::Url, ca_file: Option<std::path::PathBuf>) -> AlationClient {
    let mut config = ClientConfig::new(base_url);
    config.retry = fast_retry();
    config.ca_file = ca_file;
    AlationClient::new(config).unwrap()
}

#[tokio::test]
async fn a_server_signed_by_the_ca_in_ca_file_is_trusted() {
    let pki = private_pki();
    let (emulator, base_url) = emulator_behind_tls(&pki).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("corp-ca.pem");
    std::fs::write(&ca_file, &pki.ca_pem).unwrap();

    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));
    let token = client(base_url, Some(ca_file))
        .validate_refresh_token(&refresh, ALICE)
        .await
        .unwrap();
    assert_eq!(token.user_id, ALICE);
    assert_eq!(emulator.calls("validateRefreshToken"), 1);
}

#[tokio::test]
async fn without_ca_file_the_private_ca_is_refused_and_the_error_says_to_set_it() {
    let pki = private_pki();
    let (emulator, base_url) = emulator_behind_tls(&pki).await;
    let refresh = SecretString::from(emulator.issue_refresh_token(ALICE, "rt"));

    let err = client(base_url, None)
        .validate_refresh_token(&refresh, ALICE)
        .await
        .unwrap_err();
    // A refused handshake is a connect error: the request provably never left, so even a
    // regeneration may be sent again.
    assert!(
        matches!(err, rotator_alation::AlationError::Connect { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains("ca_file"), "{message}");
    let mut chain = String::new();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        chain.push_str(&format!("{cause} / "));
        source = cause.source();
    }
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    assert_eq!(
        emulator.calls("validateRefreshToken"),
        0,
        "no request got through the refused handshake"
    );
}
