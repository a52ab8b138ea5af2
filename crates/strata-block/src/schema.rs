//! The Parquet schema of `data.parquet`, format version 1: one row per span.
//!
//! The contract is documented in `schemas/block-v1.md`; a test fails when this code and that
//! document disagree. Rows are sorted by trace ID; the spans of one trace are contiguous, in
//! depth-first order, and never split across row groups.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};

/// The value of `format` in `meta.json`.
pub const FORMAT: &str = "strata-parquet";
/// The version of the block format this crate writes (and the highest it reads).
pub const FORMAT_VERSION: u32 = 1;

/// Where a well-known attribute comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrScope {
    /// A resource attribute.
    Resource,
    /// A span attribute.
    Span,
}

/// The type of a dedicated column. An attribute goes to its dedicated column only when its value
/// has this type; otherwise it stays in the generic attribute list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DedicatedType {
    /// UTF-8 string.
    Str,
    /// 64-bit integer.
    Int,
}

/// A well-known attribute stored in a column of its own instead of the generic attribute list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedicatedColumn {
    /// Resource or span.
    pub scope: AttrScope,
    /// The attribute key, e.g. `http.request.method`.
    pub key: &'static str,
    /// The column name, e.g. `span_http_request_method`.
    pub column: &'static str,
    /// The value type the column holds.
    pub ty: DedicatedType,
}

macro_rules! dedicated {
    ($($scope:ident $ty:ident $key:literal => $column:literal,)*) => {
        /// Every dedicated column of format version 1, in schema order.
        pub const DEDICATED_COLUMNS: &[DedicatedColumn] = &[
            $(DedicatedColumn {
                scope: AttrScope::$scope,
                key: $key,
                column: $column,
                ty: DedicatedType::$ty,
            },)*
        ];
    };
}

dedicated! {
    Resource Str "service.name" => "resource_service_name",
    Resource Str "service.namespace" => "resource_service_namespace",
    Resource Str "service.version" => "resource_service_version",
    Resource Str "service.instance.id" => "resource_service_instance_id",
    Resource Str "deployment.environment.name" => "resource_deployment_environment_name",
    Resource Str "deployment.environment" => "resource_deployment_environment",
    Resource Str "host.name" => "resource_host_name",
    Resource Str "k8s.cluster.name" => "resource_k8s_cluster_name",
    Resource Str "k8s.namespace.name" => "resource_k8s_namespace_name",
    Resource Str "k8s.deployment.name" => "resource_k8s_deployment_name",
    Resource Str "k8s.pod.name" => "resource_k8s_pod_name",
    Resource Str "k8s.container.name" => "resource_k8s_container_name",
    Resource Str "k8s.node.name" => "resource_k8s_node_name",
    Resource Str "cloud.region" => "resource_cloud_region",
    Resource Str "telemetry.sdk.language" => "resource_telemetry_sdk_language",
    Span Str "http.request.method" => "span_http_request_method",
    Span Str "http.method" => "span_http_method",
    Span Str "http.route" => "span_http_route",
    Span Int "http.response.status_code" => "span_http_response_status_code",
    Span Int "http.status_code" => "span_http_status_code",
    Span Str "url.full" => "span_url_full",
    Span Str "url.path" => "span_url_path",
    Span Str "http.url" => "span_http_url",
    Span Str "http.target" => "span_http_target",
    Span Str "server.address" => "span_server_address",
    Span Int "server.port" => "span_server_port",
    Span Str "peer.service" => "span_peer_service",
    Span Str "db.system.name" => "span_db_system_name",
    Span Str "db.system" => "span_db_system",
    Span Str "db.namespace" => "span_db_namespace",
    Span Str "db.name" => "span_db_name",
    Span Str "db.operation.name" => "span_db_operation_name",
    Span Str "db.operation" => "span_db_operation",
    Span Str "db.collection.name" => "span_db_collection_name",
    Span Str "db.query.text" => "span_db_query_text",
    Span Str "db.statement" => "span_db_statement",
    Span Str "rpc.system" => "span_rpc_system",
    Span Str "rpc.service" => "span_rpc_service",
    Span Str "rpc.method" => "span_rpc_method",
    Span Int "rpc.grpc.status_code" => "span_rpc_grpc_status_code",
    Span Str "messaging.system" => "span_messaging_system",
    Span Str "messaging.destination.name" => "span_messaging_destination_name",
    Span Str "messaging.operation.type" => "span_messaging_operation_type",
    Span Str "messaging.operation" => "span_messaging_operation",
    Span Str "error.type" => "span_error_type",
}

