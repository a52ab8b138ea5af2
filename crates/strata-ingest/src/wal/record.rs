//! The WAL's on-disk format, and reading it back record by record.
//!
//! A segment file starts with the 8-byte magic `STRATAW1`, then holds records:
//!
//! ```text
//! record := body_len: u32 LE | crc32(body): u32 LE | body
//! body   := kind: u8 (1 = OTLP ExportTraceServiceRequest) | tenant_len: u8 | tenant
//!           | received_unix_nano: u64 LE | payload (the request, protobuf-encoded)
//! ```
//!
//! Reading never trusts the bytes. A record whose length or checksum does not hold is damage:
//! the reader skips it and resynchronises on the next offset where a whole record with a
//! matching checksum starts, so bit rot in one record costs that record only. Damage that runs
//! to the end of the file is normally a torn write at the tail after a crash.

use std::io::{self, Read};

use bytes::Bytes;
use strata_model::TenantId;

/// First bytes of every segment file.
pub(crate) const MAGIC: &[u8; 8] = b"STRATAW1";
/// Bytes before the body.
pub(crate) const HEADER_LEN: usize = 8;
/// Largest body accepted when reading, so a corrupt length cannot make replay allocate wildly.
pub(crate) const MAX_BODY_LEN: usize = 512 << 20;
/// Most bytes of a body that are not payload: kind, tenant length, tenant, receive time.
const MAX_BODY_OVERHEAD: usize = 1 + 1 + u8::MAX as usize + 8;
/// Largest request payload one record can hold. Receivers must not accept larger requests.
pub const MAX_PAYLOAD_LEN: usize = MAX_BODY_LEN - MAX_BODY_OVERHEAD;
/// Smallest valid body: kind, tenant length, a one-byte tenant, receive time.
const MIN_BODY_LEN: usize = 1 + 1 + 1 + 8;
const KIND_OTLP_TRACES: u8 = 1;
/// Bytes read from the file at a time.
const READ_CHUNK: usize = 64 << 10;
/// Consumed bytes at the front of the buffer are dropped once there are this many.
const COMPACT_AT: usize = 1 << 20;

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

/// Encodes one record, header included. The payload must be at most [`MAX_PAYLOAD_LEN`].
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

/// What was wrong where damage starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DamageKind {
    /// The file does not start with the magic.
    BadMagic,
    /// Fewer bytes remain than a record header or its declared body.
    Truncated,
    /// A length too small for a record or beyond [`MAX_BODY_LEN`].
    BadLength(usize),
    /// The checksum does not match.
    BadChecksum,
    /// The checksum matches but the body is not a valid record.
    BadBody(String),
}

/// A run of bytes that held no readable record, skipped by the reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// File offset where it starts.
    pub(crate) offset: u64,
    /// Bytes skipped.
    pub(crate) bytes: u64,
    /// Records in it whose checksum matched but whose body was invalid (other damaged records
    /// cannot be counted: their lengths are not trusted).
    pub(crate) bad_records: usize,
    /// What was wrong at `offset`.
    pub(crate) kind: DamageKind,
    /// Whether it runs to the end of the file (a torn tail, after a crash).
    pub(crate) at_tail: bool,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.kind {
            DamageKind::BadMagic => write!(f, "not a WAL segment (bad magic)")?,
            DamageKind::Truncated => write!(f, "torn record at offset {}", self.offset)?,
            DamageKind::BadLength(len) => {
                write!(
                    f,
                    "implausible record length {len} at offset {}",
                    self.offset
                )?;
            }
            DamageKind::BadChecksum => write!(f, "checksum mismatch at offset {}", self.offset)?,
            DamageKind::BadBody(reason) => {
                write!(f, "invalid record at offset {}: {reason}", self.offset)?;
            }
        }
        write!(f, "; {} bytes skipped", self.bytes)
    }
}

/// What the reader found next.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// An intact record.
    Record(WalRecord),
    /// Bytes that held no readable record; reading goes on after them.
    Damage(Damage),
}

/// What starts at an offset.
enum Frame {
    /// A valid record, `len` bytes with its header.
    Record(WalRecord, usize),
    /// A record whose checksum matches but whose body is invalid, `len` bytes with its header.
    BadBody(String, usize),
    /// No record: damage of this kind.
    None(DamageKind),
}

