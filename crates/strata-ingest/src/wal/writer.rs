//! The WAL's writer thread: group commit.
//!
//! Appends queue up while the thread is busy writing and syncing the previous group; it then
//! writes everything queued with one `write` and one `fdatasync`, and acknowledges each append
//! only after that sync. Under load many requests share one sync, so throughput does not suffer
//! from durability.
//!
//! A failed write or sync fails every append of its group and abandons the segment: nothing is
//! appended to it again (after an fsync error the kernel may have dropped the pages, so the same
//! file descriptor is never synced again), and it is deleted once the records acknowledged
//! before the failure are flushed. The next group starts a new segment, but not before a backoff
//! (doubling up to [`MAX_BACKOFF`]) that groups meanwhile fail at once, so a full disk is not
//! hammered with new files. A segment file whose creation fails is removed again.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::WalMetrics;
use super::record::MAGIC;
use super::refs::{SegmentId, SegmentPin, SegmentRefs, segment_path};

/// Most bytes written in one group.
const MAX_GROUP_BYTES: usize = 16 << 20;
/// Wait after a first failure before a new segment is tried.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between attempts while writes keep failing.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// One queued append.
pub(crate) struct Append {
    pub(crate) record: Vec<u8>,
    pub(crate) done: oneshot::Sender<io::Result<SegmentPin>>,
}

pub(crate) struct WriterThread {
    pub(crate) dir: PathBuf,
    pub(crate) segment_bytes: u64,
    pub(crate) fsync: bool,
    pub(crate) refs: Arc<SegmentRefs>,
    pub(crate) metrics: WalMetrics,
    pub(crate) next_segment: SegmentId,
}

struct Active {
    id: SegmentId,
    file: File,
    size: u64,
}

/// The last failure, while groups are refused without touching the disk.
struct Failing {
    error: io::Error,
    retry_at: Instant,
    backoff: Duration,
}

impl WriterThread {
    pub(crate) fn run(mut self, rx: Receiver<Append>) {
        let mut active: Option<Active> = None;
        let mut failing: Option<Failing> = None;
        let mut buffer = Vec::with_capacity(1 << 20);
        let mut group: Vec<Append> = Vec::new();
        while let Ok(first) = rx.recv() {
            group.push(first);
            let mut bytes = group[0].record.len();
            while bytes < MAX_GROUP_BYTES {
                match rx.try_recv() {
                    Ok(next) => {
                        bytes += next.record.len();
                        group.push(next);
                    }
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
                }
            }
            if let Some(f) = failing.as_ref().filter(|f| Instant::now() < f.retry_at) {
                let e = io::Error::new(
                    f.error.kind(),
                    format!(
                        "the WAL is failing ({}); next attempt in at most {:?}",
                        f.error, f.backoff
                    ),
                );
                self.fail(&mut group, &e);
                continue;
            }
            buffer.clear();
            for append in &group {
                buffer.extend_from_slice(&append.record);
            }
            match self.write_group(&mut active, &buffer) {
                Ok(segment) => {
                    if failing.take().is_some() {
                        tracing::info!(segment, "WAL writes succeed again");
                    }
                    self.metrics.groups.inc();
                    self.metrics.bytes.inc_by(buffer.len() as u64);
                    for append in group.drain(..) {
                        let pin = SegmentPin::new(Arc::clone(&self.refs), segment);
                        // A closed receiver means the request was abandoned; the data is durable
                        // and will be flushed from the replay or dropped with the pin.
                        let _ = append.done.send(Ok(pin));
                    }
                }
                Err(e) => {
                    let backoff = failing
                        .as_ref()
                        .map_or(FIRST_BACKOFF, |f| (f.backoff * 2).min(MAX_BACKOFF));
                    tracing::error!(error = %e, retry_in = ?backoff, "WAL write failed; the group is refused and the segment abandoned");
                    self.abandon(&mut active);
                    self.fail(&mut group, &e);
                    failing = Some(Failing {
                        error: e,
                        retry_at: Instant::now() + backoff,
                        backoff,
                    });
                }
            }
        }
        if let Some(active) = active {
            let _ = active.file.sync_all();
        }
    }

    /// Answers every append of the group with `e`.
    fn fail(&self, group: &mut Vec<Append>, e: &io::Error) {
        self.metrics.errors.inc();
        for append in group.drain(..) {
            let _ = append
                .done
                .send(Err(io::Error::new(e.kind(), e.to_string())));
        }
    }

    /// Gives up the active segment after a failed write: the failed group may have left a
    /// partial record, so nothing may follow it. The partial bytes are cut off if the file lets
    /// us (they were never acknowledged, and on a full disk that frees their space); the
    /// acknowledged records before them stay until they are flushed.
    fn abandon(&mut self, active: &mut Option<Active>) {
        let Some(segment) = active.take() else {
            return;
        };
        if let Err(e) = segment.file.set_len(segment.size) {
            tracing::debug!(segment = segment.id, error = %e, "could not cut the failed group off the abandoned WAL segment");
        }
        drop(segment.file);
        self.refs.retire_active();
    }

    fn write_group(&mut self, active: &mut Option<Active>, bytes: &[u8]) -> io::Result<SegmentId> {
        if active.as_ref().is_none_or(|a| a.size >= self.segment_bytes) {
            let new = self.open_segment()?;
            // The previous segment is closed (and deleted if nothing references it).
            self.refs.set_active(new.id);
            *active = Some(new);
        }
        let Some(segment) = active.as_mut() else {
            return Err(io::Error::other("no active WAL segment"));
        };
        let path = || segment_path(&self.dir, segment.id);
        segment
            .file
            .write_all(bytes)
            .map_err(|e| context(e, "writing to", &path()))?;
        if self.fsync {
            segment
                .file
                .sync_data()
                .map_err(|e| context(e, "syncing", &path()))?;
        }
        segment.size += bytes.len() as u64;
        Ok(segment.id)
    }

    /// Creates the next segment, durably (file and directory entry). If any step fails, the
    /// file is removed again, so failures do not leave files behind.
    fn open_segment(&mut self) -> io::Result<Active> {
        let id = self.next_segment;
        let path = segment_path(&self.dir, id);
        let mut file = match OpenOptions::new().create_new(true).append(true).open(&path) {
            Ok(file) => file,
            Err(e) => {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    // Not ours (a leftover we failed to remove): never touch it, use the next ID.
                    self.next_segment += 1;
                }
                return Err(context(e, "creating", &path));
            }
        };
        let init = file
            .write_all(MAGIC)
            .and_then(|()| file.sync_all())
            .and_then(|()| sync_dir(&self.dir));
        if let Err(e) = init {
            drop(file);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(remove) => {
                    // It holds no record; the next start deletes it. Its ID is not reused.
                    tracing::warn!(path = %path.display(), error = %remove, "could not remove a WAL segment whose creation failed");
                    self.next_segment += 1;
                }
            }
            return Err(context(e, "creating", &path));
        }
        self.next_segment += 1;
        self.metrics.segments_created.inc();
        tracing::debug!(segment = id, "opened WAL segment");
        Ok(Active {
            id,
            file,
            size: MAGIC.len() as u64,
        })
    }
}

fn context(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

/// Makes a directory entry change (a created or removed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
