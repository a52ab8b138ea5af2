//! Black-box tests: the real `strata` binary on loopback ports, real clients (the OpenTelemetry
//! Python SDK, tonic, reqwest), real readers (pyarrow, DuckDB) and a real S3 server.

mod support;

mod bad_input;
mod durability;
mod otel_sdk;
