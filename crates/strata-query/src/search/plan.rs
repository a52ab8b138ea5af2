//! From a validated TraceQL query to what a block scan needs: which constructs run at all (the
//! rest is refused with its position, never answered wrongly), which columns to read, which rows
//! statistics may rule out, and the regexes compiled once.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use strata_block::schema::{AttrScope, DedicatedType, col, dedicated_column};
use strata_block::{Prune, PruneOp, PruneValue};
use strata_traceql::{
    Attribute, AttributeScope, BinaryOp, FieldExpr, Intrinsic, Pipeline, Pos, Query, RootExpr,
    ScalarExpr, SpansetExpr, SpansetFilter, SpansetOp, Stage, Static, Status,
};

use super::row::{Regexes, compile_regex};
use crate::error::{Error, Result};

/// At most this many `{ }` filters in one query (each is one bit of a per-row mask).
pub(crate) const MAX_FILTERS: usize = 64;

/// Columns every search reads for every row it examines: the trace's identity, and what orders
/// and bounds traces (start, duration).
const MATCH_COLUMNS: &[&str] = &[col::TRACE_ID, col::TRACE_START, col::TRACE_DURATION];

/// Nested-set numbers, read when the query relates spans structurally.
const STRUCTURE_COLUMNS: &[&str] = &[col::NS_LEFT, col::NS_RIGHT, col::NS_PARENT];

/// Columns read for the spans returned: what a returned trace and span show.
const OUTPUT_COLUMNS: &[&str] = &[
    col::TRACE_ID,
    col::TRACE_START,
    col::TRACE_DURATION,
    col::TRACE_ROOT_SERVICE,
    col::TRACE_ROOT_NAME,
    col::SPAN_ID,
    col::NAME,
    col::START,
    col::DURATION,
];

/// What the engine needs to run a query.
pub(crate) struct Plan {
    pub(crate) query: Arc<Query>,
    /// Each `{ }` filter's bit, by the filter's address inside `query`.
    pub(crate) filter_bits: HashMap<usize, u32>,
    pub(crate) filters: Vec<usize>,
    /// Columns read for every row examined (phase one).
    pub(crate) columns: Vec<&'static str>,
    /// Columns read for the spans returned (phase two).
    pub(crate) output_columns: Vec<&'static str>,
    pub(crate) prune: Prune,
    pub(crate) regexes: Regexes,
    /// Attributes returned with each span: display key and expression.
    pub(crate) outputs: Vec<(String, usize)>,
}

impl Plan {
    /// The query's pipeline (the plan refuses anything else).
    pub(crate) fn pipeline(&self) -> &Pipeline {
        match &self.query.expr {
            RootExpr::Spans(p) => p,
            // `plan` only accepts `RootExpr::Spans`.
            _ => &EMPTY_PIPELINE,
        }
    }

    /// Every `{ }` filter, in bit order.
    pub(crate) fn filter_exprs(&self) -> Vec<&SpansetFilter> {
        let mut all = Vec::new();
        collect_filters_pipeline(self.pipeline(), &mut all);
        let mut by_bit: Vec<Option<&SpansetFilter>> = vec![None; self.filters.len()];
        for f in all {
            if let Some(&bit) = self.filter_bits.get(&addr(f)) {
                by_bit[bit as usize] = Some(f);
            }
        }
        by_bit.into_iter().flatten().collect()
    }

    /// The output expressions, resolved against the query.
    pub(crate) fn output_exprs(&self) -> Vec<(&str, &FieldExpr)> {
        let mut exprs = HashMap::new();
        collect_field_exprs(self.pipeline(), &mut |e, _| {
            exprs.insert(addr(e), e);
        });
        self.outputs
            .iter()
            .filter_map(|(key, a)| exprs.get(a).map(|e| (key.as_str(), *e)))
            .collect()
    }
}

