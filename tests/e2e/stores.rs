//! The real binary with Vault (OpenBao) and AWS Secrets Manager (moto) as stores.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use alation_emulator::{Fault, FaultKind};
use aws_sdk_secretsmanager::Client as SecretsClient;
use rotator_alation::ExposeSecret;
use rotator_core::{AccessTokenDocument, TokenSink, TokenSinkExt};
use rotator_sink_aws::AwsSink;
use rotator_sink_vault::{AuthConfig, VaultSink};
use rotator_testkit::fixtures::{assert_no_secrets, unique_suffix};
use rotator_testkit::peers::{Moto, OpenBao};

use crate::harness::{outcomes, Run, World};

/// The rotator's policy exactly as docs/stores/vault.md gives it.
fn documented_policy(name: &str) -> String {
    let doc = include_str!("../../docs/stores/vault.md");
    let marker = format!("<!-- policy: {name} -->");
    let after = &doc[doc.find(&marker).expect("policy block in vault.md") + marker.len()..];
    let start = after.find("```hcl\n").expect("hcl block") + "```hcl\n".len();
    let end = after[start..].find("```").expect("end of hcl block");
    after[start..start + end].to_owned()
}

fn write_secret_file(dir: &Path, name: &str, value: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, value).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A Vault sink acting with the root token, for setting up and inspecting.
fn root_sink(bao: &OpenBao, dir: &Path) -> Arc<VaultSink> {
    let token_file = write_secret_file(dir, "root-token", &bao.root_token);
    let auth = AuthConfig::Token {
        token_env: None,
        token_file: Some(token_file),
    };
    Arc::new(VaultSink::new(rotator_sink_vault::Config::new(bao.addr.clone(), auth)).unwrap())
}

/// Creates a refresh token for user `i` with its password and stores it at `key`.
async fn bootstrap_into(world: &mut World, i: usize, sink: &dyn TokenSink, key: &str) {
    let name = format!("int{i}-{}", unique_suffix());
    world.bootstrap_into(i, sink, key, &name).await;
}

/// Reads the access token at `key`, records it as a secret and checks `run` did not print it.
async fn access_at(
    world: &mut World,
    run: &Run,
    sink: &dyn TokenSink,
    key: &str,
) -> Option<(AccessTokenDocument, String)> {
    let stored = sink.read_as::<AccessTokenDocument>(key).await.unwrap()?;
    world
        .secrets
        .push(stored.document.api_access_token.expose_secret().to_owned());
    assert_no_secrets(&run.all(), &world.secret_refs());
    assert!(stored.managed, "{key} must carry the ownership marker");
    Some((stored.document, stored.version.to_string()))
}

fn header(world: &World) -> String {
    format!(
        "[alation]\nbase_url = \"{}\"\ntimeout = \"5s\"\n\n[escrow]\ndirectory = \"{}\"\n\n\
         [stores.local]\ntype = \"file\"\ndirectory = \"{}\"\n",
        world.emulator.base_url(),
        world.dir.path().join("escrow").display(),
        world.store_dir().display()
    )
}

fn integration(
    i: usize,
    user_id: i64,
    refresh: (&str, &str),
    access: &[(&str, &str, bool)],
) -> String {
    let destinations: Vec<String> = access
        .iter()
        .map(|(store, key, takeover)| {
            format!("{{ store = \"{store}\", key = \"{key}\", takeover = {takeover} }}")
        })
        .collect();
    format!(
        "\n[[integrations]]\nname = \"int{i}\"\nuser_id = {user_id}\n\
         refresh_token = {{ store = \"{}\", key = \"{}\" }}\naccess_token = [{}]\n",
        refresh.0,
        refresh.1,
        destinations.join(", ")
    )
}

