//! The `strata` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use strata::search_cmd::{self, SearchArgs};
use strata::server::{self, Role};
use strata::stats_cmd::{self, StatsArgs};
use strata::trace_cmd::{self, Source};
use strata::{Config, init_logging, trace_view};
use strata_model::TenantId;

// mimalloc instead of the system allocator: the write path makes many small allocations (span
// names, attribute keys and values); see docs/decisions/0006-benchmarks.md for the figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Strata: a trace store. With no command, runs every role in one process with data under
/// ./data (OTLP on :4317 and :4318, HTTP API on :3200).
#[derive(Parser, Debug)]
#[command(name = "strata", version)]
struct Cli {
    /// YAML configuration file (see docs/configuration.md). Without it, every default applies.
    #[arg(long, short = 'c', value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run every role in one process (the default).
    All,
    /// Run only the ingester: OTLP receivers, WAL, block cutting and upload, and the internal
    /// API queriers ask for recent data (server.grpc_listen); /ready, /metrics and POST /flush
    /// on server.http_listen.
    Ingester,
    /// Run only the querier: Tempo's query API on server.http_listen, over the bucket and the
    /// ingesters of query.ingesters.
    Querier,
    /// Run only the compactor: merge blocks, apply retention, keep rollups (with /ready and
    /// /metrics on server.http_listen).
    Compactor,
    /// Print request, error and latency figures per operation from the rollups, which outlive
    /// the raw traces.
    Stats {
        /// Only this service (resource service.name).
        #[arg(long)]
        service: Option<String>,
        /// Only this operation (span name).
        #[arg(long)]
        operation: Option<String>,
        /// From this far back until now (e.g. 1h, 30d).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "24h")]
        since: std::time::Duration,
        #[command(flatten)]
        from: Target,
    },
    /// Print a trace as a tree (service, operation, duration; errors and slow spans marked).
    Trace {
        /// Trace ID in hex (up to 32 digits).
        id: String,
        #[command(flatten)]
        from: Target,
    },
    /// Search with TraceQL and print the matching traces, newest first.
    Search {
        /// The TraceQL query, e.g. '{ resource.service.name = "cart" && duration > 1s }'.
        query: String,
        /// Only traces from this far back until now (e.g. 15m, 1h, 2d); all data when absent.
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<std::time::Duration>,
        /// At most this many traces.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        from: Target,
    },
}

/// Where `trace` and `search` look, the tenant, and the output form.
#[derive(clap::Args, Debug)]
struct Target {
    /// HTTP API of a running Strata.
    #[arg(
        long,
        default_value = "http://localhost:3200",
        conflicts_with = "storage"
    )]
    url: String,
    /// Read blocks directly from this directory (a storage.local.path, e.g. ./data/blocks)
    /// instead of asking a server.
    #[arg(long, value_name = "DIR")]
    storage: Option<PathBuf>,
    /// Tenant (X-Scope-OrgID).
    #[arg(long, default_value = strata_model::DEFAULT_TENANT)]
    tenant: String,
    /// Print Tempo's JSON instead of the tree or table.
    #[arg(long)]
    json: bool,
}

impl Target {
    fn source(&self) -> Source {
        match &self.storage {
            Some(dir) => Source::Storage(dir.clone()),
            None => Source::Url(self.url.clone()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None | Some(Command::All) => run_server(cli.config.as_deref(), Role::All),
        Some(Command::Ingester) => run_server(cli.config.as_deref(), Role::Ingester),
        Some(Command::Querier) => run_server(cli.config.as_deref(), Role::Querier),
        Some(Command::Compactor) => run_server(cli.config.as_deref(), Role::Compactor),
        Some(Command::Stats {
            service,
            operation,
            since,
            from,
        }) => {
            init_logging("warn");
            let args = StatsArgs {
                service,
                name: operation,
                since,
            };
            block_on(print_stats(from.source(), from.tenant, args, from.json))
        }
        Some(Command::Trace { id, from }) => {
            init_logging("warn");
            block_on(print_trace(from.source(), from.tenant, id, from.json))
        }
        Some(Command::Search {
            query,
            since,
            limit,
            from,
        }) => {
            init_logging("warn");
            let args = SearchArgs {
                query,
                since,
                limit,
            };
            block_on(print_search(from.source(), from.tenant, args, from.json))
        }
    }
}

#[allow(clippy::print_stdout)] // The command's output is what it prints.
async fn print_search(
    source: Source,
    tenant: String,
    args: SearchArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let response = search_cmd::run(&source, &tenant, &args).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else {
        print!("{}", search_cmd::render(&response));
    }
    Ok(ExitCode::SUCCESS)
}

#[allow(clippy::print_stdout)] // The command's output is what it prints.
async fn print_stats(
    source: Source,
    tenant: String,
    args: StatsArgs,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let response = stats_cmd::run(&source, &tenant, &args).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&response)?);
    } else {
        print!("{}", stats_cmd::render(&response));
    }
    Ok(ExitCode::SUCCESS)
}

fn block_on(work: impl std::future::Future<Output = anyhow::Result<ExitCode>>) -> ExitCode {
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
    match runtime.block_on(work) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strata: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[allow(clippy::print_stdout)] // The command's output is what it prints.
async fn print_trace(
    source: Source,
    tenant: String,
    id: String,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let tenant = TenantId::new(&tenant).map_err(|e| anyhow::anyhow!("--tenant: {e}"))?;
    let fetched = trace_cmd::fetch(&source, &tenant, &id, json).await?;
    if let Some(reason) = &fetched.partial {
        eprintln!("strata: partial trace: {reason}");
    }
    match (json, fetched.json, fetched.spans.is_empty()) {
        (true, Some(text), _) => println!("{text}"),
        (false, _, false) => print!("{}", trace_view::render(&fetched.spans)),
        _ => {
            eprintln!("strata: trace {id} not found");
            return Ok(ExitCode::from(1));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_server(config: Option<&std::path::Path>, role: Role) -> ExitCode {
    let config = match config {
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
    block_on(async move { server::run(config, role).await.map(|()| ExitCode::SUCCESS) })
}
