//! Reading whole blocks back as traces, in trace-ID order, and merging several blocks into one
//! sorted stream of traces (the compactor's k-way merge). Row groups never split a trace, so a
//! block is read one row group at a time and memory stays bounded by the largest row group of
//! each input.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use arrow::array::{Array, Float64Array, RecordBatch};
use futures::FutureExt;
use strata_model::{Span, TraceId, dedupe_spans};
use strata_storage::Storage;

use crate::error::{Result, corrupt};
use crate::lookup::{BlockFile, ReadStats, open_block_file};
use crate::meta::BlockMeta;
use crate::read::spans_from_batch;
use crate::scan::read_whole_group;
use crate::schema::col;

/// One trace as stored: its spans and the number of traces it stands for after sampling.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTrace {
    /// The trace ID all its spans share.
    pub trace_id: TraceId,
    /// The spans, in the block's (tree) order.
    pub spans: Vec<Span>,
    /// The sampling weight (`trace_weight`): 1 unless sampling dropped traces like it.
    pub weight: f64,
}

/// Groups the rows of one record batch of a block into traces.
pub fn traces_from_batch(batch: &RecordBatch, block: &str) -> Result<Vec<StoredTrace>> {
    let weights = batch
        .column_by_name(col::TRACE_WEIGHT)
        .map(|c| {
            c.as_any()
                .downcast_ref::<Float64Array>()
                .ok_or_else(|| corrupt(block, "column trace_weight has the wrong type"))
        })
        .transpose()?;
    let spans = spans_from_batch(batch, block)?;
    let mut traces: Vec<StoredTrace> = Vec::new();
    for (row, span) in spans.into_iter().enumerate() {
        // Weights are written per row; a block from before the column existed weighs 1.
        let weight = match weights {
            Some(w) if w.is_valid(row) => w.value(row),
            _ => 1.0,
        };
        if !(weight.is_finite() && weight >= 1.0) {
            return Err(corrupt(
                block,
                format!("trace_weight {weight} in row {row}"),
            ));
        }
        match traces.last_mut() {
            Some(last) if last.trace_id == span.trace_id => last.spans.push(span),
            Some(last) if last.trace_id > span.trace_id => {
                return Err(corrupt(block, "rows are not sorted by trace ID"));
            }
            _ => traces.push(StoredTrace {
                trace_id: span.trace_id,
                spans: vec![span],
                weight,
            }),
        }
    }
    Ok(traces)
}

/// A block's traces in ascending trace-ID order, read one row group at a time.
pub struct BlockTraceReader {
    storage: Storage,
    meta: Arc<BlockMeta>,
    file: BlockFile,
    stats: Arc<ReadStats>,
    next_group: usize,
    buffered: VecDeque<StoredTrace>,
    last: Option<TraceId>,
}

impl BlockTraceReader {
    /// Opens the block (one read of the file's tail).
    pub async fn open(storage: &Storage, meta: Arc<BlockMeta>) -> Result<Self> {
        let stats = Arc::new(ReadStats::default());
        let block = meta.block_id.to_string();
        let file = AssertUnwindSafe(open_block_file(storage, &meta, &stats))
            .catch_unwind()
            .await
            .map_err(|_| corrupt(&block, "footer: the Parquet reader panicked"))??;
        Ok(Self {
            storage: storage.clone(),
            meta,
            file,
            stats,
            next_group: 0,
            buffered: VecDeque::new(),
            last: None,
        })
    }

    /// The block being read.
    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    /// The next trace, or `None` at the end of the block.
    pub async fn next(&mut self) -> Result<Option<StoredTrace>> {
        let groups = self.file.metadata.metadata().num_row_groups();
        while self.buffered.is_empty() && self.next_group < groups {
            let group = self.next_group;
            self.next_group += 1;
            let block = self.meta.block_id.to_string();
            let read = async {
                let batch =
                    read_whole_group(&self.storage, &self.meta, &self.file, group, &self.stats)
                        .await?;
                traces_from_batch(&batch, &block)
            };
            // The Parquet and Arrow readers are not proven panic-free on hostile pages; a panic
            // costs this block (an error naming it), not the caller.
            let traces = AssertUnwindSafe(read).catch_unwind().await.map_err(|_| {
                corrupt(
                    &block,
                    format!("row group {group}: the Parquet reader panicked"),
                )
            })??;
            for trace in traces {
                if self.last.is_some_and(|last| last >= trace.trace_id) {
                    return Err(corrupt(&block, "traces are not in ascending ID order"));
                }
                self.last = Some(trace.trace_id);
                self.buffered.push_back(trace);
            }
        }
        Ok(self.buffered.pop_front())
    }
}

/// Merges blocks into one stream of traces in ascending trace-ID order. The copies of a trace
/// found in several inputs are combined: spans unioned, later copies of a span ID dropped, and
/// the largest weight kept (inputs of one merge share a retention tier, so their weights agree).
pub struct TraceMerge {
    inputs: Vec<BlockTraceReader>,
    heads: Vec<Option<StoredTrace>>,
    heap: BinaryHeap<Reverse<(TraceId, usize)>>,
}

impl TraceMerge {
    /// Opens every input and reads its first trace.
    pub async fn open(storage: &Storage, inputs: &[Arc<BlockMeta>]) -> Result<Self> {
        let mut readers = Vec::with_capacity(inputs.len());
        for meta in inputs {
            let reader = BlockTraceReader::open(storage, Arc::clone(meta))
                .await
                .map_err(|e| input(meta.block_id, e))?;
            readers.push(reader);
        }
        let mut merge = Self {
            heads: (0..readers.len()).map(|_| None).collect(),
            inputs: readers,
            heap: BinaryHeap::new(),
        };
        for i in 0..merge.inputs.len() {
            merge.advance(i).await?;
        }
        Ok(merge)
    }

    async fn advance(&mut self, i: usize) -> Result<()> {
        let reader = &mut self.inputs[i];
        let block = reader.meta().block_id;
        let next = reader.next().await.map_err(|e| input(block, e))?;
        if let Some(trace) = &next {
            self.heap.push(Reverse((trace.trace_id, i)));
        }
        self.heads[i] = next;
        Ok(())
    }

    /// The next trace, combined from every input that holds it; `each` sees every input's copy
    /// first, with the input's position in the list given to [`TraceMerge::open`].
    pub async fn next_with(
        &mut self,
        mut each: impl FnMut(usize, &StoredTrace),
    ) -> Result<Option<StoredTrace>> {
        let Some(Reverse((id, first))) = self.heap.pop() else {
            return Ok(None);
        };
        let mut trace = self.take(first)?;
        each(first, &trace);
        self.advance(first).await?;
        let mut combined = false;
        while let Some(Reverse((next_id, i))) = self.heap.peek().copied() {
            if next_id != id {
                break;
            }
            self.heap.pop();
            let copy = self.take(i)?;
            each(i, &copy);
            trace.spans.extend(copy.spans);
            trace.weight = trace.weight.max(copy.weight);
            combined = true;
            self.advance(i).await?;
        }
        if combined {
            dedupe_spans(&mut trace.spans);
        }
        Ok(Some(trace))
    }

    fn take(&mut self, i: usize) -> Result<StoredTrace> {
        self.heads[i].take().ok_or_else(|| {
            let block = self.inputs[i].meta().block_id;
            input(
                block,
                corrupt(block.to_string(), "merge lost its place in the block"),
            )
        })
    }
}

/// An error of one input of a merge, naming it.
fn input(block: uuid::Uuid, error: crate::Error) -> crate::Error {
    crate::Error::Input {
        block,
        source: Box::new(error),
    }
}