static EMPTY_PIPELINE: Pipeline = Pipeline {
    stages: Vec::new(),
    pos: Pos {
        line: 0,
        column: 0,
        offset: 0,
    },
};

fn addr<T>(t: &T) -> usize {
    t as *const T as usize
}

fn unsupported(what: &str, pos: Pos) -> Error {
    Error::BadRequest(format!(
        "unsupported at {pos}: {what} is not supported in search yet"
    ))
}

/// Plans `query` (already parsed and validated).
pub(crate) fn plan(query: Arc<Query>) -> Result<Plan> {
    let pipeline = match &query.expr {
        RootExpr::Spans(p) => p,
        RootExpr::Metrics(m) => {
            return Err(Error::BadRequest(format!(
                "invalid query at {}: a metrics query cannot be a search; use /api/metrics/query_range",
                m.function.pos
            )));
        }
        RootExpr::MetricsMath { pos, .. }
        | RootExpr::Number(_, pos)
        | RootExpr::SecondStages { pos, .. } => {
            return Err(Error::BadRequest(format!(
                "invalid query at {pos}: metrics arithmetic cannot be a search"
            )));
        }
    };
    for hint in &query.hints {
        match (hint.name.as_str(), &hint.value) {
            // Results are always newest first, deterministic; the hint changes nothing.
            ("most_recent", Static::Bool(_)) => {}
            _ => {
                return Err(unsupported(
                    &format!("the hint `{}` with this value", hint.name),
                    hint.pos,
                ));
            }
        }
    }
    check_pipeline(pipeline)?;
    let mut filters = Vec::new();
    collect_filters_pipeline(pipeline, &mut filters);
    if filters.len() > MAX_FILTERS {
        return Err(Error::BadRequest(format!(
            "invalid query: at most {MAX_FILTERS} spanset filters are allowed, this one has {}",
            filters.len()
        )));
    }
    let filter_bits: HashMap<usize, u32> = filters
        .iter()
        .enumerate()
        .map(|(i, f)| (addr(*f), i as u32))
        .collect();
    let mut columns: BTreeSet<&'static str> = MATCH_COLUMNS.iter().copied().collect();
    if has_structure(pipeline) {
        columns.extend(STRUCTURE_COLUMNS);
    }
    let mut output_columns: BTreeSet<&'static str> = OUTPUT_COLUMNS.iter().copied().collect();
    let typed = string_compared_dedicated(pipeline);
    let mut regexes = Regexes::new();
    let mut error = None;
    let mut outputs: Vec<(String, usize)> = Vec::new();
    let mut output_keys = BTreeSet::new();
    collect_field_exprs(pipeline, &mut |e, selected| {
        if !selected {
            needed_columns(e, &mut columns, &typed);
        }
        if let FieldExpr::Binary {
            op: BinaryOp::Regex | BinaryOp::NotRegex,
            rhs,
            pos,
            ..
        } = e
            && let FieldExpr::Static(Static::String(pattern), _) = rhs.as_ref()
            && !regexes.contains_key(pattern)
        {
            match compile_regex(pattern) {
                Ok(re) => {
                    regexes.insert(pattern.clone(), re);
                }
                Err(err) => {
                    error.get_or_insert(Error::BadRequest(format!(
                        "invalid query at {pos}: invalid regular expression: {err}"
                    )));
                }
            }
        }
        if let Some(key) = output_key(e)
            && output_keys.insert(key.clone())
        {
            needed_columns(e, &mut output_columns, &typed);
            outputs.push((key, addr(e)));
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    let prune = match pipeline.stages.first() {
        Some(Stage::Spanset(s)) => spanset_prune(s),
        _ => Prune::Any,
    };
    Ok(Plan {
        filters: (0..filters.len()).collect(),
        filter_bits,
        columns: columns.into_iter().collect(),
        output_columns: output_columns.into_iter().collect(),
        prune,
        regexes,
        outputs,
        query,
    })
}

/// The key an expression is returned under with each span, if it is returned.
fn output_key(e: &FieldExpr) -> Option<String> {
    match e {
        FieldExpr::Attribute(a, _) => Some(a.name.clone()),
        FieldExpr::Intrinsic(i, _) => match i.intrinsic {
            Intrinsic::Status => Some("status".into()),
            Intrinsic::Kind => Some("kind".into()),
            Intrinsic::StatusMessage => Some("statusMessage".into()),
            _ => None,
        },
        _ => None,
    }
}

fn check_pipeline(p: &Pipeline) -> Result<()> {
    for stage in &p.stages {
        match stage {
            Stage::Spanset(s) => check_spanset(s)?,
            Stage::ScalarFilter(f) => {
                for side in [&f.lhs, &f.rhs] {
                    match side {
                        ScalarExpr::Aggregate { arg, .. } => {
                            if let Some(a) = arg {
                                check_field(a)?;
                            }
                        }
                        ScalarExpr::Static(..) => {}
                        ScalarExpr::Binary { pos, .. } => {
                            return Err(unsupported("arithmetic in a scalar filter", *pos));
                        }
                        ScalarExpr::Pipeline(_, pos) => {
                            return Err(unsupported("a pipeline inside a scalar filter", *pos));
                        }
                    }
                }
            }
            Stage::GroupBy(e, _) => check_field(e)?,
            Stage::Coalesce(_) => {}
            Stage::Aggregate { pos, .. } => {
                return Err(unsupported("a pipeline ending in an aggregate", *pos));
            }
            Stage::Select(exprs, _) => {
                for e in exprs {
                    check_field(e)?;
                }
            }
        }
    }
    Ok(())
}

fn check_spanset(s: &SpansetExpr) -> Result<()> {
    match s {
        SpansetExpr::Filter(f) => check_field(&f.expr),
        SpansetExpr::Op { lhs, rhs, .. } => {
            check_spanset(lhs)?;
            check_spanset(rhs)
        }
        SpansetExpr::Pipeline(p, _) => check_pipeline(p),
    }
}

fn check_field(e: &FieldExpr) -> Result<()> {
    match e {
        FieldExpr::Static(..) => Ok(()),
        FieldExpr::Attribute(a, pos) => {
            if a.parent {
                Err(unsupported("the parent scope", *pos))
            } else {
                Ok(())
            }
        }
        FieldExpr::Intrinsic(i, pos) => match i.intrinsic {
            Intrinsic::ChildCount => Err(unsupported("span:childCount", *pos)),
            Intrinsic::Parent => Err(unsupported("the parent intrinsic", *pos)),
            _ => Ok(()),
        },
        FieldExpr::Binary { lhs, rhs, .. } => {
            check_field(lhs)?;
            check_field(rhs)
        }
        FieldExpr::Unary { expr, .. } => check_field(expr),
    }
}

pub(crate) fn collect_filters_pipeline<'q>(p: &'q Pipeline, out: &mut Vec<&'q SpansetFilter>) {
    for stage in &p.stages {
        if let Stage::Spanset(s) = stage {
            collect_filters(s, out);
        }
    }
}

fn collect_filters<'q>(s: &'q SpansetExpr, out: &mut Vec<&'q SpansetFilter>) {
    match s {
        SpansetExpr::Filter(f) => out.push(f),
        SpansetExpr::Op { lhs, rhs, .. } => {
            collect_filters(lhs, out);
            collect_filters(rhs, out);
        }
        SpansetExpr::Pipeline(p, _) => collect_filters_pipeline(p, out),
    }
}

/// Attributes with a dedicated string column that the query only ever compares with strings:
/// their values are read from the dedicated column alone, not the generic attribute list.
fn string_compared_dedicated(p: &Pipeline) -> HashSet<Attribute> {
    let mut safe: HashMap<Attribute, bool> = HashMap::new();
    let mut mark = |a: &Attribute, ok: bool| {
        let entry = safe.entry(a.clone()).or_insert(true);
        *entry &= ok;
    };
    collect_field_exprs(p, &mut |e, _| match e {
        FieldExpr::Binary { op, lhs, rhs, .. }
            if op.is_boolean() && !matches!(op, BinaryOp::And | BinaryOp::Or) =>
        {
            for (side, other) in [(lhs, rhs), (rhs, lhs)] {
                if let FieldExpr::Attribute(a, _) = side.as_ref() {
                    let string = matches!(other.as_ref(), FieldExpr::Static(Static::String(_), _));
                    let scope = match a.scope {
                        AttributeScope::Span => Some(AttrScope::Span),
                        AttributeScope::Resource => Some(AttrScope::Resource),
                        _ => None,
                    };
                    let column = scope.and_then(|s| dedicated_column(s, &a.name));
                    let ok = string
                        && !a.parent
                        && column.is_some_and(|(_, c)| c.ty == DedicatedType::Str);
                    mark(a, ok);
                }
            }
        }
        FieldExpr::Binary { lhs, rhs, .. } => {
            for side in [lhs, rhs] {
                if let FieldExpr::Attribute(a, _) = side.as_ref() {
                    mark(a, false);
                }
            }
        }
        FieldExpr::Unary { expr, .. } => {
            if let FieldExpr::Attribute(a, _) = expr.as_ref() {
                mark(a, false);
            }
        }
        _ => {}
    });
    // Attributes used bare (in `by()`, `select()`, aggregates, or as a whole filter) need every
    // value.
    collect_roots(p, &mut |e, _| {
        if let FieldExpr::Attribute(a, _) = e {
            mark(a, false);
        }
    });
    safe.into_iter()
        .filter(|(_, ok)| *ok)
        .map(|(a, _)| a)
        .collect()
}

/// Calls `f` on the top-level expressions of the pipeline — filters' conditions, `by()`,
/// aggregate arguments, and `select()` expressions — with whether it is in a `select()`.
fn collect_roots<'q>(p: &'q Pipeline, f: &mut dyn FnMut(&'q FieldExpr, bool)) {
    fn spanset<'q>(s: &'q SpansetExpr, f: &mut dyn FnMut(&'q FieldExpr, bool)) {
        match s {
            SpansetExpr::Filter(filter) => f(&filter.expr, false),
            SpansetExpr::Op { lhs, rhs, .. } => {
                spanset(lhs, f);
                spanset(rhs, f);
            }
            SpansetExpr::Pipeline(p, _) => collect_roots(p, f),
        }
    }
    for stage in &p.stages {
        match stage {
            Stage::Spanset(s) => spanset(s, f),
            Stage::ScalarFilter(sf) => {
                for side in [&sf.lhs, &sf.rhs] {
                    if let ScalarExpr::Aggregate { arg: Some(a), .. } = side {
                        f(a, false);
                    }
                }
            }
            Stage::GroupBy(e, _) => f(e, false),
            Stage::Select(exprs, _) => {
                for e in exprs {
                    f(e, true);
                }
            }
            Stage::Coalesce(_) | Stage::Aggregate { .. } => {}
        }
    }
}

/// Whether the pipeline relates spans structurally (needs nested-set numbers).
fn has_structure(p: &Pipeline) -> bool {
    fn spanset(s: &SpansetExpr) -> bool {
        match s {
            SpansetExpr::Filter(_) => false,
            SpansetExpr::Op { op, lhs, rhs, .. } => {
                !matches!(op, SpansetOp::And | SpansetOp::Or) || spanset(lhs) || spanset(rhs)
            }
            SpansetExpr::Pipeline(p, _) => has_structure(p),
        }
    }
    p.stages.iter().any(|stage| match stage {
        Stage::Spanset(s) => spanset(s),
        _ => false,
    })
}

/// Calls `f` on every field expression (and sub-expression) of the pipeline, with whether it is
/// in a `select()`.
fn collect_field_exprs<'q>(p: &'q Pipeline, f: &mut dyn FnMut(&'q FieldExpr, bool)) {
    fn walk<'q>(e: &'q FieldExpr, selected: bool, f: &mut dyn FnMut(&'q FieldExpr, bool)) {
        f(e, selected);
        match e {
            FieldExpr::Binary { lhs, rhs, .. } => {
                walk(lhs, selected, f);
                walk(rhs, selected, f);
            }
            FieldExpr::Unary { expr, .. } => walk(expr, selected, f),
            _ => {}
        }
    }
    collect_roots(p, &mut |root, selected| walk(root, selected, f));
}

fn needed_columns(e: &FieldExpr, columns: &mut BTreeSet<&'static str>, typed: &HashSet<Attribute>) {
    match e {
        FieldExpr::Intrinsic(i, _) => {
            let c: &[&'static str] = match i.intrinsic {
                Intrinsic::Status => &[col::STATUS_CODE],
                Intrinsic::StatusMessage => &[col::STATUS_MESSAGE],
                Intrinsic::Kind => &[col::KIND],
                Intrinsic::ParentId => &[col::PARENT_SPAN_ID],
                Intrinsic::InstrumentationName => &[col::SCOPE_NAME],
                Intrinsic::InstrumentationVersion => &[col::SCOPE_VERSION],
                Intrinsic::EventName | Intrinsic::EventTimeSinceStart => &[col::EVENTS],
                Intrinsic::LinkTraceId | Intrinsic::LinkSpanId => &[col::LINKS],
                Intrinsic::Name => &[col::NAME],
                Intrinsic::Duration => &[col::DURATION],
                Intrinsic::TraceDuration => &[col::TRACE_DURATION],
                Intrinsic::RootName => &[col::TRACE_ROOT_NAME],
                Intrinsic::RootServiceName => &[col::TRACE_ROOT_SERVICE],
                Intrinsic::TraceId => &[col::TRACE_ID],
                Intrinsic::SpanId => &[col::SPAN_ID],
                Intrinsic::NestedSetLeft
                | Intrinsic::NestedSetRight
                | Intrinsic::NestedSetParent => STRUCTURE_COLUMNS,
                Intrinsic::ChildCount | Intrinsic::Parent => &[],
            };
            columns.extend(c);
        }
        FieldExpr::Attribute(a, _) => {
            // Compared only with strings and held in a string column: a string value is never in
            // the generic list, and a value of another type could not equal a string.
            let dedicated_only = typed.contains(a);
            let span = |columns: &mut BTreeSet<&'static str>| {
                if let Some((_, c)) = dedicated_column(AttrScope::Span, &a.name) {
                    columns.insert(c.column);
                }
                if !dedicated_only {
                    columns.insert(col::SPAN_ATTRS);
                }
            };
            let resource = |columns: &mut BTreeSet<&'static str>| {
                if let Some((_, c)) = dedicated_column(AttrScope::Resource, &a.name) {
                    columns.insert(c.column);
                }
                if !dedicated_only {
                    columns.insert(col::RESOURCE_ATTRS);
                }
            };
            match a.scope {
                AttributeScope::Span => span(columns),
                AttributeScope::Resource => resource(columns),
                AttributeScope::None => {
                    span(columns);
                    resource(columns);
                }
                AttributeScope::Event => {
                    columns.insert(col::EVENTS);
                }
                AttributeScope::Link => {
                    columns.insert(col::LINKS);
                }
                AttributeScope::Instrumentation => {
                    columns.insert(col::SCOPE_ATTRS);
                }
            }
        }
        _ => {}
    }
}

