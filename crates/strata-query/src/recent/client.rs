//! The querier's side of the internal API: the ingesters it knows (a static list, and a DNS
//! name re-resolved every `query.ingesters.refresh`), and one request to each of them at once,
//! each bounded by `query.ingesters.timeout`. An ingester that fails is named in the answer,
//! which the querier then marks partial; it never fails the query.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::join_all;
use strata_block::TagSummary;
use strata_model::{Span, TENANT_HEADER, TenantId, TraceId};
use tonic::transport::{Channel, Endpoint};

use super::Recent;
use super::wire::{self, MAX_MESSAGE_BYTES, proto};
use crate::config::IngestersConfig;
use crate::search::{BatchOutcome, SearchRequest};

type Client = proto::ingester_client::IngesterClient<Channel>;

/// Turns `host:port` into every address it names.
pub type Resolve = Arc<
    dyn Fn(String) -> futures::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>
        + Send
        + Sync,
>;

/// The system's resolver (`getaddrinfo`: `/etc/hosts`, then DNS), which returns every A and
/// AAAA record of a name.
fn system_resolver() -> Resolve {
    Arc::new(|name: String| {
        Box::pin(async move { Ok(tokio::net::lookup_host(name).await?.collect()) })
    })
}

/// The ingesters a querier asks for recent data.
pub struct IngesterPool {
    config: IngestersConfig,
    resolve: Resolve,
    state: parking_lot::RwLock<Members>,
}

#[derive(Default)]
struct Members {
    /// By address, in address order.
    clients: Vec<(String, Client)>,
    /// Why the last resolution of `dns` failed, while it keeps failing.
    dns_error: Option<String>,
}

impl IngesterPool {
    /// A pool of the configured ingesters. Connections are made on first use; call
    /// [`IngesterPool::refresh`] before the first query when `dns` is set, and keep
    /// [`IngesterPool::run_refresh`] running.
    pub fn new(config: IngestersConfig) -> Self {
        Self::with_resolver(config, system_resolver())
    }

    /// A pool resolving `dns` with `resolve` instead of the system's resolver.
    pub fn with_resolver(config: IngestersConfig, resolve: Resolve) -> Self {
        let pool = Self {
            config,
            resolve,
            state: parking_lot::RwLock::new(Members::default()),
        };
        pool.set_members(BTreeSet::new(), None);
        pool
    }

    /// The addresses asked now.
    pub fn addresses(&self) -> Vec<String> {
        self.state
            .read()
            .clients
            .iter()
            .map(|(a, _)| a.clone())
            .collect()
    }

    /// Resolves `dns` again; on failure keeps the addresses it had and reports the failure in
    /// every answer until a resolution succeeds.
    pub async fn refresh(&self) {
        let Some(name) = &self.config.dns else {
            return;
        };
        match (self.resolve)(name.clone()).await {
            Ok(addrs) => {
                let found: BTreeSet<String> = addrs.iter().map(|a| a.to_string()).collect();
                if found.is_empty() {
                    self.set_members(
                        BTreeSet::new(),
                        Some(format!("{name} resolved to no address")),
                    );
                } else {
                    self.set_members(found, None);
                }
            }
            Err(e) => {
                tracing::warn!(dns = %name, error = %e, "cannot resolve the ingesters");
                let mut state = self.state.write();
                state.dns_error = Some(format!("cannot resolve {name}: {e}"));
            }
        }
    }

