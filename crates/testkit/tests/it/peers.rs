//! The test peers start, answer, stop and clean up (with the binaries from
//! `ROTATOR_TEST_BAO_BIN` and `ROTATOR_TEST_MOTO_BIN`, as `./scripts/test.sh` sets them).

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use rotator_testkit::peers::openbao::OpenBao;
use rotator_testkit::peers::PeerMode;

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

fn socket(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

#[tokio::test]
async fn openbao_answers_with_the_root_token_and_stops() {
    let bao = OpenBao::start();
    assert_eq!(bao.mode(), PeerMode::from_env());
    let (status, body) = bao
        .request_as(None, reqwest::Method::GET, "auth/token/lookup-self", None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["policies"].to_string().contains("root"));
    bao.enable_kv2_cas_required("kvtest").await;
    let token = bao.create_token(&["default"], None).await;
    let (status, _) = bao
        .request_as(Some(&token), reqwest::Method::GET, "secret/data/x", None)
        .await;
    assert_eq!(status, 403);
    assert!(!format!("{bao:?}").contains(&bao.root_token));
    let addr = socket(&bao.addr);
    assert!(listening(addr));
    bao.stop();
    assert!(!listening(addr), "OpenBao still listens after stop()");
    bao.stop();
}

#[cfg(feature = "moto")]
mod moto {
    use rotator_testkit::peers::moto::{Moto, ENV_TO_REMOVE, REGION};

    use super::*;

    #[test]
    fn moto_answers_resets_and_stops() {
        let moto = Moto::start();
        assert_eq!(moto.endpoint(), moto.url);
        assert_eq!(moto.addr, socket(moto.endpoint()));
        assert!(listening(moto.addr));
        moto.reset();
        moto.stop();
        assert!(!listening(moto.addr), "moto still listens after stop()");
    }

    #[test]
    fn child_environment_isolates_the_sdk() {
        let moto = Moto::shared();
        let env = moto.env();
        let get = |name: &str| {
            env.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.as_str())
        };
        assert_eq!(get("AWS_REGION"), Some(REGION));
        assert_eq!(get("AWS_DEFAULT_REGION"), Some(REGION));
        assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));
        assert_eq!(get("AWS_CONFIG_FILE"), Some("/dev/null"));
        assert_eq!(get("AWS_SHARED_CREDENTIALS_FILE"), Some("/dev/null"));
        assert!(get("AWS_ACCESS_KEY_ID").is_some() && get("AWS_SECRET_ACCESS_KEY").is_some());

        let mut command = std::process::Command::new("true");
        moto.configure(&mut command);
        let set: Vec<_> = command.get_envs().collect();
        for name in ENV_TO_REMOVE {
            assert!(
                set.contains(&(std::ffi::OsStr::new(name), None)),
                "{name} is not removed"
            );
        }
        assert!(set.contains(&(
            std::ffi::OsStr::new("AWS_REGION"),
            Some(std::ffi::OsStr::new(REGION))
        )));
    }

    #[tokio::test]
    async fn sdk_config_points_at_the_server() {
        let moto = Moto::shared();
        let sdk = moto.sdk_config().await;
        assert_eq!(sdk.endpoint_url(), Some(moto.endpoint()));
        assert_eq!(sdk.region().map(|r| r.as_ref()), Some(REGION));
        assert!(sdk.credentials_provider().is_some());
        let bare = rotator_testkit::peers::moto::fake_sdk_config().await;
        assert_eq!(bare.endpoint_url(), None);
    }
}
