//! OAuth 2.0 client credentials (Alation Cloud service accounts), end to end: bootstrap the
//! client id and secret, deliver a JWT to the file store, Vault and AWS, and prove it works on
//! Alation's API as `Authorization: Bearer`; a rotated secret fails clearly.

use std::sync::Arc;
use std::time::Duration;

use rotator_alation::ExposeSecret;
use rotator_core::{AccessTokenDocument, TokenSink, TokenSinkExt};
use rotator_sink_aws::AwsSink;
use rotator_sink_vault::{AuthConfig, VaultSink};
use rotator_testkit::fixtures::unique_suffix;
use rotator_testkit::peers::{Moto, OpenBao};

use crate::harness::{Run, World};

/// The outcome word of integration `svc` in a run's output.
fn outcome(run: &Run) -> Option<&str> {
    run.stdout
        .lines()
        .find_map(|line| line.strip_prefix("svc "))
        .and_then(|rest| rest.split_whitespace().next())
}

/// Whether Alation's API accepts `token` as a bearer token.
async fn bearer_accepted(world: &World, token: &str) -> bool {
    reqwest::Client::new()
        .get(
            world
                .emulator
                .base_url()
                .join("integration/v1/user/")
                .unwrap(),
        )
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .is_success()
}

/// A config with one OAuth integration whose client lives in the file store and whose token
/// goes to `destination` (a `[stores.x]` block appended, and its store name and key).
fn config(world: &World, extra_store: &str, destination: (&str, &str)) -> String {
    format!(
        "[alation]\nbase_url = \"{}\"\ntimeout = \"5s\"\n\n[escrow]\ndirectory = \"{}\"\n\n\
         [stores.local]\ntype = \"file\"\ndirectory = \"{}\"\n{extra_store}\n\
         [[integrations]]\nname = \"svc\"\noauth_client = {{ store = \"local\", key = \"state/svc\" }}\n\
         access_token = {{ store = \"{}\", key = \"{}\" }}\n",
        world.emulator.base_url(),
        world.dir.path().join("escrow").display(),
        world.store_dir().display(),
        destination.0,
        destination.1
    )
}

async fn bootstrap(world: &mut World, client_id: &str, secret: &str) -> Run {
    world
        .run_with_stdin(
            &[
                "bootstrap",
                "svc",
                "--oauth-client-id",
                client_id,
                "--client-secret-stdin",
                "--force",
            ],
            &[],
            &format!("{secret}\n"),
        )
        .await
}

/// Bootstraps, runs twice, and checks what `sink` holds at `key`.
async fn deliver_and_check(
    world: &mut World,
    sink: &dyn TokenSink,
    key: &str,
    env: &[(&str, &str)],
) {
    let (client_id, secret) = world
        .emulator
        .register_oauth_client(Duration::from_secs(3600));
    let stored = bootstrap(world, &client_id, &secret).await;
    assert_eq!(stored.code, 0, "{}", stored.all());
    let run = world.run(&["run"], env).await;
    assert_eq!(run.code, 0, "{}", run.all());
    assert_eq!(outcome(&run), Some("rotated"), "{}", run.all());
    let document = sink
        .read_as::<AccessTokenDocument>(key)
        .await
        .unwrap()
        .expect("a delivered token")
        .document;
    let token = document.api_access_token.expose_secret().to_owned();
    world.add_secret(&token);
    assert_eq!(document.token_type.as_deref(), Some("Bearer"));
    assert_eq!(document.user_id, None);
    assert_eq!(document.integration, "svc");
    assert_eq!(document.base_url, world.emulator.base_url().to_string());
    assert_eq!(
        document
            .token_expires_at
            .duration_since(document.created_at)
            .as_secs(),
        3600
    );
    assert!(
        bearer_accepted(world, &token).await,
        "the JWT works as a bearer token"
    );
    let again = world.run(&["run"], env).await;
    assert_eq!(outcome(&again), Some("fresh"), "{}", again.all());
    let status = world.run(&["status", "--format", "json"], env).await;
    assert!(
        status.stdout.contains("\"credential\": \"oauth-client\""),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains("\"health\": \"ok\""),
        "{}",
        status.stdout
    );
}

