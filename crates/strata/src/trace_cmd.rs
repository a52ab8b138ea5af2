//! `strata trace <id>`: fetch a trace from a running server (`--url`) or straight from a storage
//! location (`--storage`), and print it as a tree or as Tempo's JSON.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use strata_api::proto::{PartialStatus, TraceByIdResponse};
use strata_model::{Span, TenantId, TraceId};
use strata_query::{Querier, QueryConfig, QueryMetrics};
use strata_storage::{LocalConfig, Storage, StorageConfig};

/// Where `strata trace` looks.
pub enum Source {
    /// A running Strata (or Tempo) HTTP API.
    Url(String),
    /// A local block directory (the `storage.local.path` of a server, e.g. `./data/blocks`).
    Storage(PathBuf),
}

/// What the command found.
pub struct Fetched {
    /// The spans.
    pub spans: Vec<Span>,
    /// Tempo's JSON for the trace, when asked for.
    pub json: Option<String>,
    /// Why the trace may be incomplete.
    pub partial: Option<String>,
}

/// Fetches the trace.
pub async fn fetch(
    source: &Source,
    tenant: &TenantId,
    id: &str,
    json: bool,
) -> anyhow::Result<Fetched> {
    let trace_id = TraceId::from_hex(id).map_err(|e| anyhow::anyhow!("{e}"))?;
    match source {
        Source::Url(url) => fetch_http(url, tenant, &trace_id, json).await,
        Source::Storage(path) => fetch_storage(path, tenant, &trace_id, json).await,
    }
}

/// `GET target` on Strata's API for `tenant`; the body, or an error with the server's message.
pub async fn api_get(
    target: reqwest::Url,
    tenant: &TenantId,
    accept: &str,
) -> anyhow::Result<Vec<u8>> {
    let shown = target.to_string();
    let response = reqwest::Client::new()
        .get(target)
        .header("Accept", accept)
        .header("X-Scope-OrgID", tenant.as_str())
        .send()
        .await
        .with_context(|| format!("GET {shown}"))?;
    let status = response.status();
    if let Some(reason) = response.headers().get(strata_api::PARTIAL_HEADER) {
        eprintln!(
            "strata: the answer may be incomplete: {}",
            String::from_utf8_lossy(reason.as_bytes())
        );
    }
    let body = response
        .bytes()
        .await
        .with_context(|| format!("reading the answer of {shown}"))?;
    if !status.is_success() {
        bail!(
            "{shown} answered {status}: {}",
            String::from_utf8_lossy(&body).trim()
        );
    }
    Ok(body.to_vec())
}

/// `GET url + path?params` as JSON.
pub async fn api_get_json(
    url: &str,
    path: &str,
    params: &std::collections::HashMap<String, String>,
    tenant: &TenantId,
) -> anyhow::Result<serde_json::Value> {
    let endpoint = format!("{}{path}", url.trim_end_matches('/'));
    let target = reqwest::Url::parse_with_params(&endpoint, params)
        .with_context(|| format!("--url {url}"))?;
    let body = api_get(target, tenant, "application/json").await?;
    serde_json::from_slice(&body).context("the server's JSON")
}

async fn fetch_http(
    url: &str,
    tenant: &TenantId,
    id: &TraceId,
    json: bool,
) -> anyhow::Result<Fetched> {
    let endpoint = format!(
        "{}/api/v2/traces/{}",
        url.trim_end_matches('/'),
        id.to_hex()
    );
    let accept = if json {
        "application/json"
    } else {
        strata_api::PROTOBUF
    };
    let target = reqwest::Url::parse(&endpoint).with_context(|| format!("--url {url}"))?;
    let body = api_get(target, tenant, accept).await?;
    if json {
        let value: serde_json::Value =
            serde_json::from_slice(&body).context("the server's JSON")?;
        let found = value["trace"].get("resourceSpans").is_some();
        return Ok(Fetched {
            spans: Vec::new(),
            json: found.then(|| serde_json::to_string_pretty(&value).unwrap_or_default()),
            partial: value["message"].as_str().map(str::to_owned),
        });
    }
    let response =
        TraceByIdResponse::decode(body.as_slice()).context("the server's protobuf answer")?;
    let partial = (response.status == PartialStatus::Partial as i32).then_some(response.message);
    let request = ExportTraceServiceRequest {
        resource_spans: response.trace.map(|t| t.resource_spans).unwrap_or_default(),
    };
    let (spans, rejected) = strata_model::otlp::spans_from_request(request);
    if !rejected.is_empty() {
        tracing::warn!(
            count = rejected.len(),
            "the server sent spans with invalid IDs; they are left out"
        );
    }
    Ok(Fetched {
        spans,
        json: None,
        partial,
    })
}

/// A querier over the blocks in a local storage directory, with its blocklist loaded.
pub async fn local_querier(path: &std::path::Path) -> anyhow::Result<Arc<Querier>> {
    if !path.is_dir() {
        bail!(
            "{} is not a directory (expected a storage.local.path such as ./data/blocks)",
            path.display()
        );
    }
    let storage = Storage::from_config(&StorageConfig {
        local: LocalConfig {
            path: path.to_owned(),
        },
        ..Default::default()
    })?;
    let querier = Arc::new(Querier::new(
        storage,
        QueryConfig::default(),
        strata_query::RecentSource::None,
        QueryMetrics::default(),
    ));
    querier.poll_blocklist().await?;
    Ok(querier)
}

async fn fetch_storage(
    path: &std::path::Path,
    tenant: &TenantId,
    id: &TraceId,
    json: bool,
) -> anyhow::Result<Fetched> {
    let querier = local_querier(path).await?;
    let found = querier.find_trace(tenant, id, None).await?;
    let json = (json && !found.spans.is_empty()).then(|| {
        let resource_spans = strata_model::otlp::spans_to_resource_spans(&found.spans);
        let value = serde_json::json!({"trace": {"resourceSpans": strata_api::resource_spans_json(&resource_spans)}});
        serde_json::to_string_pretty(&value).unwrap_or_default()
    });
    Ok(Fetched {
        spans: found.spans,
        json,
        partial: found.partial,
    })
}
