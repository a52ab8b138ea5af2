//! Trace-by-ID benchmark: a store of many blocks on local disk, written straight through the
//! block writer; random hits and misses, with and without a time range. Reports latency
//! percentiles and object-store requests and bytes per lookup, with the caches warm (the steady
//! state of a running querier) and cold (a querier just started).
//!
//! cargo build --release -p strata-bench && target/release/lookup [--blocks 200] [--traces-per-block 300]
//!     [--lookups 1000] [--range-secs 30] [--page-max-rows 20000] [--bloom-fp 0.01]

#![allow(clippy::print_stdout)] // A benchmark program's output is its report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::DateTime;
use rand::{RngExt, SeedableRng};
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, encode_block, upload_block};
use strata_model::{TenantId, TraceId};
use strata_query::{Querier, QueryConfig, QueryMetrics, TimeRange};
use strata_storage::{LocalConfig, Storage, StorageConfig};

struct Args {
    blocks: usize,
    traces_per_block: usize,
    lookups: usize,
    range_secs: usize,
    block: BlockConfig,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        blocks: 200,
        traces_per_block: 300,
        lookups: 1000,
        range_secs: 30,
        block: BlockConfig::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let text = it.next().with_context(|| format!("{flag} needs a value"))?;
        if flag == "--bloom-fp" {
            args.block.bloom_false_positive_rate = text.parse()?;
            continue;
        }
        let value: usize = text.parse()?;
        match flag.as_str() {
            "--page-max-rows" => args.block.page_max_rows = value,
            "--blocks" => args.blocks = value,
            "--traces-per-block" => args.traces_per_block = value,
            "--lookups" => args.lookups = value,
            "--range-secs" => args.range_secs = value,
            _ => bail!("unknown flag {flag}"),
        }
    }
    Ok(args)
}

/// One kind of lookup: the IDs to find and the time range to give with each.
struct Case {
    name: &'static str,
    queries: Vec<(TraceId, Option<TimeRange>)>,
}

#[derive(Default)]
struct Sample {
    latency: Vec<Duration>,
    reads: Vec<u64>,
    bytes: Vec<u64>,
    found: usize,
}

