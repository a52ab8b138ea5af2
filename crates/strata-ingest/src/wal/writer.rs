//! The WAL's writer thread: group commit.
//!
//! Appends queue up while the thread is busy writing and syncing the previous group; it then
//! writes everything queued with one `write` and one `fdatasync`, and acknowledges each append
//! only after that sync. Under load many requests share one sync, so throughput does not suffer
//! from durability.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};

use tokio::sync::oneshot;

use super::WalMetrics;
use super::record::MAGIC;
use super::refs::{SegmentId, SegmentPin, SegmentRefs, segment_path};

/// Most bytes written in one group.
const MAX_GROUP_BYTES: usize = 16 << 20;

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

impl WriterThread {
    pub(crate) fn run(mut self, rx: Receiver<Append>) {
        let mut active: Option<Active> = None;
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
            buffer.clear();
            for append in &group {
                buffer.extend_from_slice(&append.record);
            }
            let result = self.write_group(&mut active, &buffer);
            match result {
                Ok(segment) => {
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
                    tracing::error!(error = %e, "WAL write failed; starting a new segment");
                    self.metrics.errors.inc();
                    // The failed group may have left a partial record; nothing may follow it in
                    // that segment, so the next group goes to a fresh one.
                    active = None;
                    for append in group.drain(..) {
                        let _ = append
                            .done
                            .send(Err(io::Error::new(e.kind(), e.to_string())));
                    }
                }
            }
        }
        if let Some(active) = active {
            let _ = active.file.sync_all();
        }
    }

    fn write_group(&mut self, active: &mut Option<Active>, bytes: &[u8]) -> io::Result<SegmentId> {
        if active.as_ref().is_none_or(|a| a.size >= self.segment_bytes) {
            *active = Some(self.open_segment()?);
        }
        let Some(segment) = active.as_mut() else {
            return Err(io::Error::other("no active WAL segment"));
        };
        segment.file.write_all(bytes)?;
        if self.fsync {
            segment.file.sync_data()?;
        }
        segment.size += bytes.len() as u64;
        Ok(segment.id)
    }

    fn open_segment(&mut self) -> io::Result<Active> {
        let id = self.next_segment;
        self.next_segment += 1;
        let path = segment_path(&self.dir, id);
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        file.write_all(MAGIC)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        self.refs.set_active(id);
        self.metrics.segments_created.inc();
        tracing::debug!(segment = id, "opened WAL segment");
        Ok(Active {
            id,
            file,
            size: MAGIC.len() as u64,
        })
    }
}

/// Makes a directory entry change (a created or removed file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