#[tokio::test]
async fn vault_as_state_and_destination_with_the_documented_approle_policy() {
    let bao = OpenBao::shared();
    let mut world = World::start(2).await;
    let prefix = format!("alation/e2e-{}", unique_suffix());
    let policy = format!("rotator-{}", unique_suffix());
    bao.put_policy(&policy, &documented_policy("rotator")).await;
    let (role_id, secret_id) = bao.approle("approle", &policy, &[&policy], "1h").await;
    world.secrets.extend([role_id.clone(), secret_id.clone()]);
    let secret_id_file = write_secret_file(world.dir.path(), "secret-id", &secret_id);
    let root = root_sink(bao, world.dir.path());

    let mut config = header(&world);
    config.push_str(&format!(
        "\n[stores.vault]\ntype = \"vault\"\naddress = \"{}\"\nmount = \"secret\"\n\
         auth = {{ method = \"approle\", role_id_env = \"E2E_VAULT_ROLE_ID\", secret_id_file = \"{}\" }}\n",
        bao.addr,
        secret_id_file.display()
    ));
    for i in 0..2 {
        bootstrap_into(
            &mut world,
            i,
            root.as_ref(),
            &format!("{prefix}/state/int{i}"),
        )
        .await;
        config.push_str(&integration(
            i,
            world.users[i].id,
            ("vault", &format!("{prefix}/state/int{i}")),
            &[("vault", &format!("{prefix}/int{i}"), false)],
        ));
    }
    world.write_config(&config);
    let env = [("E2E_VAULT_ROLE_ID", role_id.as_str())];

    let first = world.run(&["run"], &env).await;
    assert_eq!(first.code, 0, "{}", first.all());
    assert!(
        outcomes(&first).iter().all(|(_, o)| o == "rotated"),
        "{}",
        first.stdout
    );
    let mut versions = Vec::new();
    for i in 0..2 {
        let (document, version) = access_at(
            &mut world,
            &first,
            root.as_ref(),
            &format!("{prefix}/int{i}"),
        )
        .await
        .expect("the access token is in Vault");
        assert!(world.api_accepts(&document.api_access_token).await);
        versions.push(version);
    }

    let second = world.run(&["run"], &env).await;
    assert_eq!(second.code, 0, "{}", second.all());
    assert!(
        outcomes(&second).iter().all(|(_, o)| o == "fresh"),
        "{}",
        second.stdout
    );
    for (i, version) in versions.iter().enumerate() {
        let (_, now) = access_at(
            &mut world,
            &second,
            root.as_ref(),
            &format!("{prefix}/int{i}"),
        )
        .await
        .unwrap();
        assert_eq!(&now, version, "a fresh run writes nothing");
    }

    let status = world.run(&["status"], &env).await;
    assert_eq!(status.code, 0, "{}", status.all());
    assert!(
        status
            .stdout
            .contains(&format!("vault:{prefix}/state/int0")),
        "{}",
        status.stdout
    );
}

#[tokio::test]
async fn a_policy_that_denies_write_fails_clearly_and_writes_nothing() {
    let bao = OpenBao::shared();
    let mut world = World::start(1).await;
    let prefix = format!("alation/e2e-{}", unique_suffix());
    let policy = format!("read-only-{}", unique_suffix());
    bao.put_policy(
        &policy,
        "path \"secret/data/alation/*\" { capabilities = [\"read\"] }\n\
         path \"secret/metadata/alation/*\" { capabilities = [\"read\"] }\n",
    )
    .await;
    let token = bao.create_token(&[&policy], None).await;
    world.secrets.push(token.clone());
    let root = root_sink(bao, world.dir.path());
    let state_key = format!("{prefix}/state/int0");
    bootstrap_into(&mut world, 0, root.as_ref(), &state_key).await;
    let state_before = root.read(&state_key).await.unwrap().unwrap().version;

    let mut config = header(&world);
    config.push_str(&format!(
        "\n[stores.vault]\ntype = \"vault\"\naddress = \"{}\"\n\
         auth = {{ method = \"token\", token_env = \"E2E_VAULT_TOKEN\" }}\n",
        bao.addr
    ));
    config.push_str(&integration(
        0,
        world.users[0].id,
        ("vault", &state_key),
        &[("vault", &format!("{prefix}/int0"), false)],
    ));
    world.write_config(&config);

    let run = world
        .run(&["run"], &[("E2E_VAULT_TOKEN", token.as_str())])
        .await;
    assert_eq!(run.code, 1, "{}", run.all());
    assert!(run.stdout.contains("permission denied"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!("secret/data/{prefix}/int0"))
            || run
                .stdout
                .contains(&format!("secret/metadata/{prefix}/int0")),
        "names the path: {}",
        run.stdout
    );
    assert!(
        run.stdout.contains("\"update\"") || run.stdout.contains("\"create\""),
        "names the capability: {}",
        run.stdout
    );
    assert!(
        root.read(&format!("{prefix}/int0"))
            .await
            .unwrap()
            .is_none(),
        "nothing half-written"
    );
    assert_eq!(
        root.read(&state_key).await.unwrap().unwrap().version,
        state_before
    );
}

