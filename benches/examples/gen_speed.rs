//! Measures the workload generator: how long a million spans take, how many spans a trace has
//! per flow, and how many bytes a span takes as encoded OTLP protobuf.
//!
//! `cargo run --release -p strata-bench --example gen_speed [-- SPANS]`
#![allow(clippy::print_stdout, reason = "the example's output is its report")]

use std::time::Instant;

use prost::Message;
use strata_bench::workload::{GeneratedTrace, Workload, WorkloadConfig, flow_names};

fn main() {
    let total = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let config = WorkloadConfig::default();

    // The generator's own cost: each trace is dropped as soon as it is counted.
    let started = Instant::now();
    let mut workload = Workload::new(config);
    let mut spans = 0;
    while spans < total {
        spans += workload.next_trace().span_count();
    }
    println!(
        "{spans} spans generated and dropped trace by trace: {:.2?}",
        started.elapsed()
    );

    // The cost when the caller keeps everything, as a test building a fixture would.
    let started = Instant::now();
    let mut workload = Workload::new(config);
    let mut traces = Vec::new();
    let mut spans = 0;
    while spans < total {
        let trace = workload.next_trace();
        spans += trace.span_count();
        traces.push(trace);
    }
    println!(
        "{spans} spans kept as {} traces: {:.2?}",
        traces.len(),
        started.elapsed()
    );
    report_traces(&traces, spans);
    drop(traces);

    let started = Instant::now();
    let requests = Workload::new(config).requests(total, 512);
    let elapsed = started.elapsed();
    println!(
        "\n{total} spans kept as {} requests of <= 512 spans: {elapsed:.2?}",
        requests.len()
    );
    let bytes: usize = requests.iter().map(Message::encoded_len).sum();
    println!(
        "OTLP bytes per span, batched requests: {:.0}",
        bytes as f64 / total as f64
    );
}

fn report_traces(traces: &[GeneratedTrace], spans: usize) {
    let per_trace: usize = traces
        .iter()
        .map(|t| t.clone().into_request().encoded_len())
        .sum();
    let span_only: usize = traces
        .iter()
        .flat_map(|t| t.spans())
        .map(Message::encoded_len)
        .sum();
    let errors = traces.iter().filter(|t| t.is_error).count();
    let slow = traces.iter().filter(|t| t.is_slow).count();
    println!(
        "average spans per trace: {:.1}",
        spans as f64 / traces.len() as f64
    );
    println!(
        "OTLP bytes per span, one request per trace: {:.0}",
        ratio(per_trace, spans)
    );
    println!(
        "OTLP bytes per span, Span messages alone:   {:.0}",
        ratio(span_only, spans)
    );
    println!("traces with an injected error: {errors}, slow: {slow}");

    println!(
        "\n{:<15} {:>7} {:>6} {:>4} {:>4} {:>6} {:>4}",
        "flow", "traces", "share", "min", "p50", "mean", "max"
    );
    for flow in flow_names() {
        let mut counts: Vec<usize> = traces
            .iter()
            .filter(|t| t.flow == flow)
            .map(GeneratedTrace::span_count)
            .collect();
        counts.sort_unstable();
        let at = |percent: usize| {
            let index = percent * counts.len().saturating_sub(1) / 100;
            counts.get(index).copied().unwrap_or(0)
        };
        let share = 100.0 * ratio(counts.len(), traces.len());
        let mean = ratio(counts.iter().sum(), counts.len());
        let (n, min, p50, max) = (counts.len(), at(0), at(50), at(100));
        println!("{flow:<15} {n:>7} {share:>5.1}% {min:>4} {p50:>4} {mean:>6.1} {max:>4}");
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    a as f64 / b.max(1) as f64
}
