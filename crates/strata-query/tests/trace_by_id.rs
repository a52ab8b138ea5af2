//! Trace by ID over real blocks on storage plus recent data: found whole wherever its spans
//! are, de-duplicated, pruned by time, and a miss reads no block data.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::{DateTime, Utc};
use strata_bench::workload::{Workload, WorkloadConfig};
use strata_block::{BlockConfig, BlockIdentity, BlockMeta, encode_block, upload_block};
use strata_model::{Span, TenantId, TraceId};
use strata_query::{Querier, QueryConfig, QueryMetrics, RecentData, TimeRange};
use strata_storage::Storage;

fn tenant() -> TenantId {
    TenantId::new("team").unwrap()
}

async fn write_block(storage: &Storage, spans: Vec<Span>) -> BlockMeta {
    let identity = BlockIdentity::fresh(tenant());
    let block = encode_block(identity, BlockConfig::default(), spans).unwrap();
    upload_block(storage, &block).await.unwrap();
    block.meta
}

/// Recent data that holds a fixed set of spans.
struct Fixed(Vec<Span>);

impl RecentData for Fixed {
    fn find_trace(&self, _: &TenantId, trace_id: &TraceId) -> Vec<Span> {
        self.0
            .iter()
            .filter(|s| s.trace_id == *trace_id)
            .cloned()
            .collect()
    }
    fn recent_blocks(&self, _: &TenantId) -> Vec<BlockMeta> {
        Vec::new()
    }
    fn recent_traces(&self, _: &TenantId) -> Vec<Vec<Span>> {
        let mut traces: std::collections::BTreeMap<TraceId, Vec<Span>> = Default::default();
        for s in &self.0 {
            traces.entry(s.trace_id).or_default().push(s.clone());
        }
        traces.into_values().collect()
    }
    fn recent_tags(&self, tenant: &TenantId) -> strata_block::TagSummary {
        let mut builder = strata_block::TagSummaryBuilder::default();
        for trace in self.recent_traces(tenant) {
            builder.add_trace(&trace);
        }
        builder.finish()
    }
}

/// A querier over `storage` and `recent`, with the default config.
fn querier(storage: Storage, recent: strata_query::RecentSource) -> Querier {
    Querier::new(
        storage,
        QueryConfig::default(),
        recent,
        QueryMetrics::default(),
    )
}

/// `n` workload traces from `seed`, each as its spans.
fn workload_traces(seed: u64, n: usize) -> Vec<Vec<Span>> {
    let mut workload = Workload::new(WorkloadConfig {
        seed,
        ..Default::default()
    });
    (0..n)
        .map(|_| strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0)
        .collect()
}

#[tokio::test]
async fn a_trace_split_over_blocks_and_memory_comes_back_whole_once() {
    let traces = workload_traces(5, 40);
    let target = traces[7].clone();
    assert!(target.len() >= 6);
    let third = target.len() / 3;
    let storage = Storage::in_memory();
    // Block A: the first 20 traces, with the target's first third; block B: the rest, with the
    // target's second third and one span of the first third again (a replayed copy).
    let mut a: Vec<Span> = traces[..20]
        .iter()
        .flatten()
        .filter(|s| s.trace_id != target[0].trace_id)
        .cloned()
        .collect();
    a.extend(target[..third].iter().cloned());
    let mut b: Vec<Span> = traces[20..].iter().flatten().cloned().collect();
    b.extend(target[third..2 * third].iter().cloned());
    b.push(target[0].clone());
    let meta_a = write_block(&storage, a).await;
    write_block(&storage, b).await;
    let recent = Arc::new(Fixed(target[2 * third..].to_vec()));
    let querier = querier(storage.clone(), strata_query::RecentSource::Local(recent));
    querier.poll_blocklist().await.unwrap();
    assert_eq!(querier.blocklist().blocks(&tenant()).len(), 2);

    let found = querier
        .find_trace(&tenant(), &target[0].trace_id, None)
        .await
        .unwrap();
    let mut got: Vec<_> = found.spans.iter().map(|s| s.span_id).collect();
    let mut want: Vec<_> = target.iter().map(|s| s.span_id).collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every span once");
    assert_eq!(found.blocks_read, 2);
    assert!(found.partial.is_none());

    // A time range that misses both blocks leaves only the recent spans.
    let long_ago = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
    let range = TimeRange {
        start: long_ago,
        end: long_ago,
    };
    let found = querier
        .find_trace(&tenant(), &target[0].trace_id, Some(range))
        .await
        .unwrap();
    assert_eq!(found.blocks_considered, 0);
    assert_eq!(found.spans.len(), target.len() - 2 * third);
    // A range around block A's spans finds them again.
    let range = TimeRange {
        start: meta_a.start_time,
        end: meta_a.end_time,
    };
    assert!(
        querier
            .find_trace(&tenant(), &target[0].trace_id, Some(range))
            .await
            .unwrap()
            .blocks_considered
            >= 1
    );
}

