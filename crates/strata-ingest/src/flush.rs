//! Turning cut head blocks into blocks on object storage: encode (on a blocking thread), upload
//! with retries, then release the WAL segments the spans came from.
//!
//! A cut block stays queryable the whole way: it is registered in `Shared::flushing` when it is
//! cut (under the same lock that removes it from the head block) and leaves only after every
//! part of it was uploaded and their metas joined `Shared::recent`, which queriers read to see
//! new blocks before their next blocklist poll.
//!
//! A cut block that cannot be encoded (an encoder error or panic) is not lost and does not wedge
//! the ingester: it is split in halves, by traces and then by spans, and each half tried on its
//! own, so everything that can be encoded is uploaded. What fails even as a single span is
//! logged and counted, stays in memory (queryable) and in the WAL (its segments keep their
//! references), and is retried with the upload backoff.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use strata_block::{
    BlockConfig, BlockIdentity, BlockMeta, BlockWriter, EncodedBlock, TimeBounds, upload_block,
};
use strata_model::{Span, TenantId};
use tokio::sync::Semaphore;

use crate::ingester::Shared;
use crate::live::LiveTrace;

/// A cut head block on its way to storage, shared between the flusher and queries.
#[derive(Debug)]
pub(crate) struct FlushingBlock {
    pub(crate) tenant: TenantId,
    pub(crate) traces: Vec<LiveTrace>,
}

/// Receives cut blocks and flushes up to `concurrency` at a time, until the channel closes and
/// every flush has finished.
pub(crate) async fn flush_loop(
    shared: Arc<Shared>,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Arc<FlushingBlock>>,
    concurrency: usize,
) {
    let permits = Arc::new(Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    while let Some(block) = rx.recv().await {
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let shared = Arc::clone(&shared);
        tasks.spawn(async move {
            flush_block(&shared, block).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

/// The traces of a cut block by trace ID, in ascending ID order: each group holds the indexes
/// (into `FlushingBlock::traces`) of the copies of one trace (a trace cut twice by
/// `max_trace_live`), which a block must hold as one trace.
fn trace_groups(traces: &[LiveTrace]) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..traces.len())
        .filter(|&i| !traces[i].spans.is_empty())
        .collect();
    order.sort_by_key(|&i| traces[i].trace_id());
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for i in order {
        match groups.last_mut() {
            Some(group) if traces[group[0]].trace_id() == traces[i].trace_id() => group.push(i),
            _ => groups.push(vec![i]),
        }
    }
    groups
}

/// Part of a cut block encoded as a block of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    /// A run of trace groups.
    Traces(Range<usize>),
    /// Some of the spans of one group (in the order [`group_spans`] gives them).
    Spans { group: usize, spans: Range<usize> },
}

impl Piece {
    /// The two halves of a piece that failed, or `None` for a single span.
    fn split(&self, spans_in_group: impl Fn(usize) -> usize) -> Option<(Piece, Piece)> {
        match self {
            Piece::Traces(r) if r.len() >= 2 => {
                let mid = r.start + r.len() / 2;
                Some((Piece::Traces(r.start..mid), Piece::Traces(mid..r.end)))
            }
            Piece::Traces(r) => {
                let group = r.start;
                Piece::Spans {
                    group,
                    spans: 0..spans_in_group(group),
                }
                .split(spans_in_group)
            }
            Piece::Spans { group, spans } if spans.len() >= 2 => {
                let mid = spans.start + spans.len() / 2;
                Some((
                    Piece::Spans {
                        group: *group,
                        spans: spans.start..mid,
                    },
                    Piece::Spans {
                        group: *group,
                        spans: mid..spans.end,
                    },
                ))
            }
            Piece::Spans { .. } => None,
        }
    }

    /// The groups the piece holds spans of.
    fn groups(&self) -> Range<usize> {
        match self {
            Piece::Traces(r) => r.clone(),
            Piece::Spans { group, .. } => *group..*group + 1,
        }
    }
}

/// Which pieces of a cut block are still to be encoded, and which failed even as single spans.
/// A failed piece is split in halves and both go to the front of the queue.
#[derive(Debug)]
pub(crate) struct Pieces {
    queue: VecDeque<Piece>,
    stuck: Vec<Piece>,
}

impl Pieces {
    /// The whole block as one piece.
    pub(crate) fn whole(groups: usize) -> Self {
        Self {
            queue: (groups > 0)
                .then_some(Piece::Traces(0..groups))
                .into_iter()
                .collect(),
            stuck: Vec::new(),
        }
    }

    /// The next piece to encode.
    pub(crate) fn next(&mut self) -> Option<Piece> {
        self.queue.pop_front()
    }

    /// `piece` could not be encoded: queues its halves, or keeps it as stuck when it is a single
    /// span. Returns whether it was split.
    pub(crate) fn failed(&mut self, piece: Piece, spans_in_group: impl Fn(usize) -> usize) -> bool {
        match piece.split(spans_in_group) {
            Some((a, b)) => {
                self.queue.push_front(b);
                self.queue.push_front(a);
                true
            }
            None => {
                self.stuck.push(piece);
                false
            }
        }
    }

    /// Takes the pieces that failed as single spans, to try again later.
    pub(crate) fn take_stuck(&mut self) -> Vec<Piece> {
        std::mem::take(&mut self.stuck)
    }
}

/// The spans of a group: its one copy's, or every copy's together.
fn group_spans<'a>(block: &'a FlushingBlock, group: &[usize]) -> std::borrow::Cow<'a, [Span]> {
    match group {
        [one] => std::borrow::Cow::Borrowed(&block.traces[*one].spans),
        _ => std::borrow::Cow::Owned(
            group
                .iter()
                .flat_map(|&i| block.traces[i].spans.iter().cloned())
                .collect(),
        ),
    }
}

