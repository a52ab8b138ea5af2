//! `wal_record`: a WAL segment file's bytes through the replay decoder. What it returns must be
//! exactly the records the bytes begin with (checked against an encoder written from the
//! format's documentation), all of them when it reports no damage; and every record's payload
//! is decoded and converted to spans, as replay does. (What spans then make of a block is the
//! OTLP targets' part.)

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use strata_ingest::wal::decode_segment_bytes;

use crate::wire::{WAL_MAGIC, wal_record as encode_record};

/// A WAL segment.
pub fn wal_record(data: &[u8]) {
    crate::panics::install();
    let bytes = Bytes::copy_from_slice(data);
    let (records, damage) = decode_segment_bytes(&bytes);
    if !data.starts_with(WAL_MAGIC) {
        assert!(
            records.is_empty(),
            "records read from a file without the magic"
        );
        assert!(damage.is_some(), "a file without the magic reads as intact");
        return;
    }
    let mut prefix = WAL_MAGIC.to_vec();
    for record in &records {
        prefix.extend(encode_record(
            record.tenant.as_str().as_bytes(),
            record.received_unix_nano,
            &record.payload,
        ));
    }
    assert!(
        data.starts_with(&prefix),
        "the records read are not the segment's first records"
    );
    if damage.is_none() {
        assert_eq!(
            prefix.len(),
            data.len(),
            "bytes left unread in an intact segment"
        );
    }
    for record in records {
        // Replay skips a record whose payload does not decode, and keeps the rest.
        if let Ok(request) = ExportTraceServiceRequest::decode(record.payload) {
            let _ = strata_model::otlp::spans_from_request(request);
        }
    }
}
