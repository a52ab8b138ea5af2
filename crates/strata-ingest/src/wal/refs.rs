//! Which WAL segments still hold spans that are not yet in a block, and deleting the rest.
//!
//! Every reference to a segment is counted: one per live trace that has spans from it, plus one
//! per appended batch until its spans are in the live traces. A segment is deleted once it is no
//! longer the active one and its count is zero, which is exactly when every span it holds has
//! been uploaded in a block. A segment that could not be read at start is kept: never deleted,
//! whatever its count.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

/// Segment IDs are sequence numbers; file names are the zero-padded number plus `.wal`.
pub type SegmentId = u64;

/// The path of segment `id` in `dir`.
pub(crate) fn segment_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{id:020}.wal"))
}

/// Suffix added to the file name of a segment that could not be read at start.
pub(crate) const UNREADABLE_SUFFIX: &str = ".unreadable";

/// Where segment `id` is set aside when it cannot be read: `<id>.wal.unreadable`.
pub(crate) fn unreadable_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{id:020}.wal{UNREADABLE_SUFFIX}"))
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
    /// Segments never to delete (set aside at start).
    kept: HashSet<SegmentId>,
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
        let Some(left) = count.checked_sub(1) else {
            tracing::error!(
                segment,
                "released a WAL segment more often than it was acquired"
            );
            return;
        };
        *count = left;
        if left == 0 && inner.active != Some(segment) {
            self.remove(&mut inner, segment);
        }
    }

    /// Never deletes `segment` (it could not be read, so what it holds is unknown).
    pub(crate) fn keep(&self, segment: SegmentId) {
        self.inner.lock().kept.insert(segment);
    }

    /// Makes `segment` the one being appended to; the previous active segment is deleted if no
    /// reference holds it.
    pub(crate) fn set_active(&self, segment: SegmentId) {
        let mut inner = self.inner.lock();
        if let Some(old) = inner.active.replace(segment) {
            self.remove_if_unreferenced(&mut inner, old);
        }
    }

    /// The writer stopped appending to the active segment (after a write error, or because it
    /// stopped): it is closed, and deleted now if nothing references it, else once nothing does.
    pub(crate) fn retire_active(&self) {
        let mut inner = self.inner.lock();
        if let Some(active) = inner.active.take() {
            self.remove_if_unreferenced(&mut inner, active);
        }
    }

    fn remove_if_unreferenced(&self, inner: &mut Inner, segment: SegmentId) {
        if inner.counts.get(&segment).copied().unwrap_or(0) == 0 {
            self.remove(inner, segment);
        }
    }

    fn remove(&self, inner: &mut Inner, segment: SegmentId) {
        inner.counts.remove(&segment);
        if !inner.kept.contains(&segment) {
            self.delete(segment);
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
        // Once retired (the writer gave it up), it goes.
        refs.retire_active();
        assert!(!segment_path(dir.path(), 2).exists());
    }

    #[test]
    fn a_release_without_an_acquire_does_not_wrap() {
        let dir = tempfile::tempdir().unwrap();
        let refs = Arc::new(SegmentRefs::new(dir.path().to_owned()));
        std::fs::write(segment_path(dir.path(), 1), b"x").unwrap();
        refs.set_active(1);
        refs.acquire(1);
        refs.release(1);
        refs.release(1); // one too many: logged, the count stays at zero
        assert_eq!(refs.inner.lock().counts.get(&1), Some(&0));
        refs.set_active(2);
        assert!(
            !segment_path(dir.path(), 1).exists(),
            "a zero count lets it go"
        );
    }

    #[test]
    fn a_kept_segment_is_never_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let refs = Arc::new(SegmentRefs::new(dir.path().to_owned()));
        std::fs::write(segment_path(dir.path(), 1), b"x").unwrap();
        refs.keep(1);
        let pin = SegmentPin::new(Arc::clone(&refs), 1);
        drop(pin);
        refs.set_active(1);
        refs.set_active(2);
        assert!(segment_path(dir.path(), 1).exists());
    }
}
