//! Encoders written from the formats' documentation, not from Strata's code, used to build
//! seeds and as the reference the decoders are checked against.

/// The WAL segment magic (`crates/strata-ingest/src/wal/record.rs`).
pub const WAL_MAGIC: &[u8; 8] = b"STRATAW1";

/// One WAL record: `body_len u32 LE | crc32(body) u32 LE | body`, where `body` is
/// `kind u8 (1) | tenant_len u8 | tenant | received_unix_nano u64 LE | payload`.
pub fn wal_record(tenant: &[u8], received_unix_nano: u64, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(10 + tenant.len() + payload.len());
    body.push(1);
    body.push(tenant.len() as u8);
    body.extend_from_slice(tenant);
    body.extend_from_slice(&received_unix_nano.to_le_bytes());
    body.extend_from_slice(payload);
    let mut out = Vec::with_capacity(8 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32(&body).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

/// CRC-32 (IEEE, reflected, as zlib and `crc32fast` compute it), bit by bit.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Protobuf: a varint.
pub fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Protobuf: a length-delimited field.
pub fn bytes_field(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 2), out);
    varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// Protobuf: a varint field.
pub fn varint_field(field: u32, v: u64, out: &mut Vec<u8>) {
    varint(u64::from(field << 3), out);
    varint(v, out);
}

/// Protobuf: a fixed64 field.
pub fn fixed64_field(field: u32, v: u64, out: &mut Vec<u8>) {
    varint(u64::from(field << 3 | 1), out);
    out.extend_from_slice(&v.to_le_bytes());
}

/// The internal API's `SearchRequest` (`proto/strata/ingester/v1/ingester.proto`).
pub fn search_request(
    query: &str,
    limit: u32,
    range: Option<(u64, u64)>,
    min_duration: Option<u64>,
) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(1, query.as_bytes(), &mut out);
    varint_field(2, u64::from(limit), &mut out);
    if let Some((start, end)) = range {
        fixed64_field(3, start, &mut out);
        fixed64_field(4, end, &mut out);
    }
    if let Some(min) = min_duration {
        varint_field(5, min, &mut out);
    }
    out
}

/// The internal API's `FindTraceRequest`.
pub fn find_trace_request(trace_id: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    bytes_field(1, trace_id, &mut out);
    out
}
