//! What a tenant's directory of immutable objects holds: blocks under `<tenant>/blocks/` and
//! rollup segments under `<tenant>/rollups/` follow the same life cycle, so one listing and one
//! set of rules serve both.
//!
//! An entry `<id>/` is *live* once its `meta.json` exists. It stops being live when either
//! - its `compacted.json` marker exists (the compactor wrote a replacement, or retention dropped
//!   it), or
//! - another entry's meta names it in `compacted_from` (the replacement exists but the compactor
//!   stopped before marking its inputs).
//!
//! So a compactor killed at any step leaves each trace in exactly one live block. Deletion goes
//! `meta.json` first, the rest next, the marker last: a half-deleted entry has no meta and is
//! not live, and whatever is left is finished by the next cycle.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use strata_model::TenantId;
use strata_storage::{ObjectInfo, Path, Storage};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::layout::{COMPACTED_FILE, META_FILE};

/// The most bytes a `meta.json`, `compacted.json`, `tags.json` or rollup segment meta may have:
/// they are read whole, and real ones are kilobytes to a few MiB, so anything larger is refused
/// unread rather than allowed to exhaust memory.
pub const MAX_SMALL_OBJECT_BYTES: u64 = 64 << 20;

/// `compacted.json`: the entry is replaced (or dropped) and will be deleted after a grace period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactedMarker {
    /// The entry marked.
    pub id: Uuid,
    /// When it was marked, by the compactor's clock.
    pub compacted_at: DateTime<Utc>,
    /// What replaced it; empty when retention dropped it.
    #[serde(default)]
    pub replaced_by: Vec<Uuid>,
}

impl CompactedMarker {
    /// Parses a marker read from `path`.
    pub fn parse(bytes: &[u8], path: &str) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|source| Error::Meta {
            path: path.to_owned(),
            source,
        })
    }

    /// The JSON written to storage.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing a struct of plain fields to a Vec cannot fail.
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }
}

/// One entry directory as listed: which of its objects exist, and when it was last written to.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedEntry {
    /// The entry's directory, `<tenant>/<dir>/<id>`.
    pub prefix: Path,
    /// `meta.json` exists.
    pub has_meta: bool,
    /// `compacted.json` exists.
    pub has_marker: bool,
    /// Every object of the entry, as listed.
    pub objects: Vec<ObjectInfo>,
}

impl ListedEntry {
    /// When the newest of its objects was written, by the store's clock: how long a writer
    /// has left the entry alone, whatever the ID says.
    pub fn last_modified(&self) -> Option<DateTime<Utc>> {
        self.objects.iter().map(|o| o.last_modified).max()
    }
}

/// Lists `<tenant>/<dir>/` (one recursive listing) into its entries by ID. Objects whose
/// directory is not a UUID are ignored.
pub async fn list_entries(
    storage: &Storage,
    tenant: &TenantId,
    dir: &str,
) -> Result<BTreeMap<Uuid, ListedEntry>> {
    let prefix = Path::from_iter([tenant.as_str(), dir]);
    let objects = storage.list(&prefix).await?;
    Ok(group_entries(&prefix, objects))
}

/// Lists the entries of `<tenant>/<dir>/` whose ID sorts after `after` (UUIDv7 IDs sort by
/// time), for a reader that knows the older ones from an index.
pub async fn list_entries_after(
    storage: &Storage,
    tenant: &TenantId,
    dir: &str,
    after: Uuid,
) -> Result<BTreeMap<Uuid, ListedEntry>> {
    let prefix = Path::from_iter([tenant.as_str(), dir]);
    let offset = prefix.clone().join(after.to_string());
    let objects = storage.list_after(&prefix, &offset).await?;
    Ok(group_entries(&prefix, objects))
}

