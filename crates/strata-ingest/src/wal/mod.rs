//! The write-ahead log: every accepted request is appended here, and synced to disk, before the
//! client is told it was accepted. On start the log is replayed into the live traces. A segment
//! is deleted once every span in it is in a block in object storage.

mod record;
mod refs;
mod writer;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;

use bytes::Bytes;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use strata_model::TenantId;
use tokio::sync::oneshot;

pub use record::WalRecord;
pub use refs::{SegmentId, SegmentPin, SegmentRefs};

use crate::config::WalConfig;
use crate::error::{Error, Result};
use record::decode_segment;
use refs::segment_path;
use writer::{Append, WriterThread};

/// Decodes a segment file's bytes exactly as replay does: the intact records, and why reading
/// stopped early, if it did. Never panics, whatever the bytes. Public so that the fuzz targets
/// (`fuzz/`) reach the replay decoder; the rest of the code calls [`Wal::replay`].
pub fn decode_segment_bytes(data: &Bytes) -> (Vec<WalRecord>, Option<String>) {
    let (records, damage) = decode_segment(data);
    (records, damage.map(|d| d.to_string()))
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
            "Failed WAL writes",
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
            "Segments whose tail was torn or corrupt at replay",
            self.damaged_segments.clone(),
        );
    }
}

/// A segment found at start, to replay.
#[derive(Debug)]
pub struct ReplaySegment {
    /// Its ID.
    pub id: SegmentId,
    path: PathBuf,
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
    /// existing segments, oldest first, which the caller must [`Wal::replay`] and then
    /// [`Wal::finish_replay`].
    pub fn open(config: &WalConfig, metrics: WalMetrics) -> Result<(Self, Vec<ReplaySegment>)> {
        let dir = config.path.clone();
        let io_err = |e: std::io::Error| Error::Wal(format!("{}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(io_err)?;
        let mut existing = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err)? {
            let path = entry.map_err(io_err)?.path();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".wal"))
                .and_then(|n| n.parse::<SegmentId>().ok());
            match id {
                Some(id) => existing.push(ReplaySegment { id, path }),
                None => {
                    tracing::warn!(path = %path.display(), "ignoring a file that is not a WAL segment")
                }
            }
        }
        existing.sort_by_key(|s| s.id);
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

    /// Reads the intact records of a segment found at start. A torn or corrupt tail is logged
    /// and skipped; what precedes it is returned.
    pub fn replay(&self, segment: &ReplaySegment) -> Vec<WalRecord> {
        let data = match std::fs::read(&segment.path) {
            Ok(data) => Bytes::from(data),
            Err(e) => {
                tracing::error!(segment = segment.id, error = %e, "cannot read WAL segment; skipping it");
                self.metrics.damaged_segments.inc();
                return Vec::new();
            }
        };
        let (records, damage) = decode_segment(&data);
        if let Some(damage) = damage {
            self.metrics.damaged_segments.inc();
            tracing::warn!(
                segment = segment.id,
                intact_records = records.len(),
                %damage,
                "WAL segment ends in damage; replaying the intact records before it"
            );
        }
        self.metrics.replayed_records.inc_by(records.len() as u64);
        records
    }

    /// After replay: deletes replayed segments that nothing references (every span in them was
    /// empty or refused).
    pub fn finish_replay(&self, segments: &[ReplaySegment]) {
        let ids: Vec<SegmentId> = segments.iter().map(|s| s.id).collect();
        self.refs.sweep(&ids);
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
