//! A deterministic generator of OpenTelemetry traces that look like a real online shop's: ten
//! microservices in four languages, weighted user journeys (browse, search, cart, checkout,
//! order history with an N+1 query pattern, login), semantic-convention attributes, realistic
//! nested latencies, injected server errors and slow outliers.
//!
//! It feeds both tests and benchmarks, so it is exactly reproducible — the same
//! [`WorkloadConfig`] gives byte-identical OTLP output on every run and machine (one ChaCha8
//! stream, integer-only sampling, integer timestamps) — and fast: a release build produces a
//! million spans in a few seconds on one core, most of it spent allocating the OTLP structs.
//!
//! It is not a load driver: it produces messages and leaves sending them to the caller.
//!
//! ```
//! use strata_bench::workload::{Workload, WorkloadConfig};
//!
//! let mut workload = Workload::new(WorkloadConfig { seed: 7, ..WorkloadConfig::default() });
//! let trace = workload.next_trace();
//! assert!((5..=200).contains(&trace.span_count()));
//! ```

mod attrs;
mod calls;
mod checkout;
mod dice;
mod exceptions;
mod faults;
mod flows;
mod services;
mod steps;
mod tree;

#[cfg(test)]
mod tests;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

use checkout::Memory;
use dice::Dice;
use faults::{inject_error, inject_slowness};
use flows::FLOWS;
use services::Cast;
use tree::{Node, TraceBuilder};

/// The most spans one generated trace has.
pub const MAX_SPANS_PER_TRACE: usize = 200;
/// The fewest spans one generated trace has.
pub const MIN_SPANS_PER_TRACE: usize = faults::MIN_SPANS;

/// What to generate. Equal configurations generate equal output.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WorkloadConfig {
    /// Seeds the random stream everything is drawn from.
    pub seed: u64,
    /// Start of the first trace's root span, in Unix nanoseconds.
    pub start_unix_nano: u64,
    /// Mean rate at which traces start; gaps between root starts are jittered uniformly between
    /// half and one and a half times the mean gap. Non-positive or NaN means 100.
    pub traces_per_second: f64,
    /// Share of traces with an injected server error (`0.0..=1.0`).
    pub error_ratio: f64,
    /// Share of traces with one call 10–50 times slower than normal (`0.0..=1.0`).
    pub slow_ratio: f64,
}

impl Default for WorkloadConfig {
    /// Seed 42, starting 2026-01-01T00:00:00Z, 100 traces a second, 5 % errors, 2 % slow.
    fn default() -> Self {
        Self {
            seed: 42,
            start_unix_nano: 1_767_225_600_000_000_000,
            traces_per_second: 100.0,
            error_ratio: 0.05,
            slow_ratio: 0.02,
        }
    }
}

/// One generated trace and what was injected into it.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratedTrace {
    /// The trace's ID, shared by all its spans.
    pub trace_id: [u8; 16],
    /// Name of the journey the trace follows (one of [`flow_names`]).
    pub flow: &'static str,
    /// Whether a server error was injected: one database, Redis or provider call failed, the
    /// work after it was skipped, and the error reached the root span (status ERROR, HTTP 500 or
    /// 503). Traces without it can still hold client errors (4xx) and a retried provider call.
    pub is_error: bool,
    /// Whether one database or provider call was made 10–50 times slower, delaying the root.
    pub is_slow: bool,
    /// The spans, one `ResourceSpans` per pod and one `ScopeSpans` per instrumentation scope.
    pub resource_spans: Vec<ResourceSpans>,
}

impl GeneratedTrace {
    /// Number of spans in the trace.
    pub fn span_count(&self) -> usize {
        self.spans().count()
    }

    /// Every span of the trace.
    pub fn spans(&self) -> impl Iterator<Item = &Span> {
        self.resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
    }

    /// The trace as one export request.
    pub fn into_request(self) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: self.resource_spans,
        }
    }
}

/// Names of the journeys traces follow, in a fixed order.
pub fn flow_names() -> impl Iterator<Item = &'static str> {
    FLOWS.iter().map(|f| f.name)
}

/// A deterministic stream of traces.
pub struct Workload {
    config: WorkloadConfig,
    dice: Dice,
    cast: Cast,
    memory: Memory,
    next_start: u64,
    mean_gap: u64,
}

/// One trace as the flows and faults leave it, before grouping into OTLP messages.
struct Built {
    trace: GeneratedTrace,
    nodes: Vec<Node>,
}

impl Workload {
    /// A workload at the start of the stream `config` describes.
    pub fn new(config: WorkloadConfig) -> Self {
        let tps = config.traces_per_second;
        let tps = if tps > 0.0 { tps } else { 100.0 };
        Self {
            dice: Dice::new(config.seed),
            cast: Cast::new(),
            memory: Memory::default(),
            next_start: config.start_unix_nano,
            mean_gap: ((1e9 / tps) as u64).max(1),
            config,
        }
    }

    /// The configuration the workload was created with.
    pub fn config(&self) -> &WorkloadConfig {
        &self.config
    }

    /// The next trace of the stream.
    pub fn next_trace(&mut self) -> GeneratedTrace {
        let Built { mut trace, nodes } = self.build();
        trace.resource_spans = group(&self.cast, nodes);
        trace
    }

    /// The next `n` traces of the stream.
    pub fn traces(&mut self, n: usize) -> Vec<GeneratedTrace> {
        (0..n).map(|_| self.next_trace()).collect()
    }

