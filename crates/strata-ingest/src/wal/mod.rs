//! The write-ahead log: every accepted request is appended here, and synced to disk, before the
//! client is told it was accepted. On start the log is replayed into the live traces, segment
//! by segment and record by record. A segment is deleted once every span in it is in a block
//! in object storage.
//!
//! Nothing is deleted to get going. A segment that cannot be read at start (an open or read
//! error, or not a WAL segment at all) is set aside as `<id>.wal.unreadable`, counted and
//! logged, and never deleted by Strata; every start tries it again, and once it reads cleanly
//! it is replayed and handled like any other segment. Damage inside a segment costs only the
//! damaged records: reading resynchronises on the next intact record (see [`record`]).

mod record;
mod refs;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use strata_model::TenantId;
use tokio::sync::oneshot;

pub use record::{MAX_PAYLOAD_LEN, WalRecord};
pub use refs::{SegmentId, SegmentPin, SegmentRefs};

use crate::config::WalConfig;
use crate::error::{Error, Result};
use record::{Damage, DamageKind, Item, SegmentReader};
use refs::{UNREADABLE_SUFFIX, segment_path, unreadable_path};
use writer::{Append, WriterThread};

/// Decodes a segment file's bytes exactly as replay does: every intact record, in order, and
/// each stretch of damage replay skipped (resynchronising on the next intact record). Never
/// panics, whatever the bytes. Public so that the fuzz targets (`fuzz/`) reach the replay
/// decoder; the rest of the code calls [`Wal::replay`].
pub fn decode_segment_bytes(data: &[u8]) -> (Vec<WalRecord>, Vec<String>) {
    let mut reader = SegmentReader::new(std::io::Cursor::new(data), data.len() as u64);
    let (mut records, mut damage) = (Vec::new(), Vec::new());
    loop {
        match reader.next_item() {
            Ok(Some(Item::Record(record))) => records.push(record),
            Ok(Some(Item::Damage(d))) => damage.push(d.to_string()),
            Ok(None) => break,
            // A cursor over memory cannot fail; were it to, it would be damage too.
            Err(e) => {
                damage.push(e.to_string());
                break;
            }
        }
    }
    (records, damage)
}

/// WAL counters.
#[derive(Clone, Debug, Default)]
pub struct WalMetrics {
    groups: Counter,
    bytes: Counter,
    errors: Counter,
    segments_created: Counter,
    replayed_records: Counter,
    damaged_segments: Counter,
    skipped_bytes: Counter,
    unreadable_segments: Counter,
}

impl WalMetrics {
    /// Registers the counters under `strata_wal_*`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "strata_wal_syncs",
            "Groups of records written and synced",
            self.groups.clone(),
        );
        registry.register(
            "strata_wal_written_bytes",
            "Bytes appended to the WAL",
            self.bytes.clone(),
        );
        registry.register(
            "strata_wal_write_errors",
            "Groups of appends refused because the WAL could not write or sync them",
            self.errors.clone(),
        );
        registry.register(
            "strata_wal_segments_created",
            "WAL segments opened",
            self.segments_created.clone(),
        );
        registry.register(
            "strata_wal_replayed_records",
            "Records replayed at start",
            self.replayed_records.clone(),
        );
        registry.register(
            "strata_wal_damaged_segments",
            "Segments with a torn tail or corrupt records at replay",
            self.damaged_segments.clone(),
        );
        registry.register(
            "strata_wal_skipped_bytes",
            "Bytes of torn or corrupt WAL records skipped at replay",
            self.skipped_bytes.clone(),
        );
        registry.register(
            "strata_wal_unreadable_segments",
            "Segments that could not be read at start, set aside as <id>.wal.unreadable (never deleted)",
            self.unreadable_segments.clone(),
        );
    }
}

/// A segment found at start, to replay.
#[derive(Debug)]
pub struct ReplaySegment {
    /// Its ID.
    pub id: SegmentId,
    path: PathBuf,
    /// Whether it was set aside as unreadable at an earlier start.
    set_aside: bool,
}

/// Handle on the WAL. Appends may come from any task.
pub struct Wal {
    tx: Option<Sender<Append>>,
    thread: Option<JoinHandle<()>>,
    refs: Arc<SegmentRefs>,
    metrics: WalMetrics,
}

