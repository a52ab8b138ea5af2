//! Turning ordered spans into one Arrow record batch per row group.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, BooleanBuilder, FixedSizeBinaryBuilder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, UInt32Builder, UInt64Builder,
};
use strata_model::{AttrValue, KeyValue, NestedSet, Resource, Span, TraceLayout, TraceSummary};

use crate::attrs::{AttrListBuilder, arrow_err, list_array, next_offset};
use crate::error::{Error, Result};
use crate::schema::{
    AttrScope, DEDICATED_COLUMNS, DedicatedType, block_schema, event_fields, link_fields,
};

/// Index of each dedicated column by (scope, key), for one hash lookup per attribute.
static DEDICATED_INDEX: LazyLock<HashMap<(bool, &'static str), usize>> = LazyLock::new(|| {
    DEDICATED_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| ((c.scope == AttrScope::Resource, c.key), i))
        .collect()
});

fn dedicated_slot(scope: AttrScope, kv: &KeyValue) -> Option<usize> {
    let i = *DEDICATED_INDEX.get(&(scope == AttrScope::Resource, kv.key.as_str()))?;
    let fits = matches!(
        (DEDICATED_COLUMNS[i].ty, &kv.value),
        (DedicatedType::Str, AttrValue::Str(_)) | (DedicatedType::Int, AttrValue::Int(_))
    );
    fits.then_some(i)
}

enum DedicatedBuilder {
    Str(StringBuilder),
    Int(Int64Builder),
}

/// Column builders for the rows of one row group.
pub(crate) struct SpanColumns {
    rows: usize,
    trace_id: FixedSizeBinaryBuilder,
    trace_start: UInt64Builder,
    trace_duration: UInt64Builder,
    trace_root_service: StringBuilder,
    trace_root_name: StringBuilder,
    trace_span_count: UInt32Builder,
    trace_has_error: BooleanBuilder,
    trace_weight: Float64Builder,
    span_id: FixedSizeBinaryBuilder,
    parent_span_id: FixedSizeBinaryBuilder,
    ns_left: Int32Builder,
    ns_right: Int32Builder,
    ns_parent: Int32Builder,
    name: StringBuilder,
    kind: Int32Builder,
    start: UInt64Builder,
    duration: Int64Builder,
    status_code: Int32Builder,
    status_message: StringBuilder,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    dropped_attrs: UInt32Builder,
    dropped_events: UInt32Builder,
    dropped_links: UInt32Builder,
    dedicated: Vec<DedicatedBuilder>,
    resource_attrs: AttrListBuilder,
    resource_dropped: UInt32Builder,
    resource_schema_url: StringBuilder,
    scope_name: StringBuilder,
    scope_version: StringBuilder,
    scope_attrs: AttrListBuilder,
    scope_dropped: UInt32Builder,
    scope_schema_url: StringBuilder,
    span_attrs: AttrListBuilder,
    events: EventsBuilder,
    links: LinksBuilder,
    /// Scratch: which attribute fills each dedicated column for the current row.
    slots: Vec<Option<usize>>,
    /// The last resource split, reused while consecutive spans share a resource.
    resource_split: Option<ResourceSplit>,
}

/// Which of a resource's attributes fill dedicated columns and which stay generic.
struct ResourceSplit {
    resource: Arc<Resource>,
    slots: Vec<Option<usize>>,
    generic: Vec<usize>,
}

