//! Trace and span identifiers.

use std::fmt;

use crate::error::{Error, Result, truncate_for_message};

/// A 16-byte trace ID. Never all zeros once validated.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct TraceId(pub [u8; 16]);

/// An 8-byte span ID. Never all zeros once validated.
#[derive(Copy, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SpanId(pub [u8; 8]);

impl TraceId {
    /// Validates bytes from the wire: exactly 16 bytes, not all zero.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let id: [u8; 16] = bytes
            .try_into()
            .map_err(|_| Error::TraceIdLength { len: bytes.len() })?;
        if id == [0; 16] {
            return Err(Error::TraceIdZero);
        }
        Ok(Self(id))
    }

    /// Parses hex as found in URLs and CLIs: case-insensitive, at most 32 digits, shorter IDs
    /// left-padded with zeros (as Tempo does). The result must not be all zeros.
    pub fn from_hex(text: &str) -> Result<Self> {
        let bad = |reason| Error::HexId {
            text: truncate_for_message(text),
            reason,
        };
        if text.is_empty() {
            return Err(bad("empty"));
        }
        if text.len() > 32 {
            return Err(bad("longer than 32 hex digits"));
        }
        let mut padded = [b'0'; 32];
        padded[32 - text.len()..].copy_from_slice(text.as_bytes());
        let mut id = [0u8; 16];
        hex::decode_to_slice(padded, &mut id).map_err(|_| bad("not hexadecimal"))?;
        if id == [0; 16] {
            return Err(bad("all zeros"));
        }
        Ok(Self(id))
    }

    /// Lowercase hex, always 32 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl SpanId {
    /// Validates bytes from the wire: exactly 8 bytes, not all zero.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let id: [u8; 8] = bytes
            .try_into()
            .map_err(|_| Error::SpanIdLength { len: bytes.len() })?;
        if id == [0; 8] {
            return Err(Error::SpanIdZero);
        }
        Ok(Self(id))
    }

    /// Reads an OTLP `parent_span_id`: empty or all zeros means "no parent"; 8 other bytes are
    /// the parent; any other length is an error.
    pub fn parent_from_slice(bytes: &[u8]) -> Result<Option<Self>> {
        match bytes.len() {
            0 => Ok(None),
            8 if bytes.iter().all(|&b| b == 0) => Ok(None),
            8 => Self::from_slice(bytes).map(Some),
            len => Err(Error::ParentSpanIdLength { len }),
        }
    }

    /// Lowercase hex, always 16 digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TraceId({})", self.to_hex())
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({})", self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_id_rejects_wrong_length_and_zero() {
        assert_eq!(
            TraceId::from_slice(&[1; 15]),
            Err(Error::TraceIdLength { len: 15 })
        );
        assert_eq!(TraceId::from_slice(&[0; 16]), Err(Error::TraceIdZero));
        assert_eq!(TraceId::from_slice(&[7; 16]).unwrap().0, [7; 16]);
    }

    #[test]
    fn span_ids_and_parents() {
        assert_eq!(SpanId::from_slice(&[0; 8]), Err(Error::SpanIdZero));
        assert_eq!(SpanId::parent_from_slice(&[]), Ok(None));
        assert_eq!(SpanId::parent_from_slice(&[0; 8]), Ok(None));
        assert_eq!(
            SpanId::parent_from_slice(&[1; 3]),
            Err(Error::ParentSpanIdLength { len: 3 })
        );
        assert_eq!(SpanId::parent_from_slice(&[2; 8]), Ok(Some(SpanId([2; 8]))));
    }

    #[test]
    fn hex_is_left_padded_and_case_insensitive() {
        let id = TraceId::from_hex("ABCdef").unwrap();
        assert_eq!(id.to_hex(), "00000000000000000000000000abcdef");
        assert!(TraceId::from_hex("").is_err());
        assert!(TraceId::from_hex("0").is_err());
        assert!(TraceId::from_hex("xyz").is_err());
        assert!(TraceId::from_hex(&"1".repeat(33)).is_err());
        let full = "0123456789abcdef0123456789abcdef";
        assert_eq!(TraceId::from_hex(full).unwrap().to_hex(), full);
    }
}
