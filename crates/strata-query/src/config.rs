//! The `query:` section of `strata.yaml`.

use std::time::Duration;

use bytesize::ByteSize;
use serde::Deserialize;

/// How queries find and read blocks.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// How often the blocklist is refreshed from object storage. Blocks an ingester in this
    /// process uploads are seen at once, without waiting for the poll. Default 30s.
    #[serde(with = "humantime_serde")]
    pub blocklist_poll: Duration,
    /// Memory for cached bloom filter shards. Default 64 MiB.
    pub bloom_cache_bytes: ByteSize,
    /// Memory for cached Parquet footers and page indexes. Default 256 MiB.
    pub footer_cache_bytes: ByteSize,
    /// Memory for cached block tag summaries (`tags.json`). Default 64 MiB.
    pub tag_cache_bytes: ByteSize,
    /// Blocks searched at once by one query. Default 16.
    pub concurrency: usize,
    /// A trace larger than this (OTLP-encoded) is returned truncated, marked partial. Default 50MB.
    pub max_trace_bytes: ByteSize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            blocklist_poll: Duration::from_secs(30),
            bloom_cache_bytes: ByteSize::mib(64),
            footer_cache_bytes: ByteSize::mib(256),
            tag_cache_bytes: ByteSize::mib(64),
            concurrency: 16,
            max_trace_bytes: ByteSize::mb(50),
        }
    }
}

impl QueryConfig {
    /// Checks values serde cannot; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if self.blocklist_poll.is_zero() {
            return Err("query.blocklist_poll must be above zero".into());
        }
        if self.concurrency == 0 {
            return Err("query.concurrency must be above zero".into());
        }
        if self.max_trace_bytes.as_u64() == 0 {
            return Err("query.max_trace_bytes must be above zero".into());
        }
        Ok(())
    }
}
