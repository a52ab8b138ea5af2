//! Spans and what they carry: resource, scope, events, links, status.

use std::sync::Arc;

use crate::attr::KeyValue;
use crate::ids::{SpanId, TraceId};

/// The entity that produced spans (OTLP `Resource` plus the `schema_url` of its
/// `ResourceSpans`). Shared by every span of one batch.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resource {
    /// Resource attributes, `service.name` among them.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL of the resource data.
    pub schema_url: String,
}

impl Resource {
    /// Approximate heap bytes the resource holds.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + KeyValue::heap_size_of(&self.attributes)
            + self.schema_url.len()
    }
}

/// The instrumentation scope that produced spans (OTLP `InstrumentationScope` plus the
/// `schema_url` of its `ScopeSpans`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scope {
    /// Scope name, e.g. `opentelemetry.instrumentation.flask`.
    pub name: String,
    /// Scope version.
    pub version: String,
    /// Scope attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
    /// Schema URL of the scope data.
    pub schema_url: String,
}

impl Scope {
    /// Approximate heap bytes the scope holds.
    pub fn heap_size(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.name.len()
            + self.version.len()
            + KeyValue::heap_size_of(&self.attributes)
            + self.schema_url.len()
    }
}

/// OTLP span kind, kept as its wire number so unknown future values survive a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SpanKind(pub i32);

impl SpanKind {
    /// `SPAN_KIND_UNSPECIFIED`.
    pub const UNSPECIFIED: Self = Self(0);
    /// `SPAN_KIND_INTERNAL`.
    pub const INTERNAL: Self = Self(1);
    /// `SPAN_KIND_SERVER`.
    pub const SERVER: Self = Self(2);
    /// `SPAN_KIND_CLIENT`.
    pub const CLIENT: Self = Self(3);
    /// `SPAN_KIND_PRODUCER`.
    pub const PRODUCER: Self = Self(4);
    /// `SPAN_KIND_CONSUMER`.
    pub const CONSUMER: Self = Self(5);

    /// The kind's name as TraceQL and Tempo's tag values spell it (`server`, ...);
    /// `unspecified` for any other code.
    pub fn name(self) -> &'static str {
        match self {
            Self::INTERNAL => "internal",
            Self::SERVER => "server",
            Self::CLIENT => "client",
            Self::PRODUCER => "producer",
            Self::CONSUMER => "consumer",
            _ => "unspecified",
        }
    }
}

/// OTLP status code, kept as its wire number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct StatusCode(pub i32);

impl StatusCode {
    /// `STATUS_CODE_UNSET`.
    pub const UNSET: Self = Self(0);
    /// `STATUS_CODE_OK`.
    pub const OK: Self = Self(1);
    /// `STATUS_CODE_ERROR`.
    pub const ERROR: Self = Self(2);
}

/// A time-stamped annotation of a span (OTLP `Span.Event`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    /// When the event happened, unix nanoseconds.
    pub time_unix_nano: u64,
    /// Event name, e.g. `exception`.
    pub name: String,
    /// Event attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
}

/// A reference from a span to another span (OTLP `Span.Link`).
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// The linked trace.
    pub trace_id: TraceId,
    /// The linked span.
    pub span_id: SpanId,
    /// W3C trace state of the link.
    pub trace_state: String,
    /// W3C trace flags and OTLP link flags.
    pub flags: u32,
    /// Link attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
}

/// One validated span with its resource and scope.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The trace this span belongs to.
    pub trace_id: TraceId,
    /// This span's ID.
    pub span_id: SpanId,
    /// The parent span, `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C trace state.
    pub trace_state: String,
    /// W3C trace flags and OTLP span flags.
    pub flags: u32,
    /// Operation name.
    pub name: String,
    /// Span kind.
    pub kind: SpanKind,
    /// Start, unix nanoseconds.
    pub start_unix_nano: u64,
    /// End, unix nanoseconds.
    pub end_unix_nano: u64,
    /// Span attributes.
    pub attributes: Vec<KeyValue>,
    /// Attributes the sender dropped.
    pub dropped_attributes_count: u32,
    /// Events.
    pub events: Vec<Event>,
    /// Events the sender dropped.
    pub dropped_events_count: u32,
    /// Links.
    pub links: Vec<Link>,
    /// Links the sender dropped (plus links Strata refused for invalid IDs).
    pub dropped_links_count: u32,
    /// Status code.
    pub status_code: StatusCode,
    /// Status message.
    pub status_message: String,
    /// The resource that produced the span.
    pub resource: Arc<Resource>,
    /// The instrumentation scope that produced the span.
    pub scope: Arc<Scope>,
}

impl Span {
    /// Duration in nanoseconds; zero when the end precedes the start.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    /// The resource's `service.name`, if it has one as a string.
    pub fn service_name(&self) -> Option<&str> {
        self.resource
            .attributes
            .iter()
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_str())
    }

    /// Whether the span's status is error.
    pub fn is_error(&self) -> bool {
        self.status_code == StatusCode::ERROR
    }

    /// Approximate bytes the span takes as a row of a block (and of a record batch built for a
    /// search): its own data plus a copy of its resource and scope, which every row carries.
    /// What bounds row groups and blocks, so that one resource shared by many spans in memory
    /// cannot make a row group huge.
    pub fn stored_size(&self) -> usize {
        self.heap_size() + self.resource.heap_size() + self.scope.heap_size()
    }

    /// Approximate heap bytes the span holds, not counting its shared resource and scope. Used to
    /// bound memory, so it errs on the large side.
    pub fn heap_size(&self) -> usize {
        let events: usize = self
            .events
            .iter()
            .map(|e| {
                std::mem::size_of::<Event>() + e.name.len() + KeyValue::heap_size_of(&e.attributes)
            })
            .sum();
        let links: usize = self
            .links
            .iter()
            .map(|l| {
                std::mem::size_of::<Link>()
                    + l.trace_state.len()
                    + KeyValue::heap_size_of(&l.attributes)
            })
            .sum();
        std::mem::size_of::<Span>()
            + self.trace_state.len()
            + self.name.len()
            + self.status_message.len()
            + KeyValue::heap_size_of(&self.attributes)
            + events
            + links
    }
}