impl Wal {
    /// Opens the WAL directory, creating it if needed, and starts the writer thread. Returns the
    /// existing segments (set-aside ones included), oldest first, which the caller must
    /// [`Wal::replay`] before appending.
    pub fn open(config: &WalConfig, metrics: WalMetrics) -> Result<(Self, Vec<ReplaySegment>)> {
        let dir = config.path.clone();
        let io_err = |e: std::io::Error| Error::Wal(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        let existing = list_segments(&dir).map_err(io_err)?;
        let refs = Arc::new(SegmentRefs::new(dir.clone()));
        let thread = WriterThread {
            dir,
            segment_bytes: config.segment_bytes.as_u64(),
            fsync: config.fsync,
            refs: Arc::clone(&refs),
            metrics: metrics.clone(),
            next_segment: existing.last().map_or(1, |s| s.id + 1),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("strata-wal".into())
            .spawn(move || thread.run(rx))
            .map_err(|e| Error::Wal(format!("cannot start the WAL writer thread: {e}")))?;
        let wal = Self {
            tx: Some(tx),
            thread: Some(thread),
            refs,
            metrics,
        };
        Ok((wal, existing))
    }

    /// Starts replaying a segment found at start: its records, oldest first, then
    /// [`SegmentReplay::finish`]. The segment is held (not deleted, even if its spans are flushed
    /// meanwhile) until it is finished.
    pub fn replay(&self, segment: ReplaySegment) -> SegmentReplay {
        let pin = SegmentPin::new(Arc::clone(&self.refs), segment.id);
        let reader = File::open(&segment.path)
            .and_then(|file| Ok((file.metadata()?.len(), file)))
            .map(|(len, file)| SegmentReader::new(file, len));
        let (reader, failure) = match reader {
            Ok(reader) => (Some(reader), None),
            Err(e) => (None, Some(e)),
        };
        SegmentReplay {
            segment,
            reader,
            failure,
            bad_magic: false,
            records: 0,
            damaged: false,
            pin: Some(pin),
            refs: Arc::clone(&self.refs),
            metrics: self.metrics.clone(),
            finished: false,
        }
    }

    /// A handle for appending, to be cloned into request handlers.
    pub fn appender(&self) -> Option<WalAppender> {
        self.tx.clone().map(|tx| WalAppender { tx })
    }

    /// The reference counts of segments.
    pub fn refs(&self) -> &Arc<SegmentRefs> {
        &self.refs
    }

    /// Stops the writer thread after it has written what is queued.
    pub fn close(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the WAL writer thread panicked");
        }
    }

    /// The path a segment has on disk.
    pub fn segment_path(config: &WalConfig, id: SegmentId) -> PathBuf {
        segment_path(&config.path, id)
    }
}

/// Appends to the WAL. Cheap to clone; the writer thread stops once the [`Wal`] is closed and
/// every appender is dropped.
#[derive(Clone, Debug)]
pub struct WalAppender {
    tx: Sender<Append>,
}

impl WalAppender {
    /// Appends one accepted request and waits until it is durable. The returned pin keeps the
    /// segment alive until the spans are in the live traces (which take their own references).
    pub async fn append(
        &self,
        tenant: &TenantId,
        received_unix_nano: u64,
        payload: &[u8],
    ) -> Result<SegmentPin> {
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(Error::TooLarge(format!(
                "request of {} bytes is larger than a WAL record can hold ({MAX_PAYLOAD_LEN} bytes)",
                payload.len()
            )));
        }
        let record = record::encode(tenant, received_unix_nano, payload);
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Append { record, done })
            .map_err(|_| Error::ShuttingDown)?;
        match wait.await {
            Ok(Ok(pin)) => Ok(pin),
            Ok(Err(e)) => Err(Error::Wal(format!("append failed: {e}"))),
            Err(_) => Err(Error::ShuttingDown),
        }
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.close();
    }
}

/// The segments in `dir`, oldest first: `<id>.wal`, and `<id>.wal.unreadable` set aside at an
/// earlier start (left alone if a `<id>.wal` exists too).
fn list_segments(dir: &Path) -> std::io::Result<Vec<ReplaySegment>> {
    let mut found = std::collections::BTreeMap::new();
    let mut aside = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let (stem, set_aside) = match name.strip_suffix(UNREADABLE_SUFFIX) {
            Some(stem) => (stem, true),
            None => (name, false),
        };
        let id = stem
            .strip_suffix(".wal")
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<SegmentId>().ok());
        match id {
            Some(id) if set_aside => aside.push(ReplaySegment {
                id,
                path,
                set_aside,
            }),
            Some(id) => {
                found.insert(
                    id,
                    ReplaySegment {
                        id,
                        path,
                        set_aside,
                    },
                );
            }
            None => {
                tracing::warn!(path = %path.display(), "ignoring a file that is not a WAL segment");
            }
        }
    }
    for segment in aside {
        match found.entry(segment.id) {
            std::collections::btree_map::Entry::Occupied(_) => tracing::error!(
                path = %segment.path.display(),
                "a set-aside WAL segment has the ID of another segment; leaving it alone (rename it to a free ID to replay it)"
            ),
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(segment);
            }
        }
    }
    Ok(found.into_values().collect())
}

