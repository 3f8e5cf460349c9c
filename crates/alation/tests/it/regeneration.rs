//! `regenRefreshToken` is never sent twice blindly: a lost answer comes back as an ambiguous
//! error after exactly one request, and the raw 2xx body is handed over before parsing.

use std::sync::Mutex;
use std::time::Duration;

use alation_emulator::{endpoints, Fault, FaultKind};
use rotator_alation::{ClientConfig, ExposeSecret, SecretString};

use crate::*;

async fn regen_with(
    kind: FaultKind,
) -> (
    alation_emulator::Emulator,
    String,
    rotator_alation::AlationError,
) {
    let (emulator, _) = start().await;
    let old = emulator.issue_refresh_token(ALICE, "rt");
    emulator.inject(Fault::new(kind).on(endpoints::REGEN_REFRESH_TOKEN).times(1));
    let mut config = ClientConfig::new(emulator.base_url());
    config.retry = fast_retry();
    config.timeout = Duration::from_millis(300);
    let client = rotator_alation::AlationClient::new(config).unwrap();
    let error = client
        .regen_refresh_token(&SecretString::from(old.clone()), ALICE, &|_| {})
        .await
        .unwrap_err();
    (emulator, old, error)
}

#[tokio::test]
async fn an_answer_lost_after_the_work_is_ambiguous_after_one_request() {
    for kind in [
        FaultKind::CommitThenStatus(502),
        FaultKind::CommitThenClose,
        FaultKind::CommitThenHang(Duration::from_secs(2)),
        FaultKind::Latency(Duration::from_secs(2)),
    ] {
        let (emulator, old, error) = regen_with(kind.clone()).await;
        assert!(error.is_ambiguous(), "{kind:?}: {error:?}");
        assert!(!error.never_sent() && !error.is_token_dead(), "{kind:?}");
        assert_eq!(
            emulator.calls(endpoints::REGEN_REFRESH_TOKEN),
            1,
            "{kind:?}: sent once, never again"
        );
        let message = error.to_string();
        assert!(!message.contains(&old), "{message}");
    }
}

#[tokio::test]
async fn a_regeneration_that_never_left_is_sent_again() {
    // Nothing listens on this port: every attempt is refused before any byte is sent.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    drop(listener);
    let client = client_for(base.parse().unwrap());
    let error = client
        .regen_refresh_token(&SecretString::from("x".to_owned()), ALICE, &|_| {})
        .await
        .unwrap_err();
    assert!(error.never_sent(), "{error:?}");
    assert!(
        matches!(
            error,
            rotator_alation::AlationError::Connect { attempts: 3, .. }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_raw_body_is_kept_before_a_parse_that_fails() {
    let (emulator, _) = start().await;
    let old = emulator.issue_refresh_token(ALICE, "rt");
    emulator.inject(
        Fault::new(FaultKind::DropField("created_at".into()))
            .on(endpoints::REGEN_REFRESH_TOKEN)
            .times(1),
    );
    let kept = Mutex::new(Vec::new());
    let error = client_for(emulator.base_url())
        .regen_refresh_token(&SecretString::from(old), ALICE, &|body| {
            kept.lock().unwrap().extend_from_slice(body)
        })
        .await
        .unwrap_err();
    assert!(error.is_bad_answer(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("`created_at`"), "{message}");
    assert!(
        message.contains("refresh_token"),
        "names the keys it saw: {message}"
    );
    let new = emulator.live_refresh_tokens(ALICE).pop().unwrap();
    assert!(!message.contains(&new), "never the values: {message}");
    let kept: serde_json::Value = serde_json::from_slice(&kept.lock().unwrap()).unwrap();
    assert_eq!(kept["refresh_token"], new.as_str());
}

#[tokio::test]
async fn json_labelled_as_html_is_still_a_good_answer() {
    let (emulator, _) = start().await;
    let old = emulator.issue_refresh_token(ALICE, "rt");
    emulator.inject(Fault::new(FaultKind::HtmlContentType).times(1));
    let token = client_for(emulator.base_url())
        .regen_refresh_token(&SecretString::from(old), ALICE, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        emulator.live_refresh_tokens(ALICE),
        vec![token.refresh_token.expose_secret().to_owned()]
    );
}

#[tokio::test]
async fn a_200_that_calls_the_token_expired_means_it_is_dead() {
    let (emulator, _) = start().await;
    let token = emulator.issue_refresh_token(ALICE, "rt");
    for spelling in ["EXPIRED", "revoked"] {
        emulator.inject(Fault::new(FaultKind::TokenStatus(spelling.into())).times(1));
        let error = client_for(emulator.base_url())
            .validate_refresh_token(&SecretString::from(token.clone()), ALICE)
            .await
            .unwrap_err();
        assert!(error.is_token_dead(), "{spelling}: {error:?}");
    }
    emulator.inject(Fault::new(FaultKind::TokenStatus("active".into())).times(1));
    client_for(emulator.base_url())
        .validate_refresh_token(&SecretString::from(token), ALICE)
        .await
        .unwrap();
}