fn group_entries(prefix: &Path, objects: Vec<ObjectInfo>) -> BTreeMap<Uuid, ListedEntry> {
    let mut entries: BTreeMap<Uuid, ListedEntry> = BTreeMap::new();
    for object in objects {
        let Some((id, file)) = entry_and_file(prefix, &object.path) else {
            continue;
        };
        let entry = entries.entry(id).or_insert_with(|| ListedEntry {
            prefix: prefix.clone().join(id.to_string()),
            has_meta: false,
            has_marker: false,
            objects: Vec::new(),
        });
        match file.as_str() {
            META_FILE => entry.has_meta = true,
            COMPACTED_FILE => entry.has_marker = true,
            _ => {}
        }
        entry.objects.push(object);
    }
    entries
}

/// The entry ID and file name of an object under `prefix` (`<prefix>/<id>/<file>`).
fn entry_and_file(prefix: &Path, path: &Path) -> Option<(Uuid, String)> {
    let mut parts = path.prefix_match(prefix)?;
    let (id, file) = (parts.next()?, parts.next()?);
    let id = Uuid::parse_str(id.as_ref()).ok()?;
    Some((id, file.as_ref().to_owned()))
}

/// The IDs that are no longer live: marked ones, and every ID some entry replaces.
pub fn superseded<'a>(
    marked: impl IntoIterator<Item = Uuid>,
    replaces: impl IntoIterator<Item = &'a [Uuid]>,
) -> BTreeSet<Uuid> {
    let mut gone: BTreeSet<Uuid> = marked.into_iter().collect();
    for ids in replaces {
        gone.extend(ids.iter().copied());
    }
    gone
}

/// The smallest UUIDv7 of the millisecond `time` (IDs of entries made at or after `time` sort
/// at or after it).
pub fn uuid_floor(time: DateTime<Utc>) -> Uuid {
    let ms = u64::try_from(time.timestamp_millis()).unwrap_or(0) & 0xFFFF_FFFF_FFFF;
    Uuid::from_u64_pair((ms << 16) | 0x7000, 0x8000_0000_0000_0000)
}

