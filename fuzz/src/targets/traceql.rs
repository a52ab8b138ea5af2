//! `traceql`: a query's text through the parser (strict and lenient), the printer (whose output
//! must parse back to the same tree), the validator, the planner and evaluation by
//! `Querier::search` — twice: over the fixture as a block in the bucket, and over the same
//! spans as an ingester's recent data. The two must find the same traces.
//!
//! Everything runs in a task on a 2 MiB worker stack, as the API's handlers do.

use std::collections::BTreeSet;
use std::sync::{Arc, OnceLock};

use strata_model::TraceId;
use strata_query::{Querier, QueryConfig, QueryMetrics, RecentSource, SearchRequest};
use strata_storage::Storage;

use super::recent::FixtureRecent;
use crate::fixture;
use crate::runtime::run;

/// Longest query text tried (the API's HTTP server holds about 400 KiB; the fuzzer's inputs are
/// far shorter anyway).
const MAX_QUERY_BYTES: usize = 64 << 10;

struct Queriers {
    /// The fixture as a block in an in-memory bucket, no recent data.
    block: Querier,
    /// An empty bucket, the fixture as recent data.
    recent: Querier,
}

fn queriers() -> Arc<Queriers> {
    static QUERIERS: OnceLock<Arc<Queriers>> = OnceLock::new();
    Arc::clone(QUERIERS.get_or_init(|| {
        run(async {
            let storage = Storage::in_memory();
            if let Err(e) = strata_block::upload_block(&storage, &fixture::block()).await {
                panic!("cannot store the fixture block: {e}");
            }
            let block = Querier::new(
                storage,
                QueryConfig::default(),
                RecentSource::None,
                QueryMetrics::default(),
            );
            let recent = Querier::new(
                Storage::in_memory(),
                QueryConfig::default(),
                RecentSource::Local(Arc::new(FixtureRecent::new(false))),
                QueryMetrics::default(),
            );
            for querier in [&block, &recent] {
                if let Err(e) = querier.poll_blocklist().await {
                    panic!("cannot poll the fixture bucket: {e}");
                }
            }
            Arc::new(Queriers { block, recent })
        })
    }))
}

/// A TraceQL query, as UTF-8 text.
pub fn traceql(data: &[u8]) {
    crate::panics::install();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.len() > MAX_QUERY_BYTES {
        return;
    }
    let queriers = queriers();
    let text = text.to_owned();
    run(async move { check(&queriers, &text).await });
}

async fn check(queriers: &Queriers, text: &str) {
    let _ = strata_traceql::parse_lenient(text);
    let Ok(query) = strata_traceql::parse(text) else {
        return;
    };
    let printed = query.to_string();
    match strata_traceql::parse(&printed) {
        Ok(again) => assert_eq!(
            again, query,
            "{text:?} printed as {printed:?} parses to another query"
        ),
        Err(e) => panic!("{text:?} printed as {printed:?} does not parse: {e}"),
    }
    if query.validate().is_err() {
        return;
    }
    let query = Arc::new(query);
    let request = || SearchRequest {
        query: Arc::clone(&query),
        limit: 100,
        spans_per_spanset: 3,
        range: None,
        min_duration_nanos: None,
        max_duration_nanos: None,
    };
    let tenant = fixture::tenant();
    let from_block = queriers.block.search(&tenant, request()).await;
    let from_recent = queriers.recent.search(&tenant, request()).await;
    if let (Ok(block), Ok(recent)) = (&from_block, &from_recent) {
        assert_eq!(
            block.partial, None,
            "the fixture block failed to search: {text:?}"
        );
        let ids = |r: &strata_query::SearchResult| -> BTreeSet<TraceId> {
            r.traces.iter().map(|t| t.trace_id).collect()
        };
        assert_eq!(
            ids(block),
            ids(recent),
            "{text:?} finds other traces in the block than in the same spans as recent data"
        );
    }
    assert_eq!(
        from_block.is_ok(),
        from_recent.is_ok(),
        "{text:?}: block search {:?}, recent search {:?}",
        from_block.as_ref().err(),
        from_recent.as_ref().err()
    );
}
