//! OTLP receivers. Both share one anatomy: take the tenant from `X-Scope-OrgID`, decode the body
//! into an `ExportTraceServiceRequest` (keeping the raw protobuf when there is one), hand it to
//! [`Ingester::push`](crate::Ingester::push), and map the outcome to the transport: an
//! `ExportTraceServiceResponse` with `partial_success` when spans were refused, or an error status
//! chosen by [`ErrorKind`].

pub mod grpc;
pub mod http;
mod panics;
pub mod status;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceResponse,
};
use strata_model::{ErrorKind, TenantId};

use crate::error::{Error, Result};
use crate::ingester::PushOutcome;

pub use strata_model::TENANT_HEADER;

/// Reads the request's tenant from its header value, by the rule every endpoint shares
/// ([`strata_model::tenant_from_header`]).
pub fn tenant(value: Option<&[u8]>, multitenancy: bool) -> Result<TenantId> {
    strata_model::tenant_from_header(value, multitenancy).map_err(Error::Tenant)
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
    ::http::StatusCode::from_u16(kind.http_status())
        .unwrap_or(::http::StatusCode::INTERNAL_SERVER_ERROR)
}

/// gRPC code for an error kind.
pub fn grpc_code(kind: ErrorKind) -> tonic::Code {
    tonic::Code::from_i32(kind.grpc_code())
}
