//! Type checking and support checks (`Query::validate`), following Tempo's rules.

use crate::ValidateError;
use crate::ast::*;

/// The type an expression is known to have before looking at any data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StaticType {
    /// `nil`.
    Nil,
    /// `true`, `false`, comparisons, `&&`, ...
    Bool,
    /// Integers.
    Int,
    /// Floats.
    Float,
    /// Strings.
    String,
    /// Durations.
    Duration,
    /// Span status.
    Status,
    /// Span kind.
    Kind,
}

impl StaticType {
    /// Int, float and duration: they can be mixed freely.
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            StaticType::Int | StaticType::Float | StaticType::Duration
        )
    }

    fn name(self) -> &'static str {
        match self {
            StaticType::Nil => "nil",
            StaticType::Bool => "a boolean",
            StaticType::Int => "an integer",
            StaticType::Float => "a float",
            StaticType::String => "a string",
            StaticType::Duration => "a duration",
            StaticType::Status => "a status",
            StaticType::Kind => "a kind",
        }
    }
}

impl std::fmt::Display for StaticType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Static {
    /// The literal's type.
    pub fn static_type(&self) -> StaticType {
        match self {
            Static::Nil => StaticType::Nil,
            Static::Bool(_) => StaticType::Bool,
            Static::Int(_) => StaticType::Int,
            Static::Float(_) => StaticType::Float,
            Static::String(_) => StaticType::String,
            Static::Duration(_) => StaticType::Duration,
            Static::Status(_) => StaticType::Status,
            Static::Kind(_) => StaticType::Kind,
        }
    }
}

impl Intrinsic {
    /// The intrinsic's type (`parent` is typed nil, as in Tempo).
    pub fn static_type(self) -> StaticType {
        match self {
            Intrinsic::Duration | Intrinsic::TraceDuration | Intrinsic::EventTimeSinceStart => {
                StaticType::Duration
            }
            Intrinsic::ChildCount
            | Intrinsic::NestedSetLeft
            | Intrinsic::NestedSetRight
            | Intrinsic::NestedSetParent => StaticType::Int,
            Intrinsic::Status => StaticType::Status,
            Intrinsic::Kind => StaticType::Kind,
            Intrinsic::Parent => StaticType::Nil,
            Intrinsic::Name
            | Intrinsic::StatusMessage
            | Intrinsic::RootName
            | Intrinsic::RootServiceName
            | Intrinsic::TraceId
            | Intrinsic::SpanId
            | Intrinsic::ParentId
            | Intrinsic::EventName
            | Intrinsic::LinkTraceId
            | Intrinsic::LinkSpanId
            | Intrinsic::InstrumentationName
            | Intrinsic::InstrumentationVersion => StaticType::String,
        }
    }
}

impl BinaryOp {
    /// Whether the operator yields a boolean (logical and comparison operators).
    pub fn is_boolean(self) -> bool {
        !matches!(
            self,
            BinaryOp::Add
                | BinaryOp::Sub
                | BinaryOp::Mul
                | BinaryOp::Div
                | BinaryOp::Mod
                | BinaryOp::Pow
        )
    }

    /// Whether an operand of type `t` may be used with this operator.
    pub fn accepts(self, t: StaticType) -> bool {
        use BinaryOp::*;
        match t {
            StaticType::Bool => matches!(self, And | Or | Eq | Neq),
            StaticType::Int | StaticType::Float | StaticType::Duration => matches!(
                self,
                Add | Sub | Mul | Div | Mod | Pow | Eq | Neq | Gt | Gte | Lt | Lte
            ),
            StaticType::String => {
                matches!(self, Eq | Neq | Regex | NotRegex | Gt | Gte | Lt | Lte)
            }
            StaticType::Nil | StaticType::Status | StaticType::Kind => matches!(self, Eq | Neq),
        }
    }
}

impl From<ArithOp> for BinaryOp {
    fn from(op: ArithOp) -> Self {
        match op {
            ArithOp::Add => BinaryOp::Add,
            ArithOp::Sub => BinaryOp::Sub,
            ArithOp::Mul => BinaryOp::Mul,
            ArithOp::Div => BinaryOp::Div,
            ArithOp::Mod => BinaryOp::Mod,
            ArithOp::Pow => BinaryOp::Pow,
        }
    }
}