#[tokio::test]
async fn a_miss_reads_no_block_data() {
    let mut workload = Workload::new(WorkloadConfig {
        seed: 9,
        ..Default::default()
    });
    let storage = Storage::in_memory();
    for _ in 0..5 {
        let spans: Vec<Span> = (0..30)
            .flat_map(|_| {
                strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0
            })
            .collect();
        write_block(&storage, spans).await;
    }
    let querier = querier(storage.clone(), strata_query::RecentSource::None);
    querier.poll_blocklist().await.unwrap();
    let data_reads_before = storage.metrics().requests("get_range");
    let mut misses = 0;
    for i in 0..50u8 {
        let absent = TraceId([i.wrapping_add(1); 16]);
        let found = querier.find_trace(&tenant(), &absent, None).await.unwrap();
        assert!(found.spans.is_empty());
        if found.blocks_read == 0 {
            misses += 1;
        }
    }
    // At 1% false positives, almost every miss stops at the bloom filters, and after the first
    // lookup those are cached: no request at all.
    assert!(
        misses >= 45,
        "{misses} of 50 misses stopped at the bloom filters"
    );
    let found = querier
        .find_trace(&tenant(), &TraceId([0x77; 16]), None)
        .await
        .unwrap();
    if found.blocks_read == 0 {
        assert_eq!(
            found.storage_reads, 0,
            "cached bloom shards: a miss makes no request"
        );
    }
    assert!(
        storage.metrics().requests("get_range") - data_reads_before <= 5,
        "data reads only for bloom false positives"
    );
}

#[tokio::test]
async fn a_block_without_meta_does_not_exist() {
    let mut workload = Workload::new(WorkloadConfig {
        seed: 13,
        ..Default::default()
    });
    let spans = strata_model::otlp::spans_from_request(workload.next_trace().into_request()).0;
    let id = spans[0].trace_id;
    let identity = BlockIdentity::fresh(tenant());
    let block = encode_block(identity, BlockConfig::default(), spans).unwrap();
    let storage = Storage::in_memory();
    // A writer that died before writing meta.json left data and bloom behind.
    storage
        .put(
            &strata_block::layout::data_path(&tenant(), block.meta.block_id),
            block.data.clone(),
        )
        .await
        .unwrap();
    storage
        .put(
            &strata_block::layout::bloom_path(&tenant(), block.meta.block_id, 0),
            block.blooms[0].clone(),
        )
        .await
        .unwrap();
    let querier = querier(storage.clone(), strata_query::RecentSource::None);
    querier.poll_blocklist().await.unwrap();
    assert!(querier.blocklist().blocks(&tenant()).is_empty());
    assert!(
        querier
            .find_trace(&tenant(), &id, None)
            .await
            .unwrap()
            .spans
            .is_empty()
    );
    upload_block(&storage, &block).await.unwrap();
    querier.poll_blocklist().await.unwrap();
    assert!(
        !querier
            .find_trace(&tenant(), &id, None)
            .await
            .unwrap()
            .spans
            .is_empty()
    );
}

/// Serves `recent` over the internal API on a loopback port until the sender is used or dropped.
async fn serve_ingester(
    recent: Vec<Span>,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = strata_query::IngesterService::new(Arc::new(Fixed(recent)), false);
    tokio::spawn(service.serve(listener, async {
        let _ = stopped.await;
    }));
    (addr, stop)
}

