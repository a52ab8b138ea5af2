//! The ingester: accepts sanitized requests, makes them durable in the WAL, assembles traces,
//! cuts blocks and hands them to the flusher.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use parking_lot::Mutex;
use prost::Message;
use strata_block::{BlockConfig, BlockMeta, TagSummary, TagSummaryBuilder};
use strata_model::otlp::spans_from_request;
use strata_model::{Span, TenantId, TraceId};
use strata_storage::Storage;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::{IngesterConfig, LimitsConfig};
use crate::error::{Error, Result};
use crate::flush::{FlushingBlock, RecentBlock, flush_loop};
use crate::live::{Refusal, TenantState, span_costs};
use crate::metrics::IngestMetrics;
use crate::sanitize::{SanitizeLimits, SanitizeReport, sanitize};
use crate::wal::{ReplaySegment, SegmentRefs, Wal, WalAppender, WalMetrics};

/// What happened to an accepted request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PushOutcome {
    /// Spans stored.
    pub accepted_spans: usize,
    /// Spans refused (invalid IDs, per-trace or live-trace limits).
    pub rejected_spans: usize,
    /// Attribute values truncated.
    pub truncated_values: usize,
    /// Why spans were refused or changed, for the OTLP partial-success message.
    pub messages: Vec<String>,
}

/// State shared by the ingester's tasks.
pub(crate) struct Shared {
    pub(crate) config: IngesterConfig,
    pub(crate) limits: LimitsConfig,
    pub(crate) block_config: BlockConfig,
    pub(crate) storage: Storage,
    pub(crate) tenants: Mutex<HashMap<TenantId, TenantState>>,
    pub(crate) unflushed_bytes: AtomicU64,
    pub(crate) wal_refs: Arc<SegmentRefs>,
    pub(crate) metrics: IngestMetrics,
    pub(crate) stop_retrying: AtomicBool,
    shutting_down: AtomicBool,
    /// Cut blocks being encoded or uploaded. Lock order: `tenants`, then `flushing`.
    flushing: Mutex<Vec<Arc<FlushingBlock>>>,
    /// Blocks uploaded within `recent_block_retention`, newest last.
    recent: Mutex<VecDeque<RecentBlock>>,
}

/// The write path's core. Cheap to share behind an `Arc`.
pub struct Ingester {
    shared: Arc<Shared>,
    // Declared (so dropped) before `wal`: closing the WAL waits for its writer thread, which
    // stops only once every appender is gone.
    appender: parking_lot::RwLock<Option<WalAppender>>,
    wal: Mutex<Option<Wal>>,
    cut_tx: Mutex<Option<mpsc::UnboundedSender<Arc<FlushingBlock>>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

impl Ingester {
    /// Opens the WAL, starts the flusher, replays the WAL into the live traces (cutting and
    /// flushing blocks as it goes, see [`replay_wal`]) and starts the sweeper.
    pub async fn start(
        config: IngesterConfig,
        limits: LimitsConfig,
        block_config: BlockConfig,
        storage: Storage,
        metrics: IngestMetrics,
        wal_metrics: WalMetrics,
    ) -> Result<Self> {
        let (wal, segments) = Wal::open(&config.wal, wal_metrics)?;
        let shared = Arc::new(Shared {
            wal_refs: Arc::clone(wal.refs()),
            config,
            limits,
            block_config,
            storage,
            tenants: Mutex::new(HashMap::new()),
            unflushed_bytes: AtomicU64::new(0),
            metrics,
            stop_retrying: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            flushing: Mutex::new(Vec::new()),
            recent: Mutex::new(VecDeque::new()),
        });
        let (cut_tx, cut_rx) = mpsc::unbounded_channel();
        // The flusher runs during replay, so a WAL larger than memory can be replayed.
        let flusher = tokio::spawn(flush_loop(
            Arc::clone(&shared),
            cut_rx,
            shared.config.concurrent_flushes,
        ));
        replay_wal(&shared, &wal, segments, &cut_tx).await;
        let sweeper = tokio::spawn(sweep_loop(Arc::clone(&shared), cut_tx.clone()));
        Ok(Self {
            shared,
            appender: parking_lot::RwLock::new(wal.appender()),
            wal: Mutex::new(Some(wal)),
            cut_tx: Mutex::new(Some(cut_tx)),
            tasks: Mutex::new(vec![sweeper, flusher]),
        })
    }

