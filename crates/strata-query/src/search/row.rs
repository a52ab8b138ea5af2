//! Evaluating TraceQL field expressions on one span, a row of a block-schema record batch.
//!
//! Values are borrowed from the Arrow arrays; nothing is allocated per row except for the rare
//! array-valued attribute (stored as OTLP/JSON). An attribute can have several candidate values
//! (an unscoped name found on the span and on the resource, array elements, one per event or
//! link): a comparison is true when it holds for any of them, as in Tempo.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;

use arrow::array::{
    Array, BooleanArray, FixedSizeBinaryArray, Float64Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StringArray, StructArray, UInt64Array,
};
use regex::Regex;
use strata_block::schema::{AttrScope, DEDICATED_COLUMNS, DedicatedType, col};
use strata_model::AttrValue;
use strata_traceql::{
    Attribute, AttributeScope, BinaryOp, FieldExpr, Intrinsic, Kind, Static, Status, UnaryOp,
};

/// A value during evaluation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value<'a> {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Duration(i64),
    Str(Cow<'a, str>),
    Status(Status),
    Kind(Kind),
}

impl Value<'_> {
    fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) | Value::Duration(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Detaches the value from the batch it was read from.
    pub(crate) fn into_owned(self) -> Value<'static> {
        match self {
            Value::Nil => Value::Nil,
            Value::Bool(b) => Value::Bool(b),
            Value::Int(i) => Value::Int(i),
            Value::Float(f) => Value::Float(f),
            Value::Duration(d) => Value::Duration(d),
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Status(s) => Value::Status(s),
            Value::Kind(k) => Value::Kind(k),
        }
    }

    /// A hashable, totally ordered key for grouping (`by()`).
    pub(crate) fn group_key(&self) -> String {
        match self {
            Value::Nil => "nil".into(),
            Value::Bool(b) => format!("b{b}"),
            Value::Int(i) => format!("i{i}"),
            Value::Float(f) => format!("f{f}"),
            Value::Duration(d) => format!("d{d}"),
            Value::Str(s) => format!("s{s}"),
            Value::Status(s) => format!("t{s:?}"),
            Value::Kind(k) => format!("k{k:?}"),
        }
    }
}

pub(crate) fn static_value(s: &Static) -> Value<'_> {
    match s {
        Static::Nil => Value::Nil,
        Static::Bool(b) => Value::Bool(*b),
        Static::Int(i) => Value::Int(*i),
        Static::Float(f) => Value::Float(*f),
        Static::String(s) => Value::Str(Cow::Borrowed(s)),
        Static::Duration(d) => Value::Duration(*d),
        Static::Status(s) => Value::Status(*s),
        Static::Kind(k) => Value::Kind(*k),
    }
}

pub(crate) fn status_of(code: i32) -> Status {
    match code {
        1 => Status::Ok,
        2 => Status::Error,
        _ => Status::Unset,
    }
}

pub(crate) fn kind_of(code: i32) -> Kind {
    match code {
        1 => Kind::Internal,
        2 => Kind::Server,
        3 => Kind::Client,
        4 => Kind::Producer,
        5 => Kind::Consumer,
        _ => Kind::Unspecified,
    }
}

/// A generic attribute list column (`span_attrs`, `resource_attrs`, `scope_attrs`).
pub(crate) struct AttrList<'a> {
    list: &'a ListArray,
    key: &'a StringArray,
    str: &'a StringArray,
    int: &'a Int64Array,
    double: &'a Float64Array,
    bool: &'a BooleanArray,
    json: &'a StringArray,
}

/// The child rows of list row `row`, within `0..child_len`; empty for a row the list does not
/// have. Offsets come from disk (through the Parquet reader): none is trusted as an index.
pub(crate) fn list_range(list: &ListArray, row: usize, child_len: usize) -> std::ops::Range<usize> {
    let offsets = list.value_offsets();
    let at = |i: usize| {
        offsets
            .get(i)
            .and_then(|&o| usize::try_from(o).ok())
            .map(|o| o.min(child_len))
    };
    match (at(row), row.checked_add(1).and_then(at)) {
        (Some(start), Some(end)) => start..end.max(start),
        _ => 0..0,
    }
}