/// Reads the records of one segment from `source`, holding at most one record (or, after a
/// corrupt length, the rest of the segment) in memory. Never panics, whatever the bytes.
pub(crate) struct SegmentReader<R> {
    source: R,
    /// The file's length: a record may not claim to run beyond it.
    len: u64,
    /// Bytes read; those in `start..end` are not consumed yet.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[start]`.
    offset: u64,
    eof: bool,
    started: bool,
    done: bool,
    bad_magic: bool,
    /// Damage being skipped, not reported yet.
    damage: Option<Damage>,
    /// A record found right after damage, returned after the damage.
    queued: Option<WalRecord>,
}

impl<R: Read> SegmentReader<R> {
    /// A reader of a segment of `len` bytes.
    pub(crate) fn new(source: R, len: u64) -> Self {
        Self {
            source,
            len,
            buf: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            started: false,
            done: false,
            bad_magic: false,
            damage: None,
            queued: None,
        }
    }

    /// Whether the file did not start with the magic (it may still hold records).
    pub(crate) fn bad_magic(&self) -> bool {
        self.bad_magic
    }

    /// The next record or damage; `None` at the end. An error is an I/O error of the source:
    /// reading cannot go on.
    pub(crate) fn next_item(&mut self) -> io::Result<Option<Item>> {
        if let Some(record) = self.queued.take() {
            return Ok(Some(Item::Record(record)));
        }
        if self.done {
            return Ok(None);
        }
        if !self.started {
            self.started = true;
            if self.check_magic()? {
                return Ok(None);
            }
        }
        loop {
            if !self.fill(1)? {
                self.done = true;
                let end = self.offset;
                return Ok(self
                    .damage
                    .take()
                    .map(|d| Item::Damage(close(d, end, true))));
            }
            let at = self.offset;
            let scanning = self.damage.is_some();
            let frame = self.frame(scanning)?;
            match frame {
                Frame::Record(record, len) => {
                    self.advance(len);
                    if let Some(damage) = self.damage.take() {
                        self.queued = Some(record);
                        return Ok(Some(Item::Damage(close(damage, at, false))));
                    }
                    return Ok(Some(Item::Record(record)));
                }
                Frame::BadBody(reason, len) => {
                    self.damage
                        .get_or_insert_with(|| open(at, DamageKind::BadBody(reason)))
                        .bad_records += 1;
                    self.advance(len);
                }
                Frame::None(kind) => {
                    self.damage.get_or_insert_with(|| open(at, kind));
                    self.advance(1);
                }
            }
        }
    }

    /// Reads the magic. Returns true when the file is empty or a prefix of the magic (a
    /// segment torn while it was created: nothing in it).
    fn check_magic(&mut self) -> io::Result<bool> {
        let whole = self.fill(MAGIC.len())?;
        let head = &self.buf[self.start..self.end];
        if whole && head.starts_with(MAGIC) {
            self.advance(MAGIC.len());
            return Ok(false);
        }
        if !whole && MAGIC.starts_with(head) {
            self.done = true;
            return Ok(true);
        }
        self.bad_magic = true;
        self.damage = Some(open(0, DamageKind::BadMagic));
        Ok(false)
    }

    /// What starts at the current offset. `scanning` (looking for a record inside damage) also
    /// requires a plausible body start before the checksum is computed.
    fn frame(&mut self, scanning: bool) -> io::Result<Frame> {
        if !self.fill(HEADER_LEN)? {
            return Ok(Frame::None(DamageKind::Truncated));
        }
        let h = &self.buf[self.start..self.start + HEADER_LEN];
        let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize;
        let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
        if !(MIN_BODY_LEN..=MAX_BODY_LEN).contains(&len) {
            return Ok(Frame::None(DamageKind::BadLength(len)));
        }
        if self.offset + (HEADER_LEN + len) as u64 > self.len {
            return Ok(Frame::None(DamageKind::Truncated));
        }
        if scanning {
            let prefix = (2 + usize::from(u8::MAX)).min(len);
            if !self.fill(HEADER_LEN + prefix)? {
                return Ok(Frame::None(DamageKind::Truncated));
            }
            let body = &self.buf[self.start + HEADER_LEN..self.start + HEADER_LEN + prefix];
            if !plausible_body_start(body, len) {
                return Ok(Frame::None(DamageKind::BadChecksum));
            }
        }
        if !self.fill(HEADER_LEN + len)? {
            return Ok(Frame::None(DamageKind::Truncated));
        }
        let body = &self.buf[self.start + HEADER_LEN..self.start + HEADER_LEN + len];
        if crc32fast::hash(body) != crc {
            return Ok(Frame::None(DamageKind::BadChecksum));
        }
        Ok(match decode_body(Bytes::copy_from_slice(body)) {
            Ok(record) => Frame::Record(record, HEADER_LEN + len),
            Err(reason) => Frame::BadBody(reason, HEADER_LEN + len),
        })
    }

