//! TraceQL search over blocks and the ingester's recent data.
//!
//! A query is planned once ([`plan`]): the columns it needs, the rows statistics can rule out,
//! its regexes. Blocks are then searched newest first, several at a time: each reads only the
//! planned columns of the rows its row-group statistics and page index cannot rule out, marks per
//! row which `{ }` filters hold, and runs the pipeline per trace over just those spans
//! ([`spanset`]). Results are ordered newest first (by trace start, then trace ID), so the same
//! query over the same data gives the same answer; the search stops once `limit` traces are found
//! and no block left could hold a newer one.

mod plan;
mod row;
mod spanset;

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use futures::StreamExt;
use strata_block::schema::col;
use strata_block::{BlockMeta, Prune, PruneOp, PruneValue, ReadStats, scan_block, traces_to_batch};
use strata_model::{Span, SpanId, TenantId, TraceId};
use strata_traceql::Query;

use crate::error::{Error, Result};
use crate::trace_by_id::{Querier, TimeRange};
use plan::Plan;
use row::{BatchView, Evaluator, Value};
use spanset::{Cand, TraceEval};

/// A search.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The TraceQL query, parsed and validated.
    pub query: Arc<Query>,
    /// At most this many traces.
    pub limit: usize,
    /// At most this many spans returned per spanset (0: all).
    pub spans_per_spanset: usize,
    /// Only traces overlapping this range; all data when `None`.
    pub range: Option<TimeRange>,
    /// Only traces at least this long (nanoseconds).
    pub min_duration_nanos: Option<u64>,
    /// Only traces at most this long (nanoseconds).
    pub max_duration_nanos: Option<u64>,
}

/// A value returned with a span or a spanset.
#[derive(Debug, Clone, PartialEq)]
pub enum OutValue {
    /// A string (also status and kind, as their TraceQL names).
    Str(String),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A duration, nanoseconds.
    Duration(i64),
}

impl OutValue {
    fn from_value(v: Value<'_>) -> Option<Self> {
        Some(match v {
            Value::Nil => return None,
            Value::Bool(b) => OutValue::Bool(b),
            Value::Int(i) => OutValue::Int(i),
            Value::Float(f) => OutValue::Float(f),
            Value::Duration(d) => OutValue::Duration(d),
            Value::Str(s) => OutValue::Str(s.into_owned()),
            Value::Status(s) => OutValue::Str(format!("{s:?}").to_lowercase()),
            Value::Kind(k) => OutValue::Str(format!("{k:?}").to_lowercase()),
        })
    }
}

/// A span of a matching spanset.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanHit {
    /// Span ID.
    pub span_id: SpanId,
    /// Span name.
    pub name: String,
    /// Start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// Duration, nanoseconds.
    pub duration_nanos: i64,
    /// The attributes the query refers to or selects, by bare name.
    pub attributes: Vec<(String, OutValue)>,
}

/// One spanset of a matching trace.
#[derive(Debug, Clone, PartialEq)]
pub struct SpansetHit {
    /// Up to `spans_per_spanset` of its spans, in start order.
    pub spans: Vec<SpanHit>,
    /// How many spans it has.
    pub matched: usize,
    /// Values that formed it (`by(...)`).
    pub attributes: Vec<(String, OutValue)>,
}

/// A matching trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceHit {
    /// Trace ID.
    pub trace_id: TraceId,
    /// `service.name` of the root span, when the root was found.
    pub root_service_name: Option<String>,
    /// Name of the root span, when found.
    pub root_span_name: Option<String>,
    /// Earliest span start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// From the earliest start to the latest end, nanoseconds.
    pub duration_nanos: u64,
    /// The spansets that matched.
    pub spansets: Vec<SpansetHit>,
}

/// What a search read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchMetrics {
    /// Traces whose rows were examined.
    pub inspected_traces: u64,
    /// Spans (rows) examined.
    pub inspected_spans: u64,
    /// Bytes fetched from object storage.
    pub inspected_bytes: u64,
    /// Object-storage requests.
    pub storage_reads: u64,
    /// Blocks of the tenant overlapping the time range.
    pub total_blocks: u64,
    /// Blocks searched.
    pub searched_blocks: u64,
    /// Blocks that could not be read (their traces are missing from the answer).
    pub failed_blocks: u64,
    /// Bytes of the blocks searched.
    pub total_block_bytes: u64,
}

