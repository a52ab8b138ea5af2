//! Traces being assembled in memory, per tenant, and the head block they move to once complete.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use prost::Message;
use strata_model::{Span, TraceId};

use crate::config::TenantLimits;
use crate::limits::TokenBucket;
use crate::sanitize::SanitizeReport;
use crate::wal::{SegmentId, SegmentRefs};

/// The spans of one trace received so far.
#[derive(Debug)]
pub(crate) struct LiveTrace {
    pub(crate) spans: Vec<Span>,
    /// Stored bytes of the spans (see [`span_costs`]).
    pub(crate) bytes: u64,
    first_seen: Instant,
    last_seen: Instant,
    /// When the first and the last of the spans were received, unix nanoseconds (from the WAL
    /// records, so a replay keeps them).
    pub(crate) received: (u64, u64),
    /// WAL segments holding these spans; each holds one reference.
    pub(crate) segments: Vec<SegmentId>,
}

impl LiveTrace {
    /// The trace's ID (every live trace holds at least one span).
    pub(crate) fn trace_id(&self) -> TraceId {
        self.spans.first().map(|s| s.trace_id).unwrap_or_default()
    }
}

/// The stored size of every span of a request, in request order: what its row in a block will
/// hold, which is the span's OTLP size plus that of its resource and its scope (each row carries
/// its own copy of both). Spans with invalid IDs are skipped, as the conversion to model spans
/// skips them.
pub(crate) fn span_costs(request: &ExportTraceServiceRequest) -> Vec<u64> {
    let mut costs = Vec::new();
    for rs in &request.resource_spans {
        let resource = resource_cost(rs);
        for ss in &rs.scope_spans {
            let shared = resource + scope_cost(ss);
            costs.extend(
                ss.spans
                    .iter()
                    .filter(|s| strata_model::otlp::check_span_ids(s).is_ok())
                    .map(|s| s.encoded_len() as u64 + shared),
            );
        }
    }
    costs
}

fn resource_cost(rs: &ResourceSpans) -> u64 {
    (rs.resource.as_ref().map_or(0, Message::encoded_len) + rs.schema_url.len()) as u64
}

fn scope_cost(ss: &ScopeSpans) -> u64 {
    (ss.scope.as_ref().map_or(0, Message::encoded_len) + ss.schema_url.len()) as u64
}

/// Traces that are complete and wait to be cut into a block.
#[derive(Debug, Default)]
pub(crate) struct HeadBlock {
    pub(crate) traces: Vec<LiveTrace>,
    pub(crate) bytes: u64,
    opened: Option<Instant>,
}

/// One tenant's live traces, head block and rate limiter.
#[derive(Debug)]
pub(crate) struct TenantState {
    pub(crate) limits: TenantLimits,
    bucket: TokenBucket,
    pub(crate) live: HashMap<TraceId, LiveTrace>,
    pub(crate) head: HeadBlock,
    last_push: Instant,
}

/// A tenant with nothing in memory and no push for this long is forgotten (tenant IDs come from
/// the network, so their states must not pile up). Its rate limiter would be full again by then.
const FORGET_IDLE_TENANT: Duration = Duration::from_secs(300);

/// Why a request is refused as a whole.
pub(crate) enum Refusal {
    /// Over the ingest rate.
    Rate { bytes: u64, rate: u64 },
    /// The request would store more than the tenant's burst: it can never fit.
    OverBurst {
        bytes: u64,
        burst: u64,
        spans: usize,
    },
    /// Every span hit a per-trace or live-trace limit.
    AllLimited(String),
}

impl TenantState {
    pub(crate) fn new(limits: TenantLimits, now: Instant) -> Self {
        Self {
            bucket: TokenBucket::new(
                limits.ingestion_rate_bytes.as_u64(),
                limits.ingestion_burst_bytes.as_u64(),
                now,
            ),
            limits,
            live: HashMap::new(),
            head: HeadBlock::default(),
            last_push: now,
        }
    }

    /// Whether the tenant holds nothing and has been quiet long enough to be dropped.
    pub(crate) fn forgettable(&self, now: Instant) -> bool {
        self.live.is_empty()
            && self.head.traces.is_empty()
            && now.saturating_duration_since(self.last_push) >= FORGET_IDLE_TENANT
    }

