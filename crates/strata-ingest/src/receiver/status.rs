//! `google.rpc.Status` and `google.rpc.RetryInfo`, the error bodies OTLP uses on both
//! transports, defined here as the few fields we send.

use serde::Serialize;

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, prost::Message, Serialize)]
pub struct RpcStatus {
    /// A `google.rpc.Code` value.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Error details.
    #[prost(message, repeated, tag = "3")]
    #[serde(skip)]
    pub details: Vec<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// Type URL of `value`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// Encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    /// How long to wait before retrying.
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoDuration {
    /// Whole seconds.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// A `RetryInfo` detail asking the client to wait `seconds` before retrying. OTLP clients retry
/// `RESOURCE_EXHAUSTED` only when it carries one.
pub fn retry_after(seconds: i64) -> Any {
    use prost::Message;
    Any {
        type_url: "type.googleapis.com/google.rpc.RetryInfo".into(),
        value: RetryInfo {
            retry_delay: Some(ProtoDuration { seconds, nanos: 0 }),
        }
        .encode_to_vec(),
    }
}
