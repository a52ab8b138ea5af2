//! Storage errors.

/// What went wrong talking to object storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object does not exist.
    #[error("object {path} not found")]
    NotFound {
        /// The object's path.
        path: String,
    },
    /// A create-only write found the object already there.
    #[error("object {path} already exists")]
    AlreadyExists {
        /// The object's path.
        path: String,
    },
    /// An object is larger than its reader accepts; it was not read.
    #[error("object {path} is {size} bytes, over the {max} bytes it may have")]
    TooLarge {
        /// The object's path.
        path: String,
        /// Its size.
        size: u64,
        /// The most the reader accepts.
        max: u64,
    },
    /// The backend failed (after its own retries).
    #[error("object storage {op} {path}: {source}")]
    Backend {
        /// The operation: get, put, list, delete, head.
        op: &'static str,
        /// The object or prefix.
        path: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
    /// The storage configuration cannot be used.
    #[error("storage config `{key}`: {message}")]
    Config {
        /// The config key at fault.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    pub(crate) fn from_store(op: &'static str, path: &str, source: object_store::Error) -> Self {
        match source {
            object_store::Error::NotFound { .. } => Self::NotFound {
                path: path.to_owned(),
            },
            object_store::Error::AlreadyExists { .. } => Self::AlreadyExists {
                path: path.to_owned(),
            },
            source => Self::Backend {
                op,
                path: path.to_owned(),
                source,
            },
        }
    }

    /// Whether the error means the object is absent.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether the backend failed the request (an outage, a timeout, a refusal): worth
    /// trying again, and not the object's fault.
    pub fn is_backend_failure(&self) -> bool {
        matches!(self, Self::Backend { .. })
    }
}

/// Result with the storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
