//! `alation-emulator`: serves the Alation token API emulator until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use alation_emulator::{Emulator, EmulatorConfig, User};
use clap::Parser;

/// A faithful emulator of Alation's token API, for tests and demos.
///
/// The admin interface under /admin/ is unauthenticated: never expose it beyond a test machine.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 lets the OS pick one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// A user as ID:USERNAME:PASSWORD (repeatable).
    #[arg(long = "user", value_name = "ID:USERNAME:PASSWORD", value_parser = parse_user)]
    users: Vec<User>,
    /// Lifetime of new API access tokens.
    #[arg(long, default_value = "24h", value_parser = humantime::parse_duration)]
    access_lifetime: Duration,
    /// Lifetime of new refresh tokens.
    #[arg(long, default_value = "60d", value_parser = humantime::parse_duration)]
    refresh_lifetime: Duration,
    /// Behave like an Alation without regenRefreshToken (it answers 404).
    #[arg(long)]
    no_regen: bool,
    /// How `token_status` is spelled in answers (`ACTIVE` as real servers send it, `active`
    /// as the vendor's guide shows).
    #[arg(long, default_value = "ACTIVE")]
    token_status: String,
}

fn parse_user(text: &str) -> Result<User, String> {
    let mut parts = text.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(username), Some(password)) if !username.is_empty() => {
            let id = id
                .parse()
                .map_err(|_| format!("user id {id:?} is not an integer"))?;
            Ok(User::new(id, username, password))
        }
        _ => Err("expected ID:USERNAME:PASSWORD".to_owned()),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let emulator = Emulator::start_on(
        args.listen,
        EmulatorConfig {
            users: args.users,
            access_lifetime: args.access_lifetime,
            refresh_lifetime: args.refresh_lifetime,
            regen_supported: !args.no_regen,
            token_status: args.token_status,
        },
    )
    .await?;
    // Whoever started us reads this line to learn the port.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening on {}", emulator.base_url())?;
    stdout.flush()?;
    drop(stdout);
    shutdown_signal().await?;
    emulator.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn shutdown_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn shutdown_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
