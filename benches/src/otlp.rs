//! A minimal OTLP/gRPC client that sends pre-encoded (or deliberately malformed) request bytes,
//! so a load generator spends no CPU encoding and a test can send what no SDK would.

use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use tonic::Status;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// The OTLP trace export method.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends `body` as the request message of `path` (normally [`EXPORT_PATH`]), gzip-compressed if
/// asked, with `X-Scope-OrgID: tenant` if given.
pub async fn export_raw(
    channel: &Channel,
    body: Bytes,
    gzip: bool,
    tenant: Option<&str>,
    path: &'static str,
) -> Result<ExportTraceServiceResponse, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    if gzip {
        grpc = grpc.send_compressed(CompressionEncoding::Gzip);
    }
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(format!("connection not ready: {e}")))?;
    let mut request = tonic::Request::new(body);
    if let Some(tenant) = tenant {
        let value = tenant
            .parse()
            .map_err(|_| Status::invalid_argument("tenant is not a valid header value"))?;
        request.metadata_mut().insert("x-scope-orgid", value);
    }
    grpc.unary(
        request,
        http::uri::PathAndQuery::from_static(path),
        RawCodec,
    )
    .await
    .map(tonic::Response::into_inner)
}

#[derive(Clone, Copy, Default)]
struct RawCodec;
struct RawEncoder;
struct ResponseDecoder(tonic_prost::ProstDecoder<ExportTraceServiceResponse>);

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        self.0.decode(src)
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder(tonic_prost::ProstDecoder::new(Default::default()))
    }
}
