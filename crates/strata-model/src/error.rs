//! Errors of the data model: what makes an ID, a tenant or a span invalid.

/// Why a value from the outside world is not a valid part of the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A trace ID that is not 16 bytes long.
    #[error("trace ID must be 16 bytes, got {len}")]
    TraceIdLength {
        /// The length received.
        len: usize,
    },
    /// A trace ID of all zero bytes.
    #[error("trace ID is all zeros")]
    TraceIdZero,
    /// A span ID that is not 8 bytes long.
    #[error("span ID must be 8 bytes, got {len}")]
    SpanIdLength {
        /// The length received.
        len: usize,
    },
    /// A span ID of all zero bytes.
    #[error("span ID is all zeros")]
    SpanIdZero,
    /// A parent span ID that is neither empty nor 8 bytes long.
    #[error("parent span ID must be empty or 8 bytes, got {len}")]
    ParentSpanIdLength {
        /// The length received.
        len: usize,
    },
    /// A hex ID that could not be parsed.
    #[error("invalid hex ID {text:?}: {reason}")]
    HexId {
        /// The text received (truncated to 64 characters).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A tenant ID that breaks the tenant rules.
    #[error("invalid tenant ID {tenant:?}: {reason}")]
    Tenant {
        /// The tenant received (truncated to 64 characters).
        tenant: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A request without a tenant while multitenancy is on.
    #[error("no tenant: X-Scope-OrgID is required when multitenancy is enabled")]
    NoTenant,
    /// An attribute value holding JSON that does not describe an OTLP `AnyValue`.
    #[error("invalid attribute JSON: {0}")]
    AttrJson(String),
}

/// Result with the model's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortens text taken from a request before it is echoed in an error message.
pub(crate) fn truncate_for_message(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The kind of a failure, shared by every crate's errors so that one place (the API layer, or a
/// receiver for its own protocol) can map kinds to HTTP and gRPC status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or breaks a rule: the client must change it (400,
    /// `InvalidArgument`).
    BadInput,
    /// What was asked for does not exist (404, `NotFound`).
    NotFound,
    /// A limit was reached: the client may retry later (429, `ResourceExhausted`).
    Overloaded,
    /// The request was too large (413, `ResourceExhausted`).
    TooLarge,
    /// The request's format or encoding is not one the endpoint speaks (415, `Unimplemented`).
    Unsupported,
    /// The service cannot take the request now, e.g. it is shutting down (503, `Unavailable`).
    Unavailable,
    /// The request does not say who it is for: no tenant while multitenancy is on (401,
    /// `Unauthenticated`).
    Unauthenticated,
    /// Something broke inside; not the client's fault (500, `Internal`).
    Internal,
}

impl ErrorKind {
    /// The HTTP status code for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            Self::BadInput => 400,
            Self::Unauthenticated => 401,
            Self::NotFound => 404,
            Self::TooLarge => 413,
            Self::Unsupported => 415,
            Self::Overloaded => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    /// The gRPC status code number for this kind (`InvalidArgument` is 3, ...).
    pub fn grpc_code(self) -> i32 {
        match self {
            Self::BadInput => 3,
            Self::NotFound => 5,
            Self::Overloaded | Self::TooLarge => 8,
            Self::Unsupported => 12,
            Self::Internal => 13,
            Self::Unavailable => 14,
            Self::Unauthenticated => 16,
        }
    }
}

impl Error {
    /// What kind of failure this is: every model error is the client's input.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::NoTenant => ErrorKind::Unauthenticated,
            _ => ErrorKind::BadInput,
        }
    }
}
