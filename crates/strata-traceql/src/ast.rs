//! The TraceQL syntax tree.
//!
//! Every node that a user could be told about carries a [`Pos`] (where it starts in the query
//! text), so the parser, the validator and the engine can all say *where* a construct is.
//! Positions do not take part in equality: two trees are equal when they mean the same query,
//! wherever their parts were written — which is what a print → reparse round trip checks.

/// Where a construct starts in the query text: 1-based line and column (in characters), and the
/// 0-based byte offset.
#[derive(Debug, Clone, Copy, Default, Eq)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
    /// Byte offset, from 0.
    pub offset: u32,
}

impl PartialEq for Pos {
    /// Always true: positions are not part of a tree's meaning.
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl std::hash::Hash for Pos {
    fn hash<H: std::hash::Hasher>(&self, _state: &mut H) {}
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A whole query: an expression and the `with(...)` hints after it.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// What the query computes.
    pub expr: RootExpr,
    /// `with(name=value, ...)`, in the order written.
    pub hints: Vec<Hint>,
}

/// One `with(...)` hint.
#[derive(Debug, Clone, PartialEq)]
pub struct Hint {
    /// The hint's name, e.g. `most_recent`.
    pub name: String,
    /// Its value.
    pub value: Static,
    /// Where the name starts.
    pub pos: Pos,
}

/// The top of a query: a spanset pipeline (a search), or a metrics query.
#[derive(Debug, Clone, PartialEq)]
pub enum RootExpr {
    /// A search: `{ ... } | ...`.
    Spans(Pipeline),
    /// A metrics query: `{ ... } | rate() by (...) | topk(5)`.
    Metrics(Box<MetricsPipeline>),
    /// Arithmetic between metrics queries or with a number: `({} | rate()) * 100`.
    MetricsMath {
        /// The operator (`+ - * /`).
        op: ArithOp,
        /// Left side.
        lhs: Box<RootExpr>,
        /// Right side.
        rhs: Box<RootExpr>,
        /// Where the operator is.
        pos: Pos,
    },
    /// A number on one side of [`RootExpr::MetricsMath`].
    Number(Static, Pos),
    /// Second stages applied to the result of metrics math:
    /// `({} | rate()) + ({} | rate()) | topk(5) > 10`, `({} | rate()) * 100 > 5`.
    /// (Second stages written after a single metrics pipeline, even a parenthesised one, go into
    /// [`MetricsPipeline::second_stages`] instead.)
    SecondStages {
        /// The metrics expression (a [`RootExpr::MetricsMath`] when produced by the parser).
        expr: Box<RootExpr>,
        /// The stages, in order.
        stages: Vec<SecondStage>,
        /// Where the first stage is.
        pos: Pos,
    },
}

/// A spanset pipeline: stages separated by `|`, evaluated left to right, one trace at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The stages; never empty.
    pub stages: Vec<Stage>,
    /// Where the pipeline starts.
    pub pos: Pos,
}

/// One stage of a [`Pipeline`].
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// A spanset expression: filters, combined by spanset operators.
    Spanset(SpansetExpr),
    /// `count() > 3`, `avg(duration) < 1s`, `max(duration) > min(duration)`.
    ScalarFilter(ScalarFilter),
    /// `by(expr)`: split into groups by the expression's value.
    GroupBy(FieldExpr, Pos),
    /// `coalesce()`: merge the groups back.
    Coalesce(Pos),
    /// `select(attr, ...)`: return these with the spans.
    Select(Vec<FieldExpr>, Pos),
    /// The aggregate that ends a pipeline used as a scalar, as in `({ a } | count())`: only ever
    /// the last stage of the pipeline inside a [`ScalarExpr::Pipeline`].
    Aggregate {
        /// The function.
        func: AggregateFn,
        /// Its argument (none for `count()`).
        arg: Option<FieldExpr>,
        /// Where the function name is.
        pos: Pos,
    },
}

/// Spansets combined by spanset operators.
#[derive(Debug, Clone, PartialEq)]
pub enum SpansetExpr {
    /// `{ expr }`.
    Filter(SpansetFilter),
    /// `lhs OP rhs`, e.g. `{ a } >> { b }`.
    Op {
        /// The operator.
        op: SpansetOp,
        /// Left side.
        lhs: Box<SpansetExpr>,
        /// Right side.
        rhs: Box<SpansetExpr>,
        /// Where the operator is.
        pos: Pos,
    },
    /// A parenthesised pipeline used as a spanset: `({ a } | count() > 1) >> { b }`.
    Pipeline(Box<Pipeline>, Pos),
}

/// `{ expr }`: the spans of a trace for which `expr` is true.
#[derive(Debug, Clone, PartialEq)]
pub struct SpansetFilter {
    /// The condition (`{}` is `true`).
    pub expr: FieldExpr,
    /// Where `{` is.
    pub pos: Pos,
}