fn pct<T: Copy + Ord>(values: &[T], p: f64) -> T {
    let mut v = values.to_vec();
    v.sort_unstable();
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dir = std::env::temp_dir().join(format!("strata-lookup-bench-{}", std::process::id()));
    let storage = Storage::from_config(&StorageConfig {
        local: LocalConfig { path: dir.clone() },
        ..Default::default()
    })?;
    let tenant = TenantId::new("bench")?;
    let mut workload = Workload::new(WorkloadConfig::default());
    let mut hits: Vec<(TraceId, u64)> = Vec::new();
    let (mut spans_total, mut bytes_total) = (0u64, 0u64);
    let started = Instant::now();
    for _ in 0..args.blocks {
        let mut spans = Vec::new();
        for _ in 0..args.traces_per_block {
            let trace = workload.next_trace();
            let request = trace.into_request();
            let (converted, _) = strata_model::otlp::spans_from_request(request);
            if let Some(first) = converted.first() {
                let start = converted
                    .iter()
                    .map(|s| s.start_unix_nano)
                    .min()
                    .unwrap_or(0);
                hits.push((first.trace_id, start));
            }
            spans.extend(converted);
        }
        let identity = BlockIdentity {
            tenant: tenant.clone(),
            block_id: uuid::Uuid::now_v7(),
            compaction_level: 0,
            retention_tier: 0,
        };
        let block = encode_block(identity, args.block.clone(), spans)?;
        spans_total += block.meta.span_count;
        bytes_total += block.meta.data_size + block.meta.bloom_size;
        upload_block(&storage, &block).await?;
    }
    println!(
        "store: {} blocks, {} traces, {} spans, {:.1} MB on local disk (written in {:.0} s)\n",
        args.blocks,
        hits.len(),
        spans_total,
        bytes_total as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    let first_start = hits.iter().map(|h| h.1).min().unwrap_or(0);
    let last_start = hits.iter().map(|h| h.1).max().unwrap_or(0);
    let second = |nanos: u64| {
        DateTime::from_timestamp((nanos / 1_000_000_000) as i64, 0).unwrap_or_default()
    };
    // A range around the trace, in whole seconds, as Grafana sends with its time shift. The
    // workload packs 100 traces a second, so ±30 s covers about 20 blocks of 300 traces.
    let half = args.range_secs as u64 * 1_000_000_000;
    let around = |start: u64| TimeRange {
        start: second(start.saturating_sub(half)),
        end: second(start + half),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let picks: Vec<(TraceId, u64)> = (0..args.lookups)
        .map(|_| hits[rng.random_range(0..hits.len())])
        .collect();
    let absent: Vec<(TraceId, u64)> = (0..args.lookups)
        .map(|_| {
            (
                TraceId(rng.random()),
                rng.random_range(first_start..=last_start),
            )
        })
        .collect();
    let cases = [
        Case {
            name: "hit, no time range",
            queries: picks.iter().map(|(id, _)| (*id, None)).collect(),
        },
        Case {
            name: "hit, ± range",
            queries: picks
                .iter()
                .map(|(id, s)| (*id, Some(around(*s))))
                .collect(),
        },
        Case {
            name: "miss, no time range",
            queries: absent.iter().map(|(id, _)| (*id, None)).collect(),
        },
        Case {
            name: "miss, ± range",
            queries: absent
                .iter()
                .map(|(id, s)| (*id, Some(around(*s))))
                .collect(),
        },
    ];

    println!(
        "| lookup | caches | p50 ms | p99 ms | reads/lookup (mean, p99) | KB read/lookup (mean) | found |"
    );
    println!("|---|---|---|---|---|---|---|");
    for case in &cases {
        // Cold: a new querier for each of the first lookups measured.
        let cold = run(
            &storage,
            &tenant,
            &case.queries[..case.queries.len().min(50)],
            true,
        )
        .await?;
        report(case.name, "cold", &cold);
        let warm = run(&storage, &tenant, &case.queries, false).await?;
        report(case.name, "warm", &warm);
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

async fn run(
    storage: &Storage,
    tenant: &TenantId,
    queries: &[(TraceId, Option<TimeRange>)],
    cold: bool,
) -> anyhow::Result<Sample> {
    let new_querier = || async {
        let q = Arc::new(Querier::new(
            storage.clone(),
            QueryConfig::default(),
            None,
            QueryMetrics::default(),
        ));
        q.poll_blocklist().await.map(|()| q)
    };
    let mut querier = new_querier().await?;
    if !cold {
        // Warm the caches with one pass over the same kind of lookups.
        for (id, range) in queries {
            querier.find_trace(tenant, id, *range).await?;
        }
    }
    let mut sample = Sample::default();
    for (id, range) in queries {
        if cold {
            querier = new_querier().await?;
        }
        let started = Instant::now();
        let found = querier.find_trace(tenant, id, *range).await?;
        sample.latency.push(started.elapsed());
        sample.reads.push(found.storage_reads);
        sample.bytes.push(found.storage_bytes);
        sample.found += usize::from(!found.spans.is_empty());
    }
    Ok(sample)
}

fn report(name: &str, caches: &str, s: &Sample) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let n = s.latency.len() as f64;
    println!(
        "| {name} | {caches} | {:.2} | {:.2} | {:.1}, {} | {:.0} | {}/{} |",
        ms(pct(&s.latency, 0.5)),
        ms(pct(&s.latency, 0.99)),
        s.reads.iter().sum::<u64>() as f64 / n,
        pct(&s.reads, 0.99),
        s.bytes.iter().sum::<u64>() as f64 / n / 1024.0,
        s.found,
        s.latency.len()
    );
}