fn field<'a, T: Array + 'static>(s: &'a StructArray, name: &str) -> Option<&'a T> {
    s.column_by_name(name)?.as_any().downcast_ref::<T>()
}

impl<'a> AttrList<'a> {
    fn new(list: &'a ListArray) -> Option<Self> {
        let values = list.values().as_any().downcast_ref::<StructArray>()?;
        Some(Self {
            list,
            key: field(values, "key")?,
            str: field(values, "str")?,
            int: field(values, "int")?,
            double: field(values, "double")?,
            bool: field(values, "bool")?,
            json: field(values, "json")?,
        })
    }

    fn range(&self, row: usize) -> std::ops::Range<usize> {
        list_range(self.list, row, self.key.len())
    }

    /// Pushes the values of `key` in list row `row`.
    fn find(&self, row: usize, key: &str, out: &mut Vec<Value<'a>>) {
        for i in self.range(row) {
            if self.key.value(i) == key {
                self.value(i, out);
            }
        }
    }

    fn value(&self, i: usize, out: &mut Vec<Value<'a>>) {
        if self.str.is_valid(i) {
            out.push(Value::Str(Cow::Borrowed(self.str.value(i))));
        } else if self.int.is_valid(i) {
            out.push(Value::Int(self.int.value(i)));
        } else if self.double.is_valid(i) {
            out.push(Value::Float(self.double.value(i)));
        } else if self.bool.is_valid(i) {
            out.push(Value::Bool(self.bool.value(i)));
        } else if self.json.is_valid(i) {
            // Arrays match when any element does; key/value lists match nothing.
            if let Ok(AttrValue::Array(items)) = AttrValue::from_otlp_json(self.json.value(i)) {
                for item in items {
                    match item {
                        AttrValue::Str(s) => out.push(Value::Str(Cow::Owned(s))),
                        AttrValue::Int(v) => out.push(Value::Int(v)),
                        AttrValue::Double(v) => out.push(Value::Float(v)),
                        AttrValue::Bool(v) => out.push(Value::Bool(v)),
                        _ => {}
                    }
                }
            }
        } else {
            // Bytes and empty values: present, but equal to nothing a query can write.
            out.push(Value::Str(Cow::Borrowed("")));
        }
    }
}

/// A dedicated attribute column.
enum Dedicated<'a> {
    Str(&'a StringArray),
    Int(&'a Int64Array),
}

/// Typed access to the columns of a batch that a query needs. Missing columns read as absent
/// values: the plan decides which columns are read.
pub(crate) struct BatchView<'a> {
    pub(crate) trace_id: &'a FixedSizeBinaryArray,
    pub(crate) trace_start: Option<&'a UInt64Array>,
    pub(crate) trace_duration: Option<&'a UInt64Array>,
    pub(crate) root_service: Option<&'a StringArray>,
    pub(crate) root_name: Option<&'a StringArray>,
    pub(crate) span_id: Option<&'a FixedSizeBinaryArray>,
    pub(crate) ns_left: Option<&'a Int32Array>,
    pub(crate) ns_right: Option<&'a Int32Array>,
    pub(crate) ns_parent: Option<&'a Int32Array>,
    pub(crate) name: Option<&'a StringArray>,
    pub(crate) start: Option<&'a UInt64Array>,
    pub(crate) duration: Option<&'a Int64Array>,
    pub(crate) status: Option<&'a Int32Array>,
    pub(crate) status_message: Option<&'a StringArray>,
    pub(crate) kind: Option<&'a Int32Array>,
    parent_span_id: Option<&'a FixedSizeBinaryArray>,
    scope_name: Option<&'a StringArray>,
    scope_version: Option<&'a StringArray>,
    span_attrs: Option<AttrList<'a>>,
    resource_attrs: Option<AttrList<'a>>,
    scope_attrs: Option<AttrList<'a>>,
    events: Option<(&'a ListArray, &'a StringArray, &'a Int64Array, AttrList<'a>)>,
    links: Option<(
        &'a ListArray,
        &'a FixedSizeBinaryArray,
        &'a FixedSizeBinaryArray,
        AttrList<'a>,
    )>,
    /// The dedicated columns present in the batch (a query reads few): (is resource, key, array).
    dedicated: Vec<(bool, &'static str, Dedicated<'a>)>,
}

fn get<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Option<&'a T> {
    batch.column_by_name(name)?.as_any().downcast_ref::<T>()
}

