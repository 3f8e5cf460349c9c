//! `bootstrap` and `revoke`: the commands a person runs by hand.

use std::io::{BufRead, IsTerminal};

use anyhow::Context as _;
use rotator_alation::SecretString;
use rotator_core::engine::{BootstrapCredential, Integration};
use rotator_core::{
    Credential, CredentialKind, Precondition, RefreshGrant, SourceError, TokenSource,
};
use tracing::warn;

use crate::cli::BootstrapArgs;
use crate::config::Config;
use crate::output;
use crate::setup::{self, Setup, UsageError, EXIT_FAILED, EXIT_OK};
use crate::signals::Stop;

/// Reads `count` lines of standard input as secrets; they are never echoed or logged.
fn secrets_from_stdin(what: &str, count: usize) -> anyhow::Result<Vec<SecretString>> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut secrets = Vec::with_capacity(count);
    for n in 1..=count {
        let line = lines
            .next()
            .transpose()
            .with_context(|| format!("reading the {what} from standard input"))?
            .unwrap_or_default();
        let value = line.trim();
        if value.is_empty() {
            return Err(UsageError(anyhow::anyhow!(if count == 1 {
                format!("standard input held no {what}")
            } else {
                format!(
                    "standard input held {} {what}(s) but this integration keeps a standby: \
                     paste {count}, one per line",
                    n - 1
                )
            }))
            .into());
        }
        secrets.push(SecretString::from(value.to_owned()));
    }
    Ok(secrets)
}