/// Operators between spansets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SpansetOp {
    /// `&&`: both have matches; the union.
    And,
    /// `||`: the union.
    Or,
    /// `>>`: right-hand spans that descend from a left-hand span.
    Descendant,
    /// `>`: right-hand spans that are children of a left-hand span.
    Child,
    /// `<<`: right-hand spans that are ancestors of a left-hand span.
    Ancestor,
    /// `<`: right-hand spans that are parents of a left-hand span.
    Parent,
    /// `~`: right-hand spans that are siblings of a left-hand span.
    Sibling,
    /// `!>>`.
    NotDescendant,
    /// `!>`.
    NotChild,
    /// `!<<`.
    NotAncestor,
    /// `!<`.
    NotParent,
    /// `!~`.
    NotSibling,
    /// `&>>`: both sides of the descendant relation.
    UnionDescendant,
    /// `&>`.
    UnionChild,
    /// `&<<`.
    UnionAncestor,
    /// `&<`.
    UnionParent,
    /// `&~`.
    UnionSibling,
}

/// `lhs OP rhs` over aggregates: `count() > 3`, `avg(duration) > 1s`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarFilter {
    /// The comparison (`= != < <= > >=`).
    pub op: BinaryOp,
    /// Left side.
    pub lhs: ScalarExpr,
    /// Right side.
    pub rhs: ScalarExpr,
    /// Where the filter starts.
    pub pos: Pos,
}

/// A side of a [`ScalarFilter`].
#[derive(Debug, Clone, PartialEq)]
pub enum ScalarExpr {
    /// `count()`, `avg(duration)`, ...
    Aggregate {
        /// The function.
        func: AggregateFn,
        /// Its argument (none for `count()`).
        arg: Option<FieldExpr>,
        /// Where the function name is.
        pos: Pos,
    },
    /// A number or duration.
    Static(Static, Pos),
    /// Arithmetic between scalars.
    Binary {
        /// The operator.
        op: ArithOp,
        /// Left side.
        lhs: Box<ScalarExpr>,
        /// Right side.
        rhs: Box<ScalarExpr>,
        /// Where the operator is.
        pos: Pos,
    },
    /// A parenthesised pipeline ending in an aggregate: `({ a } | count())`. Parses; arithmetic
    /// between pipelines is unsupported.
    Pipeline(Box<Pipeline>, Pos),
}

/// Aggregates over a spanset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateFn {
    /// `count()`.
    Count,
    /// `avg(x)`.
    Avg,
    /// `min(x)`.
    Min,
    /// `max(x)`.
    Max,
    /// `sum(x)`.
    Sum,
}

/// An expression over one span (inside `{}`, and in `by()`, `select()` and aggregates).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldExpr {
    /// A literal.
    Static(Static, Pos),
    /// An attribute: `.a`, `span.a`, `resource."a b"`, ...
    Attribute(Attribute, Pos),
    /// An intrinsic: `duration`, `span:name`, ...
    Intrinsic(IntrinsicRef, Pos),
    /// `lhs OP rhs`.
    Binary {
        /// The operator.
        op: BinaryOp,
        /// Left side.
        lhs: Box<FieldExpr>,
        /// Right side.
        rhs: Box<FieldExpr>,
        /// Where the operator is.
        pos: Pos,
    },
    /// `!x`, `-x`.
    Unary {
        /// The operator.
        op: UnaryOp,
        /// The operand.
        expr: Box<FieldExpr>,
        /// Where the operator is.
        pos: Pos,
    },
}

impl FieldExpr {
    /// Where the expression starts.
    pub fn pos(&self) -> Pos {
        match self {
            FieldExpr::Static(_, pos)
            | FieldExpr::Attribute(_, pos)
            | FieldExpr::Intrinsic(_, pos)
            | FieldExpr::Binary { pos, .. }
            | FieldExpr::Unary { pos, .. } => *pos,
        }
    }
}

/// Binary operators inside `{}` (and comparisons in scalar filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `&&`.
    And,
    /// `||`.
    Or,
    /// `=`.
    Eq,
    /// `!=`.
    Neq,
    /// `<`.
    Lt,
    /// `<=`.
    Lte,
    /// `>`.
    Gt,
    /// `>=`.
    Gte,
    /// `=~` (fully anchored RE2).
    Regex,
    /// `!~`.
    NotRegex,
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `^`.
    Pow,
}

/// Arithmetic operators between scalars or metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArithOp {
    /// `+`.
    Add,
    /// `-`.
    Sub,
    /// `*`.
    Mul,
    /// `/`.
    Div,
    /// `%`.
    Mod,
    /// `^`.
    Pow,
}

/// Unary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `!`.
    Not,
    /// `-`.
    Neg,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Static {
    /// `nil`.
    Nil,
    /// `true`, `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (escapes resolved).
    String(String),
    /// A duration, in nanoseconds.
    Duration(i64),
    /// `ok`, `error`, `unset`.
    Status(Status),
    /// `server`, `client`, ...
    Kind(Kind),
}

