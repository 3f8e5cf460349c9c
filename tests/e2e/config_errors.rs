//! Bad configurations exit 2, name the key and contact nothing.

use alation_emulator::endpoints::TOKEN_ENDPOINTS as ENDPOINTS;

use crate::harness::World;

/// Runs `run` over `mutate(standard config)` and checks exit 2, the expected words, no
/// contact with Alation and nothing written.
async fn refused(mutate: impl Fn(String) -> String, expected: &[&str]) -> String {
    let mut world = World::start(2).await;
    world.write_config(&mutate(world.config_text("")));
    let run = world.run(&["run"], &[]).await;
    assert_eq!(run.code, 2, "{}", run.all());
    for word in expected {
        assert!(
            run.stderr.contains(word),
            "expected {word:?} in: {}",
            run.stderr
        );
    }
    assert!(
        run.stderr
            .contains(&world.config_path().display().to_string()),
        "the message names the file: {}",
        run.stderr
    );
    let calls: usize = ENDPOINTS.iter().map(|e| world.emulator.calls(e)).sum();
    assert_eq!(calls, 0, "a configuration error must contact nothing");
    assert!(
        !world.store_dir().exists(),
        "a configuration error must write nothing"
    );
    let check = world.run(&["check-config"], &[]).await;
    assert_eq!(check.code, 2, "check-config agrees: {}", check.all());
    run.stderr
}

#[tokio::test]
async fn unknown_key_is_named() {
    refused(
        |c| c.replace("timeout = \"5s\"", "timeout = \"5s\"\ntimout = \"5s\""),
        &["unknown field `timout`", "alation.timout", "line 4"],
    )
    .await;
}

#[tokio::test]
async fn unknown_store_name_is_named_with_the_known_ones() {
    refused(
        |c| {
            c.replace(
                "store = \"local\", key = \"state/int1\"",
                "store = \"vaultt\", key = \"state/int1\"",
            )
        },
        &[
            "integrations[1].refresh_token.store",
            "unknown store \"vaultt\"",
            "local",
        ],
    )
    .await;
}

#[tokio::test]
async fn duplicate_integration_name_is_refused() {
    refused(
        |c| c.replace("name = \"int1\"", "name = \"int0\""),
        &[
            "integrations[1].name",
            "duplicate integration name \"int0\"",
        ],
    )
    .await;
}

#[tokio::test]
async fn an_inline_secret_is_refused_without_echoing_it() {
    let stderr = refused(
        |c| {
            c.replace(
                "timeout = \"5s\"",
                "timeout = \"5s\"\npassword = \"hunter2-inline-secret\"",
            )
        },
        &[
            "alation.password",
            "secrets never stand in the configuration file",
            "password_env",
        ],
    )
    .await;
    assert!(!stderr.contains("hunter2-inline-secret"), "{stderr}");
}

#[tokio::test]
async fn an_unknown_key_holding_a_secret_is_not_echoed() {
    let stderr = refused(
        |c| {
            c.replace(
                "timeout = \"5s\"",
                "timeout = \"5s\"\npasswd = \"hunter3-inline-secret\"",
            )
        },
        &["alation.passwd", "unknown field"],
    )
    .await;
    assert!(!stderr.contains("hunter3-inline-secret"), "{stderr}");
}

#[tokio::test]
async fn an_unparsable_duration_names_the_key_and_the_expectation() {
    refused(
        |c| c.replace("timeout = \"5s\"", "timeout = \"5 parsecs\""),
        &["alation.timeout", "line 3"],
    )
    .await;
    refused(
        |c| c.replace("[policy]\n", "[policy]\naccess_renew_before = \"soon\"\n"),
        &[
            "policy.access_renew_before",
            "expected a duration like \"8h\"",
        ],
    )
    .await;
}