    /// Resolves `dns` every `refresh`, forever.
    pub async fn run_refresh(&self) {
        if self.config.dns.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(self.config.refresh);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.refresh().await;
        }
    }

    /// The static addresses and `resolved` become the members; clients of addresses already
    /// known are kept (with their connections).
    fn set_members(&self, resolved: BTreeSet<String>, dns_error: Option<String>) {
        let wanted: BTreeSet<String> = self
            .config
            .addresses
            .iter()
            .cloned()
            .chain(resolved)
            .collect();
        let mut state = self.state.write();
        let before: Vec<String> = state.clients.iter().map(|(a, _)| a.clone()).collect();
        let mut clients = Vec::with_capacity(wanted.len());
        for address in wanted {
            let client = match state.clients.iter().find(|(a, _)| *a == address) {
                Some((_, client)) => client.clone(),
                None => match self.client(&address) {
                    Ok(client) => client,
                    Err(e) => {
                        tracing::warn!(%address, error = %e, "not a usable ingester address");
                        continue;
                    }
                },
            };
            clients.push((address, client));
        }
        let after: Vec<String> = clients.iter().map(|(a, _)| a.clone()).collect();
        if before != after {
            tracing::info!(ingesters = ?after, "ingesters to ask for recent data");
        }
        state.clients = clients;
        state.dns_error = dns_error;
    }

    fn client(&self, address: &str) -> Result<Client, tonic::transport::Error> {
        let channel = Endpoint::from_shared(format!("http://{address}"))?
            .connect_timeout(self.config.timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        Ok(Client::new(channel)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Sends one request to every ingester at once; gathers the answers each `read` makes of a
    /// response, and who failed.
    async fn ask<Req, Resp, T, Call, Fut>(
        &self,
        tenant: &TenantId,
        message: Req,
        call: Call,
        read: impl Fn(Resp) -> Result<(T, Option<proto::RecentBlocks>), String>,
    ) -> Recent<Vec<T>>
    where
        Req: Clone,
        Call: Fn(Client, tonic::Request<Req>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let (clients, dns_error) = {
            let state = self.state.read();
            (state.clients.clone(), state.dns_error.clone())
        };
        let timeout = self.config.timeout;
        let read = &read;
        let calls = clients.into_iter().map(|(address, client)| {
            let mut request = tonic::Request::new(message.clone());
            request.set_timeout(timeout);
            if let Ok(value) = tenant.as_str().parse() {
                request.metadata_mut().insert(TENANT_HEADER, value);
            }
            let reply = call(client, request);
            async move {
                let outcome = match tokio::time::timeout(timeout, reply).await {
                    Err(_) => Err(format!("no answer within {timeout:?}")),
                    Ok(Err(status)) => Err(format!("{:?}: {}", status.code(), status.message())),
                    Ok(Ok(response)) => read(response.into_inner())
                        .and_then(|(value, blocks)| Ok((value, wire::blocks_from_wire(blocks)?))),
                };
                (address, outcome)
            }
        });
        let mut out = Recent {
            value: Vec::new(),
            blocks: Vec::new(),
            unreachable: dns_error.into_iter().collect(),
        };
        for (address, outcome) in join_all(calls).await {
            match outcome {
                Ok((value, blocks)) => {
                    out.value.push(value);
                    out.blocks.extend(blocks);
                }
                Err(e) => {
                    tracing::warn!(ingester = %address, %tenant, error = %e, "an ingester did not answer");
                    out.unreachable.push(format!("ingester {address}: {e}"));
                }
            }
        }
        out
    }

    pub(crate) async fn find_trace(
        &self,
        tenant: &TenantId,
        trace_id: &TraceId,
    ) -> Recent<Vec<Span>> {
        let request = proto::FindTraceRequest {
            trace_id: trace_id.as_bytes().to_vec(),
        };
        let answers = self
            .ask(
                tenant,
                request,
                |mut c, r| async move { c.find_trace(r).await },
                |r: proto::FindTraceResponse| {
                    Ok((wire::spans_from_wire(r.resource_spans)?, r.recent_blocks))
                },
            )
            .await;
        flatten(answers, |parts| parts.into_iter().flatten().collect())
    }

    pub(crate) async fn search(
        &self,
        tenant: &TenantId,
        request: &Arc<SearchRequest>,
    ) -> Recent<BatchOutcome> {
        let nanos = |t: chrono::DateTime<chrono::Utc>| {
            u64::try_from(t.timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0)
        };
        let message = proto::SearchRequest {
            query: request.query.to_string(),
            limit: u32::try_from(request.limit).unwrap_or(u32::MAX),
            start_unix_nano: request.range.map_or(0, |r| nanos(r.start)),
            end_unix_nano: request.range.map_or(0, |r| nanos(r.end)),
            min_duration_nanos: request.min_duration_nanos,
            max_duration_nanos: request.max_duration_nanos,
        };
        let answers = self
            .ask(
                tenant,
                message,
                |mut c, r| async move { c.search(r).await },
                |r: proto::SearchResponse| {
                    let hits = r
                        .traces
                        .into_iter()
                        .map(wire::hit_from_wire)
                        .collect::<Result<Vec<_>, _>>()?;
                    let outcome = BatchOutcome {
                        hits,
                        inspected_traces: r.inspected_traces,
                        inspected_spans: r.inspected_spans,
                    };
                    Ok((outcome, r.recent_blocks))
                },
            )
            .await;
        flatten(answers, |parts| {
            let mut all = BatchOutcome::default();
            for part in parts {
                all.hits.extend(part.hits);
                all.inspected_traces += part.inspected_traces;
                all.inspected_spans += part.inspected_spans;
            }
            all
        })
    }

    pub(crate) async fn tags(&self, tenant: &TenantId) -> Recent<TagSummary> {
        let answers = self
            .ask(
                tenant,
                proto::TagsRequest {},
                |mut c, r| async move { c.tags(r).await },
                |r: proto::TagsResponse| Ok((wire::tags_from_wire(&r.tags_json)?, r.recent_blocks)),
            )
            .await;
        flatten(answers, |parts| {
            let mut all = TagSummary::default();
            for part in &parts {
                all.merge(part);
            }
            all
        })
    }
}

fn flatten<T, U>(answers: Recent<Vec<T>>, combine: impl FnOnce(Vec<T>) -> U) -> Recent<U> {
    Recent {
        value: combine(answers.value),
        blocks: answers.blocks,
        unreachable: answers.unreachable,
    }
}
