//! Black-box tests: the real `strata` binary on loopback ports, real clients (the OpenTelemetry
//! Python SDK, tonic, reqwest), real readers (pyarrow, DuckDB) and a real S3 server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod amplification;
mod architecture;
mod bad_input;
mod client_clocks;
mod compaction;
mod config_files;
mod deploy_files;
mod distributed;
mod durability;
mod kill_loop;
mod otel_sdk;
mod outage;
mod poison;
mod search_eval;
mod tenants;
mod trace_api;
mod wal_faults;
