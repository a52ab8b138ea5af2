//! Errors of the read path.

use strata_model::ErrorKind;

/// What went wrong answering a query.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Object storage failed.
    #[error(transparent)]
    Storage(#[from] strata_storage::Error),
    /// A block could not be read.
    #[error(transparent)]
    Block(#[from] strata_block::Error),
    /// The request is not valid.
    #[error("{0}")]
    BadRequest(String),
    /// Something failed on the server's side that is not storage or a block: a task that
    /// panicked or was cancelled. Never the client's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A task that did not finish (it panicked, or was cancelled), as an internal error.
    pub(crate) fn task(what: &str, e: &tokio::task::JoinError) -> Self {
        tracing::error!(task = what, error = %e, "a query task failed");
        Self::Internal(format!("{what} failed: {e}"))
    }
}

impl Error {
    /// Whether an object was not found (e.g. a block compacted away during a query).
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Storage(s) => s.is_not_found(),
            Self::Block(b) => b.is_not_found(),
            Self::BadRequest(_) | Self::Internal(_) => false,
        }
    }

    /// The kind of failure, for status codes.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::BadRequest(_) => ErrorKind::BadInput,
            Self::Storage(_) | Self::Block(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// Result with the query [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
