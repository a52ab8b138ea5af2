//! The `strata` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use strata::{Config, init_logging, server};

/// Strata: a trace store. With no arguments, runs every role in one process with data under
/// ./data (OTLP on :4317 and :4318, HTTP API on :3200).
#[derive(Parser, Debug)]
#[command(name = "strata", version)]
struct Cli {
    /// YAML configuration file (see docs/configuration.md). Without it, every default applies.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => Config::load(path),
        None => Ok(Config::default()),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("strata: invalid configuration: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config.server.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("strata: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(server::run_all(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("strata: {e:#}");
            ExitCode::FAILURE
        }
    }
}
