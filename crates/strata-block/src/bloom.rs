//! Bloom filters over the trace IDs of a block, split into shards so that a lookup fetches one
//! small object. A trace ID is added to exactly one shard, chosen by FNV-1a of its bytes.

use std::hash::{Hash, Hasher};

use bloomfilter::Bloom;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_model::TraceId;

use crate::error::{Result, corrupt};

/// The seed of every shard (SipHash-1-3 keys), fixed so shards are reproducible.
const SEED: &[u8; 32] = b"strata/trace-id-bloom/v1 seed..!";
/// Header bytes `bloomfilter` puts before the bits: version, length, k, seed.
const HEADER_LEN: usize = 1 + 8 + 4 + 32;
/// More hash functions than this is never sensible and would make a hostile shard slow to
/// check.
const MAX_HASHES: u32 = 64;
/// Upper bound on the number of shards.
pub const MAX_SHARDS: u32 = 1000;

/// How a block's bloom filter was built, as recorded in `meta.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BloomMeta {
    /// Number of `bloom-N` objects.
    pub shards: u32,
    /// False-positive rate the filter was sized for.
    pub false_positive_rate: f64,
}

/// The hashed form of a trace ID: its 16 bytes, written to the hasher as they are, so the
/// hash does not depend on platform word size or endianness.
struct BloomKey([u8; 16]);

impl Hash for BloomKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

/// Which shard holds a trace ID.
pub fn shard_for(trace_id: &TraceId, shards: u32) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in trace_id.as_bytes() {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % shards.max(1)
}

/// Builds the shards for a set of trace IDs: as many shards of at most `shard_bytes` as the
/// false-positive rate needs, each sized for the IDs that land in it.
pub fn build_shards(
    ids: &[TraceId],
    fp_rate: f64,
    shard_bytes: usize,
) -> Result<(BloomMeta, Vec<Bytes>)> {
    let fp_rate = fp_rate.clamp(1e-6, 0.5);
    let n = ids.len().max(1);
    let total_bytes = Bloom::<BloomKey>::compute_bitmap_size(n, fp_rate).max(1);
    let shards = total_bytes
        .div_ceil(shard_bytes.max(64))
        .clamp(1, MAX_SHARDS as usize) as u32;
    let mut buckets: Vec<Vec<&TraceId>> = vec![Vec::new(); shards as usize];
    for id in ids {
        buckets[shard_for(id, shards) as usize].push(id);
    }
    let per_shard_bytes = total_bytes.div_ceil(shards as usize).max(8);
    let mut out = Vec::with_capacity(shards as usize);
    for bucket in buckets {
        let mut bloom = Bloom::new_with_seed(per_shard_bytes, bucket.len().max(1), SEED)
            .map_err(|e| corrupt("new", format!("bloom filter parameters: {e}")))?;
        for id in bucket {
            bloom.set(&BloomKey(id.0));
        }
        out.push(Bytes::from(bloom.into_bytes()));
    }
    Ok((
        BloomMeta {
            shards,
            false_positive_rate: fp_rate,
        },
        out,
    ))
}

/// One shard read back from storage.
pub struct BloomShard(Bloom<BloomKey>);

impl BloomShard {
    /// Parses a shard, refusing anything that could make a check misbehave.
    pub fn parse(bytes: &[u8], block: &str) -> Result<Self> {
        let bad = |what: &str| corrupt(block, format!("bloom shard: {what}"));
        if bytes.len() <= HEADER_LEN {
            return Err(bad("too short"));
        }
        let k = u32::from_le_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]);
        if k == 0 || k > MAX_HASHES {
            return Err(bad("implausible number of hash functions"));
        }
        Bloom::from_slice(bytes).map(Self).map_err(bad)
    }

    /// Bytes the shard holds, for cache accounting.
    pub fn size(&self) -> usize {
        self.0.as_slice().len()
    }

    /// Whether the trace ID may be in the block (false means it is certainly not).
    pub fn may_contain(&self, trace_id: &TraceId) -> bool {
        self.0.check(&BloomKey(trace_id.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u32, salt: u8) -> Vec<TraceId> {
        (1..=n)
            .map(|i| {
                let mut id = [salt; 16];
                id[..4].copy_from_slice(&i.to_le_bytes());
                TraceId(id)
            })
            .collect()
    }

    #[test]
    fn never_says_no_to_a_present_id_and_rarely_yes_to_an_absent_one() {
        let present = ids(20_000, 1);
        let (meta, shards) = build_shards(&present, 0.01, 4096).unwrap();
        assert!(
            meta.shards > 1,
            "expected several shards, got {}",
            meta.shards
        );
        let parsed: Vec<BloomShard> = shards
            .iter()
            .map(|b| BloomShard::parse(b, "t").unwrap())
            .collect();
        for id in &present {
            assert!(parsed[shard_for(id, meta.shards) as usize].may_contain(id));
        }
        let absent = ids(20_000, 2);
        let false_positives = absent
            .iter()
            .filter(|id| parsed[shard_for(id, meta.shards) as usize].may_contain(id))
            .count();
        assert!(
            false_positives < 600,
            "{false_positives} false positives in 20000"
        );
    }

    #[test]
    fn hostile_shards_are_refused() {
        assert!(BloomShard::parse(&[], "t").is_err());
        let (_, shards) = build_shards(&ids(10, 1), 0.01, 1024).unwrap();
        let mut bytes = shards[0].to_vec();
        bytes[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(BloomShard::parse(&bytes, "t").is_err());
        let mut truncated = shards[0].to_vec();
        truncated.pop();
        assert!(BloomShard::parse(&truncated, "t").is_err());
        // A header claiming zero bits would divide by zero on check.
        let mut empty = shards[0][..HEADER_LEN].to_vec();
        empty[1..9].copy_from_slice(&0u64.to_le_bytes());
        assert!(BloomShard::parse(&empty, "t").is_err());
    }
}
