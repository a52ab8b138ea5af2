//! Errors of the write path, each with the kind that decides its status code.

use strata_model::ErrorKind;

/// What went wrong accepting or storing spans.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request body could not be decoded.
    #[error("{0}")]
    Malformed(String),
    /// The request is larger than the configured limit.
    #[error("{0}")]
    TooLarge(String),
    /// The content type or encoding is not one OTLP defines.
    #[error("{0}")]
    Unsupported(String),
    /// The tenant header is missing (with multitenancy on) or not a valid tenant ID.
    #[error("X-Scope-OrgID: {0}")]
    Tenant(strata_model::Error),
    /// A per-tenant limit refused the whole request.
    #[error("{0}")]
    Limited(String),
    /// The request would store more than a per-tenant limit allows at once; resending it can
    /// never succeed.
    #[error("{0}")]
    TooMuchToStore(String),
    /// The ingester holds as much unflushed data as it may; retry later.
    #[error(
        "ingester is at its memory limit (max_unflushed_bytes; {0} bytes wait to be flushed); retry later"
    )]
    Backpressure(u64),
    /// The ingester is shutting down.
    #[error("ingester is shutting down")]
    ShuttingDown,
    /// A requested flush did not finish in time (uploads go on, and are retried).
    #[error("{pending} blocks were still uploading after {waited:?}")]
    FlushTimeout {
        /// Blocks not uploaded yet.
        pending: usize,
        /// How long the flush waited.
        waited: std::time::Duration,
    },
    /// The write-ahead log failed.
    #[error("write-ahead log: {0}")]
    Wal(String),
    /// Writing a block failed.
    #[error(transparent)]
    Block(#[from] strata_block::Error),
}

impl Error {
    /// The kind of failure, for status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Tenant(e) => e.kind(),
            Self::Malformed(_) | Self::TooMuchToStore(_) => ErrorKind::BadInput,
            Self::TooLarge(_) => ErrorKind::TooLarge,
            Self::Unsupported(_) => ErrorKind::Unsupported,
            Self::Limited(_) | Self::Backpressure(_) => ErrorKind::Overloaded,
            Self::ShuttingDown | Self::Wal(_) | Self::FlushTimeout { .. } => ErrorKind::Unavailable,
            Self::Block(_) => ErrorKind::Internal,
        }
    }
}

/// Result with the ingest [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