/// Vault goes away while the rotator waits for Alation: that integration fails with a clear
/// message, the one on the file store still rotates.
async fn vault_breaks_mid_run(breakage: &str) {
    let bao = OpenBao::start();
    let mut world = World::start(2).await;
    let root = root_sink(&bao, world.dir.path());
    bootstrap_into(&mut world, 0, root.as_ref(), "alation/state/int0").await;
    let file = world.sink();
    bootstrap_into(&mut world, 1, &file, "state/int1").await;

    let mut config = header(&world);
    config.push_str(&format!(
        "\n[stores.vault]\ntype = \"vault\"\naddress = \"{}\"\n\
         auth = {{ method = \"token\", token_file = \"{}\" }}\n",
        bao.addr,
        world.dir.path().join("root-token").display()
    ));
    config.push_str(&integration(
        0,
        world.users[0].id,
        ("vault", "alation/state/int0"),
        &[("vault", "alation/int0", false)],
    ));
    config.push_str(&integration(
        1,
        world.users[1].id,
        ("local", "state/int1"),
        &[("local", "alation/int1", false)],
    ));
    world.write_config(&config);
    world.emulator.inject(
        Fault::new(FaultKind::Latency(Duration::from_millis(1500)))
            .on("createAPIAccessToken")
            .for_user(world.users[0].id),
    );

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_alation-rotator"));
    command
        .arg("run")
        .env("ALATION_ROTATOR_CONFIG", world.config_path())
        .env_remove("RUST_LOG");
    let running = tokio::task::spawn_blocking(move || command.output().unwrap());
    // Break Vault once both mint requests have reached Alation: the Vault integration's is
    // held there for 1.5 s, so its write comes after the breakage.
    for _ in 0..500 {
        if world.emulator.calls("createAPIAccessToken") >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        world.emulator.calls("createAPIAccessToken"),
        2,
        "both integrations minted"
    );
    match breakage {
        "sealed" => bao.seal().await,
        _ => bao.stop(),
    }
    let output = running.await.unwrap();
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let file = world.sink();
    access_at(&mut world, &run, &file, "alation/int1")
        .await
        .expect("the file store integration rotated");
    assert_eq!(run.code, 1, "{}", run.all());
    let outcomes = outcomes(&run);
    assert_eq!(outcomes[0].1, "failed", "{}", run.stdout);
    assert_eq!(
        outcomes[1],
        ("int1".to_owned(), "rotated".to_owned()),
        "{}",
        run.stdout
    );
    let failure = run.stdout.lines().find(|l| l.starts_with("int0")).unwrap();
    match breakage {
        "sealed" => assert!(failure.contains("sealed"), "{failure}"),
        _ => assert!(failure.contains(&bao.addr), "names the address: {failure}"),
    }
    assert!(
        failure.contains("vault:alation/int0"),
        "names the location: {failure}"
    );
}

#[tokio::test]
async fn vault_sealed_mid_run_fails_that_integration_only() {
    vault_breaks_mid_run("sealed").await;
}

#[tokio::test]
async fn vault_stopped_mid_run_fails_that_integration_only() {
    vault_breaks_mid_run("stopped").await;
}