/// Encodes one piece of a cut block.
fn encode_piece(
    identity: BlockIdentity,
    config: BlockConfig,
    block: &FlushingBlock,
    groups: &[Vec<usize>],
    piece: &Piece,
) -> strata_block::Result<EncodedBlock> {
    let mut writer = BlockWriter::new(identity, config)?;
    match piece {
        Piece::Traces(range) => {
            for group in groups.get(range.clone()).unwrap_or_default() {
                writer.push_trace(&group_spans(block, group))?;
            }
        }
        Piece::Spans { group, spans } => {
            let all = groups
                .get(*group)
                .map(|g| group_spans(block, g))
                .unwrap_or_default();
            writer.push_trace(all.get(spans.clone()).unwrap_or_default())?;
        }
    }
    writer.finish()
}

/// Encodes a piece on a blocking thread; an encoder error or panic is the same failure.
async fn encode_off_thread(
    shared: &Shared,
    block: &Arc<FlushingBlock>,
    groups: &Arc<Vec<Vec<usize>>>,
    piece: &Piece,
) -> Result<EncodedBlock, String> {
    let slack = &shared.config.ingestion_time_slack;
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let traces = piece
        .groups()
        .filter_map(|g| groups.get(g))
        .flatten()
        .filter_map(|&i| block.traces.get(i));
    let received = traces.fold(None, |acc: Option<(u64, u64)>, t| {
        Some(acc.map_or(t.received, |(lo, hi)| {
            (lo.min(t.received.0), hi.max(t.received.1))
        }))
    });
    let identity = BlockIdentity {
        time_bounds: received.map(|(first, last)| TimeBounds {
            outer: (
                first.saturating_sub(nanos(slack.past)),
                last.saturating_add(nanos(slack.future)),
            ),
            inner: (first, last),
        }),
        ..BlockIdentity::fresh(block.tenant.clone())
    };
    let config = shared.block_config.clone();
    let (source, groups, part) = (Arc::clone(block), Arc::clone(groups), piece.clone());
    match tokio::task::spawn_blocking(move || {
        encode_piece(identity, config, &source, &groups, &part)
    })
    .await
    {
        Ok(Ok(encoded)) => Ok(encoded),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("the encoder failed: {e}")),
    }
}