fn password(args: &BootstrapArgs) -> anyhow::Result<SecretString> {
    if args.password_stdin {
        return Ok(secrets_from_stdin("password", 1)?.remove(0));
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

/// A pasted refresh token, checked with the source and kept exactly as pasted.
async fn pasted(
    source: &dyn TokenSource,
    token: SecretString,
    user_id: i64,
) -> Result<RefreshGrant, SourceError> {
    let status = source
        .check(&Credential::RefreshToken {
            refresh_token: token.clone(),
            user_id,
        })
        .await?;
    let now = jiff::Timestamp::now();
    Ok(RefreshGrant::new(
        token,
        status.user_id.unwrap_or(user_id),
        status.name.unwrap_or_default(),
        status.created_at.unwrap_or(now),
        status.expires_at.unwrap_or(now),
    ))
}

/// `bootstrap NAME`.
pub async fn bootstrap(config: &Config, args: &BootstrapArgs) -> anyhow::Result<u8> {
    let setup = Setup::build(config).await?;
    let integration = setup::find(&setup.integrations, &args.name)?;
    let oauth = integration.credential_kind() == CredentialKind::OAuthClient;
    if oauth != args.oauth_client_id.is_some() {
        return Err(UsageError(anyhow::anyhow!(if oauth {
            format!(
                "{} keeps OAuth client credentials (oauth_client): bootstrap it with \
                 --oauth-client-id ID --client-secret-stdin",
                integration.name
            )
        } else {
            format!(
                "{} keeps a refresh token (refresh_token): bootstrap it with --username or \
                 --refresh-token-stdin",
                integration.name
            )
        }))
        .into());
    }
    if let Some(client_id) = &args.oauth_client_id {
        return bootstrap_oauth(&setup, integration, args, client_id).await;
    }
    let user_id = integration.user_id.unwrap_or_default();
    let tokens = if integration.policy.standby { 2 } else { 1 };
    // Read secrets before contacting anything, so a bad invocation fails fast.
    let pasted_tokens = if args.refresh_token_stdin {
        Some(secrets_from_stdin("refresh token", tokens)?)
    } else {
        None
    };
    let password = match &args.username {
        Some(_) if pasted_tokens.is_none() => Some(password(args)?),
        _ => None,
    };
    let stop = Stop::watch(None);
    // Refuse before creating anything at Alation, so a refusal leaves no orphan token.
    let precondition = match setup
        .engine
        .bootstrap_precondition(integration, args.force)
        .await
    {
        Ok(precondition) => precondition,
        Err(failure) => {
            eprintln!("error: {failure}");
            return Ok(EXIT_FAILED);
        }
    };
    if stop.token.is_cancelled() {
        eprintln!("error: stopped by a signal before anything was created");
        return Ok(EXIT_FAILED);
    }
    let source = setup.refresh_source.as_ref();
    let mut grants: Vec<RefreshGrant> = match (pasted_tokens, &args.username, password) {
        (Some(tokens), _, _) => {
            let mut grants = Vec::new();
            for token in tokens {
                match pasted(source, token, user_id).await {
                    Ok(grant) => grants.push(grant),
                    Err(error) => {
                        return fail(
                            &anyhow::Error::new(error)
                                .context("validating the pasted refresh token with Alation"),
                        )
                    }
                }
            }
            grants
        }
        (None, Some(username), Some(password)) => {
            // Alation may refuse a second live token of the same name, and keeps a replaced
            // token alive until it expires: a replacement gets a dated name.
            let base = args
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
            let mut grants = Vec::new();
            for name in [base.clone(), format!("{base}-standby")]
                .into_iter()
                .take(tokens)
            {
                match source.create(username, &password, &name).await {
                    Ok(grant) => grants.push(grant),
                    Err(error) => {
                        if !grants.is_empty() {
                            warn!("the first refresh token was created but the standby was not; none is stored, and the first stays valid in Alation until it expires or an admin revokes it");
                        }
                        return fail(
                            &anyhow::Error::new(error)
                                .context("creating a refresh token with Alation"),
                        );
                    }
                }
            }
            grants
        }
        _ => unreachable!("clap requires --username, --refresh-token-stdin or --oauth-client-id"),
    };
    let primary = grants.remove(0);
    let expires = primary.expires_at;
    let credential = BootstrapCredential::RefreshTokens {
        primary,
        standby: grants.pop(),
    };
    match setup
        .engine
        .store_bootstrap(integration, credential, precondition)
        .await
    {
        Ok(version) => {
            println!(
                "{}: refresh token{} stored at {} (version {version}, expires {expires}); run \
                 `alation-rotator run --only {}` to deliver an access token",
                integration.name,
                if tokens == 2 {
                    "s (primary and standby)"
                } else {
                    ""
                },
                integration.state.label(),
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

/// `bootstrap NAME --oauth-client-id ID --client-secret-stdin`: the pair is checked by asking
/// Alation for a token, then stored.
async fn bootstrap_oauth(
    setup: &Setup,
    integration: &Integration,
    args: &BootstrapArgs,
    client_id: &str,
) -> anyhow::Result<u8> {
    let client_secret = secrets_from_stdin("client secret", 1)?.remove(0);
    let precondition = match setup
        .engine
        .bootstrap_precondition(integration, args.force)
        .await
    {
        Ok(precondition) => precondition,
        Err(failure) => {
            eprintln!("error: {failure}");
            return Ok(EXIT_FAILED);
        }
    };
    let credential = Credential::OAuthClient {
        client_id: client_id.to_owned(),
        client_secret: client_secret.clone(),
    };
    if let Err(error) = integration.source.check(&credential).await {
        return fail(&anyhow::Error::new(error).context(format!(
            "asking Alation for a token with client {client_id} (nothing was stored)"
        )));
    }
    match setup
        .engine
        .store_bootstrap(
            integration,
            BootstrapCredential::OAuthClient {
                client_id: client_id.to_owned(),
                client_secret,
            },
            precondition,
        )
        .await
    {
        Ok(version) => {
            println!(
                "{}: OAuth client {client_id} stored at {} (version {version}); run \
                 `alation-rotator run --only {}` to deliver an access token",
                integration.name,
                integration.state.label(),
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

fn fail(error: &anyhow::Error) -> anyhow::Result<u8> {
    eprintln!("error: {}", setup::error_chain(error));
    Ok(EXIT_FAILED)
}

/// `revoke NAME`.
pub async fn revoke(config: &Config, name: &str) -> anyhow::Result<u8> {
    let setup = Setup::build(config).await?;
    let integration: &Integration = setup::find(&setup.integrations, name)?;
    let stop = Stop::watch(None);
    if stop.token.is_cancelled() {
        return Ok(EXIT_FAILED);
    }
    // Once started, a revocation is finished (revoke, issue, deliver): stopping halfway would
    // leave consumers with revoked tokens.
    let report = setup.engine.revoke(integration).await;
    let failed = report.is_failure();
    output::print_run(std::slice::from_ref(&report));
    Ok(if failed { EXIT_FAILED } else { EXIT_OK })
}