    /// Accepts one export request for `tenant`. `raw` is the request as received, protobuf
    /// encoded, when there is one: if sanitizing changes nothing it is logged to the WAL as is.
    pub async fn push(
        &self,
        tenant: TenantId,
        mut request: ExportTraceServiceRequest,
        raw: Option<Bytes>,
    ) -> Result<PushOutcome> {
        let shared = &self.shared;
        if shared.shutting_down.load(Ordering::Acquire) {
            return Err(Error::ShuttingDown);
        }
        let unflushed = shared.unflushed_bytes.load(Ordering::Acquire);
        if unflushed >= shared.config.max_unflushed_bytes.as_u64() {
            shared
                .metrics
                .refused("backpressure", count_spans(&request));
            return Err(Error::Backpressure(unflushed));
        }
        let limits = shared.limits.for_tenant(tenant.as_str());
        let received_spans = count_spans(&request);
        let mut report = sanitize(&mut request, &SanitizeLimits::of(&limits));
        let request_bytes = raw
            .as_ref()
            .map_or_else(|| request.encoded_len(), Bytes::len) as u64;
        shared.metrics.received(received_spans, request_bytes);
        let invalid = report.rejected_spans;
        let sizes = {
            let now = Instant::now();
            let mut tenants = shared.tenants.lock();
            let state = tenants
                .entry(tenant.clone())
                .or_insert_with(|| TenantState::new(limits.clone(), now));
            state.admit(&mut request, &mut report, now)
        };
        shared.metrics.refused("invalid", invalid);
        let sizes = match sizes {
            Ok(sizes) => sizes,
            Err(Refusal::Rate { bytes, rate }) => {
                shared.metrics.refused("rate_limited", received_spans);
                return Err(Error::Limited(format!(
                    "tenant {tenant} is over its ingestion rate ({rate} bytes/s); request of {bytes} stored bytes refused, retry later"
                )));
            }
            Err(Refusal::OverBurst {
                bytes,
                burst,
                spans,
            }) => {
                shared.metrics.refused("too_large", received_spans);
                return Err(Error::TooMuchToStore(format!(
                    "request would store {bytes} bytes, more than tenant {tenant}'s ingestion_burst_bytes ({burst}): \
                     each of its {spans} spans is stored with its own copy of its resource and scope attributes; \
                     send fewer spans per request or smaller resources"
                )));
            }
            Err(Refusal::AllLimited(message)) => {
                shared.metrics.refused("limits", received_spans - invalid);
                return Err(Error::Limited(message));
            }
        };
        shared
            .metrics
            .refused("limits", report.rejected_spans - invalid);
        shared.metrics.sanitized(&report);
        let outcome = outcome(&report, sizes.len());
        if sizes.is_empty() {
            return Ok(outcome);
        }
        let payload = match raw {
            Some(raw) if !report.changed => raw,
            _ => Bytes::from(request.encode_to_vec()),
        };
        let bytes: u64 = sizes.iter().sum();
        let appender = self.appender.read().clone().ok_or(Error::ShuttingDown)?;
        let received = unix_nanos();
        let pin = appender.append(&tenant, received, &payload).await?;
        let (spans, rejected) = spans_from_request(request);
        debug_assert!(rejected.is_empty(), "sanitized spans must convert");
        {
            let now = Instant::now();
            let mut tenants = shared.tenants.lock();
            let state = tenants
                .entry(tenant.clone())
                .or_insert_with(|| TenantState::new(limits, now));
            state.insert(
                spans,
                &sizes,
                pin.segment(),
                received,
                &shared.wal_refs,
                now,
            );
        }
        shared.unflushed_bytes.fetch_add(bytes, Ordering::AcqRel);
        shared.metrics.accepted(outcome.accepted_spans);
        drop(pin);
        Ok(outcome)
    }

