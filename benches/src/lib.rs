//! Strata's benchmarks and the deterministic workload generator they share with the tests.
//!
//! [`workload`] generates reproducible, realistic OpenTelemetry traces (OTLP protobuf messages)
//! for measuring ingest, storage size and scan speed; it is not a load driver.

pub mod workload;
