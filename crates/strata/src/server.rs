//! Running Strata: every role in one process (`strata all`, the default), or one role per
//! process against a shared bucket (`strata ingester | querier | compactor`). Each role starts
//! only what it needs, from the same config file.
//!
//! Start-up binds every port before serving, so a taken port fails fast. Shutdown stops the
//! receivers, flushes the ingester and closes the WAL, stops the internal API (queriers then
//! find the flushed blocks in the bucket), stops the compactor (a cycle cut short is safe), and
//! last the HTTP API.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use prometheus_client::registry::Registry;
use strata_api::ApiState;
use strata_block::BlockMeta;
use strata_compactor::{Compactor, CompactorMetrics};
use strata_ingest::receiver::{grpc, http};
use strata_ingest::wal::WalMetrics;
use strata_ingest::{IngestMetrics, Ingester};
use strata_model::{Span, TenantId, TraceId};
use strata_query::{
    IngesterPool, IngesterService, Querier, QueryMetrics, RecentData, RecentSource,
};
use strata_storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;

/// Which roles a server process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every role in one process; the querier reads the ingester directly.
    All,
    /// Receivers, WAL, block cutting and upload, and the internal API for queriers.
    Ingester,
    /// Tempo's query API over the bucket and the ingesters' recent data.
    Querier,
    /// Merging, retention and rollups.
    Compactor,
}

impl Role {
    fn ingests(self) -> bool {
        matches!(self, Self::All | Self::Ingester)
    }

    fn queries(self) -> bool {
        matches!(self, Self::All | Self::Querier)
    }

    fn compacts(self, config: &Config) -> bool {
        match self {
            Self::All => config.compactor.enabled,
            Self::Compactor => true,
            Self::Ingester | Self::Querier => false,
        }
    }
}

/// The ingester's unflushed data and recent blocks, as a querier sees them.
struct IngesterRecentData(Arc<Ingester>);

impl RecentData for IngesterRecentData {
    fn find_trace(&self, tenant: &TenantId, trace_id: &TraceId) -> Vec<Span> {
        self.0.find_trace(tenant, trace_id)
    }

    fn recent_blocks(&self, tenant: &TenantId) -> Vec<BlockMeta> {
        self.0.recent_blocks(tenant)
    }

    fn recent_traces(&self, tenant: &TenantId) -> Vec<Vec<Span>> {
        self.0.recent_traces(tenant)
    }

    fn recent_tags(&self, tenant: &TenantId) -> strata_block::TagSummary {
        self.0.recent_tags(tenant)
    }
}

async fn bind(addr: SocketAddr, role: &str, key: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} for {role} (config key {key})"))?;
    let local = listener.local_addr().unwrap_or(addr);
    tracing::info!(role = %role, addr = %local, "listening");
    Ok(listener)
}

/// Runs `role` until SIGTERM or SIGINT, then shuts down cleanly.
pub async fn run(config: Config, role: Role) -> anyhow::Result<()> {
    run_until(config, role, shutdown_signal()).await
}

