//! Trace by ID: random hits and misses over a store of many blocks, with and without a time
//! range, with the querier's caches warm (a running querier) and cold (one just started).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use rand::{RngExt, SeedableRng};
use strata_model::TraceId;
use strata_query::{Querier, QueryConfig, QueryMetrics, TimeRange};

use crate::report::{Samples, Section, Table, Target, quantile_ms, spread};
use crate::suite::store::Store;

/// What to measure.
#[derive(Clone, Debug)]
pub struct LookupArgs {
    /// Lookups per warm repeat of each case.
    pub lookups: usize,
    /// Lookups per cold repeat of each case (each with a new querier).
    pub cold_lookups: usize,
    /// The time range given is the trace's start ± this many seconds.
    pub range_secs: u64,
    /// Repeats of each case.
    pub repeats: usize,
}

impl Default for LookupArgs {
    fn default() -> Self {
        Self {
            lookups: 1000,
            cold_lookups: 20,
            range_secs: 30,
            repeats: 3,
        }
    }
}

/// One kind of lookup: the IDs to find and the time range to give with each.
struct Case {
    name: &'static str,
    hit: bool,
    ranged: bool,
    queries: Vec<(TraceId, Option<TimeRange>)>,
}

#[derive(Default)]
struct Figures {
    p50: Samples,
    p99: Samples,
    reads: Samples,
    kb: Samples,
    found: usize,
    asked: usize,
}

/// Runs every case and reports them as a section.
pub async fn run(store: &Store, args: &LookupArgs) -> anyhow::Result<Section> {
    anyhow::ensure!(!store.traces.is_empty(), "the store holds no traces");
    let first = store.traces.iter().map(|t| t.1).min().unwrap_or(0);
    let last = store.traces.iter().map(|t| t.1).max().unwrap_or(0);
    let second = |nanos: u64| {
        DateTime::from_timestamp((nanos / 1_000_000_000) as i64, 0).unwrap_or_default()
    };
    // A range around the trace in whole seconds, as Grafana sends with its time shift.
    let half = args.range_secs * 1_000_000_000;
    let around = |start: u64| TimeRange {
        start: second(start.saturating_sub(half)),
        end: second(start + half),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let picks: Vec<(TraceId, u64)> = (0..args.lookups)
        .map(|_| store.traces[rng.random_range(0..store.traces.len())])
        .collect();
    let absent: Vec<(TraceId, u64)> = (0..args.lookups)
        .map(|_| (TraceId(rng.random()), rng.random_range(first..=last)))
        .collect();
    let case = |name, hit, ranged, ids: &[(TraceId, u64)]| Case {
        name,
        hit,
        ranged,
        queries: ids
            .iter()
            .map(|(id, s)| (*id, ranged.then(|| around(*s))))
            .collect(),
    };
    let cases = [
        case("hit, no time range", true, false, &picks),
        case("hit, ± range", true, true, &picks),
        case("miss, no time range", false, false, &absent),
        case("miss, ± range", false, true, &absent),
    ];

    let mut table = Table::new(&[
        "lookup",
        "caches",
        "p50 ms",
        "p99 ms",
        "reads / lookup",
        "KB / lookup",
        "found",
        "target (p99, median)",
    ]);
    for case in &cases {
        for cold in [false, true] {
            let mut f = Figures::default();
            for _ in 0..args.repeats {
                let n = if cold {
                    args.cold_lookups
                } else {
                    args.lookups
                };
                measure(
                    store,
                    &case.queries[..n.min(case.queries.len())],
                    cold,
                    &mut f,
                )
                .await?;
            }
            let expected = if case.hit { f.asked } else { 0 };
            anyhow::ensure!(
                f.found == expected,
                "{}: found {} of {} asked (expected {expected})",
                case.name,
                f.found,
                f.asked
            );
            let target = if case.hit && !case.ranged && !cold {
                Target::AtMost(20.0).verdict(f.p99.median())
            } else {
                String::new()
            };
            table.row(vec![
                case.name.into(),
                if cold { "cold" } else { "warm" }.into(),
                spread(&f.p50),
                spread(&f.p99),
                spread(&f.reads),
                spread(&f.kb),
                format!("{}/{}", f.found, f.asked),
                target,
            ]);
        }
    }
    Ok(Section {
        title: "Trace by ID".into(),
        setup: format!(
            "{} blocks, {} traces, {} spans, {:.1} MB on local disk{}. Warm: {} random lookups per \
             repeat after one warming pass; cold: {} lookups per repeat, each by a new querier \
             (blocklist loaded, caches empty). Ranged lookups give the trace's start ± {} s. \
             {} repeats. Reads and KB are object-store requests and bytes, mean per lookup.",
            store.blocks,
            store.traces.len(),
            store.spans,
            store.bytes as f64 / 1e6,
            if store.write_secs > 0.0 {
                format!(" (written in {:.0} s)", store.write_secs)
            } else {
                String::new()
            },
            args.lookups,
            args.cold_lookups,
            args.range_secs,
            args.repeats
        ),
        tables: vec![table],
        notes: Vec::new(),
    })
}

async fn new_querier(store: &Store) -> anyhow::Result<Arc<Querier>> {
    let q = Arc::new(Querier::new(
        store.storage.clone(),
        QueryConfig::default(),
        strata_query::RecentSource::None,
        QueryMetrics::default(),
    ));
    q.poll_blocklist().await?;
    Ok(q)
}

async fn measure(
    store: &Store,
    queries: &[(TraceId, Option<TimeRange>)],
    cold: bool,
    f: &mut Figures,
) -> anyhow::Result<()> {
    let mut querier = new_querier(store).await?;
    if !cold {
        for (id, range) in queries {
            querier.find_trace(&store.tenant, id, *range).await?;
        }
    }
    let mut latency: Vec<Duration> = Vec::with_capacity(queries.len());
    let (mut reads, mut bytes) = (0u64, 0u64);
    for (id, range) in queries {
        if cold {
            querier = new_querier(store).await?;
        }
        let started = Instant::now();
        let found = querier.find_trace(&store.tenant, id, *range).await?;
        latency.push(started.elapsed());
        reads += found.storage_reads;
        bytes += found.storage_bytes;
        f.found += usize::from(!found.spans.is_empty());
    }
    let n = queries.len().max(1) as f64;
    f.asked += queries.len();
    f.p50.push(quantile_ms(&latency, 0.5));
    f.p99.push(quantile_ms(&latency, 0.99));
    f.reads.push(reads as f64 / n);
    f.kb.push(bytes as f64 / n / 1024.0);
    Ok(())
}
