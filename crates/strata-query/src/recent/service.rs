//! The ingester's side of the internal API: answers a querier from the ingester in this
//! process ([`RecentData`]). Requests are checked like any client's: the tenant by the shared
//! header rule, IDs by length, the query by the TraceQL parser and validator.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use strata_model::{TENANT_HEADER, TenantId, TraceId, tenant_from_header};
use tonic::{Request, Response, Status};
use tower_http::catch_panic::CatchPanicLayer;

use super::wire::{self, MAX_MESSAGE_BYTES, proto};
use super::{RecentData, local, search_local};
use crate::search::{SearchRequest, plan};
use crate::trace_by_id::TimeRange;

type Server = proto::ingester_server::IngesterServer<IngesterService>;

/// The handler a [`CatchPanicLayer`] calls with a panic's payload.
type OnPanic = fn(
    Box<dyn std::any::Any + Send + 'static>,
) -> tonic::codegen::http::Response<tonic::body::Body>;

/// Makes a panic while answering a querier an `INTERNAL` status and an error log line (the
/// querier then names this ingester in a partial answer) instead of a reset stream.
fn catch_panics() -> CatchPanicLayer<OnPanic> {
    CatchPanicLayer::custom(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        tracing::error!(panic = %message, "an internal API request panicked");
        Status::internal("internal error: the request failed on the ingester").into_http()
    })
}

/// Serves an ingester's recent data to queriers.
pub struct IngesterService {
    recent: Arc<dyn RecentData>,
    multitenancy: bool,
}

impl IngesterService {
    /// A service answering from `recent`; with `multitenancy`, every request must name its
    /// tenant.
    pub fn new(recent: Arc<dyn RecentData>, multitenancy: bool) -> Self {
        Self {
            recent,
            multitenancy,
        }
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let server = Server::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        tonic::transport::Server::builder()
            .layer(catch_panics())
            .add_service(server)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                shutdown,
            )
            .await
    }

    fn tenant<T>(&self, request: &Request<T>) -> Result<TenantId, Status> {
        let value = request.metadata().get(TENANT_HEADER).map(|v| v.as_bytes());
        tenant_from_header(value, self.multitenancy).map_err(|e| {
            Status::new(
                tonic::Code::from_i32(e.kind().grpc_code()),
                format!("X-Scope-OrgID: {e}"),
            )
        })
    }
}

/// One method of the internal API, for [`IngesterService::call_encoded`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InternalMethod {
    /// `FindTrace`.
    FindTrace,
    /// `Search`.
    Search,
    /// `Tags`.
    Tags,
}

impl IngesterService {
    /// Answers one request given as its protobuf body and `X-Scope-OrgID` value, as the gRPC
    /// server does once tonic has taken the message out of its frame: decoded, checked, answered,
    /// and the answer encoded. Public so that the fuzz targets (`fuzz/`) reach the handlers
    /// without a network; the server itself goes through [`IngesterService::serve`].
    pub async fn call_encoded(
        &self,
        method: InternalMethod,
        tenant: Option<&[u8]>,
        body: &[u8],
    ) -> Result<Vec<u8>, Status> {
        use prost::Message;
        use proto::ingester_server::Ingester as _;

        fn request<T: Message + Default>(
            body: &[u8],
            tenant: Option<&[u8]>,
        ) -> Result<Request<T>, Status> {
            let message = T::decode(body)
                .map_err(|e| Status::internal(format!("failed to decode Protobuf message: {e}")))?;
            let mut request = Request::new(message);
            if let Some(tenant) = tenant {
                let value = tonic::metadata::MetadataValue::try_from(tenant)
                    .map_err(|e| Status::invalid_argument(format!("X-Scope-OrgID: {e}")))?;
                request.metadata_mut().insert(TENANT_HEADER, value);
            }
            Ok(request)
        }
        Ok(match method {
            InternalMethod::FindTrace => self
                .find_trace(request(body, tenant)?)
                .await?
                .into_inner()
                .encode_to_vec(),
            InternalMethod::Search => self
                .search(request(body, tenant)?)
                .await?
                .into_inner()
                .encode_to_vec(),
            InternalMethod::Tags => self
                .tags(request(body, tenant)?)
                .await?
                .into_inner()
                .encode_to_vec(),
        })
    }
}

#[tonic::async_trait]
impl proto::ingester_server::Ingester for IngesterService {
    async fn find_trace(
        &self,
        request: Request<proto::FindTraceRequest>,
    ) -> Result<Response<proto::FindTraceResponse>, Status> {
        let tenant = self.tenant(&request)?;
        let trace_id = TraceId::from_slice(&request.get_ref().trace_id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let found = local(self.recent.as_ref(), &tenant, |r| {
            r.find_trace(&tenant, &trace_id)
        });
        Ok(Response::new(proto::FindTraceResponse {
            resource_spans: strata_model::otlp::spans_to_resource_spans(&found.value),
            recent_blocks: Some(wire::blocks_to_wire(&found.blocks)),
        }))
    }

    async fn search(
        &self,
        request: Request<proto::SearchRequest>,
    ) -> Result<Response<proto::SearchResponse>, Status> {
        let tenant = self.tenant(&request)?;
        let message = request.into_inner();
        let request = Arc::new(search_request(&message)?);
        let plan = Arc::new(
            plan(Arc::clone(&request.query))
                .map_err(|e| Status::invalid_argument(e.to_string()))?,
        );
        let found = search_local(self.recent.as_ref(), &tenant, &plan, &request)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(proto::SearchResponse {
            traces: found.value.hits.iter().map(wire::hit_to_wire).collect(),
            inspected_traces: found.value.inspected_traces,
            inspected_spans: found.value.inspected_spans,
            recent_blocks: Some(wire::blocks_to_wire(&found.blocks)),
        }))
    }

