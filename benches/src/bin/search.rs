//! TraceQL search benchmark: a store of about a million spans on local disk, written straight
//! through the block writer; each query of the evaluation suite run with Grafana's default limit
//! (20) and with no limit (every match), plus queries that match nothing. Reports the median and
//! worst latency of warm runs (footers cached, as in a running querier), the bytes and requests
//! one search reads from object storage, and the rows it examined.
//!
//! .venv/bin/python tests/python/search_eval.py --list > /tmp/queries.txt
//! cargo build --release -p strata-bench && target/release/search --queries /tmp/queries.txt
//!     [--blocks 40] [--traces-per-block 1350] [--runs 5] [--dir DIR (reuse a store)]

#![allow(clippy::print_stdout)] // A benchmark program's output is its report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, encode_block, upload_block};
use strata_model::TenantId;
use strata_query::{Querier, QueryConfig, QueryMetrics, SearchRequest, SearchResult};
use strata_storage::{LocalConfig, Storage, StorageConfig};

struct Args {
    blocks: usize,
    traces_per_block: usize,
    runs: usize,
    queries: Option<PathBuf>,
    dir: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        blocks: 40,
        traces_per_block: 1350,
        runs: 5,
        queries: None,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let text = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--blocks" => args.blocks = text.parse()?,
            "--traces-per-block" => args.traces_per_block = text.parse()?,
            "--runs" => args.runs = text.parse::<usize>()?.max(1),
            "--queries" => args.queries = Some(text.into()),
            "--dir" => args.dir = Some(text.into()),
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(args)
}

/// Queries that match nothing: one per way of ruling data out.
const NO_MATCH: &[&str] = &[
    r#"{ resource.service.name = "no-such-service" }"#,
    r#"{ name = "no-such-operation" }"#,
    "{ duration > 1h }",
    "{ span.http.response.status_code = 999 }",
    "{ traceDuration > 1h && status = error }",
];

struct Measured {
    median: Duration,
    worst: Duration,
    result: SearchResult,
}

async fn measure(
    querier: &Querier,
    tenant: &TenantId,
    q: &str,
    limit: usize,
    runs: usize,
) -> anyhow::Result<Measured> {
    let query = strata_traceql::parse(q).map_err(|e| anyhow::anyhow!("{q}: {e}"))?;
    query.validate().map_err(|e| anyhow::anyhow!("{q}: {e}"))?;
    let query = Arc::new(query);
    let request = || SearchRequest {
        query: Arc::clone(&query),
        limit,
        spans_per_spanset: 3,
        range: None,
        min_duration_nanos: None,
        max_duration_nanos: None,
    };
    // One run to warm the footer cache, as a running querier has it.
    let mut result = querier.search(tenant, request()).await?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        result = querier.search(tenant, request()).await?;
        times.push(started.elapsed());
    }
    times.sort_unstable();
    Ok(Measured {
        median: times[times.len() / 2],
        worst: times[times.len() - 1],
        result,
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

fn kb(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let queries: Vec<String> = match &args.queries {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        None => bail!(
            "--queries FILE is required (one TraceQL query per line; \
             `.venv/bin/python tests/python/search_eval.py --list` prints the suite's)"
        ),
    };
    let (dir, reuse) = match &args.dir {
        Some(dir) => (dir.clone(), dir.exists()),
        None => (
            std::env::temp_dir().join(format!("strata-search-bench-{}", std::process::id())),
            false,
        ),
    };
    let storage = Storage::from_config(&StorageConfig {
        local: LocalConfig { path: dir.clone() },
        ..Default::default()
    })?;
    let tenant = TenantId::new("bench")?;
    if !reuse {
        let mut workload = Workload::new(WorkloadConfig::default());
        let started = Instant::now();
        for _ in 0..args.blocks {
            let spans: Vec<_> = (0..args.traces_per_block)
                .flat_map(|_| {
                    strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0
                })
                .collect();
            let identity = BlockIdentity {
                tenant: tenant.clone(),
                block_id: uuid::Uuid::now_v7(),
                compaction_level: 0,
                retention_tier: 0,
            };
            let block = encode_block(identity, BlockConfig::default(), spans)?;
            upload_block(&storage, &block).await?;
        }
        println!("store written in {:.0} s", started.elapsed().as_secs_f64());
    }
    let querier = Querier::new(
        storage,
        QueryConfig::default(),
        None,
        QueryMetrics::default(),
    );
    querier.poll_blocklist().await?;
    let blocks = querier.blocklist().blocks(&tenant);
    let spans: u64 = blocks.iter().map(|b| b.span_count).sum();
    let traces: u64 = blocks.iter().map(|b| b.trace_count).sum();
    let bytes: u64 = blocks.iter().map(|b| b.data_size).sum();
    println!(
        "store: {} blocks, {traces} traces, {spans} spans, {:.1} MB of Parquet at {}; {} warm runs per query\n",
        blocks.len(),
        bytes as f64 / 1e6,
        dir.display(),
        args.runs
    );
    println!(
        "| query | limit 20: ms p50 / max | KB read | requests | traces | all matches: ms p50 / max | KB read | rows examined | traces |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for q in queries
        .iter()
        .map(String::as_str)
        .chain(NO_MATCH.iter().copied())
    {
        let top = measure(&querier, &tenant, q, 20, args.runs).await?;
        let all = measure(&querier, &tenant, q, 1_000_000, args.runs).await?;
        println!(
            "| `{}` | {} / {} | {} | {} | {} | {} / {} | {} | {} | {} |",
            q.replace('|', "\\|"),
            ms(top.median),
            ms(top.worst),
            kb(top.result.metrics.inspected_bytes),
            top.result.metrics.storage_reads,
            top.result.traces.len(),
            ms(all.median),
            ms(all.worst),
            kb(all.result.metrics.inspected_bytes),
            all.result.metrics.inspected_spans,
            all.result.traces.len(),
        );
    }
    if args.dir.is_none() {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}
