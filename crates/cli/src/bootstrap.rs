//! `bootstrap` and `revoke`: the commands a person runs by hand.

use std::io::{BufRead, IsTerminal};

use anyhow::Context as _;
use rotator_alation::SecretString;
use rotator_core::Precondition;

use crate::app::{find, Setup, UsageError, EXIT_FAILED, EXIT_OK};
use crate::cli::BootstrapArgs;
use crate::config::Config;
use crate::output;

/// Reads one line of standard input as a secret; the line is never echoed or logged.
fn secret_from_stdin(what: &str) -> anyhow::Result<SecretString> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let value = line.trim_end_matches(['\r', '\n']).trim();
    if value.is_empty() {
        return Err(UsageError(anyhow::anyhow!("standard input held no {what}")).into());
    }
    Ok(SecretString::from(value.to_owned()))
}

fn password(args: &BootstrapArgs) -> anyhow::Result<SecretString> {
    if args.password_stdin {
        return secret_from_stdin("password");
    }
    if !std::io::stdin().is_terminal() {
        return Err(UsageError(anyhow::anyhow!(
            "no terminal to prompt for the password on; pass --password-stdin to read it from \
             standard input"
        ))
        .into());
    }
    let password = rpassword::prompt_password("Alation password: ")
        .context("reading the password from the terminal")?;
    Ok(SecretString::from(password))
}

/// `bootstrap NAME`.
pub async fn bootstrap(config: &Config, args: &BootstrapArgs) -> anyhow::Result<u8> {
    let setup = Setup::build(config).await?;
    let integration = find(&setup.integrations, &args.name)?;
    let engine = &setup.engine;
    // Read secrets before contacting anything, so a bad invocation fails fast.
    let pasted = if args.refresh_token_stdin {
        Some(secret_from_stdin("refresh token")?)
    } else {
        None
    };
    let password = match &args.username {
        Some(_) if pasted.is_none() => Some(password(args)?),
        _ => None,
    };
    // Refuse before creating anything at Alation, so a refusal leaves no orphan token.
    let precondition = match engine.bootstrap_precondition(integration, args.force).await {
        Ok(precondition) => precondition,
        Err(failure) => {
            eprintln!("error: {failure}");
            return Ok(EXIT_FAILED);
        }
    };
    let token = match (pasted, &args.username, password) {
        (Some(token), _, _) => engine
            .client()
            .validate_refresh_token(&token, integration.user_id)
            .await
            .context("validating the pasted refresh token with Alation"),
        (None, Some(username), Some(password)) => {
            // Alation keeps the replaced token alive until it expires or is revoked, and may
            // refuse a second live token of the same name: a replacement gets a dated name.
            let name = args
                .token_name
                .clone()
                .unwrap_or_else(|| match precondition {
                    Precondition::Absent => integration.name.clone(),
                    _ => format!(
                        "{}-{}",
                        integration.name,
                        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
                    ),
                });
            engine
                .client()
                .create_refresh_token(username, &password, &name)
                .await
                .context("creating a refresh token with Alation")
        }
        _ => unreachable!("clap requires --username or --refresh-token-stdin"),
    };
    let token = match token {
        Ok(token) => token,
        Err(error) => {
            eprintln!("error: {}", crate::app::error_chain(&error));
            return Ok(EXIT_FAILED);
        }
    };
    let expires = token.token_expires_at;
    match engine
        .store_bootstrap(integration, token, precondition)
        .await
    {
        Ok(version) => {
            println!(
                "{}: refresh token stored at {} (version {version}, expires {expires}); run \
                 `alation-rotator run --only {}` to deliver an access token",
                integration.name,
                integration.refresh_token.label(),
                integration.name
            );
            Ok(EXIT_OK)
        }
        Err(failure) => {
            eprintln!("error: {failure}");
            Ok(EXIT_FAILED)
        }
    }
}

/// `revoke NAME`.
pub async fn revoke(config: &Config, name: &str) -> anyhow::Result<u8> {
    let setup = Setup::build(config).await?;
    let integration = find(&setup.integrations, name)?;
    let report = setup.engine.revoke(integration).await;
    let failed = report.is_failure();
    output::print_run(std::slice::from_ref(&report));
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}
