//! The benchmark suite behind `strata-bench`: each benchmark measures over repeats and returns a
//! [`Section`](crate::report::Section) of the report; [`run`] runs the ones asked for.

pub mod compaction;
pub mod ingest;
pub mod kernels;
pub mod lookup;
pub mod search;
pub mod store;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use strata_block::BlockConfig;

use crate::report::{FIGURE_HEADER, Report, Samples, Section, Table, Target};
use ingest::{EncodedWorkload, IngestArgs, IngestRun};
use store::{Store, StoreSpec};

/// A number unique within this process, for temporary directory names.
pub(crate) fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Which benchmarks to run, and at what size.
#[derive(Clone, Debug)]
pub struct Options {
    /// Ingest at full speed: spans per run.
    pub ingest_spans: usize,
    /// Ingest at full speed: runs.
    pub ingest_repeats: usize,
    /// Concurrent gRPC streams.
    pub streams: usize,
    /// Spans per request.
    pub batch: usize,
    /// The paced run for memory: spans per second (0 skips it).
    pub rss_rate: f64,
    /// The paced run: seconds.
    pub rss_secs: f64,
    /// Trace by ID: blocks in the store.
    pub lookup_blocks: usize,
    /// Trace by ID: traces per block.
    pub lookup_traces_per_block: usize,
    /// Trace by ID: the lookups.
    pub lookup: lookup::LookupArgs,
    /// Search: blocks in the store.
    pub search_blocks: usize,
    /// Search: traces per block.
    pub search_traces_per_block: usize,
    /// Search: timed runs per query and engine.
    pub search_runs: usize,
    /// Where the read benchmarks keep their stores (reused while their spec is unchanged).
    pub store_dir: PathBuf,
    /// The `strata` binary for ingest.
    pub strata: PathBuf,
    /// The Python with DuckDB.
    pub python: PathBuf,
    /// Search: only the queries containing this text.
    pub search_only: Option<String>,
    /// Criterion filter for the kernels.
    pub kernel_filter: Option<String>,
    /// Compaction: level-0 blocks in the store.
    pub compaction_blocks: usize,
    /// Compaction: traces per block.
    pub compaction_traces_per_block: usize,
    /// Compaction: repeats, each over a fresh copy of the store.
    pub compaction_repeats: usize,
}

impl Default for Options {
    /// The default sizes: the whole suite in about ten minutes on two cores.
    fn default() -> Self {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        Self {
            ingest_spans: 1_000_000,
            ingest_repeats: 3,
            streams: 8,
            batch: 512,
            rss_rate: 100_000.0,
            rss_secs: 30.0,
            lookup_blocks: 1000,
            lookup_traces_per_block: 100,
            lookup: lookup::LookupArgs::default(),
            search_blocks: 40,
            search_traces_per_block: 1350,
            search_runs: 5,
            store_dir: root.join("target/bench-stores"),
            strata: root.join("target/release/strata"),
            python: root.join(".venv/bin/python"),
            search_only: None,
            kernel_filter: None,
            compaction_blocks: 24,
            compaction_traces_per_block: 2_000,
            compaction_repeats: 3,
        }
    }
}

/// A benchmark of the suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bench {
    /// End-to-end ingest over OTLP/gRPC.
    Ingest,
    /// Trace by ID over many blocks.
    Lookup,
    /// TraceQL search against DuckDB.
    Search,
    /// Merging and tier rewrites.
    Compaction,
    /// Criterion micro-benchmarks.
    Kernels,
}

impl Bench {
    /// Every benchmark, in report order.
    pub const ALL: [Bench; 5] = [
        Bench::Ingest,
        Bench::Lookup,
        Bench::Search,
        Bench::Compaction,
        Bench::Kernels,
    ];
}

/// Runs `benches` and returns each one's section, logging progress to stderr.
pub async fn run(benches: &[Bench], options: &Options, report: &mut Report) -> anyhow::Result<()> {
    for bench in benches {
        let started = std::time::Instant::now();
        progress(&format!("{bench:?}: running"));
        let section = match bench {
            Bench::Ingest => ingest_section(options).await?,
            Bench::Lookup => {
                let store = open_store(
                    options,
                    "lookup",
                    options.lookup_blocks,
                    options.lookup_traces_per_block,
                )
                .await?;
                lookup::run(&store, &options.lookup).await?
            }
            Bench::Search => {
                let store = open_store(
                    options,
                    "search",
                    options.search_blocks,
                    options.search_traces_per_block,
                )
                .await?;
                let args = search::SearchArgs {
                    runs: options.search_runs,
                    python: options.python.clone(),
                    only: options.search_only.clone(),
                };
                search::run(&store, &args).await?
            }
            Bench::Compaction => {
                let store = open_store(
                    options,
                    "compaction",
                    options.compaction_blocks,
                    options.compaction_traces_per_block,
                )
                .await?;
                compaction::run(&store, options.compaction_repeats).await?
            }
            Bench::Kernels => kernels::run(options.kernel_filter.as_deref())?,
        };
        progress(&format!(
            "{bench:?}: done in {:.0} s\n{}",
            started.elapsed().as_secs_f64(),
            section.markdown()
        ));
        report.sections.push(section);
    }
    Ok(())
}

