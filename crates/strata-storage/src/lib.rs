//! Object storage for Strata: the few operations the rest of the system needs (get, ranged get,
//! put, list, delete) over any `object_store` backend — local disk (the default), memory (tests)
//! and S3-compatible servers — with request and byte counters on every call.
//!
//! This crate deals in paths and bytes only. It knows nothing of blocks, tenants or traces; the
//! key layout belongs to `strata-block`. Retries with backoff on transient errors are done by the
//! `object_store` client itself (configured from [`RetryConfig`]), so they are not repeated here.
//!
//! With the `testing` feature (enabled only from other crates' dev-dependencies), [`faults`]
//! offers a decorator that fails or stops requests by rule, so tests inject storage faults from
//! outside the code under test.

mod config;
mod error;
#[cfg(feature = "testing")]
pub mod faults;
mod metrics;
mod store;

pub use config::{LocalConfig, RetryConfig, S3Config, StorageBackend, StorageConfig};
pub use error::{Error, Result};
pub use metrics::StorageMetrics;
pub use object_store::path::Path;
pub use store::{ObjectInfo, Storage};