#[tokio::test]
async fn oauth_tokens_reach_the_file_store_and_work_as_bearer_tokens() {
    let mut world = World::start(0).await;
    world.write_config(&config(&world, "", ("local", "alation/svc")));
    let sink = world.sink();
    deliver_and_check(&mut world, &sink, "alation/svc", &[]).await;
    assert!(
        world.emulator.calls("oauthToken") >= 2,
        "bootstrap checked the pair, run issued"
    );
}

#[tokio::test]
async fn oauth_tokens_reach_vault() {
    let bao = OpenBao::shared();
    let mut world = World::start(0).await;
    let token_file = world.dir.path().join("bao-token");
    std::fs::write(&token_file, &bao.root_token).unwrap();
    let key = format!("alation/oauth-{}", unique_suffix());
    let store = format!(
        "\n[stores.vault]\ntype = \"vault\"\naddress = \"{}\"\nauth = {{ method = \"token\", token_file = \"{}\" }}\n",
        bao.addr,
        token_file.display()
    );
    world.write_config(&config(&world, &store, ("vault", &key)));
    let reader = Arc::new(
        VaultSink::new(rotator_sink_vault::Config::new(
            bao.addr.clone(),
            AuthConfig::Token {
                token_env: None,
                token_file: Some(token_file.clone()),
            },
        ))
        .unwrap(),
    );
    deliver_and_check(&mut world, reader.as_ref(), &key, &[]).await;
}

#[tokio::test]
async fn oauth_tokens_reach_aws_secrets_manager() {
    let moto = Moto::shared();
    let mut world = World::start(0).await;
    let key = format!("alation/oauth-{}", unique_suffix());
    let store = format!(
        "\n[stores.aws]\ntype = \"aws_secrets_manager\"\nregion = \"{}\"\nendpoint_url = \"{}\"\n",
        rotator_testkit::peers::moto::REGION,
        moto.endpoint()
    );
    world.write_config(&config(&world, &store, ("aws", &key)));
    let reader = AwsSink::with_sdk_config(
        rotator_sink_aws::Config {
            endpoint_url: Some(moto.endpoint().to_owned()),
            region: Some(rotator_testkit::peers::moto::REGION.to_owned()),
            ..rotator_sink_aws::Config::default()
        },
        &moto.sdk_config().await,
    )
    .await
    .unwrap();
    let env: Vec<(&str, String)> = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    deliver_and_check(&mut world, &reader, &key, &env).await;
}

#[tokio::test]
async fn a_rotated_secret_fails_with_invalid_client_naming_the_state_location() {
    let mut world = World::start(0).await;
    world.write_config(&config(&world, "", ("local", "alation/svc")));
    let (client_id, secret) = world
        .emulator
        .register_oauth_client(Duration::from_secs(3600));
    world.add_secret(&secret);

    let wrong = bootstrap(&mut world, &client_id, "not-the-secret").await;
    assert_eq!(wrong.code, 1, "{}", wrong.all());
    assert!(wrong.stderr.contains("invalid_client"), "{}", wrong.all());
    assert!(
        world.sink().read("state/svc").await.unwrap().is_none(),
        "nothing stored"
    );

    assert_eq!(bootstrap(&mut world, &client_id, &secret).await.code, 0);
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());

    let rotated = world.emulator.rotate_oauth_secret(&client_id).unwrap();
    world.add_secret(&rotated);
    let run = world.run(&["run", "--force"], &[]).await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("invalid_client"), "{}", run.stdout);
    assert!(
        run.stdout.contains("local:state/svc"),
        "names the state location: {}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("--oauth-client-id ID --client-secret-stdin"),
        "{}",
        run.stdout
    );

    let revoke = {
        assert_eq!(bootstrap(&mut world, &client_id, &rotated).await.code, 0);
        world.run(&["revoke", "svc"], &[]).await
    };
    assert_eq!(revoke.code, 0, "{}", revoke.all());
    assert!(
        revoke
            .stdout
            .contains("cannot revoke the access tokens it issued"),
        "{}",
        revoke.stdout
    );
}
