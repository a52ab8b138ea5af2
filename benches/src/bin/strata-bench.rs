//! `strata-bench`: runs Strata's benchmarks and prints the report; `all` also writes it to
//! `benches/results/<date>-<commit>.md`. `benches/run` builds what it needs and runs `all`.
//!
//! strata-bench all|ingest|lookup|search|kernels [--flag value ...]   (strata-bench --help)

#![allow(clippy::print_stdout)] // A benchmark program's output is its report.

use std::path::PathBuf;

use anyhow::{Context, bail};
use strata_bench::report::{Provenance, Report};
use strata_bench::suite::{Bench, Options};

// The allocator the `strata` binary uses, so the querier measured here (search, trace by ID)
// runs as it does in the server.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const HELP: &str = "\
strata-bench COMMAND [--flag value ...]

commands:
  all        every benchmark at the default sizes (about 10 minutes on 2 cores); the report is
             also written to benches/results/<date>-<commit>.md (or --out FILE)
  ingest     end-to-end OTLP/gRPC ingest into the release strata binary
  lookup     trace by ID over a store of many blocks
  search     TraceQL search against DuckDB on the same files
  compaction merging level-0 blocks and rewriting them into retention tier 1
  kernels    the criterion micro-benchmarks

flags (defaults in brackets):
  --ingest-spans N [1000000]   --ingest-repeats N [3] (0 skips full speed)   --streams N [8]   --batch N [512]
  --rss-rate SPANS/S [100000] (0 skips the paced run)   --rss-secs S [30]
  --lookup-blocks N [1000]     --lookup-traces-per-block N [100]
  --lookups N [1000]           --cold-lookups N [20]    --lookup-repeats N [3]   --range-secs S [30]
  --search-blocks N [40]       --search-traces-per-block N [1350]   --search-runs N [5]
  --compaction-blocks N [24]   --compaction-traces-per-block N [2000]   --compaction-repeats N [3]
  --only TEXT (search: only the queries containing TEXT; `:no-match` for those matching nothing)
  --store-dir DIR [target/bench-stores]   --strata PATH [target/release/strata]
  --python PATH [.venv/bin/python]        --kernels FILTER   --out FILE
";

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_else(|| "--help".into());
    let benches: Vec<Bench> = match command.as_str() {
        "all" => Bench::ALL.to_vec(),
        "ingest" => vec![Bench::Ingest],
        "lookup" => vec![Bench::Lookup],
        "search" => vec![Bench::Search],
        "compaction" => vec![Bench::Compaction],
        "kernels" => vec![Bench::Kernels],
        "-h" | "--help" | "help" => {
            print!("{HELP}");
            return Ok(());
        }
        other => bail!("unknown command {other:?}\n\n{HELP}"),
    };
    let mut options = Options::default();
    let mut out: Option<PathBuf> =
        (command == "all").then(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("results"));
    let mut explicit_out = false;
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        let n = || {
            value
                .parse::<usize>()
                .with_context(|| format!("{flag} {value}"))
        };
        let f = || {
            value
                .parse::<f64>()
                .with_context(|| format!("{flag} {value}"))
        };
        match flag.as_str() {
            "--ingest-spans" => options.ingest_spans = n()?,
            "--ingest-repeats" => options.ingest_repeats = n()?,
            "--streams" => options.streams = n()?,
            "--batch" => options.batch = n()?,
            "--rss-rate" => options.rss_rate = f()?,
            "--rss-secs" => options.rss_secs = f()?,
            "--lookup-blocks" => options.lookup_blocks = n()?,
            "--lookup-traces-per-block" => options.lookup_traces_per_block = n()?,
            "--lookups" => options.lookup.lookups = n()?,
            "--cold-lookups" => options.lookup.cold_lookups = n()?,
            "--lookup-repeats" => options.lookup.repeats = n()?.max(1),
            "--range-secs" => options.lookup.range_secs = n()? as u64,
            "--search-blocks" => options.search_blocks = n()?,
            "--search-traces-per-block" => options.search_traces_per_block = n()?,
            "--search-runs" => options.search_runs = n()?.max(1),
            "--compaction-blocks" => options.compaction_blocks = n()?.max(1),
            "--compaction-traces-per-block" => options.compaction_traces_per_block = n()?.max(1),
            "--compaction-repeats" => options.compaction_repeats = n()?.max(1),
            "--store-dir" => options.store_dir = value.into(),
            "--strata" => options.strata = value.into(),
            "--python" => options.python = value.into(),
            "--kernels" => options.kernel_filter = Some(value),
            "--only" => options.search_only = Some(value),
            "--out" => {
                out = Some(value.into());
                explicit_out = true;
            }
            _ => bail!("unknown flag {flag}\n\n{HELP}"),
        }
    }
    let command_line = std::iter::once("benches/run".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    let mut report = Report {
        provenance: Provenance::detect(command_line),
        sections: Vec::new(),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(strata_bench::suite::run(&benches, &options, &mut report))?;
    let text = report.markdown();
    print!("{text}");
    if let Some(mut path) = out {
        if !explicit_out {
            let p = &report.provenance;
            std::fs::create_dir_all(&path)?;
            path = path.join(format!("{}-{}.md", p.date, p.commit));
        }
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("strata-bench: report written to {}", path.display());
    }
    Ok(())
}
