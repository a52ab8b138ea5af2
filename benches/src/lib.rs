//! Strata's benchmarks and the deterministic workload generator they share with the tests, plus
//! a raw OTLP/gRPC client for load generation and hostile-input tests.
//!
//! [`workload`] generates reproducible, realistic OpenTelemetry traces (OTLP protobuf messages)
//! for measuring ingest, storage size and scan speed; it is not a load driver. [`suite`] is the
//! benchmark suite that `strata-bench` runs (`benches/run`), and [`report`] the tables it writes.

pub mod otlp;
pub mod report;
pub mod suite;
pub mod workload;