fn progress(line: &str) {
    eprintln!("strata-bench: {line}");
}

async fn open_store(
    options: &Options,
    name: &str,
    blocks: usize,
    traces_per_block: usize,
) -> anyhow::Result<Store> {
    let spec = StoreSpec {
        blocks,
        traces_per_block,
        block: BlockConfig::default(),
    };
    let dir = options
        .store_dir
        .join(format!("{name}-{blocks}x{traces_per_block}"));
    progress(&format!(
        "store {} ({blocks} blocks × {traces_per_block} traces)",
        dir.display()
    ));
    Store::open_or_write(&dir, &spec).await
}

async fn ingest_section(options: &Options) -> anyhow::Result<Section> {
    let mut args = IngestArgs::new(options.strata.clone());
    args.streams = options.streams;
    args.batch = options.batch;
    args.spans = options.ingest_spans;
    let workload = EncodedWorkload::new(
        if options.ingest_repeats > 0 {
            args.spans
        } else {
            0
        },
        args.batch,
    );
    let mut runs = Vec::new();
    for i in 0..options.ingest_repeats {
        progress(&format!(
            "ingest run {} of {}",
            i + 1,
            options.ingest_repeats
        ));
        runs.push(ingest::run(&args, &workload).await?);
    }
    drop(workload);
    let pick = |f: fn(&IngestRun) -> f64| Samples(runs.iter().map(f).collect());
    let mut table = Table::new(FIGURE_HEADER);
    table.figure(
        "ingest rate",
        "spans/s",
        &pick(|r| r.spans_per_sec),
        Some(Target::AtLeast(150_000.0)),
    );
    table.figure(
        "ingest bandwidth",
        "MB/s OTLP",
        &pick(|r| r.mb_per_sec),
        None,
    );
    table.figure("ack latency p50", "ms", &pick(|r| r.ack_p50_ms), None);
    table.figure("ack latency p99", "ms", &pick(|r| r.ack_p99_ms), None);
    table.figure("WAL fsyncs", "count", &pick(|r| r.fsyncs), None);
    table.figure(
        "requests per fsync",
        "",
        &pick(|r| r.requests_per_fsync),
        None,
    );
    table.figure("server peak RSS", "MiB", &pick(|r| r.peak_rss_mib), None);
    table.figure(
        "shutdown flush",
        "s",
        &pick(|r| r.shutdown_flush_secs),
        None,
    );
    table.figure(
        "OTLP received",
        "bytes/span",
        &pick(|r| r.otlp_bytes_per_span),
        None,
    );
    table.figure(
        "at rest (all objects)",
        "bytes/span",
        &pick(|r| r.bytes_per_span_at_rest),
        Some(Target::AtMost(40.0)),
    );
    table.figure("OTLP ÷ at rest", "", &pick(|r| r.otlp_over_rest), None);
    let mut tables = if runs.is_empty() {
        Vec::new()
    } else {
        vec![table]
    };
    let mut setup = format!(
        "Full speed: {} runs of {} spans in requests of {} spans, pre-encoded, over {} gRPC \
         streams on loopback to `strata` with default settings (WAL fsync'd), then SIGTERM \
         (flush) and the blocks measured.",
        runs.len(),
        args.spans,
        args.batch,
        args.streams
    );
    if options.rss_rate > 0.0 {
        let mut paced = args.clone();
        paced.rate = Some(options.rss_rate);
        paced.spans = (options.rss_rate * options.rss_secs) as usize;
        progress(&format!(
            "paced ingest: {} spans at {} spans/s",
            paced.spans, options.rss_rate
        ));
        let workload = EncodedWorkload::new(paced.spans, paced.batch);
        let run = ingest::run(&paced, &workload).await?;
        let one = |v: f64| Samples(vec![v]);
        let mut table = Table::new(FIGURE_HEADER);
        table.figure("achieved rate", "spans/s", &one(run.spans_per_sec), None);
        table.figure("ack latency p50", "ms", &one(run.ack_p50_ms), None);
        table.figure("ack latency p99", "ms", &one(run.ack_p99_ms), None);
        table.figure(
            "server peak RSS",
            "MiB",
            &one(run.peak_rss_mib),
            Some(Target::AtMost(1024.0)),
        );
        table.figure(
            "at rest (all objects)",
            "bytes/span",
            &one(run.bytes_per_span_at_rest),
            None,
        );
        tables.push(table);
        setup.push_str(&format!(
            " Paced (second table): {} spans sent at {} spans/s ({} s), one run, for the \
             server's memory at a steady rate.",
            paced.spans,
            crate::report::num(options.rss_rate),
            options.rss_secs
        ));
    }
    Ok(Section {
        title: "Ingest".into(),
        setup,
        tables,
        notes: Vec::new(),
    })
}