/// A fixed-width binary column, checked to be `width` bytes wide (IDs are copied into arrays of
/// that size).
fn fixed<'a>(
    batch: &'a RecordBatch,
    name: &str,
    width: i32,
) -> Result<Option<&'a FixedSizeBinaryArray>, String> {
    match get::<FixedSizeBinaryArray>(batch, name) {
        Some(a) if a.value_length() != width => Err(format!(
            "column {name} is {} bytes wide, not {width}",
            a.value_length()
        )),
        found => Ok(found),
    }
}

impl<'a> BatchView<'a> {
    /// The view of `batch`; an error naming the column when it has no `trace_id` column or an
    /// ID column of the wrong width (a corrupt block). Other columns are read when the plan
    /// needs them; an absent one reads as no value.
    pub(crate) fn new(batch: &'a RecordBatch) -> Result<Self, String> {
        let trace_id = fixed(batch, col::TRACE_ID, 16)?.ok_or("no trace_id column")?;
        let span_id = fixed(batch, col::SPAN_ID, 8)?;
        let parent_span_id = fixed(batch, col::PARENT_SPAN_ID, 8)?;
        let mut dedicated = Vec::new();
        for c in DEDICATED_COLUMNS {
            let key = (c.scope == AttrScope::Resource, c.key);
            match c.ty {
                DedicatedType::Str => {
                    if let Some(a) = get::<StringArray>(batch, c.column) {
                        dedicated.push((key.0, key.1, Dedicated::Str(a)));
                    }
                }
                DedicatedType::Int => {
                    if let Some(a) = get::<Int64Array>(batch, c.column) {
                        dedicated.push((key.0, key.1, Dedicated::Int(a)));
                    }
                }
            }
        }
        let events = get::<ListArray>(batch, col::EVENTS).and_then(|list| {
            let s = list.values().as_any().downcast_ref::<StructArray>()?;
            let attrs = AttrList::new(field::<ListArray>(s, "attrs")?)?;
            Some((
                list,
                field::<StringArray>(s, "name")?,
                field::<Int64Array>(s, "time_since_start_nano")?,
                attrs,
            ))
        });
        let links = get::<ListArray>(batch, col::LINKS).and_then(|list| {
            let s = list.values().as_any().downcast_ref::<StructArray>()?;
            let attrs = AttrList::new(field::<ListArray>(s, "attrs")?)?;
            Some((
                list,
                field::<FixedSizeBinaryArray>(s, "trace_id")?,
                field::<FixedSizeBinaryArray>(s, "span_id")?,
                attrs,
            ))
        });
        Ok(Self {
            trace_id,
            trace_start: get(batch, col::TRACE_START),
            trace_duration: get(batch, col::TRACE_DURATION),
            root_service: get(batch, col::TRACE_ROOT_SERVICE),
            root_name: get(batch, col::TRACE_ROOT_NAME),
            span_id,
            ns_left: get(batch, col::NS_LEFT),
            ns_right: get(batch, col::NS_RIGHT),
            ns_parent: get(batch, col::NS_PARENT),
            name: get(batch, col::NAME),
            start: get(batch, col::START),
            duration: get(batch, col::DURATION),
            status: get(batch, col::STATUS_CODE),
            status_message: get(batch, col::STATUS_MESSAGE),
            kind: get(batch, col::KIND),
            parent_span_id,
            scope_name: get(batch, col::SCOPE_NAME),
            scope_version: get(batch, col::SCOPE_VERSION),
            span_attrs: get::<ListArray>(batch, col::SPAN_ATTRS).and_then(AttrList::new),
            resource_attrs: get::<ListArray>(batch, col::RESOURCE_ATTRS).and_then(AttrList::new),
            scope_attrs: get::<ListArray>(batch, col::SCOPE_ATTRS).and_then(AttrList::new),
            events,
            links,
            dedicated,
        })
    }

