//! Whatever bytes arrive, decoding, sanitizing, conversion and block encoding return values or
//! errors, never panics: valid requests with random bytes flipped, truncated or appended.

#![allow(clippy::unwrap_used)]

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use proptest::prelude::*;
use prost::Message;
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, encode_block, read_spans};
use strata_model::TenantId;

fn sample() -> Vec<u8> {
    Workload::new(WorkloadConfig::default()).requests(60, 60)[0].encode_to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn mangled_requests_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..12),
        cut in any::<usize>(),
        tail in proptest::collection::vec(any::<u8>(), 0..16),
    ) {
        let mut bytes = sample();
        for (at, value) in flips {
            let at = at % bytes.len();
            bytes[at] = value;
        }
        bytes.truncate(cut % (bytes.len() + 1));
        bytes.extend(tail);
        let Ok(mut request) = ExportTraceServiceRequest::decode(bytes.as_slice()) else {
            return Ok(());
        };
        strata_ingest::sanitize(
            &mut request,
            &strata_ingest::SanitizeLimits {
                max_attribute_bytes: 64,
                ..Default::default()
            },
        );
        let (spans, rejected) = strata_model::otlp::spans_from_request(request);
        prop_assert!(rejected.is_empty(), "sanitized spans convert");
        if spans.is_empty() {
            return Ok(());
        }
        let identity = BlockIdentity::fresh(TenantId::new("t").unwrap());
        let count = spans.len();
        let block = encode_block(identity, BlockConfig::default(), spans).unwrap();
        let back = read_spans(block.data, "test").unwrap();
        // Copies of a span ID within a trace are kept once.
        prop_assert!(back.len() <= count && !back.is_empty());
    }

    #[test]
    fn random_json_never_panics(text in "\\PC{0,200}") {
        let _ = serde_json::from_str::<ExportTraceServiceRequest>(&text);
    }
}
