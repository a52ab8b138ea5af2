//! `otlp_proto` and `otlp_json`: a request body as the receivers decode it, checked as they
//! check it (default limits), converted to spans, written as a block and read back; and the
//! sanitized request through a WAL record and back, as replay would see it.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use strata_ingest::config::{ReceiversConfig, TenantLimits};
use strata_ingest::wal::decode_segment_bytes;
use strata_ingest::{SanitizeLimits, sanitize};

use crate::fixture::TENANT;
use crate::roundtrip::check_block_round_trip;
use crate::wire::{WAL_MAGIC, wal_record};

/// An OTLP/gRPC or OTLP/HTTP protobuf body.
pub fn otlp_proto(data: &[u8]) {
    crate::panics::install();
    if data.len()
        > ReceiversConfig::default()
            .otlp_grpc
            .max_message_bytes
            .as_u64() as usize
    {
        return;
    }
    if let Ok(request) = ExportTraceServiceRequest::decode(data) {
        accept(request);
    }
}

/// An OTLP/HTTP JSON body, decoded by the HTTP receiver's own function.
pub fn otlp_json(data: &[u8]) {
    crate::panics::install();
    if data.len() > ReceiversConfig::default().otlp_http.max_body_bytes.as_u64() as usize {
        return;
    }
    if let Ok(request) = strata_ingest::receiver::http::decode_json(data) {
        accept(request);
    }
}

/// What the ingester does with a decoded request, up to the block: sanitize with the default
/// limits, log to the WAL, convert, encode, and read back.
fn accept(mut request: ExportTraceServiceRequest) {
    sanitize(&mut request, &SanitizeLimits::of(&TenantLimits::default()));
    let kept: usize = request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .map(|ss| ss.spans.len())
        .sum();
    check_wal_round_trip(&request);
    let (spans, rejected) = strata_model::otlp::spans_from_request(request);
    if let Some(r) = rejected.first() {
        panic!(
            "sanitize kept span #{} that does not convert: {}",
            r.index, r.error
        );
    }
    assert_eq!(
        spans.len(),
        kept,
        "spans lost converting the sanitized request"
    );
    check_block_round_trip(spans);
}

/// The sanitized request as the ingester logs it, read back by the replay decoder.
fn check_wal_round_trip(request: &ExportTraceServiceRequest) {
    let payload = request.encode_to_vec();
    let mut segment = WAL_MAGIC.to_vec();
    segment.extend(wal_record(TENANT.as_bytes(), 7, &payload));
    let (records, damage) = decode_segment_bytes(&segment);
    assert!(
        damage.is_empty(),
        "a WAL record just written reads as damaged: {damage:?}"
    );
    assert_eq!(
        records.len(),
        1,
        "records read back from a one-record segment"
    );
    assert_eq!(records[0].payload, payload, "the WAL payload changed");
    match ExportTraceServiceRequest::decode(records[0].payload.clone()) {
        Ok(again) => assert_eq!(
            again.encode_to_vec(),
            payload,
            "a logged request decodes to another request at replay"
        ),
        Err(e) => panic!("a logged request does not decode at replay: {e}"),
    }
}
