//! Which WAL segments still hold spans that are not yet in a block, and deleting the rest.
//!
//! Every reference to a segment is counted: one per live trace that has spans from it, plus one
//! per appended batch until its spans are in the live traces. A segment is deleted once it is no
//! longer the active one and its count is zero, which is exactly when every span it holds has
//! been uploaded in a block.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// Segment IDs are sequence numbers; file names are the zero-padded number plus `.wal`.
pub type SegmentId = u64;

/// The path of segment `id` in `dir`.
pub(crate) fn segment_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// Reference counts of segments.
#[derive(Debug)]
pub struct SegmentRefs {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    counts: HashMap<SegmentId, usize>,
    active: Option<SegmentId>,
}

impl SegmentRefs {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Adds a reference to `segment`.
    pub fn acquire(&self, segment: SegmentId) {
        *self.inner.lock().counts.entry(segment).or_default() += 1;
    }

    /// Drops a reference; deletes the segment when it was the last one and the segment is closed.
    pub fn release(&self, segment: SegmentId) {
        let mut inner = self.inner.lock();
        let Some(count) = inner.counts.get_mut(&segment) else {
            tracing::error!(segment, "released a WAL segment that holds no reference");
            return;
        };
        *count -= 1;
        if *count == 0 && inner.active != Some(segment) {
            inner.counts.remove(&segment);
            self.delete(segment);
        }
    }

    /// Makes `segment` the one being appended to; the previous active segment is deleted if no
    /// reference holds it.
    pub(crate) fn set_active(&self, segment: SegmentId) {
        let mut inner = self.inner.lock();
        if let Some(old) = inner.active.replace(segment)
            && inner.counts.get(&old).copied().unwrap_or(0) == 0
        {
            inner.counts.remove(&old);
            self.delete(old);
        }
    }

    /// After the writer has stopped: the active segment is closed too, and deleted if nothing
    /// references it.
    pub(crate) fn retire_active(&self) {
        let mut inner = self.inner.lock();
        if let Some(active) = inner.active.take()
            && inner.counts.get(&active).copied().unwrap_or(0) == 0
        {
            inner.counts.remove(&active);
            self.delete(active);
        }
    }

    /// Deletes the given closed segments if nothing references them (after replay).
    pub(crate) fn sweep(&self, segments: &[SegmentId]) {
        let mut inner = self.inner.lock();
        for &segment in segments {
            if inner.active != Some(segment)
                && inner.counts.get(&segment).copied().unwrap_or(0) == 0
            {
                inner.counts.remove(&segment);
                self.delete(segment);
            }
        }
    }

    /// Segments with at least one reference, for metrics and tests.
    pub fn referenced(&self) -> Vec<SegmentId> {
        let inner = self.inner.lock();
        let mut out: Vec<_> = inner
            .counts
            .iter()
            .filter(|(_, c)| **c > 0)
            .map(|(s, _)| *s)
            .collect();
        out.sort_unstable();
        out
    }

    fn delete(&self, segment: SegmentId) {
        let path = segment_path(&self.dir, segment);
        match std::fs::remove_file(&path) {
            Ok(()) => tracing::debug!(segment, "deleted flushed WAL segment"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(segment, error = %e, "could not delete WAL segment"),
        }
    }
}

/// A reference to a segment held while an appended batch makes its way into the live traces;
/// dropping it releases the reference.
#[derive(Debug)]
pub struct SegmentPin {
    refs: Arc<SegmentRefs>,
    segment: SegmentId,
}

impl SegmentPin {
    pub(crate) fn new(refs: Arc<SegmentRefs>, segment: SegmentId) -> Self {
        refs.acquire(segment);
        Self { refs, segment }
    }

    /// The segment the batch was written to.
    pub fn segment(&self) -> SegmentId {
        self.segment
    }
}

impl Drop for SegmentPin {
    fn drop(&mut self) {
        self.refs.release(self.segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_goes_when_closed_and_unreferenced() {
        let dir = tempfile::tempdir().unwrap();
        let refs = Arc::new(SegmentRefs::new(dir.path().to_owned()));
        for id in [1, 2] {
            std::fs::write(segment_path(dir.path(), id), b"x").unwrap();
        }
        refs.set_active(1);
        let pin = SegmentPin::new(Arc::clone(&refs), 1);
        refs.acquire(1); // a live trace
        drop(pin);
        refs.set_active(2); // 1 is closed but still referenced
        assert!(segment_path(dir.path(), 1).exists());
        refs.release(1);
        assert!(!segment_path(dir.path(), 1).exists());
        // The active segment survives a zero count.
        refs.acquire(2);
        refs.release(2);
        assert!(segment_path(dir.path(), 2).exists());
    }
}