impl SpanColumns {
    pub(crate) fn new() -> Self {
        Self {
            rows: 0,
            trace_id: FixedSizeBinaryBuilder::new(16),
            trace_start: UInt64Builder::new(),
            trace_duration: UInt64Builder::new(),
            trace_root_service: StringBuilder::new(),
            trace_root_name: StringBuilder::new(),
            trace_span_count: UInt32Builder::new(),
            trace_has_error: BooleanBuilder::new(),
            trace_weight: Float64Builder::new(),
            span_id: FixedSizeBinaryBuilder::new(8),
            parent_span_id: FixedSizeBinaryBuilder::new(8),
            ns_left: Int32Builder::new(),
            ns_right: Int32Builder::new(),
            ns_parent: Int32Builder::new(),
            name: StringBuilder::new(),
            kind: Int32Builder::new(),
            start: UInt64Builder::new(),
            duration: Int64Builder::new(),
            status_code: Int32Builder::new(),
            status_message: StringBuilder::new(),
            trace_state: StringBuilder::new(),
            flags: UInt32Builder::new(),
            dropped_attrs: UInt32Builder::new(),
            dropped_events: UInt32Builder::new(),
            dropped_links: UInt32Builder::new(),
            dedicated: DEDICATED_COLUMNS
                .iter()
                .map(|c| match c.ty {
                    DedicatedType::Str => DedicatedBuilder::Str(StringBuilder::new()),
                    DedicatedType::Int => DedicatedBuilder::Int(Int64Builder::new()),
                })
                .collect(),
            resource_attrs: AttrListBuilder::default(),
            resource_dropped: UInt32Builder::new(),
            resource_schema_url: StringBuilder::new(),
            scope_name: StringBuilder::new(),
            scope_version: StringBuilder::new(),
            scope_attrs: AttrListBuilder::default(),
            scope_dropped: UInt32Builder::new(),
            scope_schema_url: StringBuilder::new(),
            span_attrs: AttrListBuilder::default(),
            events: EventsBuilder::default(),
            links: LinksBuilder::default(),
            slots: vec![None; DEDICATED_COLUMNS.len()],
            resource_split: None,
        }
    }

    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Appends the spans of one trace in the order `layout` gives. `weight` is the number of
    /// traces this one stands for after sampling (1 when nothing was sampled away).
    pub(crate) fn push_trace(
        &mut self,
        spans: &[Span],
        layout: &TraceLayout,
        weight: f64,
    ) -> Result<()> {
        for (&i, set) in layout.order.iter().zip(&layout.sets) {
            self.push_span(&spans[i], set, &layout.summary)?;
            self.trace_weight.append_value(weight);
        }
        Ok(())
    }

    fn push_span(&mut self, span: &Span, set: &NestedSet, summary: &TraceSummary) -> Result<()> {
        self.rows += 1;
        self.trace_id
            .append_value(span.trace_id.as_bytes())
            .map_err(arrow_err)?;
        self.trace_start.append_value(summary.start_unix_nano);
        self.trace_duration.append_value(summary.duration_nanos());
        self.trace_root_service
            .append_option(summary.root_service_name.as_deref());
        self.trace_root_name
            .append_option(summary.root_span_name.as_deref());
        self.trace_span_count.append_value(summary.span_count);
        self.trace_has_error.append_value(summary.has_error);
        self.span_id
            .append_value(span.span_id.as_bytes())
            .map_err(arrow_err)?;
        match span.parent_span_id {
            Some(p) => self
                .parent_span_id
                .append_value(p.as_bytes())
                .map_err(arrow_err)?,
            None => self.parent_span_id.append_null(),
        }
        self.ns_left.append_value(set.left);
        self.ns_right.append_value(set.right);
        self.ns_parent.append_value(set.parent);
        self.name.append_value(&span.name);
        self.kind.append_value(span.kind.0);
        self.start.append_value(span.start_unix_nano);
        // Wrapping keeps end = start + duration exact even for spans that end before they start.
        self.duration
            .append_value(span.end_unix_nano.wrapping_sub(span.start_unix_nano) as i64);
        self.status_code.append_value(span.status_code.0);
        self.status_message
            .append_option(non_empty(&span.status_message));
        self.trace_state.append_option(non_empty(&span.trace_state));
        self.flags.append_value(span.flags);
        self.dropped_attrs
            .append_value(span.dropped_attributes_count);
        self.dropped_events.append_value(span.dropped_events_count);
        self.dropped_links.append_value(span.dropped_links_count);

        self.push_resource(&span.resource)?;
        let scope = &span.scope;
        self.scope_name.append_option(non_empty(&scope.name));
        self.scope_version.append_option(non_empty(&scope.version));
        self.scope_attrs.append_row(&scope.attributes)?;
        self.scope_dropped
            .append_value(scope.dropped_attributes_count);
        self.scope_schema_url
            .append_option(non_empty(&scope.schema_url));

        // Span attributes: dedicated columns first come, first served; the rest are generic.
        self.slots.iter_mut().for_each(|s| *s = None);
        for (i, kv) in span.attributes.iter().enumerate() {
            match dedicated_slot(AttrScope::Span, kv) {
                Some(slot) if self.slots[slot].is_none() => self.slots[slot] = Some(i),
                _ => self.span_attrs.append(kv),
            }
        }
        self.span_attrs.end_row()?;
        for (slot, column) in DEDICATED_COLUMNS.iter().enumerate() {
            if column.scope == AttrScope::Span {
                let value = self.slots[slot].map(|i| &span.attributes[i].value);
                append_dedicated(&mut self.dedicated[slot], value);
            }
        }
        self.events.push(span)?;
        self.links.push(span)
    }