/// Replaying one segment: an iterator of its intact records. Damage is logged and counted as
/// it is met; an I/O error ends the records early.
pub struct SegmentReplay {
    segment: ReplaySegment,
    reader: Option<SegmentReader<File>>,
    failure: Option<std::io::Error>,
    bad_magic: bool,
    records: usize,
    damaged: bool,
    pin: Option<SegmentPin>,
    refs: Arc<SegmentRefs>,
    metrics: WalMetrics,
    finished: bool,
}

impl SegmentReplay {
    /// The segment's ID.
    pub fn id(&self) -> SegmentId {
        self.segment.id
    }

    /// Ends the replay of the segment. If it could not be read (an I/O error, or nothing in it
    /// is a WAL segment) it is set aside as `<id>.wal.unreadable` and kept; otherwise it is
    /// released, and deleted now if no replayed span references it. Returns whether it was
    /// read cleanly.
    pub fn finish(mut self) -> bool {
        self.finished = true;
        let id = self.segment.id;
        let dir = self.segment.path.parent().unwrap_or(Path::new("."));
        let unreadable = match (&self.failure, self.bad_magic && self.records == 0) {
            (Some(e), _) => Some(e.to_string()),
            (None, true) => Some("not a WAL segment (bad magic, no intact record)".to_owned()),
            (None, false) => None,
        };
        if self.reader.is_some() {
            // Finished before its last record: what is left must not be deleted.
            self.refs.keep(id);
            tracing::error!(
                segment = id,
                "WAL segment replay ended before its end; the segment is kept"
            );
            self.pin.take();
            return false;
        }
        let clean = unreadable.is_none();
        match unreadable {
            Some(reason) => {
                self.refs.keep(id);
                self.metrics.unreadable_segments.inc();
                let aside = unreadable_path(dir, id);
                let moved = match self.segment.set_aside {
                    true => Ok(()),
                    false => std::fs::rename(&self.segment.path, &aside),
                };
                let (kept_at, rename_error) = match moved {
                    Ok(()) => (aside, None),
                    Err(e) => (self.segment.path.clone(), Some(e)),
                };
                tracing::error!(
                    segment = id,
                    error = %reason,
                    records_replayed = self.records,
                    kept_at = %kept_at.display(),
                    rename_error = ?rename_error,
                    "cannot read WAL segment; it is set aside, not deleted, and tried again at every start. \
                     Fix the cause (disk, permissions, open-file limit) and restart to replay it; \
                     delete the file only to give up the spans it holds"
                );
            }
            None if self.segment.set_aside => {
                let back = segment_path(dir, id);
                match std::fs::rename(&self.segment.path, &back) {
                    Ok(()) => tracing::info!(
                        segment = id,
                        records = self.records,
                        "a set-aside WAL segment reads cleanly now and was replayed"
                    ),
                    Err(e) => {
                        self.refs.keep(id);
                        tracing::error!(segment = id, error = %e, path = %self.segment.path.display(), "a set-aside WAL segment was replayed but cannot be renamed back; it stays set aside");
                    }
                }
            }
            None => {}
        }
        self.pin.take();
        clean
    }

    fn damaged(&mut self, damage: &Damage) {
        if !std::mem::replace(&mut self.damaged, true) {
            self.metrics.damaged_segments.inc();
        }
        self.metrics.skipped_bytes.inc_by(damage.bytes);
        let segment = self.segment.id;
        if damage.at_tail && damage.kind != DamageKind::BadMagic {
            tracing::warn!(
                segment,
                intact_records = self.records,
                %damage,
                "WAL segment ends in damage (normal after a crash mid-write); replaying the intact records before it"
            );
        } else {
            tracing::error!(
                segment,
                offset = damage.offset,
                skipped_bytes = damage.bytes,
                undecodable_records = damage.bad_records,
                %damage,
                "WAL segment is damaged; skipping the damaged bytes and replaying every intact record around them"
            );
        }
    }
}

impl Iterator for SegmentReplay {
    type Item = WalRecord;