    async fn tags(
        &self,
        request: Request<proto::TagsRequest>,
    ) -> Result<Response<proto::TagsResponse>, Status> {
        let tenant = self.tenant(&request)?;
        let found = local(self.recent.as_ref(), &tenant, |r| r.recent_tags(&tenant));
        Ok(Response::new(proto::TagsResponse {
            tags_json: found.value.to_json(),
            recent_blocks: Some(wire::blocks_to_wire(&found.blocks)),
        }))
    }
}

/// The search a querier asked for, validated as the query API validates it.
fn search_request(message: &proto::SearchRequest) -> Result<SearchRequest, Status> {
    let query = strata_traceql::parse(&message.query)
        .map_err(|e| Status::invalid_argument(format!("invalid TraceQL query: {e}")))?;
    query
        .validate()
        .map_err(|e| Status::invalid_argument(format!("invalid TraceQL query: {e}")))?;
    if message.limit == 0 {
        return Err(Status::invalid_argument("limit must be above zero"));
    }
    let time = |nanos: u64| {
        DateTime::<Utc>::from_timestamp_nanos(i64::try_from(nanos).unwrap_or(i64::MAX))
    };
    let range = match (message.start_unix_nano, message.end_unix_nano) {
        (0, 0) => None,
        (start, end) if start <= end => Some(TimeRange {
            start: time(start),
            end: time(end),
        }),
        _ => return Err(Status::invalid_argument("end is before start")),
    };
    Ok(SearchRequest {
        query: Arc::new(query),
        limit: message.limit as usize,
        spans_per_spanset: 0,
        range,
        min_duration_nanos: message.min_duration_nanos,
        max_duration_nanos: message.max_duration_nanos,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::ingester_server::Ingester as _;
    use strata_block::{BlockMeta, TagSummary};
    use strata_model::Span;

    struct Nothing;

    impl RecentData for Nothing {
        fn find_trace(&self, _: &TenantId, _: &TraceId) -> Vec<Span> {
            Vec::new()
        }
        fn recent_blocks(&self, _: &TenantId) -> Vec<BlockMeta> {
            Vec::new()
        }
        fn recent_traces(&self, _: &TenantId) -> Vec<Vec<Span>> {
            Vec::new()
        }
        fn recent_tags(&self, _: &TenantId) -> TagSummary {
            TagSummary::default()
        }
    }

    fn with_tenant<T>(message: T, tenant: Option<&str>) -> Request<T> {
        let mut request = Request::new(message);
        if let Some(tenant) = tenant {
            request
                .metadata_mut()
                .insert(TENANT_HEADER, tenant.parse().unwrap());
        }
        request
    }

    /// Recent data whose every answer panics (a bug).
    struct Broken;

    impl RecentData for Broken {
        fn find_trace(&self, _: &TenantId, _: &TraceId) -> Vec<Span> {
            panic!("a bug in find_trace")
        }
        fn recent_blocks(&self, _: &TenantId) -> Vec<BlockMeta> {
            Vec::new()
        }
        fn recent_traces(&self, _: &TenantId) -> Vec<Vec<Span>> {
            panic!("a bug in recent_traces")
        }
        fn recent_tags(&self, _: &TenantId) -> TagSummary {
            panic!("a bug in recent_tags")
        }
    }

    /// Review E3: a panic in an internal API handler reset the stream with nothing logged.
    #[tokio::test]
    async fn a_handler_that_panics_answers_internal_over_the_wire() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(IngesterService::new(Arc::new(Broken), false).serve(
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        let mut client = proto::ingester_client::IngesterClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let status = client.tags(proto::TagsRequest {}).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
        let status = client
            .find_trace(proto::FindTraceRequest {
                trace_id: vec![1; 16],
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal, "{status:?}");
        // The server survives it.
        let status = client.tags(proto::TagsRequest {}).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_internal_api_checks_tenants_ids_and_queries() {
        let sealed = IngesterService::new(Arc::new(Nothing), true);
        let code = |r: Result<Response<proto::TagsResponse>, Status>| r.unwrap_err().code();
        assert_eq!(
            code(sealed.tags(with_tenant(proto::TagsRequest {}, None)).await),
            tonic::Code::Unauthenticated
        );
        for hostile in ["../x", "a/b", ""] {
            let got = sealed
                .tags(with_tenant(proto::TagsRequest {}, Some(hostile)))
                .await;
            let want = match hostile {
                "" => tonic::Code::Unauthenticated,
                _ => tonic::Code::InvalidArgument,
            };
            assert_eq!(code(got), want, "{hostile:?}");
        }
        assert!(
            sealed
                .tags(with_tenant(proto::TagsRequest {}, Some("team-a")))
                .await
                .is_ok()
        );
        let short_id = proto::FindTraceRequest {
            trace_id: vec![1; 15],
        };
        let got = sealed
            .find_trace(with_tenant(short_id, Some("team-a")))
            .await;
        assert_eq!(got.unwrap_err().code(), tonic::Code::InvalidArgument);
        let bad_query = proto::SearchRequest {
            query: "{ .a = }".into(),
            limit: 20,
            ..Default::default()
        };
        let got = sealed.search(with_tenant(bad_query, Some("team-a"))).await;
        assert_eq!(got.unwrap_err().code(), tonic::Code::InvalidArgument);
        // Without multitenancy the header is ignored.
        let open = IngesterService::new(Arc::new(Nothing), false);
        assert!(
            open.tags(with_tenant(proto::TagsRequest {}, Some("../x")))
                .await
                .is_ok()
        );
    }
}