    pub(crate) fn rows(&self) -> usize {
        self.trace_id.len()
    }

    fn opt_str(array: Option<&'a StringArray>, row: usize) -> Value<'a> {
        match array {
            Some(a) if a.is_valid(row) => Value::Str(Cow::Borrowed(a.value(row))),
            Some(_) => Value::Str(Cow::Borrowed("")),
            None => Value::Nil,
        }
    }

    /// A string column where null means absent (not empty).
    fn nullable_str(array: Option<&'a StringArray>, row: usize) -> Value<'a> {
        match array {
            Some(a) if a.is_valid(row) => Value::Str(Cow::Borrowed(a.value(row))),
            _ => Value::Nil,
        }
    }

    fn int(array: Option<&'a Int32Array>, row: usize) -> Value<'a> {
        match array {
            Some(a) => Value::Int(i64::from(a.value(row))),
            None => Value::Nil,
        }
    }

    fn hex(array: Option<&'a FixedSizeBinaryArray>, row: usize) -> Value<'a> {
        match array {
            Some(a) if a.is_valid(row) => Value::Str(Cow::Owned(hex::encode(a.value(row)))),
            _ => Value::Nil,
        }
    }

    /// The values of an intrinsic (several for event and link intrinsics).
    pub(crate) fn intrinsic(&self, row: usize, i: Intrinsic, out: &mut Vec<Value<'a>>) {
        let v = match i {
            Intrinsic::Name => Self::opt_str(self.name, row),
            Intrinsic::Status => match self.status {
                Some(a) => Value::Status(status_of(a.value(row))),
                None => Value::Nil,
            },
            Intrinsic::StatusMessage => Self::opt_str(self.status_message, row),
            Intrinsic::Kind => match self.kind {
                Some(a) => Value::Kind(kind_of(a.value(row))),
                None => Value::Nil,
            },
            Intrinsic::Duration => match self.duration {
                Some(a) => Value::Duration(a.value(row)),
                None => Value::Nil,
            },
            Intrinsic::TraceDuration => match self.trace_duration {
                Some(a) => Value::Duration(i64::try_from(a.value(row)).unwrap_or(i64::MAX)),
                None => Value::Nil,
            },
            Intrinsic::RootName => Self::nullable_str(self.root_name, row),
            Intrinsic::RootServiceName => Self::nullable_str(self.root_service, row),
            Intrinsic::TraceId => Self::hex(Some(self.trace_id), row),
            Intrinsic::SpanId => Self::hex(self.span_id, row),
            Intrinsic::ParentId => Self::hex(self.parent_span_id, row),
            Intrinsic::NestedSetLeft => Self::int(self.ns_left, row),
            Intrinsic::NestedSetRight => Self::int(self.ns_right, row),
            Intrinsic::NestedSetParent => Self::int(self.ns_parent, row),
            Intrinsic::InstrumentationName => Self::opt_str(self.scope_name, row),
            Intrinsic::InstrumentationVersion => Self::opt_str(self.scope_version, row),
            Intrinsic::EventName | Intrinsic::EventTimeSinceStart => {
                if let Some((list, names, times, _)) = &self.events {
                    for j in list_range(list, row, names.len().min(times.len())) {
                        out.push(match i {
                            Intrinsic::EventName => Value::Str(Cow::Borrowed(names.value(j))),
                            _ => Value::Duration(times.value(j)),
                        });
                    }
                }
                return;
            }
            Intrinsic::LinkTraceId | Intrinsic::LinkSpanId => {
                if let Some((list, traces, spans, _)) = &self.links {
                    for j in list_range(list, row, traces.len().min(spans.len())) {
                        let bytes = match i {
                            Intrinsic::LinkTraceId => traces.value(j),
                            _ => spans.value(j),
                        };
                        out.push(Value::Str(Cow::Owned(hex::encode(bytes))));
                    }
                }
                return;
            }
            // Rejected by the plan.
            Intrinsic::ChildCount | Intrinsic::Parent => Value::Nil,
        };
        if v != Value::Nil {
            out.push(v);
        }
    }

    fn dedicated(&self, resource: bool, key: &str, row: usize, out: &mut Vec<Value<'a>>) {
        let column = self
            .dedicated
            .iter()
            .find(|(r, k, _)| *r == resource && *k == key)
            .map(|(_, _, c)| c);
        match column {
            Some(Dedicated::Str(a)) if a.is_valid(row) => {
                out.push(Value::Str(Cow::Borrowed(a.value(row))))
            }
            Some(Dedicated::Int(a)) if a.is_valid(row) => out.push(Value::Int(a.value(row))),
            _ => {}
        }
    }

    /// The values of an attribute.
    pub(crate) fn attribute(&self, row: usize, attr: &Attribute, out: &mut Vec<Value<'a>>) {
        let key = attr.name.as_str();
        let span = |out: &mut Vec<Value<'a>>| {
            self.dedicated(false, key, row, out);
            if let Some(l) = &self.span_attrs {
                l.find(row, key, out);
            }
        };
        let resource = |out: &mut Vec<Value<'a>>| {
            self.dedicated(true, key, row, out);
            if let Some(l) = &self.resource_attrs {
                l.find(row, key, out);
            }
        };
        match attr.scope {
            AttributeScope::Span => span(out),
            AttributeScope::Resource => resource(out),
            AttributeScope::None => {
                span(out);
                resource(out);
            }
            AttributeScope::Instrumentation => {
                if let Some(l) = &self.scope_attrs {
                    l.find(row, key, out);
                }
            }
            AttributeScope::Event => {
                if let Some((list, _, _, attrs)) = &self.events {
                    for j in list_range(list, row, attrs.list.len()) {
                        attrs.find(j, key, out);
                    }
                }
            }
            AttributeScope::Link => {
                if let Some((list, _, _, attrs)) = &self.links {
                    for j in list_range(list, row, attrs.list.len()) {
                        attrs.find(j, key, out);
                    }
                }
            }
        }
    }
}

/// Compiled regexes of a query, by pattern.
pub(crate) type Regexes = HashMap<String, Regex>;

/// Compiles `pattern` fully anchored, as TraceQL's `=~` means, by the validator's own rule (so
/// `a)|(b` is refused here as it is there).
pub(crate) fn compile_regex(pattern: &str) -> Result<Regex, regex::Error> {
    strata_traceql::compile_regex(pattern)
}

/// Evaluates field expressions on rows of one batch.
pub(crate) struct Evaluator<'v, 'a> {
    pub(crate) view: &'v BatchView<'a>,
    pub(crate) regexes: &'v Regexes,
    /// Buffers for candidate values, reused from row to row so evaluation does not allocate.
    pool: RefCell<Vec<Vec<Value<'a>>>>,
}

impl<'v, 'a> Evaluator<'v, 'a> {
    pub(crate) fn new(view: &'v BatchView<'a>, regexes: &'v Regexes) -> Self {
        Self {
            view,
            regexes,
            pool: RefCell::new(Vec::new()),
        }
    }

    fn buffer(&self) -> Vec<Value<'a>> {
        self.pool.borrow_mut().pop().unwrap_or_default()
    }

    fn give_back(&self, mut buffer: Vec<Value<'a>>) {
        buffer.clear();
        self.pool.borrow_mut().push(buffer);
    }

    /// Every candidate value of `expr` at `row`.
    pub(crate) fn values(&self, row: usize, expr: &'a FieldExpr, out: &mut Vec<Value<'a>>) {
        match expr {
            FieldExpr::Attribute(attr, _) => self.view.attribute(row, attr, out),
            FieldExpr::Intrinsic(i, _) => self.view.intrinsic(row, i.intrinsic, out),
            other => {
                let v = self.value(row, other);
                if v != Value::Nil {
                    out.push(v);
                }
            }
        }
    }

    /// The value of `expr` at `row` (the first candidate of a many-valued attribute).
    pub(crate) fn value(&self, row: usize, expr: &'a FieldExpr) -> Value<'a> {
        match expr {
            FieldExpr::Static(s, _) => static_value(s),
            FieldExpr::Attribute(..) | FieldExpr::Intrinsic(..) => {
                let mut out = self.buffer();
                self.values(row, expr, &mut out);
                let first = if out.is_empty() {
                    Value::Nil
                } else {
                    out.swap_remove(0)
                };
                self.give_back(out);
                first
            }
            FieldExpr::Unary { op, expr, .. } => match (op, self.value(row, expr)) {
                (UnaryOp::Not, Value::Bool(b)) => Value::Bool(!b),
                (UnaryOp::Not, Value::Nil) => Value::Bool(true),
                (UnaryOp::Neg, Value::Int(i)) => Value::Int(i.wrapping_neg()),
                (UnaryOp::Neg, Value::Float(f)) => Value::Float(-f),
                (UnaryOp::Neg, Value::Duration(d)) => Value::Duration(d.wrapping_neg()),
                _ => Value::Nil,
            },
            FieldExpr::Binary { op, lhs, rhs, .. } => match op {
                BinaryOp::And => Value::Bool(self.truth(row, lhs) && self.truth(row, rhs)),
                BinaryOp::Or => Value::Bool(self.truth(row, lhs) || self.truth(row, rhs)),
                BinaryOp::Add
                | BinaryOp::Sub
                | BinaryOp::Mul
                | BinaryOp::Div
                | BinaryOp::Mod
                | BinaryOp::Pow => arith(*op, &self.value(row, lhs), &self.value(row, rhs)),
                _ => Value::Bool(self.compare(row, *op, lhs, rhs)),
            },
        }
    }

    /// Whether `expr` is true at `row`. A bare attribute is true when it is the boolean `true`.
    pub(crate) fn truth(&self, row: usize, expr: &'a FieldExpr) -> bool {
        match expr {
            FieldExpr::Attribute(..) => {
                let mut out = self.buffer();
                self.values(row, expr, &mut out);
                let truth = out.contains(&Value::Bool(true));
                self.give_back(out);
                truth
            }
            other => self.value(row, other) == Value::Bool(true),
        }
    }

    fn compare(&self, row: usize, op: BinaryOp, lhs: &'a FieldExpr, rhs: &'a FieldExpr) -> bool {
        let is_nil = |e: &FieldExpr| matches!(e, FieldExpr::Static(Static::Nil, _));
        if is_nil(rhs) || is_nil(lhs) {
            let other = if is_nil(rhs) { lhs } else { rhs };
            if is_nil(other) {
                return false;
            }
            let mut values = self.buffer();
            self.values(row, other, &mut values);
            let exists = !values.is_empty();
            self.give_back(values);
            return match op {
                BinaryOp::Eq => !exists,
                BinaryOp::Neq => exists,
                _ => false,
            };
        }
        let (mut left, mut right) = (self.buffer(), self.buffer());
        self.values(row, lhs, &mut left);
        if !left.is_empty() {
            self.values(row, rhs, &mut right);
        }
        let holds = left
            .iter()
            .any(|l| right.iter().any(|r| compare(op, l, r, self.regexes)));
        self.give_back(left);
        self.give_back(right);
        holds
    }
}

fn arith<'a>(op: BinaryOp, l: &Value<'a>, r: &Value<'a>) -> Value<'a> {
    let duration = matches!(l, Value::Duration(_)) || matches!(r, Value::Duration(_));
    let float = matches!(l, Value::Float(_)) || matches!(r, Value::Float(_));
    if let (Value::Int(a) | Value::Duration(a), Value::Int(b) | Value::Duration(b)) = (l, r) {
        let v = match op {
            BinaryOp::Add => a.checked_add(*b),
            BinaryOp::Sub => a.checked_sub(*b),
            BinaryOp::Mul => a.checked_mul(*b),
            BinaryOp::Div => a.checked_div(*b),
            BinaryOp::Mod => a.checked_rem(*b),
            BinaryOp::Pow => u32::try_from(*b).ok().and_then(|b| a.checked_pow(b)),
            _ => None,
        };
        return match v {
            Some(v) if duration => Value::Duration(v),
            Some(v) => Value::Int(v),
            None => Value::Nil,
        };
    }
    let (Some(a), Some(b)) = (l.number(), r.number()) else {
        return Value::Nil;
    };
    let v = match op {
        BinaryOp::Add => a + b,
        BinaryOp::Sub => a - b,
        BinaryOp::Mul => a * b,
        BinaryOp::Div => a / b,
        BinaryOp::Mod => a % b,
        BinaryOp::Pow => a.powf(b),
        _ => return Value::Nil,
    };
    if duration && !float {
        Value::Duration(v as i64)
    } else {
        Value::Float(v)
    }
}

/// `l OP r` for comparison and regex operators. Values of incompatible types never compare.
pub(crate) fn compare(op: BinaryOp, l: &Value<'_>, r: &Value<'_>, regexes: &Regexes) -> bool {
    use std::cmp::Ordering;
    let ordering: Option<Ordering> = match (l, r) {
        (Value::Str(a), Value::Str(b)) => {
            if matches!(op, BinaryOp::Regex | BinaryOp::NotRegex) {
                let matched = regexes.get(b.as_ref()).map(|re| re.is_match(a));
                return match (op, matched) {
                    (BinaryOp::Regex, Some(m)) => m,
                    (BinaryOp::NotRegex, Some(m)) => !m,
                    _ => false,
                };
            }
            Some(a.as_ref().cmp(b.as_ref()))
        }
        (Value::Int(a) | Value::Duration(a), Value::Int(b) | Value::Duration(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Status(a), Value::Status(b)) => Some(if a == b {
            Ordering::Equal
        } else {
            Ordering::Less
        })
        .filter(|_| matches!(op, BinaryOp::Eq | BinaryOp::Neq)),
        (Value::Kind(a), Value::Kind(b)) => Some(if a == b {
            Ordering::Equal
        } else {
            Ordering::Less
        })
        .filter(|_| matches!(op, BinaryOp::Eq | BinaryOp::Neq)),
        _ => match (l.number(), r.number()) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
    };
    ordering.is_some_and(|o| ordering_holds(op, o))
}

/// Whether `a OP b` holds for a comparison operator, given how `a` orders against `b`.
pub(crate) fn ordering_holds(op: BinaryOp, ordering: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering;
    match op {
        BinaryOp::Eq => ordering == Ordering::Equal,
        BinaryOp::Neq => ordering != Ordering::Equal,
        BinaryOp::Lt => ordering == Ordering::Less,
        BinaryOp::Lte => ordering != Ordering::Greater,
        BinaryOp::Gt => ordering == Ordering::Greater,
        BinaryOp::Gte => ordering != Ordering::Less,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Review E9: list offsets were cast `as usize` and used as indexes unchecked.
    #[test]
    fn list_ranges_never_index_past_the_list_or_its_children() {
        use arrow::array::Int32Array;
        use arrow::buffer::OffsetBuffer;
        use arrow::datatypes::{DataType, Field};
        let values = Arc::new(Int32Array::from(vec![1, 2, 3, 4, 5]));
        let field = Arc::new(Field::new("item", DataType::Int32, false));
        let list = ListArray::new(field, OffsetBuffer::new(vec![0, 2, 5].into()), values, None);
        assert_eq!(list_range(&list, 0, 5), 0..2);
        assert_eq!(list_range(&list, 1, 5), 2..5);
        // Rows the list does not have, children shorter than the offsets say.
        assert_eq!(list_range(&list, 2, 5), 0..0);
        assert_eq!(list_range(&list, usize::MAX, 5), 0..0);
        assert_eq!(list_range(&list, 1, 3), 2..3);
        assert_eq!(list_range(&list, 1, 1), 1..1);
    }

    /// Review E6: the search compiled `a)|(b` wrapped, where it means something else; the
    /// validator refuses it.
    #[test]
    fn regexes_compile_by_the_validators_rule() {
        assert!(compile_regex("a)|(b").is_err());
        assert!(compile_regex("a|b").unwrap().is_match("b"));
    }

    /// Review E2: ID columns of the wrong width made `copy_from_slice` panic.
    #[test]
    fn id_columns_of_the_wrong_width_are_refused() {
        use arrow::array::FixedSizeBinaryBuilder;
        let ids = |width: i32| {
            let mut b = FixedSizeBinaryBuilder::new(width);
            b.append_value(vec![7u8; usize::try_from(width).unwrap()])
                .unwrap();
            Arc::new(b.finish()) as arrow::array::ArrayRef
        };
        let batch = |trace: i32, span: i32| {
            RecordBatch::try_from_iter([(col::TRACE_ID, ids(trace)), (col::SPAN_ID, ids(span))])
                .unwrap()
        };
        assert!(BatchView::new(&batch(16, 8)).is_ok());
        let err = BatchView::new(&batch(4, 8)).err().unwrap();
        assert!(err.contains("trace_id"), "{err}");
        let err = BatchView::new(&batch(16, 3)).err().unwrap();
        assert!(err.contains("span_id"), "{err}");
    }

    #[test]
    fn comparisons_follow_types() {
        let re = Regexes::new();
        let s = |x: &'static str| Value::Str(Cow::Borrowed(x));
        assert!(compare(
            BinaryOp::Eq,
            &Value::Int(2),
            &Value::Float(2.0),
            &re
        ));
        assert!(compare(
            BinaryOp::Gt,
            &Value::Duration(2_000),
            &Value::Int(1_000),
            &re
        ));
        assert!(!compare(BinaryOp::Eq, &s("2"), &Value::Int(2), &re));
        assert!(!compare(BinaryOp::Neq, &s("2"), &Value::Int(2), &re));
        assert!(compare(BinaryOp::Lt, &s("a"), &s("b"), &re));
        assert!(!compare(
            BinaryOp::Lt,
            &Value::Status(Status::Ok),
            &Value::Status(Status::Error),
            &re
        ));
        assert!(compare(
            BinaryOp::Neq,
            &Value::Status(Status::Ok),
            &Value::Status(Status::Error),
            &re
        ));
    }

    #[test]
    fn regexes_are_anchored() {
        let mut re = Regexes::new();
        re.insert("fo+".into(), compile_regex("fo+").unwrap());
        let s = |x: &'static str| Value::Str(Cow::Borrowed(x));
        assert!(compare(BinaryOp::Regex, &s("foo"), &s("fo+"), &re));
        assert!(!compare(BinaryOp::Regex, &s("xfoo"), &s("fo+"), &re));
        assert!(compare(BinaryOp::NotRegex, &s("xfoo"), &s("fo+"), &re));
    }

    #[test]
    fn arithmetic_keeps_durations() {
        assert_eq!(
            arith(BinaryOp::Mul, &Value::Duration(2), &Value::Int(3)),
            Value::Duration(6)
        );
        assert_eq!(
            arith(BinaryOp::Div, &Value::Int(1), &Value::Int(0)),
            Value::Nil
        );
        assert_eq!(
            arith(BinaryOp::Add, &Value::Int(1), &Value::Float(0.5)),
            Value::Float(1.5)
        );
    }
}