    fn next(&mut self) -> Option<WalRecord> {
        loop {
            let reader = self.reader.as_mut()?;
            match reader.next_item() {
                Ok(Some(Item::Record(record))) => {
                    self.records += 1;
                    self.metrics.replayed_records.inc();
                    return Some(record);
                }
                Ok(Some(Item::Damage(damage))) => self.damaged(&damage),
                Ok(None) => {
                    self.bad_magic = reader.bad_magic();
                    self.reader = None;
                }
                Err(e) => {
                    self.bad_magic = reader.bad_magic();
                    self.failure = Some(e);
                    self.reader = None;
                }
            }
        }
    }
}

impl Drop for SegmentReplay {
    fn drop(&mut self) {
        if !self.finished {
            // Not read to its end: what it holds is not all replayed, so it must stay.
            self.refs.keep(self.segment.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use record::tests::segment;

    fn config(dir: &Path) -> WalConfig {
        WalConfig {
            path: dir.to_owned(),
            ..WalConfig::default()
        }
    }

    fn tenant() -> TenantId {
        TenantId::new("t").unwrap()
    }

    /// A segment file holding records with these payloads.
    fn write_segment(dir: &Path, id: SegmentId, payloads: &[&[u8]]) -> PathBuf {
        let records: Vec<Vec<u8>> = payloads
            .iter()
            .map(|p| record::encode(&tenant(), 1, p))
            .collect();
        let path = segment_path(dir, id);
        std::fs::write(&path, segment(&records)).unwrap();
        path
    }

    fn payloads(replay: &mut SegmentReplay) -> Vec<Vec<u8>> {
        replay.by_ref().map(|r| r.payload.to_vec()).collect()
    }

    #[test]
    fn an_unreadable_segment_is_set_aside_and_replayed_once_it_reads() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, &[b"one"]);
        // A directory opens but cannot be read (EISDIR): a read error at start.
        std::fs::create_dir(segment_path(dir.path(), 2)).unwrap();
        let (wal, segments) = Wal::open(&config(dir.path()), WalMetrics::default()).unwrap();
        assert_eq!(segments.iter().map(|s| s.id).collect::<Vec<_>>(), [1, 2]);
        let mut results = Vec::new();
        for segment in segments {
            let mut replay = wal.replay(segment);
            let records = payloads(&mut replay);
            results.push((records, replay.finish()));
        }
        assert_eq!(results, [(vec![b"one".to_vec()], true), (vec![], false)]);
        assert!(
            !segment_path(dir.path(), 1).exists(),
            "replayed, unreferenced"
        );
        assert!(!segment_path(dir.path(), 2).exists());
        assert!(
            unreadable_path(dir.path(), 2).exists(),
            "set aside, not deleted"
        );
        assert_eq!(wal.metrics.unreadable_segments.get(), 1);
        drop(wal);

        // Still unreadable at the next start: tried again, kept, and its ID is not reused.
        let (wal, segments) = Wal::open(&config(dir.path()), WalMetrics::default()).unwrap();
        assert_eq!(segments.len(), 1);
        let replay = wal.replay(segments.into_iter().next().unwrap());
        assert!(!replay.finish());
        assert!(unreadable_path(dir.path(), 2).exists());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pin = runtime
            .block_on(wal.appender().unwrap().append(&tenant(), 1, b"new"))
            .unwrap();
        assert_eq!(pin.segment(), 3);
        drop(pin);
        drop(wal);
        std::fs::remove_file(segment_path(dir.path(), 3)).unwrap();

        // Fixed: it is replayed and becomes an ordinary segment again.
        std::fs::remove_dir(unreadable_path(dir.path(), 2)).unwrap();
        write_segment(dir.path(), 2, &[b"two"]);
        std::fs::rename(segment_path(dir.path(), 2), unreadable_path(dir.path(), 2)).unwrap();
        let (wal, segments) = Wal::open(&config(dir.path()), WalMetrics::default()).unwrap();
        let mut replay = wal.replay(segments.into_iter().next().unwrap());
        assert_eq!(payloads(&mut replay), [b"two".to_vec()]);
        wal.refs().acquire(2); // a live trace holds it
        assert!(replay.finish());
        assert!(segment_path(dir.path(), 2).exists());
        assert!(!unreadable_path(dir.path(), 2).exists());
        wal.refs().release(2);
        assert!(
            !segment_path(dir.path(), 2).exists(),
            "flushed, then deleted"
        );
    }

    #[test]
    fn a_file_that_is_not_a_segment_is_set_aside_and_an_empty_one_deleted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(segment_path(dir.path(), 1), b"STRAT").unwrap(); // torn at creation
        std::fs::write(segment_path(dir.path(), 2), b"STRATAW2 some future format").unwrap();
        let (wal, segments) = Wal::open(&config(dir.path()), WalMetrics::default()).unwrap();
        let clean: Vec<bool> = segments
            .into_iter()
            .map(|s| {
                let mut replay = wal.replay(s);
                assert!(payloads(&mut replay).is_empty());
                replay.finish()
            })
            .collect();
        assert_eq!(clean, [true, false]);
        assert!(!segment_path(dir.path(), 1).exists());
        assert!(unreadable_path(dir.path(), 2).exists());
    }