/// Arrow field metadata naming the attribute key a dedicated column holds.
pub const ATTRIBUTE_KEY_METADATA: &str = "strata.attribute.key";
/// Arrow field metadata naming the attribute's scope (`resource` or `span`).
pub const ATTRIBUTE_SCOPE_METADATA: &str = "strata.attribute.scope";

/// Finds the dedicated column for an attribute key in a scope.
pub fn dedicated_column(scope: AttrScope, key: &str) -> Option<(usize, &'static DedicatedColumn)> {
    DEDICATED_COLUMNS
        .iter()
        .enumerate()
        .find(|(_, c)| c.scope == scope && c.key == key)
}

/// Column names of the fixed (non-dedicated) part of the schema.
#[allow(missing_docs)]
pub mod col {
    pub const TRACE_ID: &str = "trace_id";
    pub const TRACE_START: &str = "trace_start_unix_nano";
    pub const TRACE_DURATION: &str = "trace_duration_nano";
    pub const TRACE_ROOT_SERVICE: &str = "trace_root_service_name";
    pub const TRACE_ROOT_NAME: &str = "trace_root_span_name";
    pub const TRACE_SPAN_COUNT: &str = "trace_span_count";
    pub const TRACE_HAS_ERROR: &str = "trace_has_error";
    pub const TRACE_WEIGHT: &str = "trace_weight";
    pub const SPAN_ID: &str = "span_id";
    pub const PARENT_SPAN_ID: &str = "parent_span_id";
    pub const NS_LEFT: &str = "nested_set_left";
    pub const NS_RIGHT: &str = "nested_set_right";
    pub const NS_PARENT: &str = "nested_set_parent";
    pub const NAME: &str = "name";
    pub const KIND: &str = "kind";
    pub const START: &str = "start_unix_nano";
    pub const DURATION: &str = "duration_nano";
    pub const STATUS_CODE: &str = "status_code";
    pub const STATUS_MESSAGE: &str = "status_message";
    pub const TRACE_STATE: &str = "trace_state";
    pub const FLAGS: &str = "flags";
    pub const DROPPED_ATTRS: &str = "dropped_attributes_count";
    pub const DROPPED_EVENTS: &str = "dropped_events_count";
    pub const DROPPED_LINKS: &str = "dropped_links_count";
    pub const RESOURCE_ATTRS: &str = "resource_attrs";
    pub const RESOURCE_DROPPED: &str = "resource_dropped_attributes_count";
    pub const RESOURCE_SCHEMA_URL: &str = "resource_schema_url";
    pub const SCOPE_NAME: &str = "scope_name";
    pub const SCOPE_VERSION: &str = "scope_version";
    pub const SCOPE_ATTRS: &str = "scope_attrs";
    pub const SCOPE_DROPPED: &str = "scope_dropped_attributes_count";
    pub const SCOPE_SCHEMA_URL: &str = "scope_schema_url";
    pub const SPAN_ATTRS: &str = "span_attrs";
    pub const EVENTS: &str = "events";
    pub const LINKS: &str = "links";
}

/// The fields of one generic attribute: its key and exactly one non-null value field (all null
/// for an empty value). Arrays and key/value lists are stored in `json` as OTLP/JSON `AnyValue`.
pub fn attr_fields() -> Fields {
    Fields::from(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("str", DataType::Utf8, true),
        Field::new("int", DataType::Int64, true),
        Field::new("double", DataType::Float64, true),
        Field::new("bool", DataType::Boolean, true),
        Field::new("bytes", DataType::Binary, true),
        Field::new("json", DataType::Utf8, true),
    ])
}

/// The list-of-attributes type used for every attribute column.
pub fn attr_list_type() -> DataType {
    DataType::List(Arc::new(Field::new(
        "element",
        DataType::Struct(attr_fields()),
        false,
    )))
}