#[tokio::test]
async fn a_querier_finds_ingesters_by_dns_merges_their_answers_and_says_when_one_is_missing() {
    let traces = workload_traces(9, 20);
    // Ingester A holds traces 0-9 and half of trace 10; B the other half and traces 11-19.
    let split = &traces[10];
    assert!(split.len() >= 2);
    let half = split.len() / 2;
    let mut on_a: Vec<Span> = traces[..10].iter().flatten().cloned().collect();
    on_a.extend(split[..half].iter().cloned());
    let mut on_b: Vec<Span> = traces[11..].iter().flatten().cloned().collect();
    on_b.extend(split[half..].iter().cloned());
    let (a, _stop_a) = serve_ingester(on_a).await;
    let (b, stop_b) = serve_ingester(on_b).await;

    // A name that resolves to both, then to A only, then not at all.
    let answer: Arc<parking_lot::Mutex<Option<Vec<std::net::SocketAddr>>>> =
        Arc::new(parking_lot::Mutex::new(Some(vec![a, b])));
    let resolve: strata_query::Resolve = {
        let answer = Arc::clone(&answer);
        Arc::new(move |name: String| {
            let found = answer.lock().clone();
            Box::pin(async move {
                assert_eq!(name, "ingesters.strata.test:9095");
                found.ok_or_else(|| std::io::Error::other("no such host"))
            })
        })
    };
    let config = strata_query::IngestersConfig {
        dns: Some("ingesters.strata.test:9095".into()),
        timeout: std::time::Duration::from_secs(2),
        ..Default::default()
    };
    let pool = Arc::new(strata_query::IngesterPool::with_resolver(config, resolve));
    pool.refresh().await;
    let mut both = vec![a.to_string(), b.to_string()];
    both.sort();
    assert_eq!(pool.addresses(), both, "in address order");
    let querier = Querier::new(
        Storage::in_memory(),
        QueryConfig::default(),
        strata_query::RecentSource::Ingesters(Arc::clone(&pool)),
        QueryMetrics::default(),
    );
    querier.poll_blocklist().await.unwrap();

    // The trace split over both ingesters comes back whole, from one request to each.
    let found = querier
        .find_trace(&tenant(), &split[0].trace_id, None)
        .await
        .unwrap();
    assert_eq!(found.spans.len(), split.len());
    assert_eq!(found.partial, None);
    // Search runs on both and finds every trace once.
    let everything = strata_query::SearchRequest {
        query: Arc::new(strata_traceql::parse("{ }").unwrap()),
        limit: 100,
        spans_per_spanset: 0,
        range: None,
        min_duration_nanos: None,
        max_duration_nanos: None,
    };
    let result = querier.search(&tenant(), everything.clone()).await.unwrap();
    let mut ids: Vec<TraceId> = result.traces.iter().map(|t| t.trace_id).collect();
    ids.sort();
    let mut want: Vec<TraceId> = traces.iter().map(|t| t[0].trace_id).collect();
    want.sort();
    assert_eq!(ids, want);
    assert_eq!(result.partial, None);
    let hit = result
        .traces
        .iter()
        .find(|t| t.trace_id == split[0].trace_id)
        .unwrap();
    assert_eq!(hit.spansets[0].matched, split.len(), "both halves matched");
    let tags = querier.tags(&tenant(), None).await.unwrap();
    assert!(tags.summary.scopes.contains_key("resource"));

    // The name now resolves to A alone: B is no longer asked, and no answer is partial.
    *answer.lock() = Some(vec![a]);
    pool.refresh().await;
    assert_eq!(pool.addresses(), vec![a.to_string()]);
    let on_b_only = traces[15][0].trace_id;
    let found = querier
        .find_trace(&tenant(), &on_b_only, None)
        .await
        .unwrap();
    assert!(found.spans.is_empty());
    assert_eq!(found.partial, None);

    // It stops resolving: the last addresses are kept and answers say why they may be partial.
    *answer.lock() = None;
    pool.refresh().await;
    assert_eq!(pool.addresses(), vec![a.to_string()]);
    let found = querier
        .find_trace(&tenant(), &traces[3][0].trace_id, None)
        .await
        .unwrap();
    assert_eq!(found.spans.len(), traces[3].len());
    let partial = found
        .partial
        .expect("partial while the name does not resolve");
    assert!(partial.contains("cannot resolve"), "{partial}");

    // Both again, then B goes down: A's traces are found and the answer names B.
    *answer.lock() = Some(vec![a, b]);
    pool.refresh().await;
    stop_b.send(()).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let found = querier
        .find_trace(&tenant(), &traces[3][0].trace_id, None)
        .await
        .unwrap();
    assert_eq!(found.spans.len(), traces[3].len());
    let partial = found.partial.expect("partial with an ingester down");
    assert!(partial.contains(&b.to_string()), "{partial}");
    let result = querier.search(&tenant(), everything).await.unwrap();
    assert_eq!(
        result.traces.len(),
        11,
        "A's ten traces and its half of the split one"
    );
    assert!(result.partial.is_some_and(|p| p.contains(&b.to_string())));
}