/// Whether two operand types can meet in one binary operation (`None` is "unknown until the
/// data is read", as for attributes, and matches anything).
pub fn types_compatible(a: Option<StaticType>, b: Option<StaticType>) -> bool {
    match (a, b) {
        (None, _) | (_, None) => true,
        (Some(a), Some(b)) => {
            a == b
                || (a.is_numeric() && b.is_numeric())
                || a == StaticType::Nil
                || b == StaticType::Nil
        }
    }
}

impl FieldExpr {
    /// The expression's type when it can be known without data; `None` for attributes (and
    /// arithmetic over attributes only), whose type depends on the stored value.
    pub fn static_type(&self) -> Option<StaticType> {
        match self {
            FieldExpr::Static(s, _) => Some(s.static_type()),
            FieldExpr::Attribute(..) => None,
            FieldExpr::Intrinsic(i, _) => Some(i.intrinsic.static_type()),
            FieldExpr::Binary { op, lhs, rhs, .. } => {
                if op.is_boolean() {
                    Some(StaticType::Bool)
                } else {
                    lhs.static_type().or_else(|| rhs.static_type())
                }
            }
            FieldExpr::Unary { expr, .. } => expr.static_type(),
        }
    }

    /// Whether the expression reads the span (contains an attribute or intrinsic).
    pub fn references_span(&self) -> bool {
        match self {
            FieldExpr::Static(..) => false,
            FieldExpr::Attribute(..) | FieldExpr::Intrinsic(..) => true,
            FieldExpr::Binary { lhs, rhs, .. } => lhs.references_span() || rhs.references_span(),
            FieldExpr::Unary { expr, .. } => expr.references_span(),
        }
    }
}

impl ScalarExpr {
    /// The scalar's type when known (`count()` is an integer; other aggregates take their
    /// argument's type).
    pub fn static_type(&self) -> Option<StaticType> {
        match self {
            ScalarExpr::Aggregate { func, arg, .. } => aggregate_type(*func, arg.as_ref()),
            ScalarExpr::Static(s, _) => Some(s.static_type()),
            ScalarExpr::Binary { lhs, rhs, .. } => lhs.static_type().or_else(|| rhs.static_type()),
            ScalarExpr::Pipeline(p, _) => match p.stages.last() {
                Some(Stage::Aggregate { func, arg, .. }) => aggregate_type(*func, arg.as_ref()),
                _ => None,
            },
        }
    }
}

fn aggregate_type(func: AggregateFn, arg: Option<&FieldExpr>) -> Option<StaticType> {
    match (func, arg) {
        (AggregateFn::Count, _) | (_, None) => Some(StaticType::Int),
        (_, Some(a)) => a.static_type(),
    }
}

fn invalid(pos: Pos, message: impl Into<String>) -> ValidateError {
    ValidateError {
        pos,
        message: message.into(),
        unsupported: false,
    }
}

fn unsupported(pos: Pos, message: impl Into<String>) -> ValidateError {
    ValidateError {
        pos,
        message: message.into(),
        unsupported: true,
    }
}

type VResult = Result<(), ValidateError>;

/// Tempo's limit on `by` labels of a metrics function.
const MAX_GROUP_BYS: usize = 5;
/// The largest topN of `compare()`.
const MAX_COMPARE_TOP_N: i64 = 1000;

impl Query {
    /// Checks types and support: `Err` with `unsupported: false` when the query is wrong,
    /// `unsupported: true` when it is well-formed but uses something not implemented (the
    /// `parent` scope, complex scalar filters, arithmetic between pipelines).
    pub fn validate(&self) -> Result<(), ValidateError> {
        validate_root(&self.expr, false)
    }
}

fn validate_root(e: &RootExpr, in_math: bool) -> VResult {
    match e {
        RootExpr::Spans(p) => validate_pipeline(p),
        RootExpr::Metrics(m) => {
            validate_pipeline(&m.spans)?;
            validate_metrics_function(&m.function)?;
            validate_second_stages(&m.second_stages)?;
            if m.function.kind == MetricsFunctionKind::Compare
                && (in_math || !m.second_stages.is_empty())
            {
                return Err(invalid(
                    m.function.pos,
                    "`compare()` cannot be combined with second stages or arithmetic",
                ));
            }
            Ok(())
        }
        RootExpr::MetricsMath { op, lhs, rhs, pos } => {
            if matches!(op, ArithOp::Mod | ArithOp::Pow) {
                return Err(invalid(
                    *pos,
                    format!("`{op}` is not allowed between metrics; only `+ - * /` are"),
                ));
            }
            validate_root(lhs, true)?;
            validate_root(rhs, true)
        }
        RootExpr::Number(s, pos) => match s {
            Static::Int(_) | Static::Float(_) => Ok(()),
            other => Err(invalid(
                *pos,
                format!(
                    "metrics arithmetic needs a number, found {}",
                    other.static_type()
                ),
            )),
        },
        RootExpr::SecondStages { expr, stages, .. } => {
            validate_root(expr, true)?;
            validate_second_stages(stages)
        }
    }
}