/// Uploads a block, retrying with backoff until it succeeds; false when told to stop retrying
/// (shutdown), the spans then staying in the WAL.
async fn upload_until_done(shared: &Shared, tenant: &TenantId, encoded: &EncodedBlock) -> bool {
    let mut backoff = shared.config.flush_retry_initial_backoff;
    loop {
        match upload_block(&shared.storage, encoded).await {
            Ok(()) => return true,
            Err(e) => {
                shared.metrics.flush_failures.inc();
                tracing::warn!(%tenant, block = %encoded.meta.block_id, error = %e, retry_in = ?backoff, "block upload failed; retrying");
                if shared.stop_retrying.load(Ordering::Acquire) {
                    tracing::warn!(%tenant, block = %encoded.meta.block_id, "giving up on the upload at shutdown; its spans stay in the WAL");
                    return false;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(shared.config.flush_retry_max_backoff);
            }
        }
    }
}

async fn flush_block(shared: &Shared, block: Arc<FlushingBlock>) {
    let tenant = block.tenant.clone();
    let groups = Arc::new(trace_groups(&block.traces));
    let spans_in_group = |g: usize| {
        groups.get(g).map_or(0, |group| {
            group.iter().map(|&i| block.traces[i].spans.len()).sum()
        })
    };
    let mut pieces = Pieces::whole(groups.len());
    // Groups with a piece not uploaded yet: their traces keep their WAL references.
    let mut pending = vec![true; groups.len()];
    let mut backoff = shared.config.flush_retry_initial_backoff;
    loop {
        while let Some(piece) = pieces.next() {
            match encode_off_thread(shared, &block, &groups, &piece).await {
                Ok(encoded) => {
                    if !upload_until_done(shared, &tenant, &encoded).await {
                        return;
                    }
                    shared.block_uploaded(encoded.meta.clone());
                    shared.metrics.blocks_flushed.inc();
                    shared.metrics.spans_flushed.inc_by(encoded.meta.span_count);
                    shared
                        .metrics
                        .block_bytes
                        .inc_by(encoded.meta.data_size + encoded.meta.bloom_size);
                    tracing::info!(
                        %tenant,
                        block = %encoded.meta.block_id,
                        traces = encoded.meta.trace_count,
                        spans = encoded.meta.span_count,
                        bytes = encoded.meta.data_size,
                        "flushed block"
                    );
                }
                Err(error) => {
                    shared.metrics.flush_failures.inc();
                    if pieces.failed(piece.clone(), spans_in_group) {
                        tracing::warn!(%tenant, ?piece, %error, "could not encode part of a cut block; trying it in halves");
                    } else {
                        shared.metrics.unencodable_spans.inc();
                        tracing::error!(%tenant, ?piece, %error, "could not encode a span even on its own; it stays in memory and in the WAL, and is retried");
                    }
                }
            }
        }
        let stuck = pieces.take_stuck();
        let mut still = vec![false; groups.len()];
        for piece in &stuck {
            still[piece.groups()].iter_mut().for_each(|g| *g = true);
        }
        // Release what is uploaded as soon as it is, even while a stuck piece waits.
        for (g, group) in groups.iter().enumerate() {
            if pending[g] && !still[g] {
                pending[g] = false;
                for &i in group {
                    release(shared, &block.traces[i]);
                }
            }
        }
        if stuck.is_empty() {
            break;
        }
        if shared.stop_retrying.load(Ordering::Acquire) {
            tracing::warn!(%tenant, pieces = stuck.len(), "giving up on unencodable spans at shutdown; they stay in the WAL");
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(shared.config.flush_retry_max_backoff);
        pieces = Pieces {
            queue: stuck.into_iter().collect(),
            stuck: Vec::new(),
        };
    }
    // Traces without spans hold no group but may hold references.
    for trace in block.traces.iter().filter(|t| t.spans.is_empty()) {
        release(shared, trace);
    }
    shared.flushed(&block);
}

/// A trace is in an uploaded block: its WAL references and its bytes go.
fn release(shared: &Shared, trace: &LiveTrace) {
    for segment in &trace.segments {
        shared.wal_refs.release(*segment);
    }
    shared
        .unflushed_bytes
        .fetch_sub(trace.bytes, Ordering::AcqRel);
}

/// A block uploaded recently, remembered so queriers can use it before they see it in a listing.
#[derive(Debug, Clone)]
pub(crate) struct RecentBlock {
    pub(crate) at: Instant,
    pub(crate) meta: BlockMeta,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives [`Pieces`] with an encoder that fails for any piece holding a poison span, as the
    /// flusher does: every other span ends up in exactly one encoded piece, the poison span
    /// alone is stuck.
    #[test]
    fn a_failing_piece_is_split_until_only_the_unencodable_spans_are_left() {
        // 13 groups of 1..=5 spans; spans 2 of group 4 and 0 of group 11 cannot be encoded.
        let sizes: Vec<usize> = (0..13).map(|g| 1 + g % 5).collect();
        let poison = [(4usize, 2usize), (11, 0)];
        let spans_of = |piece: &Piece| -> Vec<(usize, usize)> {
            match piece {
                Piece::Traces(r) => r
                    .clone()
                    .flat_map(|g| (0..sizes[g]).map(move |s| (g, s)))
                    .collect(),
                Piece::Spans { group, spans } => spans.clone().map(|s| (*group, s)).collect(),
            }
        };
        let mut pieces = Pieces::whole(sizes.len());
        let mut encoded: Vec<(usize, usize)> = Vec::new();
        let mut attempts = 0;
        while let Some(piece) = pieces.next() {
            attempts += 1;
            let spans = spans_of(&piece);
            if spans.iter().any(|s| poison.contains(s)) {
                pieces.failed(piece, |g| sizes[g]);
            } else {
                encoded.extend(spans);
            }
        }
        let stuck: Vec<(usize, usize)> = pieces.take_stuck().iter().flat_map(spans_of).collect();
        assert_eq!(stuck, poison.to_vec());
        encoded.sort_unstable();
        let everything: Vec<(usize, usize)> = (0..sizes.len())
            .flat_map(|g| (0..sizes[g]).map(move |s| (g, s)))
            .filter(|s| !poison.contains(s))
            .collect();
        assert_eq!(encoded, everything, "every other span encoded exactly once");
        assert!(
            attempts < 40,
            "{attempts} encodes: halving, not span by span"
        );
    }

    #[test]
    fn an_empty_block_has_no_piece_and_a_single_span_does_not_split() {
        assert!(Pieces::whole(0).next().is_none());
        let one = Piece::Spans {
            group: 0,
            spans: 3..4,
        };
        assert_eq!(one.split(|_| 10), None);
        assert_eq!(Piece::Traces(0..1).split(|_| 1), None);
    }
}