#[tokio::test]
async fn aws_destination_written_even_when_a_second_destination_is_refused() {
    let moto = Moto::shared();
    let mut world = World::start(1).await;
    let prefix = format!("alation/e2e-{}", unique_suffix());
    let client = SecretsClient::new(&moto.sdk_config().await);
    let foreign_value = format!("{{\"api_access_token\": \"foreign-{}\"}}", unique_suffix());
    client
        .create_secret()
        .name(format!("{prefix}/int0-foreign"))
        .secret_string(&foreign_value)
        .send()
        .await
        .expect("create an unmanaged secret in moto");
    let file = world.sink();
    bootstrap_into(&mut world, 0, &file, "state/int0").await;

    let aws_store = format!(
        "\n[stores.aws]\ntype = \"aws_secrets_manager\"\nregion = \"{}\"\nendpoint_url = \"{}\"\n",
        rotator_testkit::peers::moto::REGION,
        moto.endpoint()
    );
    let (head, user_id) = (header(&world), world.users[0].id);
    let config_with = |takeover: bool| {
        let mut config = head.clone();
        config.push_str(&aws_store);
        config.push_str(&integration(
            0,
            user_id,
            ("local", "state/int0"),
            &[
                ("aws", &format!("{prefix}/int0"), false),
                ("aws", &format!("{prefix}/int0-foreign"), takeover),
            ],
        ));
        config
    };
    world.write_config(&config_with(false));
    let env: Vec<(&str, String)> = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
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

    let refused = world.run(&["run"], &env).await;
    assert_eq!(refused.code, 1, "{}", refused.all());
    let (document, _) = access_at(&mut world, &refused, &reader, &format!("{prefix}/int0"))
        .await
        .expect("the first destination is written");
    assert!(world.api_accepts(&document.api_access_token).await);
    assert!(
        refused.stdout.contains("takeover = true"),
        "{}",
        refused.stdout
    );
    let foreign = client
        .get_secret_value()
        .secret_id(format!("{prefix}/int0-foreign"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        foreign.secret_string(),
        Some(foreign_value.as_str()),
        "the foreign secret is untouched"
    );

    world.write_config(&config_with(true));
    let adopted = world.run(&["run"], &env).await;
    assert_eq!(adopted.code, 0, "{}", adopted.all());
    let (second, _) = access_at(
        &mut world,
        &adopted,
        &reader,
        &format!("{prefix}/int0-foreign"),
    )
    .await
    .expect("taken over");
    let (first, _) = access_at(&mut world, &adopted, &reader, &format!("{prefix}/int0"))
        .await
        .unwrap();
    assert_eq!(
        first.api_access_token.expose_secret(),
        second.api_access_token.expose_secret(),
        "every destination holds the same token"
    );
    let previous = reader
        .read_previous(&format!("{prefix}/int0-foreign"))
        .await
        .unwrap();
    assert!(
        previous.is_some(),
        "the value a consumer cached is still AWSPREVIOUS"
    );
}

/// The exec store with the example program from the repository as a destination: the real
/// binary delivers a token there that Alation accepts, and a second run finds it fresh.
#[tokio::test]
async fn an_exec_store_receives_a_working_token() {
    let mut world = World::bootstrapped(1, "").await;
    let program =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/exec-store/file-store.py");
    let root = world.dir.path().join("exec-store");
    let python = std::env::var("ROTATOR_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let config = world
        .config_text("")
        .replace(
            "[stores.local]",
            &format!(
                "[stores.script]\ntype = \"exec\"\ncommand = [\"{python}\", \"{}\", \"{}\"]\n\
                 timeout = \"20s\"\ncompare_and_set = true\n\n[stores.local]",
                program.display(),
                root.display()
            ),
        )
        .replace(
            "access_token = { store = \"local\", key = \"alation/int0\" }",
            "access_token = { store = \"script\", key = \"alation/int0\" }",
        );
    world.write_config(&config);
    let first = world.run(&["run"], &[]).await;
    assert_eq!(first.code, 0, "{}", first.all());
    let file = root.join(format!(
        "{}.json",
        "alation/int0"
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let entry: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let token = entry["document"]["api_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    world.add_secret(&token);
    assert_eq!(entry["labels"]["managed-by"], "alation-rotator");
    assert!(world.api_accepts(&token.into()).await);
    let second = world.run(&["run"], &[]).await;
    assert_eq!(outcomes(&second), [("int0".to_owned(), "fresh".to_owned())]);
}

/// Remembers as secrets the token or client secret of every document now at `keys` of
/// `sink` (state or access documents).
async fn remember_stored(world: &mut World, sink: &dyn TokenSink, keys: &[String]) {
    for key in keys {
        let Some(stored) = sink.read(key).await.unwrap() else {
            continue;
        };
        for field in ["api_access_token", "refresh_token", "client_secret"] {
            if let Some(value) = stored.document.fields().get(field).and_then(|v| v.as_str()) {
                world.add_secret(value);
            }
        }
    }
}

/// Every store (file, OpenBao with AppRole, moto with a unique secret key), every credential
/// kind, bootstrap included, at `RUST_LOG=trace`: no password, token, client secret, AppRole
/// secret or AWS secret key appears in anything the binary prints.
#[tokio::test]
async fn trace_logs_of_every_store_hold_no_secret() {
    let bao = OpenBao::shared();
    let moto = Moto::shared();
    let mut world = World::start(3).await;
    let prefix = format!("alation/trace-{}", unique_suffix());
    let policy = format!("rotator-{}", unique_suffix());
    bao.put_policy(&policy, &documented_policy("rotator")).await;
    let (role_id, secret_id) = bao.approle("approle", &policy, &[&policy], "1h").await;
    world.add_secret(&secret_id);
    let secret_id_file = write_secret_file(world.dir.path(), "secret-id", &secret_id);
    let aws_secret_key = format!("aws-secret-{}", unique_suffix());
    world.add_secret(&aws_secret_key);
    let (client_id, client_secret) = world
        .emulator
        .register_oauth_client(Duration::from_secs(3600));
    world.add_secret(&client_secret);

    let mut config = header(&world);
    config.push_str(&format!(
        "\n[stores.vault]\ntype = \"vault\"\naddress = \"{}\"\nmount = \"secret\"\n\
         auth = {{ method = \"approle\", role_id_env = \"E2E_VAULT_ROLE_ID\", secret_id_file = \"{}\" }}\n\
         \n[stores.aws]\ntype = \"aws_secrets_manager\"\nregion = \"{}\"\nendpoint_url = \"{}\"\n",
        bao.addr,
        secret_id_file.display(),
        rotator_testkit::peers::moto::REGION,
        moto.endpoint()
    ));
    let stores = ["local", "vault", "aws"];
    let key = |store: &str, what: &str, i: usize| match store {
        "local" => format!("{what}/int{i}"),
        _ => format!("{prefix}/{what}/int{i}"),
    };
    for (i, store) in stores.iter().enumerate() {
        config.push_str(&integration(
            i,
            world.users[i].id,
            (store, &key(store, "state", i)),
            &[(store, &key(store, "alation", i), false)],
        ));
    }
    let oauth_state = format!("{prefix}/state/svc");
    let oauth_access = format!("{prefix}/alation/svc");
    config.push_str(&format!(
        "\n[[integrations]]\nname = \"svc\"\noauth_client = {{ store = \"vault\", key = \"{oauth_state}\" }}\n\
         access_token = {{ store = \"aws\", key = \"{oauth_access}\" }}\n"
    ));
    world.write_config(&config);

    let mut env: Vec<(&str, String)> = moto.env();
    env.retain(|(name, _)| *name != "AWS_SECRET_ACCESS_KEY");
    env.extend([
        ("AWS_SECRET_ACCESS_KEY", aws_secret_key.clone()),
        ("E2E_VAULT_ROLE_ID", role_id.clone()),
        ("RUST_LOG", "trace".to_owned()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();

    let mut runs = Vec::new();
    for i in 0..stores.len() {
        let (name, username, password) = (
            format!("int{i}"),
            world.users[i].username.clone(),
            world.users[i].password.clone(),
        );
        let run = world
            .run_with_stdin(
                &[
                    "bootstrap",
                    &name,
                    "--username",
                    &username,
                    "--password-stdin",
                ],
                &env,
                &format!("{password}\n"),
            )
            .await;
        assert_eq!(run.code, 0, "bootstrap {name}: {}", run.all());
        runs.push(run);
    }
    let run = world
        .run_with_stdin(
            &[
                "bootstrap",
                "svc",
                "--oauth-client-id",
                &client_id,
                "--client-secret-stdin",
            ],
            &env,
            &format!("{client_secret}\n"),
        )
        .await;
    assert_eq!(run.code, 0, "bootstrap svc: {}", run.all());
    runs.push(run);
    for args in [&["run"][..], &["run", "--force"], &["status"]] {
        let run = world.run(args, &env).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.all());
        runs.push(run);
    }
    assert!(
        runs.iter().all(|r| r.stderr.contains("TRACE")),
        "every run logged at trace level"
    );
    assert!(
        outcomes(&runs[4]).len() == 3 && outcomes(&runs[4]).iter().all(|(_, o)| o == "rotated"),
        "{}",
        runs[4].stdout
    );

    let root = root_sink(bao, world.dir.path());
    let aws = AwsSink::with_sdk_config(
        rotator_sink_aws::Config {
            endpoint_url: Some(moto.endpoint().to_owned()),
            region: Some(rotator_testkit::peers::moto::REGION.to_owned()),
            ..rotator_sink_aws::Config::default()
        },
        &moto.sdk_config().await,
    )
    .await
    .unwrap();
    let vault_keys = vec![
        key("vault", "state", 1),
        key("vault", "alation", 1),
        oauth_state,
    ];
    let aws_keys = vec![
        key("aws", "state", 2),
        key("aws", "alation", 2),
        oauth_access.clone(),
    ];
    remember_stored(&mut world, root.as_ref(), &vault_keys).await;
    remember_stored(&mut world, &aws, &aws_keys).await;
    let delivered = aws
        .read_as::<AccessTokenDocument>(&oauth_access)
        .await
        .unwrap()
        .expect("the OAuth token is in AWS");
    assert_eq!(delivered.document.token_type.as_deref(), Some("Bearer"));
    // Every value that must stay secret, tokens of all three stores included.
    assert!(
        world.secrets.len() >= 3 + 4 + 6,
        "{} secrets",
        world.secrets.len()
    );
    for run in &runs {
        world.check_output(run).await;
    }
}
