//! Strata's data model: trace and span IDs, tenants, attributes, spans and traces, and the
//! mapping between OTLP messages and these types.
//!
//! This crate is for the shapes every other crate agrees on and the pure functions over them
//! (validating IDs and tenants, ordering the spans of a trace, computing trace-level facts,
//! combining copies of a trace). It does no I/O and knows nothing of Parquet, the WAL, tokio or
//! the network.

mod attr;
mod error;
mod ids;
pub mod otlp;
mod span;
mod tenant;
mod trace;

pub use attr::{AttrValue, KeyValue};
/// A string held inline up to 24 bytes: the type of attribute keys.
pub use compact_str::CompactString;
pub use error::{Error, ErrorKind, Result};
pub use ids::{SpanId, TraceId};
pub use span::{Event, Link, Resource, Scope, Span, SpanKind, StatusCode};
pub use tenant::{DEFAULT_TENANT, MAX_TENANT_LEN, TENANT_HEADER, TenantId, tenant_from_header};
pub use trace::{NestedSet, TraceLayout, TraceSummary, dedupe_spans, order_trace, trace_layout};

/// Re-export of the OTLP protobuf types this crate maps to and from.
pub use opentelemetry_proto::tonic as proto;
