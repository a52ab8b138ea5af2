//! Strata's write path: OTLP receivers (gRPC and HTTP), validation and per-tenant limits, the
//! write-ahead log, live trace assembly, block cutting, and flushing blocks to object storage.
//!
//! Nothing here answers queries or compacts blocks; those roles meet this one only through
//! object storage (and, for not-yet-flushed data, a narrow read interface added with the query
//! path).

pub mod config;
mod error;
mod flush;
mod ingester;
mod limits;
mod live;
mod metrics;
pub mod receiver;
mod sanitize;
pub mod wal;

pub use error::{Error, Result};
pub use ingester::{Ingester, PushOutcome};
pub use metrics::IngestMetrics;
pub use sanitize::{SanitizeLimits, SanitizeReport, sanitize};