    fn push_resource(&mut self, resource: &Arc<Resource>) -> Result<()> {
        if self
            .resource_split
            .as_ref()
            .is_none_or(|split| !Arc::ptr_eq(&split.resource, resource))
        {
            let mut slots = vec![None; DEDICATED_COLUMNS.len()];
            let mut generic = Vec::new();
            for (i, kv) in resource.attributes.iter().enumerate() {
                match dedicated_slot(AttrScope::Resource, kv) {
                    Some(slot) if slots[slot].is_none() => slots[slot] = Some(i),
                    _ => generic.push(i),
                }
            }
            self.resource_split = Some(ResourceSplit {
                resource: Arc::clone(resource),
                slots,
                generic,
            });
        }
        let Some(ResourceSplit { slots, generic, .. }) = &self.resource_split else {
            return Err(Error::Writer("resource split missing".into()));
        };
        for (slot, column) in DEDICATED_COLUMNS.iter().enumerate() {
            if column.scope == AttrScope::Resource {
                let value = slots[slot].map(|i| &resource.attributes[i].value);
                append_dedicated(&mut self.dedicated[slot], value);
            }
        }
        self.resource_attrs
            .append_row(generic.iter().map(|&i| &resource.attributes[i]))?;
        self.resource_dropped
            .append_value(resource.dropped_attributes_count);
        self.resource_schema_url
            .append_option(non_empty(&resource.schema_url));
        Ok(())
    }

    /// Emits the accumulated rows as a record batch and resets the builders.
    pub(crate) fn finish(&mut self) -> Result<RecordBatch> {
        self.rows = 0;
        self.resource_split = None;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.trace_id.finish()),
            Arc::new(self.trace_start.finish()),
            Arc::new(self.trace_duration.finish()),
            Arc::new(self.trace_root_service.finish()),
            Arc::new(self.trace_root_name.finish()),
            Arc::new(self.trace_span_count.finish()),
            Arc::new(self.trace_has_error.finish()),
            Arc::new(self.trace_weight.finish()),
            Arc::new(self.span_id.finish()),
            Arc::new(self.parent_span_id.finish()),
            Arc::new(self.ns_left.finish()),
            Arc::new(self.ns_right.finish()),
            Arc::new(self.ns_parent.finish()),
            Arc::new(self.name.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.start.finish()),
            Arc::new(self.duration.finish()),
            Arc::new(self.status_code.finish()),
            Arc::new(self.status_message.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            Arc::new(self.dropped_attrs.finish()),
            Arc::new(self.dropped_events.finish()),
            Arc::new(self.dropped_links.finish()),
        ];
        for builder in &mut self.dedicated {
            columns.push(match builder {
                DedicatedBuilder::Str(b) => Arc::new(b.finish()),
                DedicatedBuilder::Int(b) => Arc::new(b.finish()),
            });
        }
        columns.extend([
            self.resource_attrs.finish()?,
            Arc::new(self.resource_dropped.finish()) as ArrayRef,
            Arc::new(self.resource_schema_url.finish()),
            Arc::new(self.scope_name.finish()),
            Arc::new(self.scope_version.finish()),
            self.scope_attrs.finish()?,
            Arc::new(self.scope_dropped.finish()),
            Arc::new(self.scope_schema_url.finish()),
            self.span_attrs.finish()?,
            self.events.finish()?,
            self.links.finish()?,
        ]);
        RecordBatch::try_new(block_schema(), columns).map_err(arrow_err)
    }
}