/// The answer to a search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchResult {
    /// Matching traces, newest first.
    pub traces: Vec<TraceHit>,
    /// What it cost.
    pub metrics: SearchMetrics,
}

impl Querier {
    /// Runs a TraceQL search for `tenant`.
    pub async fn search(&self, tenant: &TenantId, request: SearchRequest) -> Result<SearchResult> {
        let plan = Arc::new(plan::plan(Arc::clone(&request.query))?);
        let request = Arc::new(request);
        self.metrics.searches.inc();
        let stats = Arc::new(ReadStats::default());
        let mut found: HashMap<TraceId, TraceHit> = HashMap::new();
        let mut metrics = SearchMetrics::default();

        // Recent data first: it is the newest.
        if let Some(recent) = &self.recent {
            let mut traces: HashMap<TraceId, Vec<Span>> = HashMap::new();
            for spans in recent.recent_traces(tenant) {
                if let Some(first) = spans.first() {
                    traces.entry(first.trace_id).or_default().extend(spans);
                }
            }
            if !traces.is_empty() {
                let (plan, request) = (Arc::clone(&plan), Arc::clone(&request));
                let outcome = tokio::task::spawn_blocking(move || {
                    let batch =
                        traces_to_batch(traces.values().map(Vec::as_slice)).map_err(Error::from)?;
                    Ok::<_, Error>(search_batches(&plan, &request, &[batch]))
                })
                .await
                .map_err(|e| Error::BadRequest(format!("search task failed: {e}")))??;
                merge_into(&mut found, &mut metrics, outcome);
            }
        }

        let mut blocks: Vec<Arc<BlockMeta>> = self
            .tenant_blocks(tenant)
            .into_iter()
            .filter(|b| {
                request
                    .range
                    .is_none_or(|r| b.start_time <= r.end && r.start <= b.end_time)
            })
            .collect();
        blocks.sort_by_key(|b| std::cmp::Reverse((b.end_time, b.block_id)));
        metrics.total_blocks = blocks.len() as u64;
        let ends: Vec<u64> = blocks
            .iter()
            .map(|b| {
                u64::try_from(b.end_time.timestamp_nanos_opt().unwrap_or(i64::MAX)).unwrap_or(0)
            })
            .collect();
        let prune = Arc::new(block_prune(&plan, &request));
        let mut results = futures::stream::iter(blocks.into_iter().enumerate())
            .map(|(i, meta)| {
                let (plan, request, prune, stats) = (
                    Arc::clone(&plan),
                    Arc::clone(&request),
                    Arc::clone(&prune),
                    Arc::clone(&stats),
                );
                async move {
                    let outcome = self
                        .search_one_block(&meta, plan, request, &prune, &stats)
                        .await;
                    (i, meta, outcome)
                }
            })
            .buffered(self.config.concurrency.max(1));
        while let Some((i, meta, outcome)) = results.next().await {
            metrics.searched_blocks += 1;
            metrics.total_block_bytes += meta.data_size;
            match outcome {
                Ok(outcome) => merge_into(&mut found, &mut metrics, outcome),
                Err(e) if e.is_not_found() => {
                    tracing::debug!(block = %meta.block_id, "block vanished during a search");
                }
                Err(e) => {
                    metrics.failed_blocks += 1;
                    self.metrics.block_errors.inc();
                    tracing::warn!(%tenant, block = %meta.block_id, error = %e, "could not read a block during a search");
                }
            }
            // Stop once the newest `limit` traces cannot change: every block left ends before
            // the oldest of them starts.
            if found.len() >= request.limit
                && let Some(&next_end) = ends.get(i + 1)
            {
                let mut starts: Vec<u64> = found.values().map(|t| t.start_unix_nano).collect();
                starts.sort_unstable_by(|a, b| b.cmp(a));
                if starts
                    .get(request.limit - 1)
                    .is_some_and(|&oldest| next_end < oldest)
                {
                    break;
                }
            }
        }
        drop(results);
        metrics.inspected_bytes = stats.bytes();
        metrics.storage_reads = stats.reads();
        let mut traces: Vec<TraceHit> = found.into_values().collect();
        traces.sort_by_key(|t| std::cmp::Reverse((t.start_unix_nano, t.trace_id)));
        traces.truncate(request.limit);
        for t in &mut traces {
            for set in &mut t.spansets {
                set.spans.sort_by_key(|s| (s.start_unix_nano, s.span_id));
                if request.spans_per_spanset > 0 {
                    set.spans.truncate(request.spans_per_spanset);
                }
            }
        }
        Ok(SearchResult { traces, metrics })
    }