/// Runs `role` until `shutdown` resolves.
pub async fn run_until(
    config: Config,
    role: Role,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let storage = Storage::from_config(&config.storage).context("opening object storage")?;
    tracing::info!(role = ?role, storage = storage.description(), "starting");
    let mut registry = Registry::default();
    storage.metrics().register(&mut registry);
    let multitenancy = config.server.multitenancy_enabled;

    let ingester = match role.ingests() {
        true => Some(start_ingester(&config, &storage, &mut registry).await?),
        false => None,
    };
    let recent: Option<Arc<dyn RecentData>> = ingester
        .as_ref()
        .map(|i| Arc::new(IngesterRecentData(Arc::clone(i))) as Arc<dyn RecentData>);

    let mut background = JoinSet::new();
    let querier = match role.queries() {
        true => {
            let source = match &recent {
                Some(recent) => RecentSource::Local(Arc::clone(recent)),
                None => ingester_pool(&config, &mut background).await,
            };
            Some(start_querier(&config, &storage, &mut registry, source, &mut background).await?)
        }
        false => None,
    };

    // Bind every port before serving anything.
    let receivers = &config.receivers;
    let mut grpc_listener = None;
    let mut http_listener = None;
    if ingester.is_some() {
        if receivers.otlp_grpc.enabled {
            grpc_listener = Some(
                bind(
                    receivers.otlp_grpc.listen,
                    "otlp-grpc",
                    "receivers.otlp_grpc.listen",
                )
                .await?,
            );
        }
        if receivers.otlp_http.enabled {
            http_listener = Some(
                bind(
                    receivers.otlp_http.listen,
                    "otlp-http",
                    "receivers.otlp_http.listen",
                )
                .await?,
            );
        }
    }
    let api_listener = bind(config.server.http_listen, "api", "server.http_listen").await?;
    let internal_listener = match role {
        Role::Ingester => Some(
            bind(
                config.server.grpc_listen,
                "internal-grpc",
                "server.grpc_listen",
            )
            .await?,
        ),
        _ => None,
    };

    let compactor_metrics = CompactorMetrics::default();
    compactor_metrics.register(&mut registry);
    let (stop_compactor, compactor_stopped) = watch::channel(false);
    let compactor_task = role.compacts(&config).then(|| {
        let compactor = compactor(&config, storage.clone(), compactor_metrics);
        let stop = wait_stop(compactor_stopped);
        tokio::spawn(async move { compactor.run(stop).await })
    });

    let (stop_receivers, receivers_stopped) = watch::channel(false);
    let mut receiver_tasks = JoinSet::new();
    if let (Some(ingester), Some(listener)) = (&ingester, grpc_listener) {
        let service = grpc::OtlpGrpcService::new(
            Arc::clone(ingester),
            receivers.otlp_grpc.max_message_bytes.as_u64() as usize,
            multitenancy,
        );
        let stop = wait_stop(receivers_stopped.clone());
        receiver_tasks.spawn(async move {
            grpc::serve(listener, service, stop)
                .await
                .context("OTLP gRPC receiver")
        });
    }
    if let (Some(ingester), Some(listener)) = (&ingester, http_listener) {
        let app = http::router(
            Arc::clone(ingester),
            receivers.otlp_http.max_body_bytes.as_u64() as usize,
            multitenancy,
        );
        let stop = wait_stop(receivers_stopped.clone());
        receiver_tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .context("OTLP HTTP receiver")
        });
    }

    let (stop_internal, internal_stopped) = watch::channel(false);
    let internal_task = match (internal_listener, &recent) {
        (Some(listener), Some(recent)) => {
            let service = IngesterService::new(Arc::clone(recent), multitenancy);
            let stop = wait_stop(internal_stopped);
            Some(tokio::spawn(service.serve(listener, stop)))
        }
        _ => None,
    };

    let api = api_router(&config, registry, ingester.clone(), querier);
    let (stop_api, api_stopped) = watch::channel(false);
    let api_task = tokio::spawn({
        let stop = wait_stop(api_stopped);
        async move {
            axum::serve(api_listener, api)
                .with_graceful_shutdown(stop)
                .await
                .context("HTTP API")
        }
    });

    // Run until asked to stop or until a server fails.
    let failure = tokio::select! {
        () = shutdown => None,
        Some(result) = receiver_tasks.join_next() => Some(result),
    };
    match failure {
        None => tracing::info!("shutting down"),
        Some(result) => tracing::error!(?result, "a receiver stopped unexpectedly; shutting down"),
    }
    let _ = stop_receivers.send(true);
    while receiver_tasks.join_next().await.is_some() {}
    if let Some(ingester) = &ingester {
        ingester.shutdown().await;
    }
    let _ = stop_internal.send(true);
    if let Some(task) = internal_task {
        let _ = task.await;
    }
    let _ = stop_compactor.send(true);
    if let Some(task) = compactor_task {
        let _ = task.await;
    }
    let _ = stop_api.send(true);
    let _ = api_task.await;
    background.abort_all();
    tracing::info!("stopped");
    Ok(())
}

