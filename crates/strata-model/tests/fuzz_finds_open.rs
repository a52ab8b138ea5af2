//! Inputs the fuzz targets (`fuzz/`) found to change on their way through the model, kept as
//! regression tests that fail until it is fixed.

#![allow(clippy::unwrap_used)]

use strata_model::{AttrValue, KeyValue};

/// The `otlp_proto` target's round-trip check: a NaN or infinite double inside an array or
/// kvlist value (legal in OTLP protobuf) is stored in the block's attribute JSON as `null`,
/// which reads back as an empty value, so the span comes back changed. Scalar doubles have a
/// typed column and survive.
#[test]
fn non_finite_doubles_inside_arrays_survive_the_attribute_json() {
    for d in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let value = AttrValue::Array(vec![
            AttrValue::Double(d),
            AttrValue::KvList(vec![KeyValue {
                key: "k".into(),
                value: AttrValue::Double(d),
            }]),
        ]);
        let json = value.to_otlp_json();
        let back = AttrValue::from_otlp_json(&json).unwrap();
        // Compared through Debug, so that NaN equals NaN.
        assert_eq!(
            format!("{back:?}"),
            format!("{value:?}"),
            "{d} stored as {json}"
        );
    }
}