#[tokio::test]
async fn the_refresh_location_cannot_be_an_access_destination() {
    refused(
        |c| c.replace("key = \"alation/int0\"", "key = \"state/int0\""),
        &[
            "integrations[0].access_token[0]",
            "consumers must never be able to read the refresh token",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_missing_config_file_says_how_to_point_at_one() {
    let dir = tempfile::tempdir().unwrap();
    let run = crate::harness::run_plain(&["run"], Some(&dir.path().join("absent.toml")));
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("absent.toml"), "{}", run.stderr);
    assert!(
        run.stderr.contains("ALATION_ROTATOR_CONFIG"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn an_invalid_aws_secret_name_is_refused_when_the_config_is_checked() {
    refused(
        |c| {
            c.replace(
                "[stores.local]",
                "[stores.aws]\ntype = \"aws_secrets_manager\"\nregion = \"eu-west-1\"\n\n[stores.local]",
            )
            .replace(
                "access_token = { store = \"local\", key = \"alation/int1\" }",
                "access_token = { store = \"aws\", key = \"alation/int1 prod\" }",
            )
        },
        &[
            "integrations[1].access_token[0].key",
            "may only contain ASCII letters, digits and /_+=.@-",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_bad_vault_setting_names_the_store_and_the_key() {
    refused(
        |c| {
            c.replace(
                "[stores.local]",
                "[stores.vault]\ntype = \"vault\"\naddress = \"https://vault.example.com:8200\"\n\
                 kv_version = 3\nauth = { method = \"token\", token_env = \"VAULT_TOKEN\" }\n\n\
                 [stores.local]",
            )
        },
        &["stores.vault", "kv_version", "expected 1 or 2"],
    )
    .await;
}

#[tokio::test]
async fn an_inline_vault_token_is_refused_without_echoing_it() {
    let stderr = refused(
        |c| {
            c.replace(
                "[stores.local]",
                "[stores.vault]\ntype = \"vault\"\naddress = \"https://vault.example.com:8200\"\n\
                 auth = { method = \"token\", token = \"hvs.inline-vault-secret\" }\n\n\
                 [stores.local]",
            )
        },
        &[
            "stores.vault.auth.token",
            "secrets never stand in the configuration file",
            "token_env",
        ],
    )
    .await;
    assert!(!stderr.contains("hvs.inline-vault-secret"), "{stderr}");
}

#[tokio::test]
async fn a_state_location_without_compare_and_set_needs_an_explicit_opt_in() {
    let kv1 = |c: String| {
        c.replace(
            "[stores.local]",
            "[stores.kv1]\ntype = \"vault\"\naddress = \"https://vault.example.com:8200\"\n\
             kv_version = 1\nauth = { method = \"token\", token_env = \"VAULT_TOKEN\" }\n\n\
             [stores.local]",
        )
        .replace(
            "refresh_token = { store = \"local\", key = \"state/int1\" }",
            "refresh_token = { store = \"kv1\", key = \"state/int1\" }",
        )
    };
    refused(
        kv1,
        &[
            "integrations[1]",
            "cannot compare-and-set",
            "allow_without_cas = true",
        ],
    )
    .await;

    let mut world = World::start(2).await;
    world.write_config(&kv1(world.config_text("")).replace(
        "key = \"state/int1\" }",
        "key = \"state/int1\", allow_without_cas = true }",
    ));
    let check = world.run(&["check-config"], &[]).await;
    assert_eq!(check.code, 0, "{}", check.all());
}

#[tokio::test]
async fn check_config_warns_about_regenerating_far_too_early() {
    let mut world = World::start(1).await;
    world.write_config(&world.config_text("refresh_renew_before = \"50%\""));
    let check = world.run(&["check-config"], &[]).await;
    assert_eq!(check.code, 0, "{}", check.all());
    assert!(check.stderr.contains("warning:"), "{}", check.stderr);
    assert!(
        check
            .stderr
            .contains("at least half a refresh token's lifetime"),
        "{}",
        check.stderr
    );
    world.write_config(&world.config_text("refresh_renew_before = \"14d\""));
    let quiet = world.run(&["check-config"], &[]).await;
    assert!(!quiet.stderr.contains("warning:"), "{}", quiet.stderr);
}