    /// Every span of `trace_id` not yet in an uploaded block: live, complete in a head block,
    /// or in a block being encoded or uploaded.
    pub fn find_trace(&self, tenant: &TenantId, trace_id: &TraceId) -> Vec<Span> {
        let mut spans = Vec::new();
        let tenants = self.shared.tenants.lock();
        if let Some(state) = tenants.get(tenant) {
            if let Some(trace) = state.live.get(trace_id) {
                spans.extend(trace.spans.iter().cloned());
            }
            for trace in state
                .head
                .traces
                .iter()
                .filter(|t| t.trace_id() == *trace_id)
            {
                spans.extend(trace.spans.iter().cloned());
            }
        }
        // Still holding `tenants`, so a block cannot slip from the head block to `flushing`
        // unseen.
        let flushing = self.shared.flushing.lock();
        for block in flushing.iter().filter(|b| b.tenant == *tenant) {
            for trace in block.traces.iter().filter(|t| t.trace_id() == *trace_id) {
                spans.extend(trace.spans.iter().cloned());
            }
        }
        spans
    }

    /// Copies of every trace of the tenant not yet in an uploaded block (live, in the head
    /// block, or being flushed), for search. One trace may appear more than once.
    pub fn recent_traces(&self, tenant: &TenantId) -> Vec<Vec<Span>> {
        let mut traces = Vec::new();
        let tenants = self.shared.tenants.lock();
        if let Some(state) = tenants.get(tenant) {
            traces.extend(state.live.values().map(|t| t.spans.clone()));
            traces.extend(state.head.traces.iter().map(|t| t.spans.clone()));
        }
        let flushing = self.shared.flushing.lock();
        for block in flushing.iter().filter(|b| b.tenant == *tenant) {
            traces.extend(block.traces.iter().map(|t| t.spans.clone()));
        }
        traces
    }

    /// The tag names and values of the tenant's data not yet in an uploaded block, summarised in
    /// place (no span is copied).
    pub fn recent_tags(&self, tenant: &TenantId) -> TagSummary {
        let mut builder = TagSummaryBuilder::default();
        let tenants = self.shared.tenants.lock();
        if let Some(state) = tenants.get(tenant) {
            for trace in state.live.values().chain(&state.head.traces) {
                builder.add_trace(&trace.spans);
            }
        }
        let flushing = self.shared.flushing.lock();
        for block in flushing.iter().filter(|b| b.tenant == *tenant) {
            for trace in &block.traces {
                builder.add_trace(&trace.spans);
            }
        }
        drop(flushing);
        drop(tenants);
        builder.finish()
    }

    /// Metas of the tenant's blocks uploaded within `recent_block_retention`, for queriers to use
    /// before their blocklist poll finds them.
    pub fn recent_blocks(&self, tenant: &TenantId) -> Vec<BlockMeta> {
        self.shared
            .recent
            .lock()
            .iter()
            .filter(|b| b.meta.tenant == tenant.as_str())
            .map(|b| b.meta.clone())
            .collect()
    }

    /// Whether the ingester takes pushes.
    pub fn is_ready(&self) -> bool {
        !self.shared.shutting_down.load(Ordering::Acquire)
    }