    /// Makes at least `n` unconsumed bytes available; false if the file ends first.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.end - self.start < n {
            if self.eof {
                return Ok(false);
            }
            if self.start == self.end || self.start >= COMPACT_AT {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let missing = n - (self.end - self.start);
            let want = self.end + missing.max(READ_CHUNK);
            if self.buf.len() < want {
                self.buf.resize(want, 0);
            }
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn advance(&mut self, n: usize) {
        self.start += n;
        self.offset += n as u64;
    }
}

fn open(offset: u64, kind: DamageKind) -> Damage {
    Damage {
        offset,
        bytes: 0,
        bad_records: 0,
        kind,
        at_tail: false,
    }
}

fn close(mut damage: Damage, end: u64, at_tail: bool) -> Damage {
    damage.bytes = end.saturating_sub(damage.offset);
    damage.at_tail = at_tail;
    damage
}

/// Whether `prefix` (the first bytes of a body of `len` bytes) can start a record: the kind, and
/// a tenant ID that is valid and leaves room for the receive time.
fn plausible_body_start(prefix: &[u8], len: usize) -> bool {
    let (Some(&kind), Some(&tenant_len)) = (prefix.first(), prefix.get(1)) else {
        return false;
    };
    let tenant_len = usize::from(tenant_len);
    if kind != KIND_OTLP_TRACES || tenant_len == 0 || 2 + tenant_len + 8 > len {
        return false;
    }
    prefix
        .get(2..2 + tenant_len)
        .and_then(|t| std::str::from_utf8(t).ok())
        .is_some_and(|t| TenantId::new(t).is_ok())
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
pub(crate) mod tests {
    use super::*;

    pub(crate) fn segment(records: &[Vec<u8>]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        for r in records {
            out.extend_from_slice(r);
        }
        out
    }

    /// Every record and damage in `data`, read through a source that returns at most 7 bytes
    /// per read (so buffer refills are exercised everywhere).
    pub(crate) fn read_all(data: &[u8]) -> (Vec<WalRecord>, Vec<Damage>) {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                let n = out.len().min(7).min(self.0.len());
                out[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut reader = SegmentReader::new(Trickle(data), data.len() as u64);
        let (mut records, mut damage) = (Vec::new(), Vec::new());
        while let Some(item) = reader.next_item().unwrap() {
            match item {
                Item::Record(r) => records.push(r),
                Item::Damage(d) => damage.push(d),
            }
        }
        (records, damage)
    }

    #[test]
    fn records_round_trip() {
        let t = TenantId::new("team-a").unwrap();
        let data = segment(&[encode(&t, 7, b"abc"), encode(&t, 8, b"")]);
        let (records, damage) = read_all(&data);
        assert_eq!(damage, vec![]);
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
        for cut in 0..full.len() {
            let (records, damage) = read_all(&full[..cut]);
            let expect = usize::from(cut >= MAGIC.len() + first.len());
            assert_eq!(records.len(), expect, "cut at {cut}");
            let clean = cut <= MAGIC.len() || cut == MAGIC.len() + first.len();
            assert_eq!(damage.len(), usize::from(!clean), "cut at {cut}");
            assert!(damage.iter().all(|d| d.at_tail), "cut at {cut}: {damage:?}");
        }
    }

    #[test]
    fn corruption_is_detected_not_trusted() {
        let t = TenantId::new("t").unwrap();
        let mut data = segment(&[encode(&t, 1, b"payload")]);
        let last = data.len() - 1;
        data[last] ^= 0xff;
        let (records, damage) = read_all(&data);
        assert!(records.is_empty());
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].kind, DamageKind::BadChecksum);
        assert!(damage[0].at_tail);
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 4]);
        let (_, damage) = read_all(&huge);
        assert_eq!(damage[0].kind, DamageKind::BadLength(u32::MAX as usize));
        let (records, damage) = read_all(b"garbage!!");
        assert!(records.is_empty());
        assert_eq!(damage[0].kind, DamageKind::BadMagic);
    }

    /// Five records of different tenants and sizes, and the byte range of each in the segment.
    fn five_records() -> (Vec<u8>, Vec<(WalRecord, std::ops::Range<usize>)>) {
        let mut data = MAGIC.to_vec();
        let mut expected = Vec::new();
        for i in 0..5u8 {
            let tenant = TenantId::new(&format!("tenant-{i}")).unwrap();
            let payload: Vec<u8> = (0..u32::from(i) * 13 + 3).map(|b| b as u8 ^ i).collect();
            let record = encode(&tenant, u64::from(i), &payload);
            let range = data.len()..data.len() + record.len();
            data.extend_from_slice(&record);
            expected.push((
                WalRecord {
                    tenant,
                    received_unix_nano: u64::from(i),
                    payload: Bytes::from(payload),
                },
                range,
            ));
        }
        (data, expected)
    }

    #[test]
    fn corruption_anywhere_costs_only_the_records_it_touches() {
        let (data, expected) = five_records();
        for at in 0..data.len() {
            for (width, value) in [(1, None), (1, Some(0)), (4, Some(0xff)), (9, Some(0))] {
                let mut bad = data.clone();
                let end = (at + width).min(bad.len());
                for b in &mut bad[at..end] {
                    *b = value.unwrap_or(*b ^ 0x5a);
                }
                if bad == data {
                    continue;
                }
                let want: Vec<&WalRecord> = expected
                    .iter()
                    .filter(|(_, range)| range.end <= at || range.start >= end)
                    .map(|(r, _)| r)
                    .collect();
                let (records, damage) = read_all(&bad);
                let got: Vec<&WalRecord> = records.iter().collect();
                assert_eq!(got, want, "bytes {at}..{end} set to {value:?}");
                assert!(!damage.is_empty(), "bytes {at}..{end}: damage not reported");
                let skipped: u64 = damage.iter().map(|d| d.bytes).sum();
                let kept: usize = want
                    .iter()
                    .map(|r| HEADER_LEN + 2 + r.tenant.as_str().len() + 8 + r.payload.len())
                    .sum();
                let magic = if at < MAGIC.len() { 0 } else { MAGIC.len() };
                assert_eq!(
                    skipped as usize + kept + magic,
                    data.len(),
                    "bytes {at}..{end}"
                );
            }
        }
    }

    #[test]
    fn damage_in_the_middle_is_not_at_the_tail() {
        let (mut data, expected) = five_records();
        let middle = expected[2].1.clone();
        data[middle.start + HEADER_LEN + 3] ^= 1;
        let (records, damage) = read_all(&data);
        assert_eq!(records.len(), 4);
        assert_eq!(
            damage,
            vec![Damage {
                offset: middle.start as u64,
                bytes: middle.len() as u64,
                bad_records: 0,
                kind: DamageKind::BadChecksum,
                at_tail: false,
            }]
        );
    }

    #[test]
    fn a_record_that_checks_but_does_not_decode_is_skipped_alone() {
        let t = TenantId::new("t").unwrap();
        let mut unknown = encode(&t, 1, b"from a future version");
        unknown[HEADER_LEN] = 9;
        let crc = crc32fast::hash(&unknown[HEADER_LEN..]);
        unknown[4..8].copy_from_slice(&crc.to_le_bytes());
        let data = segment(&[encode(&t, 0, b"a"), unknown, encode(&t, 2, b"c")]);
        let (records, damage) = read_all(&data);
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].received_unix_nano, 2);
        assert_eq!(damage.len(), 1);
        assert_eq!(damage[0].bad_records, 1);
        assert!(matches!(damage[0].kind, DamageKind::BadBody(_)));
    }

    #[test]
    fn a_read_error_is_returned_not_taken_for_the_end() {
        struct Failing(usize);
        impl Read for Failing {
            fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
                if self.0 == 0 {
                    return Err(io::Error::other("injected EIO"));
                }
                let n = out.len().min(self.0);
                out[..n].fill(0);
                self.0 -= n;
                Ok(n)
            }
        }
        let mut reader = SegmentReader::new(Failing(4), 100);
        assert!(reader.next_item().is_err());
    }
}