/// Rows a spanset expression needs: those matching any of its filters.
fn spanset_prune(s: &SpansetExpr) -> Prune {
    match s {
        SpansetExpr::Filter(f) => field_prune(&f.expr),
        SpansetExpr::Op { lhs, rhs, .. } => or(spanset_prune(lhs), spanset_prune(rhs)),
        SpansetExpr::Pipeline(p, _) => match p.stages.first() {
            Some(Stage::Spanset(s)) => spanset_prune(s),
            _ => Prune::Any,
        },
    }
}

fn or(a: Prune, b: Prune) -> Prune {
    match (a, b) {
        (Prune::Any, _) | (_, Prune::Any) => Prune::Any,
        (Prune::Nothing, x) | (x, Prune::Nothing) => x,
        (a, b) => Prune::Or(vec![a, b]),
    }
}

/// A predicate on columns implied by `e` being true: rows where it is false are not needed.
fn field_prune(e: &FieldExpr) -> Prune {
    match e {
        FieldExpr::Binary {
            op: BinaryOp::And,
            lhs,
            rhs,
            ..
        } => match (field_prune(lhs), field_prune(rhs)) {
            (Prune::Any, x) | (x, Prune::Any) => x,
            (a, b) => Prune::And(vec![a, b]),
        },
        FieldExpr::Binary {
            op: BinaryOp::Or,
            lhs,
            rhs,
            ..
        } => or(field_prune(lhs), field_prune(rhs)),
        FieldExpr::Static(Static::Bool(false), _) => Prune::Nothing,
        FieldExpr::Binary { op, lhs, rhs, .. } => {
            let (op, field, value) = match (lhs.as_ref(), rhs.as_ref()) {
                (f, FieldExpr::Static(v, _)) => (*op, f, v),
                (FieldExpr::Static(v, _), f) => (flip(*op), f, v),
                _ => return Prune::Any,
            };
            comparison_prune(op, field, value)
        }
        _ => Prune::Any,
    }
}

