//! Attribute keys and values, as OTLP's `KeyValue` and `AnyValue`.

use opentelemetry_proto::tonic::common::v1 as otlp;
use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;

use compact_str::CompactString;

use crate::error::{Error, Result};

/// One attribute: a key and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    /// The attribute name, e.g. `http.request.method`. Held inline up to 24 bytes, as nearly
    /// every key is: no allocation per attribute key.
    pub key: CompactString,
    /// The value.
    pub value: AttrValue,
}

/// An attribute value: OTLP's `AnyValue`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum AttrValue {
    /// An `AnyValue` with no value set.
    #[default]
    Empty,
    /// A UTF-8 string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Double(f64),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// An array of values.
    Array(Vec<AttrValue>),
    /// A nested list of key/value pairs.
    KvList(Vec<KeyValue>),
}

impl KeyValue {
    /// A string attribute.
    pub fn str(key: impl Into<CompactString>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Str(value.into()),
        }
    }

    /// An integer attribute.
    pub fn int(key: impl Into<CompactString>, value: i64) -> Self {
        Self {
            key: key.into(),
            value: AttrValue::Int(value),
        }
    }
}

impl AttrValue {
    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer, if it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// Encodes an array or kvlist value as OTLP/JSON (`{"arrayValue":{"values":[...]}}`), the
    /// form the block format stores such values in. Scalars encode the same way.
    pub fn to_otlp_json(&self) -> String {
        let any = self.to_otlp();
        // Serializing plain data structs to a String cannot fail: no maps with non-string keys,
        // no I/O. Fall back to an empty object rather than panic all the same.
        serde_json::to_string(&any).unwrap_or_else(|_| "{}".to_owned())
    }

    /// Decodes a value written by [`AttrValue::to_otlp_json`].
    pub fn from_otlp_json(json: &str) -> Result<Self> {
        let any: otlp::AnyValue =
            serde_json::from_str(json).map_err(|e| Error::AttrJson(e.to_string()))?;
        Ok(Self::from_otlp(any))
    }

    /// Converts from OTLP, taking ownership so strings move rather than copy.
    pub fn from_otlp(value: otlp::AnyValue) -> Self {
        match value.value {
            None => Self::Empty,
            Some(OtlpValue::StringValue(s)) => Self::Str(s),
            Some(OtlpValue::BoolValue(b)) => Self::Bool(b),
            Some(OtlpValue::IntValue(i)) => Self::Int(i),
            Some(OtlpValue::DoubleValue(d)) => Self::Double(d),
            Some(OtlpValue::BytesValue(b)) => Self::Bytes(b),
            Some(OtlpValue::ArrayValue(a)) => {
                Self::Array(a.values.into_iter().map(Self::from_otlp).collect())
            }
            Some(OtlpValue::KvlistValue(kv)) => Self::KvList(KeyValue::from_otlp_list(kv.values)),
            // A string-table index only means something inside an OTLP profiles message, which
            // carries the table; in a trace there is nothing to resolve it against.
            Some(OtlpValue::StringValueStrindex(_)) => Self::Empty,
        }
    }

    /// Converts to OTLP.
    pub fn to_otlp(&self) -> otlp::AnyValue {
        let value = match self {
            Self::Empty => None,
            Self::Str(s) => Some(OtlpValue::StringValue(s.clone())),
            Self::Bool(b) => Some(OtlpValue::BoolValue(*b)),
            Self::Int(i) => Some(OtlpValue::IntValue(*i)),
            Self::Double(d) => Some(OtlpValue::DoubleValue(*d)),
            Self::Bytes(b) => Some(OtlpValue::BytesValue(b.clone())),
            Self::Array(values) => Some(OtlpValue::ArrayValue(otlp::ArrayValue {
                values: values.iter().map(Self::to_otlp).collect(),
            })),
            Self::KvList(values) => Some(OtlpValue::KvlistValue(otlp::KeyValueList {
                values: KeyValue::to_otlp_list(values),
            })),
        };
        otlp::AnyValue { value }
    }

    /// Approximate heap bytes held by the value, for memory accounting.
    pub fn heap_size(&self) -> usize {
        match self {
            Self::Empty | Self::Bool(_) | Self::Int(_) | Self::Double(_) => 0,
            Self::Str(s) => s.len(),
            Self::Bytes(b) => b.len(),
            Self::Array(values) => values
                .iter()
                .map(|v| v.heap_size() + std::mem::size_of::<AttrValue>())
                .sum(),
            Self::KvList(values) => KeyValue::heap_size_of(values),
        }
    }
}

impl KeyValue {
    /// Converts a list of OTLP key/values, moving their strings.
    pub fn from_otlp_list(list: Vec<otlp::KeyValue>) -> Vec<Self> {
        list.into_iter()
            .map(|kv| Self {
                key: CompactString::from(kv.key),
                value: kv.value.map(AttrValue::from_otlp).unwrap_or_default(),
            })
            .collect()
    }

    /// Converts a list of key/values to OTLP.
    pub fn to_otlp_list(list: &[Self]) -> Vec<otlp::KeyValue> {
        list.iter()
            .map(|kv| otlp::KeyValue {
                key: kv.key.to_string(),
                value: Some(kv.value.to_otlp()),
                key_strindex: 0,
            })
            .collect()
    }

    /// Approximate heap bytes held by a list of key/values.
    pub fn heap_size_of(list: &[Self]) -> usize {
        list.iter()
            .map(|kv| kv.key.len() + kv.value.heap_size() + std::mem::size_of::<KeyValue>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complex_values_round_trip_through_json() {
        let value = AttrValue::Array(vec![
            AttrValue::Str("a".into()),
            AttrValue::Int(i64::MAX),
            AttrValue::Double(0.1),
            AttrValue::Bool(true),
            AttrValue::Bytes(vec![0, 255]),
            AttrValue::KvList(vec![KeyValue::str("k", "v")]),
            AttrValue::Empty,
        ]);
        let json = value.to_otlp_json();
        assert!(json.starts_with(r#"{"arrayValue""#), "{json}");
        assert_eq!(AttrValue::from_otlp_json(&json).unwrap(), value);
    }

    #[test]
    fn bad_json_is_an_error_not_a_panic() {
        assert!(AttrValue::from_otlp_json("{\"intValue\": \"x\"}").is_err());
        assert!(AttrValue::from_otlp_json("[").is_err());
    }
}