    async fn search_one_block(
        &self,
        meta: &BlockMeta,
        plan: Arc<Plan>,
        request: Arc<SearchRequest>,
        prune: &Prune,
        stats: &Arc<ReadStats>,
    ) -> Result<BatchOutcome> {
        let file = self.block_file(meta, stats).await?;
        let (batches, counts) =
            scan_block(&self.storage, meta, &file, &plan.columns, prune, stats).await?;
        let mut outcome =
            tokio::task::spawn_blocking(move || search_batches(&plan, &request, &batches))
                .await
                .map_err(|e| Error::BadRequest(format!("search task failed: {e}")))?;
        outcome.inspected_spans = counts.rows_read;
        Ok(outcome)
    }
}

/// What statistics may rule out for this search: rows no filter needs, and traces outside the
/// time range or duration bounds.
fn block_prune(plan: &Plan, request: &SearchRequest) -> Prune {
    let mut parts = vec![plan.prune.clone()];
    if let Some(r) = request.range
        && let Some(end) = r.end.timestamp_nanos_opt()
    {
        parts.push(Prune::Column {
            column: col::TRACE_START.into(),
            op: PruneOp::Lte,
            value: PruneValue::Int(end),
        });
    }
    if let Some(min) = request
        .min_duration_nanos
        .and_then(|d| i64::try_from(d).ok())
    {
        parts.push(Prune::Column {
            column: col::TRACE_DURATION.into(),
            op: PruneOp::Gte,
            value: PruneValue::Int(min),
        });
    }
    if let Some(max) = request
        .max_duration_nanos
        .and_then(|d| i64::try_from(d).ok())
    {
        parts.push(Prune::Column {
            column: col::TRACE_DURATION.into(),
            op: PruneOp::Lte,
            value: PruneValue::Int(max),
        });
    }
    parts.retain(|p| *p != Prune::Any);
    match parts.len() {
        0 => Prune::Any,
        1 => parts.remove(0),
        _ => Prune::And(parts),
    }
}

/// Hits of some batches.
#[derive(Debug, Default)]
struct BatchOutcome {
    hits: Vec<TraceHit>,
    inspected_traces: u64,
    inspected_spans: u64,
}

fn merge_into(
    found: &mut HashMap<TraceId, TraceHit>,
    metrics: &mut SearchMetrics,
    o: BatchOutcome,
) {
    metrics.inspected_traces += o.inspected_traces;
    metrics.inspected_spans += o.inspected_spans;
    for hit in o.hits {
        match found.get_mut(&hit.trace_id) {
            None => {
                found.insert(hit.trace_id, hit);
            }
            Some(have) => merge_hit(have, hit),
        }
    }
}

/// Combines two parts of one trace found in different places.
fn merge_hit(have: &mut TraceHit, other: TraceHit) {
    let end = (have.start_unix_nano.saturating_add(have.duration_nanos))
        .max(other.start_unix_nano.saturating_add(other.duration_nanos));
    have.start_unix_nano = have.start_unix_nano.min(other.start_unix_nano);
    have.duration_nanos = end.saturating_sub(have.start_unix_nano);
    if have.root_service_name.is_none() {
        have.root_service_name = other.root_service_name;
    }
    if have.root_span_name.is_none() {
        have.root_span_name = other.root_span_name;
    }
    for set in other.spansets {
        match have
            .spansets
            .iter_mut()
            .find(|s| s.attributes == set.attributes)
        {
            None => have.spansets.push(set),
            Some(mine) => {
                let before = mine.spans.len();
                for span in set.spans {
                    if !mine.spans.iter().any(|s| s.span_id == span.span_id) {
                        mine.spans.push(span);
                    }
                }
                let duplicates = set.matched.saturating_sub(mine.spans.len() - before);
                mine.matched += set.matched - duplicates.min(set.matched);
                mine.matched = mine.matched.max(mine.spans.len());
            }
        }
    }
}