    /// Applies the tenant's limits to a sanitized request: the trace-size and live-trace limits
    /// span by span (refused spans are removed and reported), then the rate to what remains.
    /// Every limit counts [stored bytes](span_cost). Returns the stored size of each remaining
    /// span, in request order.
    pub(crate) fn admit(
        &mut self,
        request: &mut ExportTraceServiceRequest,
        report: &mut SanitizeReport,
        now: Instant,
    ) -> Result<Vec<u64>, Refusal> {
        self.last_push = now;
        let max_trace = self.limits.max_bytes_per_trace.as_u64();
        let max_live = self.limits.max_live_traces;
        let mut added: HashMap<TraceId, u64> = HashMap::new();
        let mut new_traces = 0usize;
        let mut sizes = Vec::new();
        let mut limited = 0usize;
        for rs in &mut request.resource_spans {
            let resource = resource_cost(rs);
            for ss in &mut rs.scope_spans {
                let shared = resource + scope_cost(ss);
                ss.spans.retain(|span| {
                    // Sanitizing already removed spans with bad IDs; this only guards the slice.
                    let Ok(id) = TraceId::from_slice(&span.trace_id) else {
                        limited += 1;
                        report.reject(|| "invalid trace ID".to_owned());
                        return false;
                    };
                    let size = span.encoded_len() as u64 + shared;
                    let live = self.live.get(&id).map(|t| t.bytes);
                    let pending = added.get(&id).copied();
                    let is_new = live.is_none() && pending.is_none();
                    let so_far = live.unwrap_or(0) + pending.unwrap_or(0);
                    let refuse = if so_far + size > max_trace {
                        Some(format!(
                            "trace {id} exceeds max_bytes_per_trace ({max_trace} bytes)"
                        ))
                    } else if is_new && self.live.len() + new_traces >= max_live {
                        Some(format!(
                            "tenant has max_live_traces ({max_live}) traces in progress"
                        ))
                    } else {
                        None
                    };
                    if let Some(reason) = refuse {
                        limited += 1;
                        report.reject(|| reason);
                        return false;
                    }
                    new_traces += usize::from(is_new);
                    *added.entry(id).or_default() += size;
                    sizes.push(size);
                    true
                });
            }
        }
        if sizes.is_empty() && limited > 0 {
            return Err(Refusal::AllLimited(report.messages.join("; ")));
        }
        let total: u64 = sizes.iter().sum();
        let burst = self.limits.ingestion_burst_bytes.as_u64();
        if total > burst {
            return Err(Refusal::OverBurst {
                bytes: total,
                burst,
                spans: sizes.len(),
            });
        }
        if !self.bucket.try_take(total, now) {
            return Err(Refusal::Rate {
                bytes: total,
                rate: self.limits.ingestion_rate_bytes.as_u64(),
            });
        }
        Ok(sizes)
    }

    /// Adds spans (already durable in segment `segment`, received at `received_unix_nano`) to
    /// their live traces.
    pub(crate) fn insert(
        &mut self,
        spans: Vec<Span>,
        sizes: &[u64],
        segment: SegmentId,
        received_unix_nano: u64,
        refs: &SegmentRefs,
        now: Instant,
    ) {
        // Each trace's span vector grows by exactly what this request adds: left to amortised
        // doubling, a 19-span trace would hold room for 32 spans (about 160 bytes per span
        // unused, measured on the standard workload).
        let mut adding: HashMap<TraceId, usize> = HashMap::new();
        for span in &spans {
            *adding.entry(span.trace_id).or_default() += 1;
        }
        for (span, &size) in spans.into_iter().zip(sizes) {
            let trace = self.live.entry(span.trace_id).or_insert_with(|| LiveTrace {
                spans: Vec::new(),
                bytes: 0,
                first_seen: now,
                last_seen: now,
                received: (received_unix_nano, received_unix_nano),
                segments: Vec::new(),
            });
            trace.received = (
                trace.received.0.min(received_unix_nano),
                trace.received.1.max(received_unix_nano),
            );
            if let Some(n) = adding.remove(&span.trace_id) {
                trace.spans.reserve_exact(n);
            }
            trace.spans.push(span);
            trace.bytes += size;
            trace.last_seen = now;
            if !trace.segments.contains(&segment) {
                trace.segments.push(segment);
                refs.acquire(segment);
            }
        }
    }

    /// Moves traces idle for `idle` (or live longer than `max_live`, or all when `force`) to the
    /// head block.
    pub(crate) fn complete_traces(
        &mut self,
        now: Instant,
        idle: Duration,
        max_live: Duration,
        force: bool,
    ) {
        let done = self.live.extract_if(|_, t| {
            force
                || now.saturating_duration_since(t.last_seen) >= idle
                || now.saturating_duration_since(t.first_seen) >= max_live
        });
        for (_, trace) in done {
            self.head.bytes += trace.bytes;
            self.head.opened.get_or_insert(now);
            self.head.traces.push(trace);
        }
    }

    /// Takes the head block if it is due (over `max_bytes`, older than `max_age`, or `force`d),
    /// cut into blocks of at most `max_bytes` each (a single larger trace makes a block of its
    /// own), in trace-ID order, so a head that grew past the limit (a WAL replay, a burst) never
    /// makes one oversized block.
    pub(crate) fn cut_head(
        &mut self,
        now: Instant,
        max_bytes: u64,
        max_age: Duration,
        force: bool,
    ) -> Vec<HeadBlock> {
        let due = self.head.bytes >= max_bytes
            || self
                .head
                .opened
                .is_some_and(|o| now.saturating_duration_since(o) >= max_age)
            || force;
        if !due || self.head.traces.is_empty() {
            return Vec::new();
        }
        let HeadBlock {
            mut traces, opened, ..
        } = std::mem::take(&mut self.head);
        traces.sort_by_key(LiveTrace::trace_id);
        let mut blocks = Vec::new();
        let mut current = HeadBlock {
            opened,
            ..HeadBlock::default()
        };
        for trace in traces {
            if !current.traces.is_empty() && current.bytes + trace.bytes > max_bytes {
                blocks.push(std::mem::replace(
                    &mut current,
                    HeadBlock {
                        opened,
                        ..HeadBlock::default()
                    },
                ));
            }
            current.bytes += trace.bytes;
            current.traces.push(trace);
        }
        blocks.push(current);
        blocks
    }
}