    /// The next `total_spans` spans of the stream, as the SDKs' batch span processors would
    /// export them: each pod batches its own spans and sends a request (one `ResourceSpans`,
    /// one `ScopeSpans` per scope, spans ordered by end time) whenever `spans_per_request`
    /// have gathered; at the end every non-empty batch is sent, in pod order. So the requests
    /// hold exactly `total_spans` spans, none more than `spans_per_request` (0 counts as 1), and
    /// one trace's spans are spread over several requests.
    ///
    /// Traces are taken whole from the stream, except that the last one may be cut short to
    /// hit `total_spans`: it keeps a prefix of its spans that includes every kept span's parent.
    /// The rest of that trace is dropped; the stream continues with the trace after it.
    pub fn requests(
        &mut self,
        total_spans: usize,
        spans_per_request: usize,
    ) -> Vec<ExportTraceServiceRequest> {
        let limit = spans_per_request.max(1);
        let mut batches: Vec<Vec<(u16, Span)>> = vec![Vec::new(); self.cast.resources.len()];
        let mut requests = Vec::with_capacity(total_spans / limit + batches.len());
        let mut remaining = total_spans;
        while remaining > 0 {
            let nodes = self.build().nodes;
            for node in nodes.into_iter().take(remaining) {
                remaining -= 1;
                let pod = node.pod.index();
                batches[pod].push((node.scope, node.span));
                if batches[pod].len() == limit {
                    requests.push(self.export(pod, std::mem::take(&mut batches[pod])));
                }
            }
        }
        for (pod, batch) in batches.into_iter().enumerate() {
            if !batch.is_empty() {
                requests.push(self.export(pod, batch));
            }
        }
        requests
    }

    /// A request holding one pod's batch.
    fn export(&self, pod: usize, mut batch: Vec<(u16, Span)>) -> ExportTraceServiceRequest {
        batch.sort_by_key(|(_, span)| span.end_time_unix_nano);
        let resource_spans = ResourceSpans {
            resource: Some(self.cast.resources[pod].clone()),
            scope_spans: group_scopes(&self.cast, batch),
            schema_url: String::new(),
        };
        ExportTraceServiceRequest {
            resource_spans: vec![resource_spans],
        }
    }

    /// Builds the next trace: picks a flow, runs it, applies faults.
    fn build(&mut self) -> Built {
        let start = self.next_start;
        self.next_start += self.mean_gap / 2 + self.dice.below(self.mean_gap + 1);
        let weights = FLOWS.map(|f| f.weight);
        let flow = &FLOWS[self.dice.weighted(&weights)];
        let wants_error = self.dice.chance(self.config.error_ratio);
        let wants_slow = self.dice.chance(self.config.slow_ratio);

        let mut builder = TraceBuilder::new(&mut self.dice, start);
        (flow.build)(&mut builder, &mut self.memory);
        let trace_id = builder.trace_id;
        let mut nodes = builder.nodes;
        // Flows stay far below the cap; a prefix keeps every span's parent if one ever does not.
        nodes.truncate(MAX_SPANS_PER_TRACE);

        let is_error = wants_error && inject_error(&mut nodes, &mut self.dice);
        let is_slow = wants_slow && inject_slowness(&mut nodes, &mut self.dice);
        self.memory.forget_missing(&trace_id, &nodes);
        let trace = GeneratedTrace {
            trace_id,
            flow: flow.name,
            is_error,
            is_slow,
            resource_spans: vec![],
        };
        Built { trace, nodes }
    }
}

/// Groups a trace's spans by pod, then by scope, each in order of first appearance.
fn group(cast: &Cast, nodes: Vec<Node>) -> Vec<ResourceSpans> {
    // (pod, its scopes) per entry of `out`, to find where a span goes without comparing protos.
    let mut keys: Vec<(usize, Vec<u16>)> = Vec::new();
    let mut out: Vec<ResourceSpans> = Vec::new();
    for node in nodes {
        let pod = node.pod.index();
        let at = keys.iter().position(|(p, _)| *p == pod).unwrap_or_else(|| {
            keys.push((pod, Vec::new()));
            out.push(ResourceSpans {
                resource: Some(cast.resources[pod].clone()),
                scope_spans: Vec::new(),
                schema_url: String::new(),
            });
            out.len() - 1
        });
        let (_, scopes) = &mut keys[at];
        let scope_spans = &mut out[at].scope_spans;
        let within = scopes
            .iter()
            .position(|&s| s == node.scope)
            .unwrap_or_else(|| {
                scopes.push(node.scope);
                scope_spans.push(ScopeSpans {
                    scope: Some(cast.scopes[usize::from(node.scope)].clone()),
                    spans: Vec::new(),
                    schema_url: String::new(),
                });
                scope_spans.len() - 1
            });
        scope_spans[within].spans.push(node.span);
    }
    out
}

/// Groups spans by scope, in order of first appearance.
fn group_scopes(cast: &Cast, spans: Vec<(u16, Span)>) -> Vec<ScopeSpans> {
    let mut out: Vec<(u16, Vec<Span>)> = Vec::new();
    for (scope, span) in spans {
        match out.iter_mut().find(|(s, _)| *s == scope) {
            Some((_, group)) => group.push(span),
            None => out.push((scope, vec![span])),
        }
    }
    out.into_iter()
        .map(|(scope, spans)| ScopeSpans {
            scope: Some(cast.scopes[usize::from(scope)].clone()),
            spans,
            schema_url: String::new(),
        })
        .collect()
}