/// When a UUIDv7 was made (`None` for other versions).
pub fn uuid_time(id: Uuid) -> Option<DateTime<Utc>> {
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

/// Writes the entry's `compacted.json`.
pub async fn mark_compacted(
    storage: &Storage,
    entry_prefix: &Path,
    marker: &CompactedMarker,
) -> Result<()> {
    storage
        .put(
            &entry_prefix.clone().join(COMPACTED_FILE),
            Bytes::from(marker.to_json()),
        )
        .await?;
    Ok(())
}

/// Reads an entry's `compacted.json`.
pub async fn read_marker(storage: &Storage, entry_prefix: &Path) -> Result<CompactedMarker> {
    let path = entry_prefix.clone().join(COMPACTED_FILE);
    let bytes = storage.get_at_most(&path, MAX_SMALL_OBJECT_BYTES).await?;
    CompactedMarker::parse(&bytes, path.as_ref())
}

/// Deletes an entry's objects: `meta.json` first, the marker last. The entry is listed again
/// first, and nothing is deleted if it changed since `entry` was listed (a writer is still at
/// it): then the answer is `false`.
pub async fn delete_entry(storage: &Storage, entry: &ListedEntry) -> Result<bool> {
    let key = |o: &ObjectInfo| (o.path.to_string(), o.size, o.last_modified);
    let mut now: Vec<_> = storage.list(&entry.prefix).await?.iter().map(key).collect();
    let mut then: Vec<_> = entry.objects.iter().map(key).collect();
    now.sort();
    then.sort();
    if now != then {
        return Ok(false);
    }
    let rank = |path: &Path| match path.filename() {
        Some(META_FILE) => 0,
        Some(COMPACTED_FILE) => 2,
        _ => 1,
    };
    let mut paths: Vec<&Path> = entry.objects.iter().map(|o| &o.path).collect();
    paths.sort_by_key(|p| rank(p));
    for path in paths {
        storage.delete(path).await?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use strata_storage::faults::{Op, Requests};

    use super::*;

    #[test]
    fn uuid_floor_sorts_at_or_before_ids_made_at_that_time() {
        let id = Uuid::now_v7();
        let time = uuid_time(id).unwrap();
        let floor = uuid_floor(time);
        assert!(floor <= id, "{floor} {id}");
        assert!(floor.to_string() <= id.to_string());
        let earlier = uuid_floor(time - chrono::Duration::milliseconds(1));
        assert!(earlier < floor);
        assert_eq!(
            uuid_time(floor).unwrap().timestamp_millis(),
            time.timestamp_millis()
        );
    }

    #[test]
    fn marked_and_replaced_entries_are_superseded() {
        let (a, b, c, d) = (
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
            Uuid::now_v7(),
        );
        let replaces = [vec![a, b]];
        let gone = superseded([c], replaces.iter().map(Vec::as_slice));
        assert_eq!(gone, BTreeSet::from([a, b, c]));
        assert!(!gone.contains(&d));
    }

    #[tokio::test]
    async fn entries_are_grouped_and_deleted_meta_first_marker_last() {
        let storage = Storage::in_memory();
        let tenant = TenantId::new("t").unwrap();
        let id = Uuid::now_v7();
        let prefix = Path::from_iter(["t", "blocks", &id.to_string()]);
        for file in ["data.parquet", META_FILE, "bloom-0"] {
            storage
                .put(&prefix.clone().join(file), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let marker = CompactedMarker {
            id,
            compacted_at: Utc::now(),
            replaced_by: vec![],
        };
        mark_compacted(&storage, &prefix, &marker).await.unwrap();
        assert_eq!(read_marker(&storage, &prefix).await.unwrap(), marker);
        let entries = list_entries(&storage, &tenant, "blocks").await.unwrap();
        let entry = &entries[&id];
        assert!(entry.has_meta && entry.has_marker);
        assert_eq!(entry.objects.len(), 4);
        assert_eq!(entry.prefix, prefix);
        let newest = entry.objects.iter().map(|o| o.last_modified).max();
        assert_eq!(entry.last_modified(), newest);

        // Written to since it was listed: left alone.
        let faults = strata_storage::faults::Faults::new();
        let watched = storage.with_faults(&faults);
        storage
            .put(&prefix.clone().join("bloom-1"), Bytes::from_static(b"y"))
            .await
            .unwrap();
        assert!(!delete_entry(&watched, entry).await.unwrap());
        assert_eq!(faults.seen(Op::Delete), 0);

        // As listed: meta first, marker last.
        let entries = list_entries(&storage, &tenant, "blocks").await.unwrap();
        assert!(delete_entry(&watched, &entries[&id]).await.unwrap());
        assert_eq!(faults.seen(Op::Delete), 5);
        assert!(
            list_entries(&storage, &tenant, "blocks")
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_deletion_stopped_part_way_goes_meta_first_and_marker_last() {
        let storage = Storage::in_memory();
        let tenant = TenantId::new("t").unwrap();
        let id = Uuid::now_v7();
        let prefix = Path::from_iter(["t", "blocks", &id.to_string()]);
        for file in ["data.parquet", META_FILE, "bloom-0", COMPACTED_FILE] {
            storage
                .put(&prefix.clone().join(file), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let entry = list_entries(&storage, &tenant, "blocks").await.unwrap()[&id].clone();
        for stop in 1..4 {
            let faults = strata_storage::faults::Faults::new();
            faults.stop_at(Requests::Only(Op::Delete), "", stop);
            let copy = Storage::in_memory();
            for o in &entry.objects {
                copy.put(&o.path, Bytes::from_static(b"x")).await.unwrap();
            }
            let relisted = list_entries(&copy, &tenant, "blocks").await.unwrap()[&id].clone();
            assert!(
                delete_entry(&copy.with_faults(&faults), &relisted)
                    .await
                    .is_err()
            );
            let left = list_entries(&copy, &tenant, "blocks").await.unwrap();
            let left = &left[&id];
            // Whatever was deleted, meta went first and the marker is still there.
            assert!(!left.has_meta, "stop {stop}");
            assert!(left.has_marker, "stop {stop}");
            assert_eq!(left.objects.len() as u64, 4 - stop, "stop {stop}");
        }
    }
}
