//! `wal_record`: a WAL segment file's bytes through the replay decoder. Every record it returns
//! must be one of the file's records, whole and in order (checked against an encoder written
//! from the format's documentation), and all of them when it reports no damage; every record's
//! payload is decoded and converted to spans, as replay does. (What spans then make of a block is the
//! OTLP targets' part.)

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use strata_ingest::wal::decode_segment_bytes;

use crate::wire::{WAL_MAGIC, wal_record as encode_record};

/// A WAL segment.
pub fn wal_record(data: &[u8]) {
    crate::panics::install();
    let (records, damage) = decode_segment_bytes(data);
    // Every record read is one of the file's, whole, in file order, and never overlapping the
    // one before: replay skips damage, it never invents or reorders a record.
    let mut at = 0usize;
    let mut intact = WAL_MAGIC.to_vec();
    for record in &records {
        let encoded = encode_record(
            record.tenant.as_str().as_bytes(),
            record.received_unix_nano,
            &record.payload,
        );
        let found = data
            .get(at..)
            .and_then(|rest| {
                rest.windows(encoded.len())
                    .position(|w| w == encoded.as_slice())
            })
            .map(|p| at + p);
        let Some(found) = found else {
            panic!("a record read is not in the segment after the one before it");
        };
        at = found + encoded.len();
        intact.extend(encoded);
    }
    if damage.is_empty() {
        // Nothing skipped: the file is the magic and these records, or an empty or torn new
        // segment with nothing in it.
        assert!(
            intact.as_slice() == data || (records.is_empty() && WAL_MAGIC.starts_with(data)),
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