/// Span status keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// `unset` (OTLP code 0).
    Unset,
    /// `ok` (1).
    Ok,
    /// `error` (2).
    Error,
}

/// Span kind keywords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `unspecified` (OTLP 0).
    Unspecified,
    /// `internal` (1).
    Internal,
    /// `server` (2).
    Server,
    /// `client` (3).
    Client,
    /// `producer` (4).
    Producer,
    /// `consumer` (5).
    Consumer,
}

/// An attribute reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attribute {
    /// Where to look.
    pub scope: AttributeScope,
    /// `parent.` was written before the scope (parses; unsupported).
    pub parent: bool,
    /// The attribute's name (quotes and escapes resolved).
    pub name: String,
}

/// Where an attribute is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeScope {
    /// `.x`: span attribute, else resource attribute.
    None,
    /// `span.x`.
    Span,
    /// `resource.x`.
    Resource,
    /// `event.x`.
    Event,
    /// `link.x`.
    Link,
    /// `instrumentation.x`.
    Instrumentation,
}

/// An intrinsic, with how it was spelled (so printing gives back what was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntrinsicRef {
    /// Which intrinsic.
    pub intrinsic: Intrinsic,
    /// Written in the scoped style (`span:duration`) rather than the legacy one (`duration`).
    pub scoped: bool,
}

/// Intrinsic fields of spans and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Intrinsic {
    /// `name`, `span:name`.
    Name,
    /// `status`, `span:status`.
    Status,
    /// `statusMessage`, `span:statusMessage`.
    StatusMessage,
    /// `kind`, `span:kind`.
    Kind,
    /// `duration`, `span:duration`.
    Duration,
    /// `traceDuration`, `trace:duration`.
    TraceDuration,
    /// `rootName`, `trace:rootName`.
    RootName,
    /// `rootServiceName`, `trace:rootService`.
    RootServiceName,
    /// `trace:id`.
    TraceId,
    /// `span:id`.
    SpanId,
    /// `span:parentID`.
    ParentId,
    /// `span:childCount`.
    ChildCount,
    /// `event:name`.
    EventName,
    /// `event:timeSinceStart`.
    EventTimeSinceStart,
    /// `link:traceID`.
    LinkTraceId,
    /// `link:spanID`.
    LinkSpanId,
    /// `instrumentation:name`.
    InstrumentationName,
    /// `instrumentation:version`.
    InstrumentationVersion,
    /// `nestedSetLeft`.
    NestedSetLeft,
    /// `nestedSetRight`.
    NestedSetRight,
    /// `nestedSetParent`.
    NestedSetParent,
    /// `parent` (parses; unsupported).
    Parent,
}

/// A metrics query: a spanset pipeline, a metrics function, and optional second stages.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsPipeline {
    /// The spans measured.
    pub spans: Pipeline,
    /// The function.
    pub function: MetricsFunction,
    /// `| topk(n)`, `| bottomk(n)`, `> 10`, in order.
    pub second_stages: Vec<SecondStage>,
}

/// `rate()`, `quantile_over_time(duration, .9, .99) by (resource.service.name)`, ...
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsFunction {
    /// Which function.
    pub kind: MetricsFunctionKind,
    /// The measured field (`duration` in `avg_over_time(duration)`).
    pub arg: Option<FieldExpr>,
    /// Numeric parameters: quantiles (always [`Static::Float`]); for `compare`, topN, start, end
    /// as written (none, topN, or all three, as [`Static::Int`]; the defaults are 10, 0, 0).
    pub params: Vec<Static>,
    /// For `compare({filter}, ...)`: the selection compared against the rest.
    pub compare_filter: Option<SpansetFilter>,
    /// `by (a, b)`.
    pub by: Vec<FieldExpr>,
    /// Where the function name is.
    pub pos: Pos,
}

/// The metrics functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricsFunctionKind {
    /// `rate()`.
    Rate,
    /// `count_over_time()`.
    CountOverTime,
    /// `min_over_time(x)`.
    MinOverTime,
    /// `max_over_time(x)`.
    MaxOverTime,
    /// `avg_over_time(x)`.
    AvgOverTime,
    /// `sum_over_time(x)`.
    SumOverTime,
    /// `quantile_over_time(x, q...)`.
    QuantileOverTime,
    /// `histogram_over_time(x)`.
    HistogramOverTime,
    /// `compare({...}, ...)`.
    Compare,
}

/// A stage after a metrics function.
#[derive(Debug, Clone, PartialEq)]
pub enum SecondStage {
    /// `topk(n)`.
    TopK(i64, Pos),
    /// `bottomk(n)`.
    BottomK(i64, Pos),
    /// `> 10` on the series' values.
    Filter {
        /// The comparison.
        op: BinaryOp,
        /// The value compared with.
        value: Static,
        /// Where the operator is.
        pos: Pos,
    },
}
