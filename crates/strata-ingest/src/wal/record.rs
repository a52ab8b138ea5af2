//! The WAL's on-disk format.
//!
//! A segment file starts with the 8-byte magic `STRATAW1`, then holds records:
//!
//! ```text
//! record := body_len: u32 LE | crc32(body): u32 LE | body
//! body   := kind: u8 (1 = OTLP ExportTraceServiceRequest) | tenant_len: u8 | tenant
//!           | received_unix_nano: u64 LE | payload (the request, protobuf-encoded)
//! ```
//!
//! A record whose length or checksum does not hold marks the end of what can be trusted in its
//! segment (normally a torn write at the tail after a crash).

use bytes::Bytes;
use strata_model::TenantId;

/// First bytes of every segment file.
pub(crate) const MAGIC: &[u8; 8] = b"STRATAW1";
/// Bytes before the body.
pub(crate) const HEADER_LEN: usize = 8;
/// Largest body accepted when reading, so a corrupt length cannot make replay allocate wildly.
pub(crate) const MAX_BODY_LEN: usize = 512 << 20;
const KIND_OTLP_TRACES: u8 = 1;

/// One record read back from the WAL.
#[derive(Debug, Clone, PartialEq)]
pub struct WalRecord {
    /// The tenant the spans belong to.
    pub tenant: TenantId,
    /// When the request was received, unix nanoseconds.
    pub received_unix_nano: u64,
    /// The OTLP `ExportTraceServiceRequest`, protobuf-encoded, as accepted.
    pub payload: Bytes,
}

/// Encodes one record, header included.
pub(crate) fn encode(tenant: &TenantId, received_unix_nano: u64, payload: &[u8]) -> Vec<u8> {
    let tenant = tenant.as_str().as_bytes();
    // Tenant IDs are validated to at most 150 bytes, so the length fits in a u8.
    let tenant_len = u8::try_from(tenant.len()).unwrap_or(u8::MAX);
    let tenant = &tenant[..usize::from(tenant_len)];
    let body_len = 1 + 1 + tenant.len() + 8 + payload.len();
    let mut out = Vec::with_capacity(HEADER_LEN + body_len);
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(KIND_OTLP_TRACES);
    out.push(tenant_len);
    out.extend_from_slice(tenant);
    out.extend_from_slice(&received_unix_nano.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[HEADER_LEN..]);
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Why reading a segment stopped before its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The file does not start with the magic.
    BadMagic,
    /// Fewer bytes remain than a record header or its declared body.
    Truncated { offset: usize },
    /// A length beyond [`MAX_BODY_LEN`].
    BadLength { offset: usize, len: usize },
    /// The checksum does not match.
    BadChecksum { offset: usize },
    /// The checksum matches but the body is not a valid record.
    BadBody { offset: usize, reason: String },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::BadMagic => write!(f, "not a WAL segment (bad magic)"),
            Self::Truncated { offset } => write!(f, "torn record at offset {offset}"),
            Self::BadLength { offset, len } => {
                write!(f, "implausible record length {len} at offset {offset}")
            }
            Self::BadChecksum { offset } => write!(f, "checksum mismatch at offset {offset}"),
            Self::BadBody { offset, reason } => {
                write!(f, "invalid record at offset {offset}: {reason}")
            }
        }
    }
}

/// Decodes every intact record of a segment's bytes, and the damage that stopped reading, if
/// any. Never panics, whatever the bytes.
pub(crate) fn decode_segment(data: &Bytes) -> (Vec<WalRecord>, Option<Damage>) {
    if data.len() < MAGIC.len() || &data[..MAGIC.len()] != MAGIC {
        return (Vec::new(), Some(Damage::BadMagic));
    }
    let mut records = Vec::new();
    let mut offset = MAGIC.len();
    while offset < data.len() {
        let Some(header) = data.get(offset..offset + HEADER_LEN) else {
            return (records, Some(Damage::Truncated { offset }));
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len > MAX_BODY_LEN {
            return (records, Some(Damage::BadLength { offset, len }));
        }
        let start = offset + HEADER_LEN;
        let Some(body) = data.get(start..start + len) else {
            return (records, Some(Damage::Truncated { offset }));
        };
        if crc32fast::hash(body) != crc {
            return (records, Some(Damage::BadChecksum { offset }));
        }
        match decode_body(data.slice(start..start + len)) {
            Ok(record) => records.push(record),
            Err(reason) => return (records, Some(Damage::BadBody { offset, reason })),
        }
        offset = start + len;
    }
    (records, None)
}

fn decode_body(body: Bytes) -> Result<WalRecord, String> {
    let kind = *body.first().ok_or("empty body")?;
    if kind != KIND_OTLP_TRACES {
        return Err(format!("unknown record kind {kind}"));
    }
    let tenant_len = usize::from(*body.get(1).ok_or("missing tenant length")?);
    let tenant = body.get(2..2 + tenant_len).ok_or("missing tenant")?;
    let tenant = std::str::from_utf8(tenant).map_err(|_| "tenant is not UTF-8")?;
    let tenant = TenantId::new(tenant).map_err(|e| e.to_string())?;
    let at = 2 + tenant_len;
    let time = body.get(at..at + 8).ok_or("missing receive time")?;
    let mut buf = [0u8; 8];
    buf.copy_from_slice(time);
    Ok(WalRecord {
        tenant,
        received_unix_nano: u64::from_le_bytes(buf),
        payload: body.slice(at + 8..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            out.extend_from_slice(r);
        }
        out
    }

    #[test]
    fn records_round_trip() {
        let t = TenantId::new("team-a").unwrap();
        let data = Bytes::from(segment(&[encode(&t, 7, b"abc"), encode(&t, 8, b"")]));
        let (records, damage) = decode_segment(&data);
        assert_eq!(damage, None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].tenant, t);
        assert_eq!(records[0].received_unix_nano, 7);
        assert_eq!(&records[0].payload[..], b"abc");
        assert_eq!(records[1].payload.len(), 0);
    }

    #[test]
    fn every_truncation_keeps_the_intact_prefix() {
        let t = TenantId::new("t").unwrap();
        let first = encode(&t, 1, b"first record");
        let full = segment(&[first.clone(), encode(&t, 2, b"second record")]);
        for cut in MAGIC.len()..full.len() {
            let (records, damage) = decode_segment(&Bytes::copy_from_slice(&full[..cut]));
            let expect = usize::from(cut >= MAGIC.len() + first.len());
            assert_eq!(records.len(), expect, "cut at {cut}");
            let clean = cut == MAGIC.len() || cut == MAGIC.len() + first.len();
            assert_eq!(damage.is_some(), !clean, "cut at {cut}");
        }
    }

    #[test]
    fn corruption_is_detected_not_trusted() {
        let t = TenantId::new("t").unwrap();
        let mut data = segment(&[encode(&t, 1, b"payload")]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let (records, damage) = decode_segment(&Bytes::from(data));
        assert!(records.is_empty());
        assert!(matches!(damage, Some(Damage::BadChecksum { .. })));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        assert!(matches!(
            decode_segment(&Bytes::from(huge)).1,
            Some(Damage::BadLength { .. })
        ));
        assert_eq!(
            decode_segment(&Bytes::from_static(b"garbage!!")).1,
            Some(Damage::BadMagic)
        );
    }
}
