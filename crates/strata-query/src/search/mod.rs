//! TraceQL search over blocks and the ingester's recent data.
//!
//! A query is planned once ([`plan`]): the columns it needs, the rows statistics can rule out,
//! its regexes. Blocks are then searched newest first, several at a time: each reads only the
//! planned columns of the rows its row-group statistics and page index cannot rule out, marks per
//! row which `{ }` filters hold, and runs the pipeline per trace over just those spans
//! ([`spanset`]). Results are ordered newest first (by trace start, then trace ID), so the same
//! query over the same data gives the same answer; the search stops once `limit` traces are found
//! and no block left could hold a newer one.

mod columnar;
mod plan;
mod row;
mod spanset;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow::array::{Array, RecordBatch};
use futures::FutureExt;
use strata_block::schema::col;
use strata_block::{
    BlockFile, BlockMeta, Prune, PruneOp, PruneValue, ReadStats, read_rows, scan_block,
    traces_to_batch,
};
use strata_model::{Span, SpanId, TenantId, TraceId};
use strata_storage::Storage;
use strata_traceql::Query;

use crate::error::{Error, Result};
use crate::trace_by_id::{Querier, TimeRange, Vanished, missing_message};
pub(crate) use plan::{Plan, plan};
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
    /// Ingesters that did not answer (their recent data is missing from the answer).
    pub ingesters_unreachable: u64,
}

/// The answer to a search.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchResult {
    /// Matching traces, newest first.
    pub traces: Vec<TraceHit>,
    /// What it cost.
    pub metrics: SearchMetrics,
    /// Set when traces may be missing: blocks that could not be read, ingesters that did not
    /// answer.
    pub partial: Option<String>,
}

