//! Storage configuration: which backend, where, and how to retry.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The `storage:` section of `strata.yaml`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Which backend holds the blocks: `local` (default), `memory` (tests only: lost on exit) or
    /// `s3` (any S3-compatible server).
    pub backend: StorageBackend,
    /// A key prefix put in front of every object, so several deployments can share a bucket.
    pub prefix: String,
    /// Settings of the `local` backend.
    pub local: LocalConfig,
    /// Settings of the `s3` backend.
    pub s3: S3Config,
    /// Retry and timeout settings for remote backends.
    pub retry: RetryConfig,
}

/// Which object store backend to use.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum StorageBackend {
    /// A directory on local disk.
    #[default]
    Local,
    /// Process memory; for tests.
    Memory,
    /// An S3-compatible object store.
    S3,
}

/// `storage.local`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// Directory holding the objects, relative to the working directory unless absolute.
    pub path: PathBuf,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./data/blocks"),
        }
    }
}

/// `storage.s3`. Any field left out is taken from the standard AWS environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
/// `AWS_ENDPOINT_URL`, ...), so secrets need not be written in the file.
#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct S3Config {
    /// Bucket name (required for the s3 backend).
    pub bucket: String,
    /// Endpoint URL for S3-compatible servers (MinIO and the like); AWS when unset.
    pub endpoint: Option<String>,
    /// Region; `us-east-1` when neither this nor `AWS_REGION` is set.
    pub region: Option<String>,
    /// Access key ID.
    pub access_key_id: Option<String>,
    /// Secret access key.
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials.
    pub session_token: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`), as MinIO needs. Default false
    /// (virtual-hosted style, `bucket.endpoint/key`).
    pub path_style: bool,
    /// Allow plain `http://` endpoints. Default false.
    pub allow_http: bool,
}

/// `storage.retry`: how remote requests are retried and timed out. Transient failures (5xx,
/// timeouts, connection resets) are retried with exponential backoff.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries after the first attempt. Default 10.
    pub max_retries: usize,
    /// First backoff. Default 100ms.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    /// Longest backoff. Default 15s.
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// No retry starts after this long since the first attempt. Default 3m.
    #[serde(with = "humantime_serde")]
    pub retry_timeout: Duration,
    /// Timeout of one request. Default 30s.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Timeout to establish a connection. Default 5s.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: StorageBackend::Local,
            prefix: String::new(),
            local: LocalConfig::default(),
            s3: S3Config::default(),
            retry: RetryConfig::default(),
        }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            retry_timeout: Duration::from_secs(180),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl StorageConfig {
    /// Checks values serde cannot: required fields of the chosen backend, URL shapes, ranges.
    pub fn validate(&self) -> Result<()> {
        let bad = |key, message: &str| {
            Err(Error::Config {
                key,
                message: message.to_owned(),
            })
        };
        if self.prefix.starts_with('/') || self.prefix.split('/').any(|s| s == "..") {
            return bad(
                "storage.prefix",
                "must be relative and must not contain `..`",
            );
        }
        match self.backend {
            StorageBackend::Local if self.local.path.as_os_str().is_empty() => {
                bad("storage.local.path", "must not be empty")
            }
            StorageBackend::S3 if self.s3.bucket.is_empty() => bad(
                "storage.s3.bucket",
                "is required when storage.backend is s3",
            ),
            StorageBackend::S3
                if self
                    .s3
                    .endpoint
                    .as_deref()
                    .is_some_and(|e| !(e.starts_with("http://") || e.starts_with("https://"))) =>
            {
                bad("storage.s3.endpoint", "must start with http:// or https://")
            }
            _ if self.retry.initial_backoff > self.retry.max_backoff => bad(
                "storage.retry.initial_backoff",
                "must not exceed storage.retry.max_backoff",
            ),
            _ if self.retry.request_timeout.is_zero() => {
                bad("storage.retry.request_timeout", "must be above zero")
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_needs_a_bucket_and_a_real_endpoint() {
        let mut config = StorageConfig {
            backend: StorageBackend::S3,
            ..Default::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("storage.s3.bucket"), "{err}");
        config.s3.bucket = "traces".into();
        config.s3.endpoint = Some("localhost:9000".into());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("storage.s3.endpoint"), "{err}");
        config.s3.endpoint = Some("http://localhost:9000".into());
        config.validate().unwrap();
    }

    #[test]
    fn prefix_cannot_escape() {
        let config = StorageConfig {
            prefix: "a/../../b".into(),
            ..Default::default()
        };
        assert!(config.validate().is_err());
    }
}