/// Regression: a block deleted under the querier (compacted away) whose footer and bloom shard
/// were cached made every later answer "partial", and an ingester naming it among its recent
/// uploads brought it back after every poll.
#[tokio::test]
async fn a_block_deleted_under_the_querier_is_skipped_quietly_and_not_added_again() {
    let spans: Vec<Span> = workload_traces(11, 5).into_iter().flatten().collect();
    let storage = Storage::in_memory();
    let meta = write_block(&storage, spans.clone()).await;
    let querier = querier(storage.clone(), strata_query::RecentSource::None);
    querier.poll_blocklist().await.unwrap();
    let id = spans[0].trace_id;
    // The first lookup caches the block's bloom shard and footer.
    let found = querier.find_trace(&tenant(), &id, None).await.unwrap();
    assert!(!found.spans.is_empty());
    // The compactor deletes it.
    for object in storage
        .list(&strata_block::layout::block_prefix(
            &tenant(),
            meta.block_id,
        ))
        .await
        .unwrap()
    {
        storage.delete(&object.path).await.unwrap();
    }
    let found = querier.find_trace(&tenant(), &id, None).await.unwrap();
    assert!(found.spans.is_empty());
    assert_eq!(found.partial, None, "a deleted block is not a failed read");
    assert!(querier.blocklist().blocks(&tenant()).is_empty());
    assert!(
        !querier.blocklist().add(Arc::new(meta)),
        "an ingester's recent list must not bring it back"
    );
    querier.poll_blocklist().await.unwrap();
    assert!(querier.blocklist().blocks(&tenant()).is_empty());
}

/// Every span of `traces`, one block per chunk of `per_block` traces.
async fn blocks_of(storage: &Storage, traces: &[Vec<Span>], per_block: usize) -> Vec<BlockMeta> {
    let mut metas = Vec::new();
    for chunk in traces.chunks(per_block) {
        metas.push(write_block(storage, chunk.iter().flatten().cloned().collect()).await);
    }
    metas
}

fn search_everything() -> strata_query::SearchRequest {
    strata_query::SearchRequest {
        query: Arc::new(strata_traceql::parse("{ }").unwrap()),
        limit: 10_000,
        spans_per_spanset: 0,
        range: None,
        min_duration_nanos: None,
        max_duration_nanos: None,
    }
}

/// Audit 2.5: a block whose data (or bloom shard) was missing was skipped as "compacted away"
/// without marking the answer partial, even when nothing said it had been replaced: a meta
/// pointing at deleted data, a lifecycle rule on the bucket, a lost upload all went unseen.
#[tokio::test]
async fn a_block_missing_data_that_nothing_replaced_makes_answers_partial() {
    let traces = workload_traces(21, 30);
    let storage = Storage::in_memory();
    let metas = blocks_of(&storage, &traces, 10).await;
    // Block 0 loses its data, block 1 its bloom shard; block 2 is whole.
    let data = strata_block::layout::data_path(&tenant(), metas[0].block_id);
    storage.delete(&data).await.unwrap();
    let bloom = strata_block::layout::bloom_path(&tenant(), metas[1].block_id, 0);
    storage.delete(&bloom).await.unwrap();
    let querier = querier(storage.clone(), strata_query::RecentSource::None);
    querier.poll_blocklist().await.unwrap();

    let lost = querier
        .find_trace(&tenant(), &traces[3][0].trace_id, None)
        .await
        .unwrap();
    let partial = lost
        .partial
        .expect("a trace in a block without data is partial");
    assert!(partial.contains("missing data"), "{partial}");
    let no_bloom = querier
        .find_trace(&tenant(), &traces[13][0].trace_id, None)
        .await
        .unwrap();
    assert!(
        no_bloom.partial.is_some(),
        "a missing bloom shard is partial"
    );
    let whole = querier
        .find_trace(&tenant(), &traces[23][0].trace_id, None)
        .await
        .unwrap();
    assert_eq!(whole.spans.len(), traces[23].len());

    let result = querier
        .search(&tenant(), search_everything())
        .await
        .unwrap();
    assert_eq!(result.traces.len(), 20, "the two blocks with data answer");
    assert!(
        result
            .partial
            .as_deref()
            .is_some_and(|p| p.contains("missing data")),
        "{:?}",
        result.partial
    );
    // Still in the blocklist: a real loss is reported at every query, not forgotten.
    assert_eq!(querier.blocklist().blocks(&tenant()).len(), 3);

    // Once the compactor marks them replaced, they are skipped quietly and forgotten.
    for meta in &metas[..2] {
        let marker = strata_block::catalog::CompactedMarker {
            id: meta.block_id,
            compacted_at: Utc::now(),
            replaced_by: vec![],
        };
        let prefix = strata_block::layout::block_prefix(&tenant(), meta.block_id);
        strata_block::catalog::mark_compacted(&storage, &prefix, &marker)
            .await
            .unwrap();
    }
    let quiet = querier
        .find_trace(&tenant(), &traces[3][0].trace_id, None)
        .await
        .unwrap();
    assert_eq!(quiet.partial, None);
    assert_eq!(querier.blocklist().blocks(&tenant()).len(), 1);
}