impl Querier {
    /// Runs a TraceQL search for `tenant`.
    pub async fn search(&self, tenant: &TenantId, request: SearchRequest) -> Result<SearchResult> {
        if request.limit == 0 {
            return Err(Error::BadRequest(
                "a search's limit must be above zero".into(),
            ));
        }
        let plan = Arc::new(plan(Arc::clone(&request.query))?);
        let request = Arc::new(request);
        self.metrics.searches.inc();
        let stats = Arc::new(ReadStats::default());
        let mut found: HashMap<TraceId, TraceHit> = HashMap::new();
        let mut metrics = SearchMetrics::default();

        // Recent data first: it is the newest. Its answer also names the blocks uploaded since
        // the last blocklist poll.
        let recent = self.recent.search(tenant, &plan, &request).await?;
        let partial = recent.partial_message();
        metrics.ingesters_unreachable = recent.unreachable.len() as u64;
        merge_into(&mut found, &mut metrics, recent.value);

        let mut blocks: Vec<Arc<BlockMeta>> = self
            .tenant_blocks(tenant, recent.blocks)
            .into_iter()
            .filter(|b| {
                request
                    .range
                    .is_none_or(|r| b.start_time <= r.end && r.start <= b.end_time)
            })
            .collect();
        blocks.sort_by_key(|b| std::cmp::Reverse((b.end_time, b.block_id)));
        metrics.total_blocks = blocks.len() as u64;
        let prune = Arc::new(block_prune(&plan, &request));
        // Blocks are searched in waves, newest first: one block, then two, four, ... up to
        // `query.concurrency` at a time, so a search that the newest blocks satisfy reads little.
        let mut next = 0;
        let mut wave = 1;
        let mut missing = 0;
        while next < blocks.len() {
            let end = (next + wave).min(blocks.len());
            let outcomes: Vec<(Arc<BlockMeta>, Result<BatchOutcome>)> =
                futures::future::join_all(blocks[next..end].iter().map(|meta| {
                    let (plan, request, prune, stats) = (
                        Arc::clone(&plan),
                        Arc::clone(&request),
                        Arc::clone(&prune),
                        Arc::clone(&stats),
                    );
                    let meta = Arc::clone(meta);
                    async move {
                        // A reader that panics on a hostile block costs that block only.
                        let search =
                            self.search_one_block(Arc::clone(&meta), plan, request, prune, stats);
                        let outcome = AssertUnwindSafe(search)
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| {
                                Err(Error::Internal(format!(
                                    "searching block {} panicked",
                                    meta.block_id
                                )))
                            });
                        (meta, outcome)
                    }
                }))
                .await;
            next = end;
            wave = (wave * 2).min(self.config.concurrency.max(1));
            for (meta, outcome) in outcomes {
                metrics.searched_blocks += 1;
                metrics.total_block_bytes += meta.data_size;
                match outcome {
                    Ok(outcome) => merge_into(&mut found, &mut metrics, outcome),
                    Err(e) if e.is_not_found() => {
                        if self.vanished(tenant, meta.block_id, &e).await == Vanished::Lost {
                            metrics.failed_blocks += 1;
                            missing += 1;
                        }
                    }
                    Err(e) => {
                        metrics.failed_blocks += 1;
                        self.metrics.block_errors.inc();
                        tracing::warn!(%tenant, block = %meta.block_id, error = %e, "could not read a block during a search");
                    }
                }
            }
            // Stop once the newest `limit` traces cannot change: every block left ends before
            // the oldest of them starts.
            if found.len() >= request.limit
                && let Some(next_block) = blocks.get(next)
            {
                let next_end =
                    u64::try_from(next_block.end_time.timestamp_nanos_opt().unwrap_or(0))
                        .unwrap_or(0);
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
        let unreadable = metrics.failed_blocks - missing as u64;
        let reasons: Vec<String> = [
            partial,
            (unreadable > 0)
                .then(|| format!("{unreadable} blocks could not be read; traces may be missing")),
            (missing > 0).then(|| missing_message(missing)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let partial = (!reasons.is_empty()).then(|| reasons.join("; "));
        Ok(SearchResult {
            traces,
            metrics,
            partial,
        })
    }

    /// Searches one block in two phases: the columns the conditions need, for the rows
    /// statistics cannot rule out; then the columns a result shows, for the spans returned of
    /// the newest `limit` matching traces only.
    ///
    /// Each block is searched in a task of its own, so the blocks of a wave are decoded on every
    /// core rather than on the one thread polling the wave.
    async fn search_one_block(
        &self,
        meta: Arc<BlockMeta>,
        plan: Arc<Plan>,
        request: Arc<SearchRequest>,
        prune: Arc<Prune>,
        stats: Arc<ReadStats>,
    ) -> Result<BatchOutcome> {
        let file = self.block_file(&meta, &stats).await?;
        let storage = self.storage.clone();
        tokio::spawn(search_block(
            storage, meta, file, plan, request, prune, stats,
        ))
        .await
        .map_err(|e| Error::task("a block's search", &e))?
    }
}

/// [`Querier::search_one_block`] once the block's footer is at hand.
async fn search_block(
    storage: Storage,
    meta: Arc<BlockMeta>,
    file: Arc<BlockFile>,
    plan: Arc<Plan>,
    request: Arc<SearchRequest>,
    prune: Arc<Prune>,
    stats: Arc<ReadStats>,
) -> Result<BatchOutcome> {
    let (meta, file, prune, stats) = (meta.as_ref(), file.as_ref(), prune.as_ref(), &stats);
    {
        let (groups, counts) =
            scan_block(&storage, meta, file, &plan.columns, prune, stats).await?;
        let (phase_plan, phase_request) = (Arc::clone(&plan), Arc::clone(&request));
        let (groups, matched, inspected_traces) = tokio::task::spawn_blocking(move || {
            let mut all: Vec<(usize, Matched)> = Vec::new();
            let mut inspected = 0;
            for (g, group) in groups.iter().enumerate() {
                let (matched, traces) = match_batch(&phase_plan, &phase_request, &group.batch)?;
                inspected += traces;
                all.extend(matched.into_iter().map(|m| (g, m)));
            }
            all.sort_by_key(|(_, m)| std::cmp::Reverse((m.start, m.trace_id)));
            all.truncate(phase_request.limit);
            Ok::<_, Error>((groups, all, inspected))
        })
        .await
        .map_err(|e| Error::task("matching a block's rows", &e))??;
        // Phase two, all row groups at once.
        let reads = groups.iter().enumerate().filter_map(|(g, group)| {
            let mine: Vec<Matched> = matched
                .iter()
                .filter(|(i, _)| *i == g)
                .map(|(_, m)| m.clone())
                .collect();
            if mine.is_empty() {
                return None;
            }
            let mut rows: Vec<usize> = mine
                .iter()
                .flat_map(|m| m.spansets.iter().flat_map(|(spans, _, _)| spans.iter()))
                .filter_map(|&i| group.row_of(i))
                .collect();
            rows.sort_unstable();
            rows.dedup();
            let (plan, file, storage) = (&plan, &file, &storage);
            Some(async move {
                let batch = read_rows(
                    storage,
                    meta,
                    file,
                    group.group,
                    &rows,
                    &plan.output_columns,
                    stats,
                )
                .await?;
                materialize(plan, &batch, &mine, |i| {
                    let row = group.row_of(i)?;
                    rows.binary_search(&row).ok()
                })
            })
        });
        let mut hits = Vec::with_capacity(matched.len());
        for part in futures::future::join_all(reads).await {
            hits.extend(part?);
        }
        Ok(BatchOutcome {
            hits,
            inspected_traces,
            inspected_spans: counts.rows_read,
        })
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
/// The matches found in one place (a block, an ingester's recent traces).
#[derive(Debug, Default)]
pub(crate) struct BatchOutcome {
    pub(crate) hits: Vec<TraceHit>,
    pub(crate) inspected_traces: u64,
    pub(crate) inspected_spans: u64,
}

/// Searches traces held in memory (an ingester's recent data), off the async threads.
pub(crate) async fn search_traces(
    traces: HashMap<TraceId, Vec<Span>>,
    plan: Arc<Plan>,
    request: Arc<SearchRequest>,
) -> Result<BatchOutcome> {
    if traces.is_empty() {
        return Ok(BatchOutcome::default());
    }
    tokio::task::spawn_blocking(move || {
        let batch = traces_to_batch(traces.values().map(Vec::as_slice)).map_err(Error::from)?;
        let (mut matched, inspected_traces) = match_batch(&plan, &request, &batch)?;
        keep_newest(&mut matched, request.limit);
        let rows = batch.num_rows();
        let hits = materialize(&plan, &batch, &matched, |row| (row < rows).then_some(row))?;
        Ok::<_, Error>(BatchOutcome {
            hits,
            inspected_traces,
            inspected_spans: rows as u64,
        })
    })
    .await
    .map_err(|e| Error::task("searching recent traces", &e))?
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

/// A trace that matched, by rows of the batch it was matched in.
#[derive(Debug, Clone)]
struct Matched {
    trace_id: [u8; 16],
    start: u64,
    spansets: Vec<MatchedSet>,
}

/// A matching spanset: the rows of up to `spss` of its spans (in row order), how many spans it
/// has, and the `by()` values that formed it.
type MatchedSet = (Vec<usize>, usize, Vec<(String, OutValue)>);

/// Keeps the newest `limit` matches.
fn keep_newest(matched: &mut Vec<Matched>, limit: usize) {
    matched.sort_by_key(|m| std::cmp::Reverse((m.start, m.trace_id)));
    matched.truncate(limit);
}

/// Phase one over a batch holding whole traces (the rows statistics left): which traces match,
/// and the traces examined.
fn match_batch(
    plan: &Plan,
    request: &SearchRequest,
    batch: &RecordBatch,
) -> Result<(Vec<Matched>, u64)> {
    let view = BatchView::new(batch).map_err(corrupt_batch)?;
    let filters = plan.filter_exprs();
    let eval = Evaluator::new(&view, &plan.regexes);
    // Filters of the common shape are evaluated for the whole batch at once.
    let masks: Vec<Option<Vec<bool>>> = filters
        .iter()
        .map(|f| columnar::filter_mask(&view, &f.expr, &plan.regexes))
        .collect();
    let (mut matched, mut traces) = (Vec::new(), 0);
    let rows = view.rows();
    let mut start = 0;
    while start < rows {
        let id = view.trace_id.value(start);
        let mut end = start + 1;
        while end < rows && view.trace_id.value(end) == id {
            end += 1;
        }
        traces += 1;
        if let Some(m) = match_trace(plan, request, &eval, &filters, &masks, start..end) {
            matched.push(m);
        }
        start = end;
    }
    Ok((matched, traces))
}

fn corrupt_batch(what: String) -> Error {
    Error::Block(strata_block::Error::Corrupt {
        block: "(searched)".into(),
        what,
    })
}

fn match_trace<'a>(
    plan: &'a Plan,
    request: &SearchRequest,
    eval: &Evaluator<'_, 'a>,
    filters: &[&'a strata_traceql::SpansetFilter],
    masks: &[Option<Vec<bool>>],
    rows: std::ops::Range<usize>,
) -> Option<Matched> {
    let view = eval.view;
    let first = rows.start;
    let trace_start = view.trace_start.map_or(0, |a| a.value(first));
    let trace_duration = view.trace_duration.map_or(0, |a| a.value(first));
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
    let int = |a: Option<&arrow::array::Int32Array>, row: usize| a.map_or(0, |a| a.value(row));
    let mut cands = Vec::new();
    for row in rows {
        let mut mask = 0u64;
        for (bit, (f, m)) in filters.iter().zip(masks).enumerate() {
            let holds = match m {
                Some(m) => m[row],
                None => eval.truth(row, &f.expr),
            };
            if holds {
                mask |= 1 << bit;
            }
        }
        if mask != 0 {
            cands.push(Cand {
                row,
                mask,
                left: int(view.ns_left, row),
                right: int(view.ns_right, row),
                parent: int(view.ns_parent, row),
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
    let mut trace_id = [0u8; 16];
    trace_id.copy_from_slice(view.trace_id.value(first));
    Some(Matched {
        trace_id,
        start: trace_start,
        spansets: groups
            .into_iter()
            .map(|g| {
                let matched = g.spans.len();
                let mut rows: Vec<usize> = g.spans.iter().map(|&i| cands[i].row).collect();
                rows.sort_unstable();
                if request.spans_per_spanset > 0 {
                    rows.truncate(request.spans_per_spanset);
                }
                let labels = g
                    .labels
                    .into_iter()
                    .filter_map(|(k, v)| OutValue::from_value(v).map(|v| (k, v)))
                    .collect();
                (rows, matched, labels)
            })
            .collect(),
    })
}

/// Phase two: the returned traces and spans, from `batch`, which holds the output columns;
/// `row` maps a row of the phase-one batch to a row of `batch`.
fn materialize(
    plan: &Plan,
    batch: &RecordBatch,
    matched: &[Matched],
    row: impl Fn(usize) -> Option<usize>,
) -> Result<Vec<TraceHit>> {
    let view = BatchView::new(batch).map_err(corrupt_batch)?;
    // A row the batch does not have (a short read) is skipped, never indexed.
    let rows = batch.num_rows();
    let row = |r: usize| row(r).filter(|&r| r < rows);
    let outputs = plan.output_exprs();
    let eval = Evaluator::new(&view, &plan.regexes);
    let text = |a: Option<&arrow::array::StringArray>, r: usize| {
        a.filter(|a| a.is_valid(r)).map(|a| a.value(r).to_owned())
    };
    let mut hits = Vec::with_capacity(matched.len());
    for m in matched {
        let Some(first) = m
            .spansets
            .iter()
            .flat_map(|(rows, _, _)| rows.iter())
            .find_map(|&r| row(r))
        else {
            continue;
        };
        let spansets = m
            .spansets
            .iter()
            .map(|(rows, count, labels)| SpansetHit {
                matched: *count,
                attributes: labels.clone(),
                spans: rows
                    .iter()
                    .filter_map(|&r| row(r))
                    .map(|r| {
                        let mut span_id = [0u8; 8];
                        if let Some(ids) = view.span_id {
                            span_id.copy_from_slice(ids.value(r));
                        }
                        SpanHit {
                            span_id: SpanId(span_id),
                            name: text(view.name, r).unwrap_or_default(),
                            start_unix_nano: view.start.map_or(0, |a| a.value(r)),
                            duration_nanos: view.duration.map_or(0, |a| a.value(r)),
                            attributes: outputs
                                .iter()
                                .filter_map(|(key, expr)| {
                                    OutValue::from_value(eval.value(r, expr))
                                        .map(|v| ((*key).to_owned(), v))
                                })
                                .collect(),
                        }
                    })
                    .collect(),
            })
            .collect();
        hits.push(TraceHit {
            trace_id: TraceId(m.trace_id),
            root_service_name: text(view.root_service, first),
            root_span_name: text(view.root_name, first),
            start_unix_nano: m.start,
            duration_nanos: view.trace_duration.map_or(0, |a| a.value(first)),
            spansets,
        });
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, FixedSizeBinaryBuilder};

    use super::*;

    fn everything() -> SearchRequest {
        SearchRequest {
            query: Arc::new(strata_traceql::parse("{ }").unwrap()),
            limit: 10,
            spans_per_spanset: 0,
            range: None,
            min_duration_nanos: None,
            max_duration_nanos: None,
        }
    }

    fn ids(width: i32, rows: usize) -> ArrayRef {
        let mut b = FixedSizeBinaryBuilder::new(width);
        for i in 0..rows {
            let mut id = vec![1u8; usize::try_from(width).unwrap()];
            id[0] = u8::try_from(i).unwrap();
            b.append_value(id).unwrap();
        }
        Arc::new(b.finish())
    }

    /// Review E2: a block whose `trace_id` or `span_id` column had another width panicked in
    /// `copy_from_slice`; the search task's panic then came back as 400 Bad Request.
    #[test]
    fn a_batch_with_ids_of_the_wrong_width_is_an_error_not_a_panic() {
        let request = everything();
        let plan = plan(Arc::clone(&request.query)).unwrap();
        for (trace, span) in [(4, 8), (16, 3)] {
            let batch = RecordBatch::try_from_iter([
                (col::TRACE_ID, ids(trace, 3)),
                (col::SPAN_ID, ids(span, 3)),
            ])
            .unwrap();
            assert!(
                match_batch(&plan, &request, &batch).is_err(),
                "{trace} {span}"
            );
            let matched = vec![Matched {
                trace_id: [1; 16],
                start: 0,
                spansets: vec![(vec![0], 1, vec![])],
            }];
            assert!(materialize(&plan, &batch, &matched, Some).is_err());
        }
        let good =
            RecordBatch::try_from_iter([(col::TRACE_ID, ids(16, 3)), (col::SPAN_ID, ids(8, 3))])
                .unwrap();
        let (matched, traces) = match_batch(&plan, &request, &good).unwrap();
        assert_eq!((matched.len(), traces), (3, 3));
        // Rows the batch does not have are skipped, not indexed.
        let hits = materialize(&plan, &good, &matched, |r| Some(r + 2)).unwrap();
        assert_eq!(hits.len(), 1);
    }

    /// Review E6: `limit - 1` overflowed for a library caller asking for no traces.
    #[tokio::test]
    async fn a_search_for_no_traces_is_refused() {
        let querier = Querier::new(
            Storage::in_memory(),
            crate::QueryConfig::default(),
            crate::RecentSource::None,
            crate::QueryMetrics::default(),
        );
        let request = SearchRequest {
            limit: 0,
            ..everything()
        };
        let tenant = TenantId::new("t").unwrap();
        let refused = querier.search(&tenant, request).await.unwrap_err();
        assert_eq!(refused.kind(), strata_model::ErrorKind::BadInput);
    }

    #[tokio::test]
    async fn a_task_that_panicked_is_an_internal_error_not_a_bad_request() {
        let joined = tokio::spawn(async { panic!("boom") }).await.unwrap_err();
        let e = Error::task("a block's search", &joined);
        assert_eq!(e.kind(), strata_model::ErrorKind::Internal);
    }
}