async fn wait_stop(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

async fn start_ingester(
    config: &Config,
    storage: &Storage,
    registry: &mut Registry,
) -> anyhow::Result<Arc<Ingester>> {
    let ingest_metrics = IngestMetrics::default();
    ingest_metrics.register(registry);
    let wal_metrics = WalMetrics::default();
    wal_metrics.register(registry);
    let ingester = Ingester::start(
        config.ingester.clone(),
        config.limits.clone(),
        config.block.clone(),
        storage.clone(),
        ingest_metrics,
        wal_metrics,
    )
    .await
    .context("starting the ingester")?;
    Ok(Arc::new(ingester))
}

/// The ingesters of `query.ingesters`, resolved once before serving and kept fresh.
async fn ingester_pool(config: &Config, background: &mut JoinSet<()>) -> RecentSource {
    if config.query.ingesters.is_empty() {
        tracing::warn!(
            "query.ingesters is empty: this querier answers from the bucket only, without the traces ingesters have not flushed yet"
        );
        return RecentSource::None;
    }
    let pool = Arc::new(IngesterPool::new(config.query.ingesters.clone()));
    pool.refresh().await;
    tracing::info!(ingesters = ?pool.addresses(), "asking these ingesters for recent data");
    let refresher = Arc::clone(&pool);
    background.spawn(async move { refresher.run_refresh().await });
    RecentSource::Ingesters(pool)
}

async fn start_querier(
    config: &Config,
    storage: &Storage,
    registry: &mut Registry,
    recent: RecentSource,
    background: &mut JoinSet<()>,
) -> anyhow::Result<Arc<Querier>> {
    let metrics = QueryMetrics::default();
    metrics.register(registry);
    let querier = Arc::new(Querier::new(
        storage.clone(),
        config.query.clone(),
        recent,
        metrics,
    ));
    querier
        .poll_blocklist()
        .await
        .context("listing the blocks in object storage")?;
    tracing::info!(blocks = querier.blocklist().len(), "blocklist loaded");
    let poller = Arc::clone(&querier);
    background.spawn(async move { poller.run_blocklist_poll().await });
    Ok(querier)
}

/// What `server.http_listen` serves: Tempo's API where there is a querier; `/ready` and
/// `/metrics` everywhere; `POST /flush` where there is an ingester.
fn api_router(
    config: &Config,
    registry: Registry,
    ingester: Option<Arc<Ingester>>,
    querier: Option<Arc<Querier>>,
) -> axum::Router {
    let registry = Arc::new(registry);
    let ready: strata_api::ReadyCheck = match &ingester {
        Some(ingester) => {
            let ingester = Arc::clone(ingester);
            Arc::new(move || ingester.is_ready())
        }
        None => Arc::new(|| true),
    };
    let router = match querier {
        Some(querier) => strata_api::router(ApiState {
            registry,
            ready,
            querier,
            multitenancy: config.server.multitenancy_enabled,
        }),
        None => strata_api::ops_router(registry, ready),
    };
    match ingester {
        Some(ingester) => router.merge(flush_router(ingester)),
        None => router,
    }
}

/// `POST /flush`: cut and upload everything the ingester holds; 200 once uploaded.
fn flush_router(ingester: Arc<Ingester>) -> axum::Router {
    use axum::http::StatusCode;
    axum::Router::new().route(
        "/flush",
        axum::routing::post(move || {
            let ingester = Arc::clone(&ingester);
            async move {
                match ingester.flush(std::time::Duration::from_secs(60)).await {
                    Ok(()) => (StatusCode::OK, "flushed".to_owned()),
                    Err(e) => (
                        StatusCode::from_u16(e.kind().http_status())
                            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                        e.to_string(),
                    ),
                }
            }
        }),
    )
}

fn compactor(config: &Config, storage: Storage, metrics: CompactorMetrics) -> Compactor {
    tracing::info!(
        shard = config.compactor.shard,
        shards = config.compactor.shards,
        cycle = ?config.compactor.cycle,
        "compactor started"
    );
    Compactor::new(
        storage,
        config.compactor.clone(),
        config.retention.clone(),
        config.block.clone(),
        metrics,
    )
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}