/// The fields of one event.
pub fn event_fields() -> Fields {
    Fields::from(vec![
        Field::new("time_since_start_nano", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("attrs", attr_list_type(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
    ])
}

/// The fields of one link.
pub fn link_fields() -> Fields {
    Fields::from(vec![
        Field::new("trace_id", DataType::FixedSizeBinary(16), false),
        Field::new("span_id", DataType::FixedSizeBinary(8), false),
        Field::new("trace_state", DataType::Utf8, true),
        Field::new("flags", DataType::UInt32, false),
        Field::new("attrs", attr_list_type(), false),
        Field::new("dropped_attributes_count", DataType::UInt32, false),
    ])
}

fn list_of(fields: Fields) -> DataType {
    DataType::List(Arc::new(Field::new(
        "element",
        DataType::Struct(fields),
        false,
    )))
}

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    use DataType::*;
    let mut fields = vec![
        Field::new(col::TRACE_ID, FixedSizeBinary(16), false),
        Field::new(col::TRACE_START, UInt64, false),
        Field::new(col::TRACE_DURATION, UInt64, false),
        Field::new(col::TRACE_ROOT_SERVICE, Utf8, true),
        Field::new(col::TRACE_ROOT_NAME, Utf8, true),
        Field::new(col::TRACE_SPAN_COUNT, UInt32, false),
        Field::new(col::TRACE_HAS_ERROR, Boolean, false),
        Field::new(col::TRACE_WEIGHT, Float64, false),
        Field::new(col::SPAN_ID, FixedSizeBinary(8), false),
        Field::new(col::PARENT_SPAN_ID, FixedSizeBinary(8), true),
        Field::new(col::NS_LEFT, Int32, false),
        Field::new(col::NS_RIGHT, Int32, false),
        Field::new(col::NS_PARENT, Int32, false),
        Field::new(col::NAME, Utf8, false),
        Field::new(col::KIND, Int32, false),
        Field::new(col::START, UInt64, false),
        Field::new(col::DURATION, Int64, false),
        Field::new(col::STATUS_CODE, Int32, false),
        Field::new(col::STATUS_MESSAGE, Utf8, true),
        Field::new(col::TRACE_STATE, Utf8, true),
        Field::new(col::FLAGS, UInt32, false),
        Field::new(col::DROPPED_ATTRS, UInt32, false),
        Field::new(col::DROPPED_EVENTS, UInt32, false),
        Field::new(col::DROPPED_LINKS, UInt32, false),
    ];
    fields.extend(DEDICATED_COLUMNS.iter().map(|c| {
        let ty = match c.ty {
            DedicatedType::Str => Utf8,
            DedicatedType::Int => Int64,
        };
        let scope = match c.scope {
            AttrScope::Resource => "resource",
            AttrScope::Span => "span",
        };
        // Readers other than Strata learn which attribute a column holds from its metadata.
        Field::new(c.column, ty, true).with_metadata(HashMap::from([
            (ATTRIBUTE_KEY_METADATA.to_owned(), c.key.to_owned()),
            (ATTRIBUTE_SCOPE_METADATA.to_owned(), scope.to_owned()),
        ]))
    }));
    fields.extend([
        Field::new(col::RESOURCE_ATTRS, attr_list_type(), false),
        Field::new(col::RESOURCE_DROPPED, UInt32, false),
        Field::new(col::RESOURCE_SCHEMA_URL, Utf8, true),
        Field::new(col::SCOPE_NAME, Utf8, true),
        Field::new(col::SCOPE_VERSION, Utf8, true),
        Field::new(col::SCOPE_ATTRS, attr_list_type(), false),
        Field::new(col::SCOPE_DROPPED, UInt32, false),
        Field::new(col::SCOPE_SCHEMA_URL, Utf8, true),
        Field::new(col::SPAN_ATTRS, attr_list_type(), false),
        Field::new(col::EVENTS, list_of(event_fields()), false),
        Field::new(col::LINKS, list_of(link_fields()), false),
    ]);
    Arc::new(Schema::new(fields))
});

/// The Arrow schema of a version-1 block.
pub fn block_schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}