/// Audit 2.3 and 2.4: one corrupt object — block data, a bloom shard, a tag summary, a rollup
/// segment — must cost only itself: every answer comes from the rest and says it is partial.
/// Stats failed whole on one unreadable segment.
#[tokio::test]
async fn corrupt_objects_cost_only_themselves_in_every_answer() {
    let traces = workload_traces(31, 40);
    let storage = Storage::in_memory();
    let metas = blocks_of(&storage, &traces, 10).await;
    let garbage = |len: usize| bytes::Bytes::from(vec![0xa5; len]);
    // Block 0: data of the right size but garbage; block 1: a garbage bloom shard; block 2: a
    // garbage tags.json; block 3 is whole.
    let data0 = strata_block::layout::data_path(&tenant(), metas[0].block_id);
    storage
        .put(&data0, garbage(metas[0].data_size as usize))
        .await
        .unwrap();
    let bloom1 = strata_block::layout::bloom_path(&tenant(), metas[1].block_id, 0);
    storage.put(&bloom1, garbage(64)).await.unwrap();
    let tags2 = strata_block::layout::tags_path(&tenant(), metas[2].block_id);
    storage.put(&tags2, garbage(64)).await.unwrap();
    // Two rollup segments, one of them garbage once written.
    let mut counted = 0;
    let mut segments = Vec::new();
    for chunk in [&traces[20..30], &traces[30..40]] {
        let mut rollup = strata_block::Rollup::new();
        for span in chunk.iter().flatten() {
            rollup.add_span(span, 60);
        }
        let (meta, data) =
            strata_block::encode_segment(&tenant(), uuid::Uuid::now_v7(), &rollup, vec![], vec![])
                .unwrap();
        strata_block::upload_segment(&storage, &meta, data)
            .await
            .unwrap();
        segments.push(meta);
    }
    counted += traces[30..40].iter().map(Vec::len).sum::<usize>() as u64;
    let bad_segment =
        strata_block::layout::rollup_prefix(&tenant(), segments[0].segment_id).join("data.parquet");
    storage.put(&bad_segment, garbage(200)).await.unwrap();

    let querier = querier(storage.clone(), strata_query::RecentSource::None);
    querier.poll_blocklist().await.unwrap();

    // Trace by ID: a trace of the corrupt block is partial, one behind the bad bloom too.
    for i in [2, 12] {
        let found = querier
            .find_trace(&tenant(), &traces[i][0].trace_id, None)
            .await
            .unwrap();
        assert!(found.partial.is_some(), "trace {i}: {found:?}");
    }
    let found = querier
        .find_trace(&tenant(), &traces[35][0].trace_id, None)
        .await
        .unwrap();
    assert_eq!(found.spans.len(), traces[35].len());

    // Search: the readable blocks' traces, and partial.
    let result = querier
        .search(&tenant(), search_everything())
        .await
        .unwrap();
    assert_eq!(result.traces.len(), 30, "{:?}", result.metrics);
    assert_eq!(result.metrics.failed_blocks, 1);
    assert!(result.partial.is_some());

    // Tags: the other blocks' names, and partial.
    let tags = querier.tags(&tenant(), None).await.unwrap();
    assert_eq!(tags.blocks, 3);
    assert!(tags.partial.is_some());

    // Stats: the readable segment's figures, and partial.
    let request = strata_query::StatsRequest {
        service: None,
        name: None,
        start: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
        end: Utc::now() + chrono::Duration::days(1),
    };
    let stats = querier.stats(&tenant(), &request).await.unwrap();
    let spans: u64 = stats.operations.iter().map(|o| o.cell.spans).sum();
    assert_eq!(spans, counted);
    assert!(stats.partial.is_some());
}
