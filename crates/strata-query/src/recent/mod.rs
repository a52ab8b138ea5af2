//! Data not yet in the bucket: an ingester's live traces and head blocks, and the blocks it
//! uploaded that a blocklist poll may not have listed yet.
//!
//! A querier reaches it through a [`RecentSource`]: the ingester in its own process
//! ([`RecentData`], for `strata all`), or ingesters elsewhere over their internal gRPC API
//! ([`IngesterPool`], for `strata querier`; [`IngesterService`] is the ingester's side). Either
//! way the answer is a [`Recent`]: the data, the recent block metas (taken after the data, so a
//! trace flushed meanwhile is in one of them), and which ingesters did not answer.

mod client;
mod service;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;

use strata_block::{BlockMeta, TagSummary};
use strata_model::{Span, TenantId, TraceId};

use crate::error::Result;
use crate::search::{BatchOutcome, Plan, SearchRequest, search_traces};

pub use client::{IngesterPool, Resolve};
pub use service::{IngesterService, InternalMethod};

/// What an ingester in this process holds that may not be in the blocklist yet.
pub trait RecentData: Send + Sync {
    /// Spans of the trace not yet in an uploaded block.
    fn find_trace(&self, tenant: &TenantId, trace_id: &TraceId) -> Vec<Span>;
    /// Blocks uploaded recently, which a blocklist poll may not have listed yet.
    fn recent_blocks(&self, tenant: &TenantId) -> Vec<BlockMeta>;
    /// Copies of every trace not yet in an uploaded block, for search (each entry one trace's
    /// spans; a trace may appear more than once).
    fn recent_traces(&self, tenant: &TenantId) -> Vec<Vec<Span>>;
    /// The tag names and values of the data not yet in an uploaded block.
    fn recent_tags(&self, tenant: &TenantId) -> TagSummary;
}

/// An answer from recent data.
#[derive(Debug, Default)]
pub(crate) struct Recent<T> {
    /// The data.
    pub(crate) value: T,
    /// Blocks uploaded recently, read after the data.
    pub(crate) blocks: Vec<BlockMeta>,
    /// The ingesters that did not answer, each with why.
    pub(crate) unreachable: Vec<String>,
}

impl<T> Recent<T> {
    /// Says which ingesters did not answer, for a partial answer's message.
    pub(crate) fn partial_message(&self) -> Option<String> {
        (!self.unreachable.is_empty()).then(|| {
            format!(
                "{} of the ingesters did not answer, so recent data may be missing: {}",
                self.unreachable.len(),
                self.unreachable.join("; ")
            )
        })
    }
}

/// Where a querier finds the data not yet in the bucket.
#[derive(Clone)]
pub enum RecentSource {
    /// Nowhere: the bucket only (a tool reading storage directly).
    None,
    /// The ingester in this process (`strata all`).
    Local(Arc<dyn RecentData>),
    /// Ingesters in other processes, over their internal API (`strata querier`).
    Ingesters(Arc<IngesterPool>),
}

impl RecentSource {
    pub(crate) async fn find_trace(
        &self,
        tenant: &TenantId,
        trace_id: &TraceId,
    ) -> Recent<Vec<Span>> {
        match self {
            Self::None => Recent::default(),
            Self::Local(recent) => {
                local(recent.as_ref(), tenant, |r| r.find_trace(tenant, trace_id))
            }
            Self::Ingesters(pool) => pool.find_trace(tenant, trace_id).await,
        }
    }

    pub(crate) async fn search(
        &self,
        tenant: &TenantId,
        plan: &Arc<Plan>,
        request: &Arc<SearchRequest>,
    ) -> Result<Recent<BatchOutcome>> {
        match self {
            Self::None => Ok(Recent::default()),
            Self::Local(recent) => search_local(recent.as_ref(), tenant, plan, request).await,
            Self::Ingesters(pool) => Ok(pool.search(tenant, request).await),
        }
    }

    pub(crate) async fn tags(&self, tenant: &TenantId) -> Recent<TagSummary> {
        match self {
            Self::None => Recent::default(),
            Self::Local(recent) => local(recent.as_ref(), tenant, |r| r.recent_tags(tenant)),
            Self::Ingesters(pool) => pool.tags(tenant).await,
        }
    }
}

/// Asks the local ingester, then lists its recent blocks (in that order: see the module docs).
fn local<T>(
    recent: &dyn RecentData,
    tenant: &TenantId,
    ask: impl FnOnce(&dyn RecentData) -> T,
) -> Recent<T> {
    let value = ask(recent);
    Recent {
        value,
        blocks: recent.recent_blocks(tenant),
        unreachable: Vec::new(),
    }
}

/// Runs a search over an ingester's recent traces: what `strata all` does in process and what
/// an ingester does for a remote querier.
pub(crate) async fn search_local(
    recent: &dyn RecentData,
    tenant: &TenantId,
    plan: &Arc<Plan>,
    request: &Arc<SearchRequest>,
) -> Result<Recent<BatchOutcome>> {
    let mut traces: HashMap<TraceId, Vec<Span>> = HashMap::new();
    for spans in recent.recent_traces(tenant) {
        if let Some(first) = spans.first() {
            traces.entry(first.trace_id).or_default().extend(spans);
        }
    }
    let value = search_traces(traces, Arc::clone(plan), Arc::clone(request)).await?;
    Ok(Recent {
        value,
        blocks: recent.recent_blocks(tenant),
        unreachable: Vec::new(),
    })
}
