//! OTLP/gRPC: `opentelemetry.proto.collector.trace.v1.TraceService/Export` on :4317, gzip and
//! zstd accepted.
//!
//! The service is hand-wired (in the shape tonic generates) around a codec that hands over the
//! raw message bytes, for two reasons: a malformed message must get `InvalidArgument` with the
//! decoder's message (tonic's prost codec answers `Internal`), and a request that sanitizing does
//! not change goes to the WAL as received, without re-encoding.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::body::Body;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Code, Status};

use super::{TENANT_HEADER, export_response, grpc_code, status, tenant};
use crate::error::Error;
use crate::ingester::Ingester;

/// The gRPC method path.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The OTLP trace service.
#[derive(Clone)]
pub struct OtlpGrpcService {
    ingester: Arc<Ingester>,
    max_message_bytes: usize,
    multitenancy: bool,
}

impl OtlpGrpcService {
    /// A service pushing to `ingester`, refusing messages over `max_message_bytes`; with
    /// `multitenancy`, every request must name its tenant.
    pub fn new(ingester: Arc<Ingester>, max_message_bytes: usize, multitenancy: bool) -> Self {
        Self {
            ingester,
            max_message_bytes,
            multitenancy,
        }
    }
}

impl NamedService for OtlpGrpcService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<B> tower::Service<http::Request<B>> for OtlpGrpcService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != EXPORT_PATH {
            return Box::pin(async { Ok(Status::unimplemented("unknown method").into_http()) });
        }
        let export = Export(Arc::clone(&self.ingester), self.multitenancy);
        let limit = self.max_message_bytes;
        Box::pin(async move {
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            accept.enable(CompressionEncoding::Zstd);
            let mut grpc = Grpc::new(RawCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(limit), None);
            let mut response = grpc.unary(export, req).await;
            // tonic refuses oversized messages with OUT_OF_RANGE; OTLP (and our contract) calls
            // that RESOURCE_EXHAUSTED.
            let headers = response.headers_mut();
            if headers.get(Status::GRPC_STATUS).is_some_and(|v| v == "11") {
                headers.insert(Status::GRPC_STATUS, (Code::ResourceExhausted as i32).into());
            }
            Ok(response)
        })
    }
}

struct Export(Arc<Ingester>, bool);

impl UnaryService<Bytes> for Export {
    type Response = ExportTraceServiceResponse;
    type Future = tonic::codegen::BoxFuture<tonic::Response<Self::Response>, Status>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (ingester, multitenancy) = (Arc::clone(&self.0), self.1);
        Box::pin(async move {
            let header = request.metadata().get(TENANT_HEADER).map(|v| v.as_bytes());
            let tenant = tenant(header, multitenancy).map_err(to_status)?;
            let raw = request.into_inner();
            let decoded = ExportTraceServiceRequest::decode(raw.clone())
                .map_err(|e| Status::invalid_argument(format!("malformed OTLP protobuf: {e}")))?;
            let outcome = ingester
                .push(tenant, decoded, Some(raw))
                .await
                .map_err(to_status)?;
            Ok(tonic::Response::new(export_response(&outcome)))
        })
    }
}

fn to_status(error: Error) -> Status {
    let code = grpc_code(error.kind());
    let message = error.to_string();
    if matches!(error, Error::Limited(_) | Error::Backpressure(_)) {
        let details = status::RpcStatus {
            code: code as i32,
            message: message.clone(),
            details: vec![status::retry_after(1)],
        };
        Status::with_details(code, message, Bytes::from(details.encode_to_vec()))
    } else {
        Status::new(code, message)
    }
}

/// Encodes responses with prost; decodes requests to their raw bytes.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl Codec for RawCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = Bytes;
    type Encoder = tonic_prost::ProstEncoder<ExportTraceServiceResponse>;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::new(Default::default())
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawDecoder
    }
}

struct RawDecoder;

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown` resolves; in-flight requests finish first.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: OtlpGrpcService,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), tonic::transport::Error> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .layer(super::panics::grpc_layer())
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
