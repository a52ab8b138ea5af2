//! Running Strata: every role in one process (the default), or the compactor alone. Start-up
//! binds every port before serving so a taken port fails fast; shutdown stops the receivers,
//! flushes the ingester and closes the WAL, then stops the compactor (a cycle cut short is safe)
//! and the API.

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
use strata_query::{Querier, QueryMetrics, RecentData};
use strata_storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;

/// The ingester's unflushed data and recent blocks, as the querier sees them.
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

/// Opens object storage and a metrics registry holding its counters.
fn open_storage(config: &Config) -> anyhow::Result<(Storage, Registry)> {
    let storage = Storage::from_config(&config.storage).context("opening object storage")?;
    tracing::info!(storage = storage.description(), "object storage ready");
    let mut registry = Registry::default();
    storage.metrics().register(&mut registry);
    Ok((storage, registry))
}

/// Runs every role until SIGTERM or SIGINT, then shuts down cleanly.
pub async fn run_all(config: Config) -> anyhow::Result<()> {
    run_until(config, shutdown_signal()).await
}

/// Runs every role until `shutdown` resolves.
pub async fn run_until(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (storage, mut registry) = open_storage(&config)?;
    let ingest_metrics = IngestMetrics::default();
    ingest_metrics.register(&mut registry);
    let wal_metrics = WalMetrics::default();
    wal_metrics.register(&mut registry);
    let query_metrics = QueryMetrics::default();
    query_metrics.register(&mut registry);
    let compactor_metrics = CompactorMetrics::default();
    compactor_metrics.register(&mut registry);

    let ingester = Arc::new(
        Ingester::start(
            config.ingester.clone(),
            config.limits.clone(),
            config.block.clone(),
            storage.clone(),
            ingest_metrics,
            wal_metrics,
        )
        .await
        .context("starting the ingester")?,
    );

    let querier = Arc::new(Querier::new(
        storage.clone(),
        config.query.clone(),
        Some(Arc::new(IngesterRecentData(Arc::clone(&ingester)))),
        query_metrics,
    ));
    querier
        .poll_blocklist()
        .await
        .context("listing the blocks in object storage")?;
    tracing::info!(blocks = querier.blocklist().len(), "blocklist loaded");
    let poller = tokio::spawn({
        let querier = Arc::clone(&querier);
        async move { querier.run_blocklist_poll().await }
    });

    let receivers = &config.receivers;
    let grpc_listener = match receivers.otlp_grpc.enabled {
        true => Some(
            bind(
                receivers.otlp_grpc.listen,
                "otlp-grpc",
                "receivers.otlp_grpc.listen",
            )
            .await?,
        ),
        false => None,
    };
    let http_listener = match receivers.otlp_http.enabled {
        true => Some(
            bind(
                receivers.otlp_http.listen,
                "otlp-http",
                "receivers.otlp_http.listen",
            )
            .await?,
        ),
        false => None,
    };
    let api_listener = bind(config.server.http_listen, "api", "server.http_listen").await?;

    let (stop_receivers, receivers_stopped) = watch::channel(false);
    let (stop_compactor, compactor_stopped) = watch::channel(false);
    let compactor_task = config.compactor.enabled.then(|| {
        let compactor = compactor(&config, storage.clone(), compactor_metrics);
        let stop = wait_stop(compactor_stopped);
        tokio::spawn(async move { compactor.run(stop).await })
    });
    let mut receiver_tasks = JoinSet::new();
    if let Some(listener) = grpc_listener {
        let service = grpc::OtlpGrpcService::new(
            Arc::clone(&ingester),
            receivers.otlp_grpc.max_message_bytes.as_u64() as usize,
        );
        let stop = wait_stop(receivers_stopped.clone());
        receiver_tasks.spawn(async move {
            grpc::serve(listener, service, stop)
                .await
                .context("OTLP gRPC receiver")
        });
    }
    if let Some(listener) = http_listener {
        let app = http::router(
            Arc::clone(&ingester),
            receivers.otlp_http.max_body_bytes.as_u64() as usize,
        );
        let stop = wait_stop(receivers_stopped.clone());
        receiver_tasks.spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
                .context("OTLP HTTP receiver")
        });
    }

    let ready_ingester = Arc::clone(&ingester);
    let api = strata_api::router(ApiState {
        registry: Arc::new(registry),
        ready: Arc::new(move || ready_ingester.is_ready()),
        querier,
    });
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
        None => tracing::info!("shutting down: no longer accepting spans"),
        Some(result) => tracing::error!(?result, "a receiver stopped unexpectedly; shutting down"),
    }
    let _ = stop_receivers.send(true);
    while receiver_tasks.join_next().await.is_some() {}
    ingester.shutdown().await;
    let _ = stop_compactor.send(true);
    if let Some(task) = compactor_task {
        let _ = task.await;
    }
    let _ = stop_api.send(true);
    let _ = api_task.await;
    poller.abort();
    tracing::info!("stopped");
    Ok(())
}

async fn wait_stop(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
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

/// Runs only the compactor (`strata compactor`), with `/ready` and `/metrics` on
/// `server.http_listen`, until SIGTERM or SIGINT.
pub async fn run_compactor(config: Config) -> anyhow::Result<()> {
    run_compactor_until(config, shutdown_signal()).await
}

/// Runs only the compactor until `shutdown` resolves.
pub async fn run_compactor_until(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (storage, mut registry) = open_storage(&config)?;
    let metrics = CompactorMetrics::default();
    metrics.register(&mut registry);
    let listener = bind(config.server.http_listen, "api", "server.http_listen").await?;
    let app = strata_api::ops_router(Arc::new(registry), Arc::new(|| true));
    let (stop_api, api_stopped) = watch::channel(false);
    let api = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(wait_stop(api_stopped))
            .await
    });
    compactor(&config, storage, metrics).run(shutdown).await;
    tracing::info!("shutting down");
    let _ = stop_api.send(true);
    let _ = api.await;
    tracing::info!("stopped");
    Ok(())
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
