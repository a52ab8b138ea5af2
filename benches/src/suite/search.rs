//! TraceQL search against DuckDB on the very same Parquet files, in the same run: the search
//! evaluation suite's queries (each also written as SQL from the block format's documentation,
//! in `tests/python/search_eval.py`) plus queries that match nothing. DuckDB answers each query
//! first; Strata then answers it with every match (the same question DuckDB answers) and with
//! Grafana's default limit of 20. The answers must agree trace for trace.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use strata_query::{Querier, QueryConfig, QueryMetrics, SearchRequest, SearchResult};

use crate::report::{Samples, Section, Table, Target, num, spread};
use crate::suite::store::Store;

/// What to measure.
#[derive(Clone, Debug)]
pub struct SearchArgs {
    /// Timed runs of each query by each engine (after one warm-up run).
    pub runs: usize,
    /// The Python with DuckDB (the test suite's `.venv`).
    pub python: std::path::PathBuf,
    /// Only the queries containing this text.
    pub only: Option<String>,
}

/// One query as DuckDB answered it.
struct Reference {
    traceql: String,
    expected: BTreeSet<String>,
    duckdb_ms: Samples,
}

/// A query's figures.
struct Measured {
    times: Samples,
    result: SearchResult,
}

/// Grafana's default search limit.
const GRAFANA_LIMIT: usize = 20;

/// Runs the suite over `store` and reports it as a section.
pub async fn run(store: &Store, args: &SearchArgs) -> anyhow::Result<Section> {
    let references = duckdb(&args.python, &store.dir, args.runs, args.only.as_deref())?;
    let querier = Querier::new(
        store.storage.clone(),
        QueryConfig::default(),
        strata_query::RecentSource::None,
        QueryMetrics::default(),
    );
    querier.poll_blocklist().await?;
    let mut table = Table::new(&[
        "query",
        "DuckDB ms",
        "Strata ms, every match",
        "Strata ÷ DuckDB",
        "KB read",
        "traces",
        "Strata ms, limit 20",
        "KB read, limit 20",
    ]);
    let (mut slower, mut ratios) = (Vec::new(), Vec::new());
    let mut no_match_worst: f64 = 0.0;
    for r in &references {
        let all = measure(&querier, store, &r.traceql, usize::MAX, args.runs).await?;
        let got: BTreeSet<String> = all
            .result
            .traces
            .iter()
            .map(|t| t.trace_id.to_hex())
            .collect();
        if got != r.expected {
            let missing = r.expected.difference(&got).count();
            let extra = got.difference(&r.expected).count();
            anyhow::bail!(
                "{}: Strata and DuckDB disagree ({} expected, {} returned; {missing} missing, {extra} unexpected)",
                r.traceql,
                r.expected.len(),
                got.len()
            );
        }
        let top = measure(&querier, store, &r.traceql, GRAFANA_LIMIT, args.runs).await?;
        let ratio = all.times.median() / r.duckdb_ms.median();
        ratios.push(ratio);
        if ratio > 1.0 {
            slower.push(format!("`{}` ({ratio:.2}×)", r.traceql));
        }
        if r.expected.is_empty() {
            no_match_worst = no_match_worst.max(all.times.max());
        }
        table.row(vec![
            format!("`{}`", r.traceql),
            spread(&r.duckdb_ms),
            spread(&all.times),
            format!("{ratio:.2}"),
            num(all.result.metrics.inspected_bytes as f64 / 1024.0),
            all.result.traces.len().to_string(),
            spread(&top.times),
            num(top.result.metrics.inspected_bytes as f64 / 1024.0),
        ]);
    }
    ratios.sort_by(f64::total_cmp);
    let median_ratio = ratios
        .get(ratios.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN);
    let mut notes = vec![format!(
        "All {} answers agree with DuckDB's. Strata ÷ DuckDB (medians, every match): median {:.2}, \
         best {:.2}, worst {:.2}. Target: every query no slower than DuckDB — {} of {} are slower{}.",
        references.len(),
        median_ratio,
        ratios.first().copied().unwrap_or(f64::NAN),
        ratios.last().copied().unwrap_or(f64::NAN),
        slower.len(),
        references.len(),
        if slower.is_empty() {
            " ✓".to_owned()
        } else {
            " ✗".to_owned()
        }
    )];
    notes.push(format!(
        "Queries that match nothing, slowest run: {} ms over {} spans (target at 10M spans: {}).",
        num(no_match_worst),
        store.spans,
        Target::AtMost(100.0).verdict(no_match_worst)
    ));
    Ok(Section {
        title: "Search (TraceQL) against DuckDB".into(),
        setup: format!(
            "{} blocks, {} traces, {} spans, {:.1} MB of Parquet on local disk. Each query: one \
             warm-up run, then {} timed runs per engine (footers cached by both: Strata's querier \
             cache, DuckDB's `parquet_metadata_cache`). DuckDB reads every `data.parquet` through \
             one view and computes the full answer; \"every match\" is the same question for \
             Strata. KB read is what Strata fetched from object storage in one run.",
            store.blocks,
            store.traces.len(),
            store.spans,
            store.bytes as f64 / 1e6,
            args.runs
        ),
        tables: vec![table],
        notes,
    })
}

/// DuckDB's answers and times, from `tests/python/search_eval.py --time`.
fn duckdb(
    python: &Path,
    dir: &Path,
    runs: usize,
    only: Option<&str>,
) -> anyhow::Result<Vec<Reference>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/search_eval.py");
    let output = Command::new(python)
        .arg(&script)
        .args(["--time", &runs.to_string()])
        .arg(dir)
        .env("SEARCH_EVAL_ONLY", only.unwrap_or(""))
        .output()
        .with_context(|| format!("running {} (tests/run creates .venv)", python.display()))?;
    anyhow::ensure!(
        output.status.success(),
        "{} failed: {}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let cases: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    cases
        .as_array()
        .context("search_eval.py printed no list")?
        .iter()
        .map(|case| {
            let traceql = case["q"].as_str().context("q")?.to_owned();
            let expected = case["expected"]
                .as_object()
                .context("expected")?
                .keys()
                .cloned()
                .collect();
            let duckdb_ms = Samples(
                case["times_ms"]
                    .as_array()
                    .context("times_ms")?
                    .iter()
                    .filter_map(serde_json::Value::as_f64)
                    .collect(),
            );
            Ok(Reference {
                traceql,
                expected,
                duckdb_ms,
            })
        })
        .collect()
}

async fn measure(
    querier: &Querier,
    store: &Store,
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
    let mut result = querier.search(&store.tenant, request()).await?;
    let mut times = Samples::default();
    for _ in 0..runs {
        let started = Instant::now();
        result = querier.search(&store.tenant, request()).await?;
        times.push(ms(started.elapsed()));
    }
    Ok(Measured { times, result })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
