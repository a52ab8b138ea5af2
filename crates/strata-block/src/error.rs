//! Errors of the block format.

/// What went wrong writing or reading a block.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] strata_storage::Error),
    /// Parquet encoding or decoding failed.
    #[error("block {block}: parquet: {source}")]
    Parquet {
        /// Block ID, or `new` while writing.
        block: String,
        /// The Parquet error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Building or slicing Arrow arrays failed.
    #[error("block {block}: arrow: {source}")]
    Arrow {
        /// Block ID, or `new` while writing.
        block: String,
        /// The Arrow error.
        #[source]
        source: arrow::error::ArrowError,
    },
    /// Stored data does not have the shape the format promises.
    #[error("block {block}: corrupt {what}")]
    Corrupt {
        /// Block ID.
        block: String,
        /// What was found wrong.
        what: String,
    },
    /// A `meta.json` that cannot be parsed.
    #[error("{path}: invalid meta.json: {source}")]
    Meta {
        /// The meta object's path.
        path: String,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A block written by a newer Strata.
    #[error(
        "block {block}: format {format} version {version} is not supported (this build reads {supported} up to version {supported_version})"
    )]
    UnsupportedFormat {
        /// Block ID.
        block: String,
        /// The block's format name.
        format: String,
        /// The block's format version.
        version: u32,
        /// The format this build reads.
        supported: &'static str,
        /// The highest version this build reads.
        supported_version: u32,
    },
    /// Traces were pushed to a writer out of trace-ID order, or a block was empty.
    #[error("block writer: {0}")]
    Writer(String),
    /// Rollup rows that cannot be combined or stored.
    #[error("rollup: {0}")]
    Rollup(String),
    /// Reading one of several blocks failed: the error names the input at fault (the
    /// compactor's merge), so the others need not pay for it.
    #[error("input block {block}: {source}")]
    Input {
        /// The input that failed.
        block: uuid::Uuid,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// A tenant index that cannot be read.
    #[error("{path}: invalid tenant index: {what}")]
    Index {
        /// The index object's path.
        path: String,
        /// What was found wrong.
        what: String,
    },
}

impl Error {
    /// Whether an object of the block was not found: the block was deleted (compacted away)
    /// after it was listed. Storage errors raised inside the Parquet reader count too.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_not_found(),
            Self::Input { source, .. } => source.is_not_found(),
            Self::Parquet {
                source: parquet::errors::ParquetError::External(inner),
                ..
            } => inner
                .downcast_ref::<strata_storage::Error>()
                .is_some_and(strata_storage::Error::is_not_found),
            _ => false,
        }
    }
}

impl Error {
    /// Whether the object store failed the request (after its retries), as opposed to the
    /// bytes being wrong or absent: worth trying again later, and not the object's fault.
    pub fn is_storage_failure(&self) -> bool {
        match self {
            Self::Storage(e) => e.is_backend_failure(),
            Self::Input { source, .. } => source.is_storage_failure(),
            Self::Parquet {
                source: parquet::errors::ParquetError::External(inner),
                ..
            } => inner
                .downcast_ref::<strata_storage::Error>()
                .is_some_and(strata_storage::Error::is_backend_failure),
            _ => false,
        }
    }

    /// The input block a merge names as the one that failed.
    pub fn input_block(&self) -> Option<uuid::Uuid> {
        match self {
            Self::Input { block, .. } => Some(*block),
            _ => None,
        }
    }
}

/// Result with the block [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs a read of a block whose decoding is the parquet crate's: a panic in it (some damaged
/// pages make it panic, found by fuzzing) is corruption of that block, not a crash of the task.
pub(crate) async fn panics_as_corruption<T>(
    block: &str,
    what: &str,
    read: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(read).catch_unwind().await {
        Ok(result) => result,
        Err(_) => Err(corrupt(
            block,
            format!("{what}: the Parquet reader panicked"),
        )),
    }
}

pub(crate) fn corrupt(block: impl Into<String>, what: impl Into<String>) -> Error {
    Error::Corrupt {
        block: block.into(),
        what: what.into(),
    }
}