    #[test]
    fn a_segment_being_replayed_outlives_the_flush_of_its_first_spans() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, &[b"a", b"b"]);
        let (wal, segments) = Wal::open(&config(dir.path()), WalMetrics::default()).unwrap();
        let mut replay = wal.replay(segments.into_iter().next().unwrap());
        assert!(replay.next().is_some());
        // The spans of the first record are flushed while the rest is still being read.
        wal.refs().acquire(1);
        wal.refs().release(1);
        assert!(segment_path(dir.path(), 1).exists());
        assert!(replay.next().is_some());
        assert!(replay.next().is_none());
        assert!(replay.finish());
        assert!(!segment_path(dir.path(), 1).exists());
    }

    #[test]
    fn a_replay_given_up_before_its_end_keeps_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, &[b"a", b"b"]);
        let (wal, segments) = Wal::open(&config(dir.path()), WalMetrics::default()).unwrap();
        let mut replay = wal.replay(segments.into_iter().next().unwrap());
        assert!(replay.next().is_some());
        assert!(!replay.finish());
        wal.refs().set_active(2);
        assert!(segment_path(dir.path(), 1).exists());
    }

    /// A tmpfs of `size` mounted on a temporary directory (the tests run as root), unmounted
    /// when dropped.
    struct Tmpfs(tempfile::TempDir);

    impl Tmpfs {
        fn mount(size: &str) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                status.success(),
                "cannot mount a tmpfs (the tests need root)"
            );
            Self(dir)
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg(self.0.path())
                .status();
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_full_disk_refuses_appends_without_leaving_files_and_recovers() {
        use std::io::Write;
        let disk = Tmpfs::mount("64k");
        let dir = disk.0.path();
        let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
        while filler.write_all(&[7; 4096]).is_ok() {}
        drop(filler);
        let (wal, _) = Wal::open(&config(dir), WalMetrics::default()).unwrap();
        let appender = wal.appender().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        for _ in 0..20 {
            let e = runtime
                .block_on(appender.append(&tenant(), 1, &[1; 100]))
                .unwrap_err();
            assert!(matches!(e, Error::Wal(_)), "{e}");
            assert!(e.to_string().contains("No space left"), "{e}");
            std::thread::sleep(std::time::Duration::from_millis(30));
        }
        assert_eq!(
            files(dir),
            ["filler"],
            "failed segment creations left files"
        );
        assert!(wal.metrics.segments_created.get() == 0);

        std::fs::remove_file(dir.join("filler")).unwrap();
        std::thread::sleep(writer::MAX_BACKOFF + std::time::Duration::from_millis(100));
        let pin = runtime
            .block_on(appender.append(&tenant(), 1, &[1; 100]))
            .unwrap();
        assert_eq!(files(dir), [format!("{:020}.wal", pin.segment())]);
        drop(pin);
        drop(appender);
        drop(wal);
    }

    #[test]
    fn a_segment_abandoned_on_a_full_disk_is_deleted_once_flushed() {
        use std::io::Write;
        let disk = Tmpfs::mount("64k");
        let dir = disk.0.path();
        let (wal, _) = Wal::open(&config(dir), WalMetrics::default()).unwrap();
        let appender = wal.appender().unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        // Acknowledged records, held by live traces (the pins).
        let pins: Vec<SegmentPin> = (0..3)
            .map(|_| {
                runtime
                    .block_on(appender.append(&tenant(), 1, &[1; 1000]))
                    .unwrap()
            })
            .collect();
        let segment = segment_path(dir, pins[0].segment());
        let mut filler = std::fs::File::create(dir.join("filler")).unwrap();
        while filler.write_all(&[7; 4096]).is_ok() {}
        drop(filler);
        let e = runtime
            .block_on(appender.append(&tenant(), 1, &[1; 8192]))
            .unwrap_err();
        assert!(e.to_string().contains("No space left"), "{e}");
        assert!(segment.exists(), "it holds acknowledged records");
        // Their spans are flushed: the abandoned segment goes, and its space comes back.
        drop(pins);
        assert!(
            !segment.exists(),
            "the abandoned segment outlived its last reference"
        );
        drop(appender);
        drop(wal);
    }
}