/// Runs the query over batches of block-schema rows (each holding whole traces).
fn search_batches(plan: &Plan, request: &SearchRequest, batches: &[RecordBatch]) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    let filters = plan.filter_exprs();
    let outputs = plan.output_exprs();
    for batch in batches {
        let Some(view) = BatchView::new(batch) else {
            tracing::warn!("a block batch lacks columns a search needs; skipped");
            continue;
        };
        outcome.inspected_spans += view.rows() as u64;
        let eval = Evaluator {
            view: &view,
            regexes: &plan.regexes,
        };
        let mut start = 0;
        let rows = view.rows();
        while start < rows {
            let id = view.trace_id.value(start);
            let mut end = start + 1;
            while end < rows && view.trace_id.value(end) == id {
                end += 1;
            }
            outcome.inspected_traces += 1;
            if let Some(hit) = search_trace(plan, request, &eval, &filters, &outputs, start..end) {
                outcome.hits.push(hit);
            }
            start = end;
        }
    }
    outcome
}

fn search_trace<'a>(
    plan: &'a Plan,
    request: &SearchRequest,
    eval: &Evaluator<'_, 'a>,
    filters: &[&'a strata_traceql::SpansetFilter],
    outputs: &[(&'a str, &'a strata_traceql::FieldExpr)],
    rows: std::ops::Range<usize>,
) -> Option<TraceHit> {
    let view = eval.view;
    let first = rows.start;
    let trace_start = view.trace_start.value(first);
    let trace_duration = view.trace_duration.value(first);
    if let Some(r) = request.range {
        let start = u64::try_from(r.start.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0);
        let end = u64::try_from(r.end.timestamp_nanos_opt().unwrap_or(i64::MAX)).unwrap_or(0);
        if trace_start > end || trace_start.saturating_add(trace_duration) < start {
            return None;
        }
    }
    if request
        .min_duration_nanos
        .is_some_and(|d| trace_duration < d)
        || request
            .max_duration_nanos
            .is_some_and(|d| trace_duration > d)
    {
        return None;
    }
    let mut cands = Vec::new();
    for row in rows {
        let mut mask = 0u64;
        for (bit, f) in filters.iter().enumerate() {
            if eval.truth(row, &f.expr) {
                mask |= 1 << bit;
            }
        }
        if mask != 0 {
            cands.push(Cand {
                row,
                mask,
                left: view.ns_left.value(row),
                right: view.ns_right.value(row),
                parent: view.ns_parent.value(row),
            });
        }
    }
    if cands.is_empty() && !filters.is_empty() {
        return None;
    }
    let groups = TraceEval {
        plan,
        eval,
        cands: &cands,
    }
    .run(plan.pipeline());
    if groups.is_empty() {
        return None;
    }
    let spansets = groups
        .into_iter()
        .map(|mut g| SpansetHit {
            matched: g.spans.len(),
            spans: {
                // Only the first `spss` by start time are returned.
                g.spans.sort_by_key(|&i| {
                    (
                        view.start.value(cands[i].row),
                        view.span_id.value(cands[i].row),
                    )
                });
                if request.spans_per_spanset > 0 {
                    g.spans.truncate(request.spans_per_spanset);
                }
                g.spans
            }
            .iter()
            .map(|&i| {
                let row = cands[i].row;
                let mut span_id = [0u8; 8];
                span_id.copy_from_slice(view.span_id.value(row));
                SpanHit {
                    span_id: SpanId(span_id),
                    name: view.name.value(row).to_owned(),
                    start_unix_nano: view.start.value(row),
                    duration_nanos: view.duration.value(row),
                    attributes: outputs
                        .iter()
                        .filter_map(|(key, expr)| {
                            OutValue::from_value(eval.value(row, expr))
                                .map(|v| ((*key).to_owned(), v))
                        })
                        .collect(),
                }
            })
            .collect(),
            attributes: g
                .labels
                .into_iter()
                .filter_map(|(k, v)| OutValue::from_value(v).map(|v| (k, v)))
                .collect(),
        })
        .collect();
    let mut trace_id = [0u8; 16];
    trace_id.copy_from_slice(view.trace_id.value(first));
    let text = |a: &arrow::array::StringArray| a.is_valid(first).then(|| a.value(first).to_owned());
    Some(TraceHit {
        trace_id: TraceId(trace_id),
        root_service_name: text(view.root_service),
        root_span_name: text(view.root_name),
        start_unix_nano: trace_start,
        duration_nanos: trace_duration,
        spansets,
    })
}
