//! OTLP/HTTP: `POST /v1/traces` on :4318 with `application/x-protobuf` or `application/json`
//! bodies, optionally gzip-compressed. Responses and error bodies use the request's encoding.

use std::io::Read;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

use super::{TENANT_HEADER, export_response, grpc_code, http_status, status::RpcStatus, tenant};
use crate::error::{Error, Result};
use crate::ingester::Ingester;

/// The OTLP/HTTP traces path.
pub const TRACES_PATH: &str = "/v1/traces";

#[derive(Clone)]
struct Receiver {
    ingester: Arc<Ingester>,
    max_body_bytes: usize,
    multitenancy: bool,
}

/// Body encodings OTLP/HTTP defines.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Protobuf,
    Json,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// The OTLP/HTTP router; with `multitenancy`, every request must name its tenant.
pub fn router(ingester: Arc<Ingester>, max_body_bytes: usize, multitenancy: bool) -> Router {
    Router::new()
        .route(TRACES_PATH, post(export))
        .with_state(Receiver {
            ingester,
            max_body_bytes,
            multitenancy,
        })
        .layer(super::panics::http_layer())
}

async fn export(State(receiver): State<Receiver>, headers: HeaderMap, body: Body) -> Response {
    let format = match content_format(&headers) {
        Ok(format) => format,
        Err(e) => return error_response(None, e),
    };
    match handle(&receiver, &headers, body, format).await {
        Ok(response) => response,
        Err(e) => error_response(Some(format), e),
    }
}

async fn handle(
    receiver: &Receiver,
    headers: &HeaderMap,
    body: Body,
    format: Format,
) -> Result<Response> {
    let tenant = tenant(
        headers.get(TENANT_HEADER).map(HeaderValue::as_bytes),
        receiver.multitenancy,
    )?;
    let limit = receiver.max_body_bytes;
    let gzip = content_gzip(headers)?;
    let body = read_body(body, limit).await?;
    let body = if gzip { gunzip(&body, limit)? } else { body };
    let (request, raw) = match format {
        Format::Protobuf => {
            let request = ExportTraceServiceRequest::decode(body.clone())
                .map_err(|e| Error::Malformed(format!("malformed OTLP protobuf: {e}")))?;
            (request, Some(body))
        }
        Format::Json => (decode_json(&body)?, None),
    };
    let outcome = receiver.ingester.push(tenant, request, raw).await?;
    let response = export_response(&outcome);
    let body = match format {
        Format::Protobuf => response.encode_to_vec(),
        Format::Json => serde_json::to_vec(&response).unwrap_or_default(),
    };
    Ok(([(header::CONTENT_TYPE, format.content_type())], body).into_response())
}

/// Decodes an OTLP/JSON body (already decompressed) into a request, as the receiver does.
/// Public so that the fuzz targets (`fuzz/`) reach the receiver's own decoding.
pub fn decode_json(body: &[u8]) -> Result<ExportTraceServiceRequest> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request: ExportTraceServiceRequest =
        serde_path_to_error::deserialize(&mut de).map_err(|e| {
            Error::Malformed(format!(
                "malformed OTLP JSON at `{}`: {}",
                e.path(),
                e.inner()
            ))
        })?;
    de.end()
        .map_err(|e| Error::Malformed(format!("malformed OTLP JSON: {e}")))?;
    Ok(request)
}

fn content_format(headers: &HeaderMap) -> Result<Format> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Format::Protobuf),
        "application/json" => Ok(Format::Json),
        _ => Err(Error::Unsupported(format!(
            "unsupported content type {value:?}: send application/x-protobuf or application/json"
        ))),
    }
}

fn content_gzip(headers: &HeaderMap) -> Result<bool> {
    let value = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match value.as_deref() {
        None | Some("") | Some("identity") => Ok(false),
        Some("gzip") => Ok(true),
        Some(other) => Err(Error::Unsupported(format!(
            "unsupported content encoding {other:?}: send gzip or no encoding"
        ))),
    }
}

/// Most bytes read and thrown away from an oversized body so the client hears the 413 instead
/// of a reset connection.
const MAX_DRAIN_BYTES: usize = 64 << 20;

/// Reads at most `limit` bytes of body. A larger body is read on (and discarded) up to
/// [`MAX_DRAIN_BYTES`], so the client is still reading when the 413 comes, then refused.
async fn read_body(mut body: Body, limit: usize) -> Result<Bytes> {
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| Error::Malformed(format!("could not read the request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen <= limit {
            buf.extend_from_slice(&data);
        } else if seen > limit.saturating_add(MAX_DRAIN_BYTES) {
            break;
        }
    }
    if seen > limit {
        return Err(too_large(limit));
    }
    Ok(buf.freeze())
}

fn too_large(limit: usize) -> Error {
    Error::TooLarge(format!("request body exceeds the limit of {limit} bytes"))
}

/// Decompresses at most `limit` bytes; more is refused as too large (a gzip bomb costs nothing).
fn gunzip(body: &[u8], limit: usize) -> Result<Bytes> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(body)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Malformed(format!("invalid gzip body: {e}")))?;
    if out.len() > limit {
        return Err(Error::TooLarge(format!(
            "decompressed request body exceeds the limit of {limit} bytes"
        )));
    }
    Ok(Bytes::from(out))
}

fn error_response(format: Option<Format>, error: Error) -> Response {
    let status = http_status(error.kind());
    let message = error.to_string();
    let rpc = RpcStatus {
        code: grpc_code(error.kind()) as i32,
        message: message.clone(),
        details: Vec::new(),
    };
    let mut response = match format {
        Some(Format::Protobuf) => (
            status,
            [(header::CONTENT_TYPE, Format::Protobuf.content_type())],
            rpc.encode_to_vec(),
        )
            .into_response(),
        Some(Format::Json) => (
            status,
            [(header::CONTENT_TYPE, Format::Json.content_type())],
            serde_json::to_vec(&rpc).unwrap_or_default(),
        )
            .into_response(),
        None => (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            message,
        )
            .into_response(),
    };
    if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}