fn validate_second_stages(stages: &[SecondStage]) -> VResult {
    for s in stages {
        match s {
            SecondStage::TopK(n, pos) | SecondStage::BottomK(n, pos) => {
                if *n <= 0 {
                    return Err(invalid(
                        *pos,
                        format!(
                            "the limit of `topk()` / `bottomk()` must be greater than 0, found {n}"
                        ),
                    ));
                }
            }
            SecondStage::Filter { op, value, pos } => {
                if !matches!(
                    op,
                    BinaryOp::Eq
                        | BinaryOp::Neq
                        | BinaryOp::Lt
                        | BinaryOp::Lte
                        | BinaryOp::Gt
                        | BinaryOp::Gte
                ) {
                    return Err(invalid(
                        *pos,
                        format!("`{op}` cannot filter metrics; use `= != < <= > >=`"),
                    ));
                }
                if !value.static_type().is_numeric() {
                    return Err(invalid(
                        *pos,
                        format!(
                            "metrics are compared with numbers, found {}",
                            value.static_type()
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_metrics_function(f: &MetricsFunction) -> VResult {
    if let Some(arg) = &f.arg {
        validate_field(arg)?;
    }
    for b in &f.by {
        validate_field(b)?;
    }
    let needs_arg = !matches!(
        f.kind,
        MetricsFunctionKind::Rate
            | MetricsFunctionKind::CountOverTime
            | MetricsFunctionKind::Compare
    );
    if needs_arg && f.arg.is_none() {
        return Err(invalid(f.pos, format!("`{}()` needs an attribute", f.kind)));
    }
    match f.kind {
        MetricsFunctionKind::QuantileOverTime | MetricsFunctionKind::HistogramOverTime => {
            // One label is reserved for the bucket.
            if f.by.len() >= MAX_GROUP_BYS {
                return Err(unsupported(
                    f.pos,
                    format!(
                        "`{}()` supports at most {} `by` labels",
                        f.kind,
                        MAX_GROUP_BYS - 1
                    ),
                ));
            }
        }
        _ => {
            if f.by.len() > MAX_GROUP_BYS {
                return Err(unsupported(
                    f.pos,
                    format!("metrics functions support at most {MAX_GROUP_BYS} `by` labels"),
                ));
            }
        }
    }
    match f.kind {
        MetricsFunctionKind::QuantileOverTime => {
            if f.params.is_empty() {
                return Err(invalid(
                    f.pos,
                    "`quantile_over_time()` needs at least one quantile",
                ));
            }
            for q in &f.params {
                let v = match q {
                    #[allow(clippy::cast_precision_loss)]
                    Static::Int(i) => *i as f64,
                    Static::Float(x) => *x,
                    other => {
                        return Err(invalid(
                            f.pos,
                            format!("quantiles are numbers, found `{other}`"),
                        ));
                    }
                };
                if !(0.0..=1.0).contains(&v) {
                    return Err(invalid(
                        f.pos,
                        format!("a quantile must be between 0 and 1, found `{q}`"),
                    ));
                }
            }
        }
        MetricsFunctionKind::Compare => {
            let Some(filter) = &f.compare_filter else {
                return Err(invalid(f.pos, "`compare()` needs a spanset filter"));
            };
            validate_filter(filter)?;
            let int = |i: usize| match f.params.get(i) {
                Some(Static::Int(v)) => Ok(Some(*v)),
                None => Ok(None),
                Some(other) => Err(invalid(
                    f.pos,
                    format!("`compare()` parameters are integers, found `{other}`"),
                )),
            };
            let top_n = int(0)?.unwrap_or(10);
            if !(1..=MAX_COMPARE_TOP_N).contains(&top_n) {
                return Err(invalid(
                    f.pos,
                    format!("the topN of `compare()` must be between 1 and {MAX_COMPARE_TOP_N}"),
                ));
            }
            let start = int(1)?.unwrap_or(0);
            let end = int(2)?.unwrap_or(0);
            if (start != 0 || end != 0) && (start <= 0 || end <= 0) {
                return Err(invalid(
                    f.pos,
                    "the timestamps of `compare()` must be positive unix nanoseconds",
                ));
            }
            if (start != 0 || end != 0) && end <= start {
                return Err(invalid(
                    f.pos,
                    "the end timestamp of `compare()` must be after the start",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

fn validate_pipeline(p: &Pipeline) -> VResult {
    for s in &p.stages {
        validate_stage(s)?;
    }
    Ok(())
}

fn validate_stage(s: &Stage) -> VResult {
    match s {
        Stage::Spanset(e) => validate_spanset(e),
        Stage::ScalarFilter(f) => validate_scalar_filter(f),
        Stage::GroupBy(e, pos) => {
            if !e.references_span() {
                return Err(invalid(
                    *pos,
                    format!("`by({e})` must refer to an attribute or intrinsic of the span"),
                ));
            }
            validate_field(e)
        }
        Stage::Coalesce(_) => Ok(()),
        Stage::Select(attrs, _) => {
            for a in attrs {
                validate_field(a)?;
            }
            Ok(())
        }
        Stage::Aggregate { func, arg, pos } => validate_aggregate(*func, arg.as_ref(), *pos),
    }
}

fn validate_spanset(e: &SpansetExpr) -> VResult {
    match e {
        SpansetExpr::Filter(f) => validate_filter(f),
        SpansetExpr::Op { lhs, rhs, .. } => {
            validate_spanset(lhs)?;
            validate_spanset(rhs)
        }
        SpansetExpr::Pipeline(p, _) => validate_pipeline(p),
    }
}

fn validate_filter(f: &SpansetFilter) -> VResult {
    validate_field(&f.expr)?;
    match f.expr.static_type() {
        None | Some(StaticType::Bool) => Ok(()),
        Some(t) => Err(invalid(
            f.expr.pos(),
            format!(
                "a spanset filter must be a boolean expression, found {t}: `{}`",
                f.expr
            ),
        )),
    }
}

fn validate_aggregate(func: AggregateFn, arg: Option<&FieldExpr>, pos: Pos) -> VResult {
    let Some(arg) = arg else {
        if func == AggregateFn::Count {
            return Ok(());
        }
        return Err(invalid(pos, format!("`{func}()` needs an argument")));
    };
    validate_field(arg)?;
    if let Some(t) = arg.static_type()
        && !t.is_numeric()
    {
        return Err(invalid(
            arg.pos(),
            format!("the argument of `{func}()` must be a number, found {t}"),
        ));
    }
    if !arg.references_span() {
        return Err(invalid(
            arg.pos(),
            format!(
                "the argument of `{func}()` must refer to an attribute or intrinsic of the span"
            ),
        ));
    }
    Ok(())
}

fn validate_scalar(e: &ScalarExpr) -> VResult {
    match e {
        ScalarExpr::Aggregate { func, arg, pos } => validate_aggregate(*func, arg.as_ref(), *pos),
        ScalarExpr::Static(s, pos) => {
            if s.static_type().is_numeric() {
                Ok(())
            } else {
                Err(invalid(*pos, format!("expected a number, found `{s}`")))
            }
        }
        ScalarExpr::Binary { op, lhs, rhs, pos } => {
            validate_scalar(lhs)?;
            validate_scalar(rhs)?;
            check_operands((*op).into(), lhs.static_type(), rhs.static_type(), *pos)
        }
        ScalarExpr::Pipeline(p, pos) => {
            if !matches!(p.stages.last(), Some(Stage::Aggregate { .. })) {
                return Err(invalid(
                    *pos,
                    "a pipeline used as a number must end in an aggregate",
                ));
            }
            validate_pipeline(p)
        }
    }
}

fn validate_scalar_filter(f: &ScalarFilter) -> VResult {
    validate_scalar(&f.lhs)?;
    validate_scalar(&f.rhs)?;
    check_operands(f.op, f.lhs.static_type(), f.rhs.static_type(), f.pos)?;
    if !matches!(f.lhs, ScalarExpr::Aggregate { .. }) {
        return Err(unsupported(
            f.pos,
            "scalar filters other than `aggregate OP number` (arithmetic, pipelines) are not supported yet",
        ));
    }
    if !matches!(f.rhs, ScalarExpr::Static(..)) {
        return Err(unsupported(
            f.pos,
            "scalar filters comparing with something other than a number are not supported yet",
        ));
    }
    Ok(())
}

fn check_operands(op: BinaryOp, l: Option<StaticType>, r: Option<StaticType>, pos: Pos) -> VResult {
    if !types_compatible(l, r) {
        return Err(invalid(
            pos,
            format!(
                "`{op}` cannot combine {} with {}",
                l.map_or("an attribute", StaticType::name),
                r.map_or("an attribute", StaticType::name)
            ),
        ));
    }
    for t in [l, r].into_iter().flatten() {
        if !op.accepts(t) {
            return Err(invalid(pos, format!("`{op}` cannot be applied to {t}")));
        }
    }
    Ok(())
}

fn validate_field(e: &FieldExpr) -> VResult {
    match e {
        FieldExpr::Static(..) => Ok(()),
        FieldExpr::Attribute(a, pos) => {
            if a.parent {
                Err(unsupported(
                    *pos,
                    "the `parent.` scope is not supported yet",
                ))
            } else {
                Ok(())
            }
        }
        FieldExpr::Intrinsic(i, pos) => {
            if i.intrinsic == Intrinsic::Parent {
                Err(unsupported(
                    *pos,
                    "the `parent` intrinsic is not supported yet",
                ))
            } else {
                Ok(())
            }
        }
        FieldExpr::Unary { op, expr, pos } => {
            validate_field(expr)?;
            let Some(t) = expr.static_type() else {
                return Ok(());
            };
            let ok = match op {
                UnaryOp::Neg => t.is_numeric(),
                UnaryOp::Not => t == StaticType::Bool,
            };
            if ok {
                Ok(())
            } else {
                Err(invalid(*pos, format!("`{op}` cannot be applied to {t}")))
            }
        }
        FieldExpr::Binary { op, lhs, rhs, pos } => {
            validate_field(lhs)?;
            validate_field(rhs)?;
            let lnil = matches!(**lhs, FieldExpr::Static(Static::Nil, _));
            let rnil = matches!(**rhs, FieldExpr::Static(Static::Nil, _));
            if lnil || rnil {
                return validate_nil_comparison(*op, lhs, rhs, lnil, *pos);
            }
            check_operands(*op, lhs.static_type(), rhs.static_type(), *pos)?;
            if matches!(op, BinaryOp::Regex | BinaryOp::NotRegex) {
                let FieldExpr::Static(Static::String(pattern), rpos) = &**rhs else {
                    return Err(invalid(
                        rhs.pos(),
                        format!("the right side of `{op}` must be a string literal"),
                    ));
                };
                if let Err(e) = compile_regex(pattern) {
                    return Err(invalid(*rpos, format!("invalid regular expression: {e}")));
                }
            }
            Ok(())
        }
    }
}

/// `x = nil` (x does not exist) and `x != nil` (x exists).
fn validate_nil_comparison(
    op: BinaryOp,
    lhs: &FieldExpr,
    rhs: &FieldExpr,
    lnil: bool,
    pos: Pos,
) -> VResult {
    if !matches!(op, BinaryOp::Eq | BinaryOp::Neq) {
        return Err(invalid(pos, format!("`nil` cannot be used with `{op}`")));
    }
    if op == BinaryOp::Eq {
        let other = if lnil { rhs } else { lhs };
        match other {
            FieldExpr::Intrinsic(i, _) => {
                return Err(invalid(
                    pos,
                    format!("`{i} = nil` is never true: intrinsics always exist"),
                ));
            }
            FieldExpr::Attribute(a, _)
                if a.scope == AttributeScope::Resource && !a.parent && a.name == "service.name" =>
            {
                return Err(invalid(
                    pos,
                    "`resource.service.name = nil` is never true: every span has a service name",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Compiles a TraceQL regex: RE2 syntax, fully anchored.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    // Check the pattern on its own first, so that e.g. `a)|(b` is not accepted once wrapped.
    regex::Regex::new(pattern)?;
    regex::Regex::new(&format!("^(?:{pattern})$"))
}