fn flip(op: BinaryOp) -> BinaryOp {
    match op {
        BinaryOp::Lt => BinaryOp::Gt,
        BinaryOp::Lte => BinaryOp::Gte,
        BinaryOp::Gt => BinaryOp::Lt,
        BinaryOp::Gte => BinaryOp::Lte,
        other => other,
    }
}

fn comparison_prune(op: BinaryOp, field: &FieldExpr, value: &Static) -> Prune {
    let op = match op {
        BinaryOp::Eq => PruneOp::Eq,
        BinaryOp::Lt => PruneOp::Lt,
        BinaryOp::Lte => PruneOp::Lte,
        BinaryOp::Gt => PruneOp::Gt,
        BinaryOp::Gte => PruneOp::Gte,
        _ => return Prune::Any,
    };
    let leaf = |column: &str, value: PruneValue| Prune::Column {
        column: column.to_owned(),
        op,
        value,
    };
    let int = |v: &Static| match v {
        Static::Int(i) | Static::Duration(i) => Some(*i),
        _ => None,
    };
    match field {
        FieldExpr::Intrinsic(i, _) => match (i.intrinsic, value) {
            (Intrinsic::Name, Static::String(s)) => leaf(col::NAME, PruneValue::Str(s.clone())),
            (Intrinsic::RootName, Static::String(s)) => {
                leaf(col::TRACE_ROOT_NAME, PruneValue::Str(s.clone()))
            }
            (Intrinsic::RootServiceName, Static::String(s)) => {
                leaf(col::TRACE_ROOT_SERVICE, PruneValue::Str(s.clone()))
            }
            (Intrinsic::Status, Static::Status(s)) if op == PruneOp::Eq => {
                let code = match s {
                    Status::Unset => 0,
                    Status::Ok => 1,
                    Status::Error => 2,
                };
                leaf(col::STATUS_CODE, PruneValue::Int(code))
            }
            (Intrinsic::Duration, v) => match int(v) {
                Some(n) => leaf(col::DURATION, PruneValue::Int(n)),
                None => Prune::Any,
            },
            (Intrinsic::TraceDuration, v) => match int(v) {
                Some(n) if n >= 0 => leaf(col::TRACE_DURATION, PruneValue::Int(n)),
                _ => Prune::Any,
            },
            _ => Prune::Any,
        },
        // Values of a dedicated column's type are always stored in that column.
        FieldExpr::Attribute(a, _) => {
            let scope = match a.scope {
                AttributeScope::Span => AttrScope::Span,
                AttributeScope::Resource => AttrScope::Resource,
                _ => return Prune::Any,
            };
            let Some((_, c)) = dedicated_column(scope, &a.name) else {
                return Prune::Any;
            };
            match (c.ty, value) {
                (DedicatedType::Str, Static::String(s)) => {
                    leaf(c.column, PruneValue::Str(s.clone()))
                }
                (DedicatedType::Int, Static::Int(i)) => leaf(c.column, PruneValue::Int(*i)),
                _ => Prune::Any,
            }
        }
        _ => Prune::Any,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(q: &str) -> Result<Plan> {
        let query = strata_traceql::parse(q).map_err(|e| Error::BadRequest(e.to_string()))?;
        plan(Arc::new(query))
    }

    #[test]
    fn prunes_on_indexed_columns_and_reads_only_needed_ones() -> Result<()> {
        let p = planned(r#"{ duration > 1s && resource.service.name = "cart" }"#)?;
        assert_eq!(
            p.prune,
            Prune::And(vec![
                Prune::Column {
                    column: col::DURATION.into(),
                    op: PruneOp::Gt,
                    value: PruneValue::Int(1_000_000_000)
                },
                Prune::Column {
                    column: "resource_service_name".into(),
                    op: PruneOp::Eq,
                    value: PruneValue::Str("cart".into())
                },
            ])
        );
        assert!(p.columns.contains(&"resource_service_name"));
        assert!(!p.columns.contains(&col::SPAN_ATTRS));
        assert!(!p.columns.contains(&col::EVENTS));
        // What is returned is read for returned spans only; structure only when related.
        assert!(!p.columns.contains(&col::NAME) && !p.columns.contains(&col::SPAN_ID));
        assert!(!p.columns.contains(&col::NS_LEFT));
        assert!(p.output_columns.contains(&col::SPAN_ID));
        assert!(p.output_columns.contains(&"resource_service_name"));
        assert!(
            !p.columns.contains(&col::RESOURCE_ATTRS),
            "strings live in the string column"
        );
        let p = planned(r#"{ resource.service.name = "a" } | by(resource.service.name)"#)?;
        assert!(
            p.columns.contains(&col::RESOURCE_ATTRS),
            "by() needs every value"
        );
        let p = planned(r#"{ .a = 1 } >> { name = "x" } | select(span.b)"#)?;
        assert!(p.columns.contains(&col::NS_LEFT) && p.columns.contains(&col::NAME));
        assert!(p.output_columns.contains(&col::SPAN_ATTRS));
        let p = planned(r#"{ name = "a" } || { .x != nil }"#)?;
        assert_eq!(p.prune, Prune::Any);
        assert!(p.columns.contains(&col::SPAN_ATTRS));
        assert!(p.columns.contains(&col::RESOURCE_ATTRS));
        Ok(())
    }

    #[test]
    fn refuses_what_does_not_run_with_a_position() {
        let err = planned("{ } | rate()").err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("metrics")));
        let err = planned("{ span:childCount > 2 }")
            .err()
            .map(|e| e.to_string());
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("childCount") && e.contains("column 3")),
            "{err:?}"
        );
    }

    #[test]
    fn dedicated_int_prunes_only_with_int() -> Result<()> {
        let p = planned("{ span.http.status_code = 500 }")?;
        assert!(
            matches!(p.prune, Prune::Column { ref column, .. } if column == "span_http_status_code")
        );
        let p = planned(r#"{ span.http.status_code = "500" }"#)?;
        assert_eq!(p.prune, Prune::Any);
        Ok(())
    }
}
