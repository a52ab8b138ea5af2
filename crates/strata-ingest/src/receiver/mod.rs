//! OTLP receivers. Both share one anatomy: take the tenant from `X-Scope-OrgID`, decode the body
//! into an `ExportTraceServiceRequest` (keeping the raw protobuf when there is one), hand it to
//! [`Ingester::push`](crate::Ingester::push), and map the outcome to the transport: an
//! `ExportTraceServiceResponse` with `partial_success` when spans were refused, or an error status
//! chosen by [`ErrorKind`].

pub mod grpc;
pub mod http;
pub mod status;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use strata_model::{ErrorKind, TenantId};

use crate::error::{Error, Result};
use crate::ingester::PushOutcome;

/// The tenant header, lower case as HTTP/2 and gRPC metadata spell it.
pub const TENANT_HEADER: &str = "x-scope-orgid";

/// Reads the tenant from the header's value: absent means the default tenant; anything present
/// must be a valid tenant ID.
pub fn tenant_from_header(value: Option<&[u8]>) -> Result<TenantId> {
    match value {
        None => Ok(TenantId::default_tenant()),
        Some(bytes) => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                Error::Tenant(strata_model::Error::Tenant {
                    tenant: String::from_utf8_lossy(bytes).chars().take(64).collect(),
                    reason: "not UTF-8",
                })
            })?;
            TenantId::new(text).map_err(Error::Tenant)
        }
    }
}

/// The OTLP response for an outcome: `partial_success` is set when spans were refused or values
/// truncated, with a message saying which and why.
pub fn export_response(outcome: &PushOutcome) -> ExportTraceServiceResponse {
    let partial_success = (!outcome.messages.is_empty() || outcome.rejected_spans > 0).then(|| {
        ExportTracePartialSuccess {
            rejected_spans: outcome.rejected_spans as i64,
            error_message: outcome.messages.join("; "),
        }
    });
    ExportTraceServiceResponse { partial_success }
}

/// HTTP status for an error kind.
pub fn http_status(kind: ErrorKind) -> ::http::StatusCode {
    use ::http::StatusCode;
    match kind {
        ErrorKind::BadInput => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Unsupported => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// gRPC code for an error kind.
pub fn grpc_code(kind: ErrorKind) -> tonic::Code {
    match kind {
        ErrorKind::BadInput => tonic::Code::InvalidArgument,
        ErrorKind::NotFound => tonic::Code::NotFound,
        ErrorKind::Overloaded | ErrorKind::TooLarge => tonic::Code::ResourceExhausted,
        ErrorKind::Unsupported => tonic::Code::Unimplemented,
        ErrorKind::Unavailable => tonic::Code::Unavailable,
        ErrorKind::Internal => tonic::Code::Internal,
    }
}