    /// Cuts every live trace into blocks now and waits, at most `timeout`, until they are
    /// uploaded (`POST /flush`). Pushes go on meanwhile; spans arriving during the flush may
    /// stay live.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        let cut = match self.cut_tx.lock().as_ref() {
            Some(tx) => cut_blocks(&self.shared, tx, true),
            None => return Err(Error::ShuttingDown),
        };
        let deadline = Instant::now() + timeout;
        loop {
            let pending = {
                let flushing = self.shared.flushing.lock();
                cut.iter()
                    .filter(|b| flushing.iter().any(|f| Arc::ptr_eq(f, b)))
                    .count()
            };
            if pending == 0 {
                tracing::info!(blocks = cut.len(), "flushed on request");
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::FlushTimeout {
                    pending,
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops taking pushes, cuts every live trace into blocks, flushes them (retrying for at
    /// most `shutdown_flush_timeout`) and closes the WAL. Whatever could not be flushed is still
    /// in the WAL and is replayed at the next start.
    pub async fn shutdown(&self) {
        let shared = &self.shared;
        shared.shutting_down.store(true, Ordering::Release);
        let sweeper_and_flusher: Vec<JoinHandle<()>> = std::mem::take(&mut *self.tasks.lock());
        let mut tasks = sweeper_and_flusher.into_iter();
        if let Some(sweeper) = tasks.next() {
            sweeper.abort();
            let _ = sweeper.await;
        }
        if let Some(tx) = self.cut_tx.lock().take() {
            let _ = cut_blocks(shared, &tx, true);
        }
        let deadline = shared.config.shutdown_flush_timeout;
        if let Some(flusher) = tasks.next() {
            let mut flusher = flusher;
            if tokio::time::timeout(deadline, &mut flusher).await.is_err() {
                tracing::warn!(
                    ?deadline,
                    "flushing did not finish in time; unflushed spans stay in the WAL"
                );
                shared.stop_retrying.store(true, Ordering::Release);
                flusher.abort();
            }
        }
        self.appender.write().take();
        let wal = self.wal.lock().take();
        if let Some(mut wal) = wal {
            tokio::task::spawn_blocking(move || wal.close()).await.ok();
        }
        shared.wal_refs.retire_active();
        tracing::info!(
            unflushed_bytes = shared.unflushed_bytes.load(Ordering::Acquire),
            "ingester stopped"
        );
    }
}

impl Shared {
    /// Remembers a block just uploaded among the recent ones (before the cut block it came from
    /// leaves `flushing`, so a query always finds its spans in one of them).
    pub(crate) fn block_uploaded(&self, meta: BlockMeta) {
        let now = Instant::now();
        let mut recent = self.recent.lock();
        recent.push_back(RecentBlock { at: now, meta });
        while recent.front().is_some_and(|b| {
            now.saturating_duration_since(b.at) > self.config.recent_block_retention
        }) {
            recent.pop_front();
        }
    }

    /// Every part of a cut block is uploaded: it leaves `flushing`.
    pub(crate) fn flushed(&self, block: &Arc<FlushingBlock>) {
        self.flushing.lock().retain(|b| !Arc::ptr_eq(b, block));
    }

    fn insert_replayed(
        &self,
        tenant: &TenantId,
        request: ExportTraceServiceRequest,
        segment: u64,
        received_unix_nano: u64,
    ) -> usize {
        let sizes = span_costs(&request);
        let (spans, _) = spans_from_request(request);
        let count = spans.len();
        let now = Instant::now();
        let limits = self.limits.for_tenant(tenant.as_str());
        let mut tenants = self.tenants.lock();
        let state = tenants
            .entry(tenant.clone())
            .or_insert_with(|| TenantState::new(limits, now));
        state.insert(
            spans,
            &sizes,
            segment,
            received_unix_nano,
            &self.wal_refs,
            now,
        );
        self.unflushed_bytes
            .fetch_add(sizes.iter().sum(), Ordering::AcqRel);
        count
    }
}

/// Replays the WAL into the live traces, record by record. Every `max_block_bytes` of replayed
/// requests (or when `max_unflushed_bytes` is reached) the live traces are cut into blocks, and
/// while more than half of `max_unflushed_bytes` waits to be flushed, reading waits for the
/// flusher: replay holds no more in memory than ingest may. Each segment stays on disk until
/// its last record is read and every span from it is in an uploaded block.
async fn replay_wal(
    shared: &Shared,
    wal: &Wal,
    segments: Vec<ReplaySegment>,
    cut_tx: &mpsc::UnboundedSender<Arc<FlushingBlock>>,
) {
    let count = segments.len();
    let max_unflushed = shared.config.max_unflushed_bytes.as_u64();
    let max_block = shared.config.max_block_bytes.as_u64();
    let (mut spans, mut since_cut, mut unreadable) = (0usize, 0u64, 0usize);
    for segment in segments {
        let mut replay = wal.replay(segment);
        let id = replay.id();
        for record in replay.by_ref() {
            since_cut += record.payload.len() as u64;
            let received = record.received_unix_nano;
            match ExportTraceServiceRequest::decode(record.payload) {
                Ok(request) => {
                    spans += shared.insert_replayed(&record.tenant, request, id, received)
                }
                Err(e) => {
                    tracing::error!(segment = id, error = %e, "WAL record holds an undecodable request; skipping it");
                }
            }
            let unflushed = shared.unflushed_bytes.load(Ordering::Acquire);
            if since_cut >= max_block || unflushed >= max_unflushed {
                since_cut = 0;
                cut_blocks(shared, cut_tx, true);
                wait_for_flushes(shared, max_unflushed / 2).await;
            }
        }
        if !replay.finish() {
            unreadable += 1;
        }
    }
    if count > 0 {
        tracing::info!(segments = count, unreadable, spans, "replayed the WAL");
    }
}

/// Waits until less than `target` bytes wait to be flushed.
async fn wait_for_flushes(shared: &Shared, target: u64) {
    let mut next_log = Instant::now() + Duration::from_secs(10);
    loop {
        let unflushed = shared.unflushed_bytes.load(Ordering::Acquire);
        if unflushed < target {
            return;
        }
        if Instant::now() >= next_log {
            next_log += Duration::from_secs(10);
            tracing::warn!(
                unflushed_bytes = unflushed,
                "WAL replay waits for replayed blocks to be uploaded before reading on"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count_spans(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum()
}

fn outcome(report: &SanitizeReport, accepted: usize) -> PushOutcome {
    let mut messages = report.messages.clone();
    if report.rejected_spans > messages.len() {
        messages.push(format!("{} spans refused in all", report.rejected_spans));
    }
    messages.extend(report.changes());
    PushOutcome {
        accepted_spans: accepted,
        rejected_spans: report.rejected_spans,
        truncated_values: report.truncated_values,
        messages,
    }
}

/// Moves complete traces to head blocks and cuts head blocks that are due.
/// Moves idle (with `force`, all) live traces to head blocks and cuts the heads that are due
/// (with `force`, all); returns the blocks cut, already handed to the flusher.
fn cut_blocks(
    shared: &Shared,
    tx: &mpsc::UnboundedSender<Arc<FlushingBlock>>,
    force: bool,
) -> Vec<Arc<FlushingBlock>> {
    let now = Instant::now();
    let config = &shared.config;
    let mut cut = Vec::new();
    let mut live_traces = 0;
    {
        let mut tenants = shared.tenants.lock();
        for (tenant, state) in tenants.iter_mut() {
            state.complete_traces(now, config.trace_idle_period, config.max_trace_live, force);
            for head in state.cut_head(
                now,
                config.max_block_bytes.as_u64(),
                config.max_block_duration,
                force,
            ) {
                cut.push(Arc::new(FlushingBlock {
                    tenant: tenant.clone(),
                    traces: head.traces,
                }));
            }
            live_traces += state.live.len();
        }
        tenants.retain(|_, state| !state.forgettable(now));
        // Registered before `tenants` is released, so queries see each trace somewhere.
        shared.flushing.lock().extend(cut.iter().cloned());
    }
    shared.metrics.live_traces.set(live_traces as i64);
    for block in &cut {
        if tx.send(Arc::clone(block)).is_err() {
            tracing::error!("the flusher has stopped; a cut block stays in the WAL");
        }
    }
    cut
}

async fn sweep_loop(shared: Arc<Shared>, tx: mpsc::UnboundedSender<Arc<FlushingBlock>>) {
    let mut tick = tokio::time::interval(shared.config.flush_check_period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let _ = cut_blocks(&shared, &tx, false);
        shared
            .metrics
            .unflushed_bytes
            .set(shared.unflushed_bytes.load(Ordering::Acquire) as i64);
    }
}
