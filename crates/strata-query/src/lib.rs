//! Strata's read path: which blocks a tenant has (a polled, cached blocklist), caches of bloom
//! shards and Parquet footers, and finding a trace by ID across blocks and the data an ingester
//! has not flushed yet, merged and de-duplicated.
//!
//! Recent data (not yet in the bucket) comes from the ingester in the same process through the
//! [`RecentData`] trait, or from ingesters in other processes over the internal gRPC API of
//! `proto/strata/ingester/v1/ingester.proto`, whose both ends live here ([`IngesterPool`] asks,
//! [`IngesterService`] answers).
//!
//! This crate does not know HTTP or Tempo's response shapes (that is `strata-api`), nor how the
//! ingester holds its data.

mod blocklist;
mod cache;
mod config;
mod error;
mod metrics;
mod recent;
mod search;
mod stats;
mod tags;
mod trace_by_id;

pub use blocklist::Blocklist;
pub use config::{IngestersConfig, QueryConfig};
pub use error::{Error, Result};
pub use metrics::QueryMetrics;
pub use recent::{
    IngesterPool, IngesterService, InternalMethod, RecentData, RecentSource, Resolve,
};
pub use search::{
    OutValue, SearchMetrics, SearchRequest, SearchResult, SpanHit, SpansetHit, TraceHit,
};
pub use stats::{OperationStats, StatsRequest, StatsResult};
pub use strata_block::RollupCell;
pub use strata_block::{TagSummary, TagValue, TagValues};
pub use tags::TagDiscovery;
pub use trace_by_id::{Querier, TimeRange, TraceLookup};
