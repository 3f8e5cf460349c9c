//! `alation-rotator`: keeps Alation API tokens fresh in the secret stores integrations read.

mod app;
mod bootstrap;
mod cli;
mod config;
mod demo;
mod logging;
mod output;
mod stores;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let default_level = match cli.command {
        cli::Command::Demo => "warn",
        _ => "info",
    };
    logging::init(&cli.global, default_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(app::EXIT_FAILED);
        }
    };
    match runtime.block_on(app::run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("error: {}", app::error_chain(&error));
            ExitCode::from(app::exit_code_of(&error))
        }
    }
}