fn append_dedicated(builder: &mut DedicatedBuilder, value: Option<&AttrValue>) {
    match (builder, value) {
        (DedicatedBuilder::Str(b), Some(AttrValue::Str(s))) => b.append_value(s),
        (DedicatedBuilder::Int(b), Some(AttrValue::Int(i))) => b.append_value(*i),
        (DedicatedBuilder::Str(b), _) => b.append_null(),
        (DedicatedBuilder::Int(b), _) => b.append_null(),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[derive(Default)]
struct EventsBuilder {
    offsets: Vec<i32>,
    len: usize,
    time: Int64Builder,
    name: StringBuilder,
    attrs: AttrListBuilder,
    dropped: UInt32Builder,
}

impl EventsBuilder {
    fn push(&mut self, span: &Span) -> Result<()> {
        for event in &span.events {
            self.time
                .append_value(event.time_unix_nano.wrapping_sub(span.start_unix_nano) as i64);
            self.name.append_value(&event.name);
            self.attrs.append_row(&event.attributes)?;
            self.dropped.append_value(event.dropped_attributes_count);
        }
        self.len += span.events.len();
        next_offset(&mut self.offsets, self.len)
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(self.time.finish()),
            Arc::new(self.name.finish()),
            self.attrs.finish()?,
            Arc::new(self.dropped.finish()),
        ];
        self.len = 0;
        list_array(event_fields(), arrays, &mut self.offsets)
    }
}

#[derive(Default)]
struct LinksBuilder {
    offsets: Vec<i32>,
    len: usize,
    trace_id: Option<FixedSizeBinaryBuilder>,
    span_id: Option<FixedSizeBinaryBuilder>,
    trace_state: StringBuilder,
    flags: UInt32Builder,
    attrs: AttrListBuilder,
    dropped: UInt32Builder,
}

impl LinksBuilder {
    fn push(&mut self, span: &Span) -> Result<()> {
        let trace_id = self
            .trace_id
            .get_or_insert_with(|| FixedSizeBinaryBuilder::new(16));
        let span_id = self
            .span_id
            .get_or_insert_with(|| FixedSizeBinaryBuilder::new(8));
        for link in &span.links {
            trace_id
                .append_value(link.trace_id.as_bytes())
                .map_err(arrow_err)?;
            span_id
                .append_value(link.span_id.as_bytes())
                .map_err(arrow_err)?;
            self.trace_state.append_option(non_empty(&link.trace_state));
            self.flags.append_value(link.flags);
            self.attrs.append_row(&link.attributes)?;
            self.dropped.append_value(link.dropped_attributes_count);
        }
        self.len += span.links.len();
        next_offset(&mut self.offsets, self.len)
    }

    fn finish(&mut self) -> Result<ArrayRef> {
        let mut trace_id = self
            .trace_id
            .take()
            .unwrap_or_else(|| FixedSizeBinaryBuilder::new(16));
        let mut span_id = self
            .span_id
            .take()
            .unwrap_or_else(|| FixedSizeBinaryBuilder::new(8));
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(trace_id.finish()),
            Arc::new(span_id.finish()),
            Arc::new(self.trace_state.finish()),
            Arc::new(self.flags.finish()),
            self.attrs.finish()?,
            Arc::new(self.dropped.finish()),
        ];
        self.len = 0;
        list_array(link_fields(), arrays, &mut self.offsets)
    }
}
