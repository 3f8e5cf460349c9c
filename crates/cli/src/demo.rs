//! `demo`: the whole flow against an in-process Alation emulator and a temporary file store.
//! The emulator is linked only with the `demo` cargo feature (on by default); production
//! builds leave it out.

/// Without the `demo` feature.
#[cfg(not(feature = "demo"))]
pub async fn run(_app: &crate::App) -> anyhow::Result<u8> {
    Err(crate::setup::UsageError(anyhow::anyhow!(
        "this alation-rotator was built without the `demo` feature (production builds leave \
         the Alation emulator out); run `cargo run -- demo` from the source tree instead"
    ))
    .into())
}

#[cfg(feature = "demo")]
pub use with_emulator::run;

#[cfg(feature = "demo")]
mod with_emulator {
    use std::time::Duration;

    use alation_emulator::{Emulator, EmulatorConfig, User};
    use anyhow::Context as _;
    use rand::distr::{Alphanumeric, SampleString};
    use rotator_alation::SecretString;
    use rotator_core::engine::{BootstrapCredential, RunOptions};

    use crate::cli::OutputFormat;
    use crate::config::Config;
    use crate::output;
    use crate::setup::{Setup, EXIT_FAILED, EXIT_OK};
    use crate::App;

    const INTEGRATIONS: [(&str, i64, &str); 3] = [
        ("tableau-prod", 101, "tableau.svc"),
        ("dbt-nightly", 102, "dbt.svc"),
        ("airflow", 103, "airflow.svc"),
    ];

    /// Runs the demo; returns the exit code.
    pub async fn run(app: &App) -> anyhow::Result<u8> {
        let users: Vec<User> = INTEGRATIONS
            .iter()
            .map(|(_, id, username)| User {
                id: *id,
                username: (*username).to_owned(),
                password: Alphanumeric.sample_string(&mut rand::rng(), 24),
            })
            .collect();
        let emulator = Emulator::start(EmulatorConfig {
            users: users.clone(),
            access_lifetime: Duration::from_secs(24 * 3600),
            refresh_lifetime: Duration::from_secs(60 * 86400),
            ..EmulatorConfig::default()
        })
        .await
        .context("starting the Alation emulator")?;
        let workdir = tempfile::Builder::new()
            .prefix("alation-rotator-demo-")
            .tempdir()
            .context("creating a temporary directory")?;
        let store = workdir.path().join("store");
        let config_path = workdir.path().join("alation-rotator.toml");
        let mut text = format!(
            "[alation]\nbase_url = \"{}\"\n\n[policy]\naccess_renew_before = \"8h\"\n\
         refresh_renew_before = \"14d\"\n\n[escrow]\ndirectory = \"{}\"\n\n\
         [stores.local]\ntype = \"file\"\ndirectory = \"{}\"\n",
            emulator.base_url(),
            workdir.path().join("escrow").display(),
            store.display()
        );
        for (name, id, _) in INTEGRATIONS {
            text.push_str(&format!(
                "\n[[integrations]]\nname = \"{name}\"\nuser_id = {id}\n\
             refresh_token = {{ store = \"local\", key = \"state/{name}\" }}\n\
             access_token = [{{ store = \"local\", key = \"alation/{name}\" }}]\n"
            ));
        }
        std::fs::write(&config_path, &text).context("writing the demo configuration")?;
        let config = Config::load(&config_path, &app.registry)?;
        let setup = Setup::build(&config).await?;

        println!("== Alation emulator at {}", emulator.base_url());
        println!("== Configuration ({}):\n", config_path.display());
        println!("{text}");

        println!(
            "== 1. Bootstrap: store a first refresh token per integration (username + password)"
        );
        for (integration, user) in setup.integrations.iter().zip(&users) {
            let password = SecretString::from(user.password.clone());
            let precondition = setup
                .engine
                .bootstrap_precondition(integration, false)
                .await?;
            let token = setup
                .refresh_source
                .create(&user.username, &password, &integration.name)
                .await
                .with_context(|| format!("creating a refresh token for {}", integration.name))?;
            setup
                .engine
                .store_bootstrap(
                    integration,
                    BootstrapCredential::RefreshTokens {
                        primary: token,
                        standby: None,
                    },
                    precondition,
                )
                .await?;
            println!(
                "   {}: refresh token stored at {}",
                integration.name,
                integration.state.label()
            );
        }

        println!("\n== 2. First run: every integration gets an access token");
        let first = setup
            .engine
            .run(&setup.integrations, RunOptions::run())
            .await;
        output::print_run(&first);

        println!("\n== 3. Status (never shows a secret)");
        let status = setup.engine.status(&setup.integrations, true).await;
        output::print_status(&setup.integrations, &status, OutputFormat::Table)?;

        println!("\n== 4. The delivered tokens work against Alation's API");
        for integration in &setup.integrations {
            let location = &integration.access_token[0];
            let stored = location
                .sink
                .read(&location.key)
                .await?
                .context("the access token just written is missing")?;
            let token = stored
                .document
                .fields()
                .get("api_access_token")
                .and_then(|v| v.as_str())
                .unwrap_or_default();
            let accepted = emulator.access_token_is_active(token);
            println!(
                "   {}: {} -> {}",
                integration.name,
                location.label(),
                if accepted { "accepted" } else { "REJECTED" }
            );
        }

        println!("\n== 5. Second run: tokens are fresh, nothing is written");
        let second = setup
            .engine
            .run(&setup.integrations, RunOptions::run())
            .await;
        output::print_run(&second);

        println!(
            "\n== Consumers read files (0600, in 0700 directories) under {} \
         (the demo removes them when it ends)",
            store.join("alation").display()
        );
        println!(
            "   e.g. jq -r .api_access_token {}",
            store.join("alation/tableau-prod.json").display()
        );
        emulator.shutdown().await;
        let failed = first.iter().chain(&second).any(|r| r.is_failure());
        Ok(if failed { EXIT_FAILED } else { EXIT_OK })
    }
}
