//! How much memory the ingester's in-memory form of a span takes on the standard workload:
//! the `Span` struct, the heap it points to (as `Span::heap_size` estimates it), and the number
//! of separate heap allocations, which each cost an allocator's rounding and header too.
//!
//! `cargo run --release -p strata-bench --example span_memory [-- SPANS]`
#![allow(clippy::print_stdout, reason = "the example's output is its report")]

use strata_bench::workload::{Workload, WorkloadConfig};
use strata_model::{AttrValue, KeyValue, Span};

fn allocations(list: &[KeyValue]) -> usize {
    usize::from(!list.is_empty())
        + list
            .iter()
            .map(|kv| usize::from(kv.key.is_heap_allocated()) + value_allocations(&kv.value))
            .sum::<usize>()
}

fn value_allocations(v: &AttrValue) -> usize {
    match v {
        AttrValue::Str(s) => usize::from(!s.is_empty()),
        AttrValue::Bytes(b) => usize::from(!b.is_empty()),
        AttrValue::Array(a) => 1 + a.iter().map(value_allocations).sum::<usize>(),
        AttrValue::KvList(l) => allocations(l),
        _ => 0,
    }
}

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let spans: Vec<Span> = Workload::new(WorkloadConfig::default())
        .requests(total, 512)
        .into_iter()
        .flat_map(|r| strata_model::otlp::spans_from_request(r).0)
        .collect();
    let n = spans.len() as f64;
    let heap: usize = spans.iter().map(Span::heap_size).sum();
    let attrs: usize = spans.iter().map(|s| s.attributes.len()).sum();
    let key_bytes: usize = spans
        .iter()
        .flat_map(|s| &s.attributes)
        .map(|kv| kv.key.len())
        .sum();
    let allocs: usize = spans
        .iter()
        .map(|s| {
            allocations(&s.attributes)
                + usize::from(!s.name.is_empty())
                + usize::from(!s.status_message.is_empty())
                + usize::from(!s.trace_state.is_empty())
                + usize::from(!s.events.is_empty())
                + s.events
                    .iter()
                    .map(|e| usize::from(!e.name.is_empty()) + allocations(&e.attributes))
                    .sum::<usize>()
                + usize::from(!s.links.is_empty())
        })
        .sum();
    println!("spans: {}", spans.len());
    println!("size_of::<Span>(): {} bytes", std::mem::size_of::<Span>());
    println!(
        "size_of::<KeyValue>(): {} bytes",
        std::mem::size_of::<KeyValue>()
    );
    println!("estimated heap per span: {:.0} bytes", heap as f64 / n);
    println!(
        "span attributes per span: {:.1}, key bytes per span: {:.0}",
        attrs as f64 / n,
        key_bytes as f64 / n
    );
    println!("heap allocations per span: {:.1}", allocs as f64 / n);
}
