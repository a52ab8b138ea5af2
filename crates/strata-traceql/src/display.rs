//! Printing: every tree prints as TraceQL that parses back to an equal tree.

use std::fmt::{self, Display, Formatter, Write};

use crate::ast::*;
use crate::lexer::is_attribute_rune;

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)?;
        if !self.hints.is_empty() {
            f.write_str(" with(")?;
            for (i, h) in self.hints.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{h}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

impl Display for Hint {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// Precedence of metrics math operators when printing.
fn arith_prec(op: ArithOp) -> u8 {
    match op {
        ArithOp::Add | ArithOp::Sub => 4,
        ArithOp::Mul | ArithOp::Div | ArithOp::Mod => 5,
        ArithOp::Pow => 6,
    }
}

fn arith_child_mins(op: ArithOp) -> (u8, u8) {
    let p = arith_prec(op);
    if op == ArithOp::Pow {
        (p + 1, p)
    } else {
        (p, p + 1)
    }
}

/// Writes a constant the way it is written outside `{ }` (numbers may be negative there).
fn write_number(f: &mut Formatter<'_>, s: &Static) -> fmt::Result {
    match s {
        Static::Int(i64::MIN) => f.write_str("(-9223372036854775807 - 1)"),
        other => write!(f, "{other}"),
    }
}

fn write_root_child(f: &mut Formatter<'_>, e: &RootExpr, min: u8) -> fmt::Result {
    match e {
        RootExpr::Number(s, _) => write_number(f, s),
        RootExpr::MetricsMath { op, .. } if arith_prec(*op) >= min => write!(f, "{e}"),
        RootExpr::Metrics(m) => write!(f, "({m})"),
        other => write!(f, "({other})"),
    }
}

impl Display for RootExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            RootExpr::Spans(p) => write!(f, "{p}"),
            RootExpr::Metrics(m) => write!(f, "{m}"),
            RootExpr::Number(s, _) => write_number(f, s),
            RootExpr::MetricsMath { op, lhs, rhs, .. } => {
                let (lmin, rmin) = arith_child_mins(*op);
                write_root_child(f, lhs, lmin)?;
                write!(f, " {op} ")?;
                write_root_child(f, rhs, rmin)
            }
            RootExpr::SecondStages { expr, stages, .. } => {
                write_root_child(f, expr, 4)?;
                for s in stages {
                    write!(f, "{s}")?;
                }
                Ok(())
            }
        }
    }
}

impl Display for MetricsPipeline {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} | {}", self.spans, self.function)?;
        for s in &self.second_stages {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl Display for MetricsFunctionKind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MetricsFunctionKind::Rate => "rate",
            MetricsFunctionKind::CountOverTime => "count_over_time",
            MetricsFunctionKind::MinOverTime => "min_over_time",
            MetricsFunctionKind::MaxOverTime => "max_over_time",
            MetricsFunctionKind::AvgOverTime => "avg_over_time",
            MetricsFunctionKind::SumOverTime => "sum_over_time",
            MetricsFunctionKind::QuantileOverTime => "quantile_over_time",
            MetricsFunctionKind::HistogramOverTime => "histogram_over_time",
            MetricsFunctionKind::Compare => "compare",
        })
    }
}

impl Display for MetricsFunction {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.kind)?;
        let mut first = true;
        let mut sep = |f: &mut Formatter<'_>| -> fmt::Result {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            Ok(())
        };
        if let Some(filter) = &self.compare_filter {
            sep(f)?;
            write!(f, "{filter}")?;
        }
        if let Some(arg) = &self.arg {
            sep(f)?;
            write!(f, "{arg}")?;
        }
        for p in &self.params {
            sep(f)?;
            write_number(f, p)?;
        }
        f.write_str(")")?;
        if !self.by.is_empty() {
            f.write_str(" by (")?;
            write_list(f, &self.by)?;
            f.write_str(")")?;
        }
        Ok(())
    }
}

fn write_list(f: &mut Formatter<'_>, items: &[FieldExpr]) -> fmt::Result {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

impl Display for SecondStage {
    /// Prints with its leading separator: ` | topk(5)` or ` > 10`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SecondStage::TopK(n, _) => write!(f, " | topk({n})"),
            SecondStage::BottomK(n, _) => write!(f, " | bottomk({n})"),
            SecondStage::Filter { op, value, .. } => {
                write!(f, " {op} ")?;
                write_number(f, value)
            }
        }
    }
}

impl Display for Pipeline {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        for (i, s) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::Spanset(e) => write!(f, "{e}"),
            Stage::ScalarFilter(s) => write!(f, "{s}"),
            Stage::GroupBy(e, _) => write!(f, "by({e})"),
            Stage::Coalesce(_) => f.write_str("coalesce()"),
            Stage::Select(attrs, _) => {
                f.write_str("select(")?;
                write_list(f, attrs)?;
                f.write_str(")")
            }
            Stage::Aggregate { func, arg, .. } => write_aggregate(f, *func, arg.as_ref()),
        }
    }
}

fn write_aggregate(
    f: &mut Formatter<'_>,
    func: AggregateFn,
    arg: Option<&FieldExpr>,
) -> fmt::Result {
    match arg {
        Some(a) => write!(f, "{func}({a})"),
        None => write!(f, "{func}()"),
    }
}

impl Display for AggregateFn {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AggregateFn::Count => "count",
            AggregateFn::Avg => "avg",
            AggregateFn::Min => "min",
            AggregateFn::Max => "max",
            AggregateFn::Sum => "sum",
        })
    }
}

fn spanset_prec(e: &SpansetExpr) -> u8 {
    match e {
        SpansetExpr::Op {
            op: SpansetOp::And | SpansetOp::Or,
            ..
        } => 1,
        SpansetExpr::Op { .. } => 2,
        _ => 10,
    }
}

fn write_spanset_child(f: &mut Formatter<'_>, e: &SpansetExpr, min: u8) -> fmt::Result {
    if spanset_prec(e) < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

impl Display for SpansetExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SpansetExpr::Filter(filter) => write!(f, "{filter}"),
            SpansetExpr::Op { op, lhs, rhs, .. } => {
                let p = spanset_prec(self);
                write_spanset_child(f, lhs, p)?;
                write!(f, " {op} ")?;
                write_spanset_child(f, rhs, p + 1)
            }
            SpansetExpr::Pipeline(p, _) => write!(f, "({p})"),
        }
    }
}

impl Display for SpansetFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{{ {} }}", self.expr)
    }
}

impl Display for SpansetOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SpansetOp::And => "&&",
            SpansetOp::Or => "||",
            SpansetOp::Descendant => ">>",
            SpansetOp::Child => ">",
            SpansetOp::Ancestor => "<<",
            SpansetOp::Parent => "<",
            SpansetOp::Sibling => "~",
            SpansetOp::NotDescendant => "!>>",
            SpansetOp::NotChild => "!>",
            SpansetOp::NotAncestor => "!<<",
            SpansetOp::NotParent => "!<",
            SpansetOp::NotSibling => "!~",
            SpansetOp::UnionDescendant => "&>>",
            SpansetOp::UnionChild => "&>",
            SpansetOp::UnionAncestor => "&<<",
            SpansetOp::UnionParent => "&<",
            SpansetOp::UnionSibling => "&~",
        })
    }
}

impl Display for ScalarFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write_scalar(f, &self.lhs, 4)?;
        write!(f, " {} ", self.op)?;
        write_scalar(f, &self.rhs, 4)
    }
}

fn write_scalar(f: &mut Formatter<'_>, e: &ScalarExpr, min: u8) -> fmt::Result {
    match e {
        ScalarExpr::Binary { op, .. } if arith_prec(*op) < min => write!(f, "({e})"),
        _ => write!(f, "{e}"),
    }
}

impl Display for ScalarExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            ScalarExpr::Aggregate { func, arg, .. } => write_aggregate(f, *func, arg.as_ref()),
            ScalarExpr::Static(s, _) => write_number(f, s),
            ScalarExpr::Binary { op, lhs, rhs, .. } => {
                let (lmin, rmin) = arith_child_mins(*op);
                write_scalar(f, lhs, lmin)?;
                write!(f, " {op} ")?;
                write_scalar(f, rhs, rmin)
            }
            ScalarExpr::Pipeline(p, _) => write!(f, "({p})"),
        }
    }
}

impl Display for ArithOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
            ArithOp::Pow => "^",
        })
    }
}

impl Display for BinaryOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BinaryOp::And => "&&",
            BinaryOp::Or => "||",
            BinaryOp::Eq => "=",
            BinaryOp::Neq => "!=",
            BinaryOp::Lt => "<",
            BinaryOp::Lte => "<=",
            BinaryOp::Gt => ">",
            BinaryOp::Gte => ">=",
            BinaryOp::Regex => "=~",
            BinaryOp::NotRegex => "!~",
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Mod => "%",
            BinaryOp::Pow => "^",
        })
    }
}

impl Display for UnaryOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnaryOp::Not => "!",
            UnaryOp::Neg => "-",
        })
    }
}

/// Binding strength of binary operators inside `{ }` (higher binds tighter).
pub(crate) fn binary_prec(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::And | BinaryOp::Or => 1,
        BinaryOp::Eq
        | BinaryOp::Neq
        | BinaryOp::Lt
        | BinaryOp::Lte
        | BinaryOp::Gt
        | BinaryOp::Gte
        | BinaryOp::Regex
        | BinaryOp::NotRegex => 2,
        BinaryOp::Add | BinaryOp::Sub => 3,
        BinaryOp::Mul | BinaryOp::Div | BinaryOp::Mod => 5,
        BinaryOp::Pow => 6,
    }
}

/// A prefix operator's operand extends over `* / % ^`; as an operand itself it sits between
/// `+ -` and `* /`.
const UNARY_PREC: u8 = 4;
const UNARY_OPERAND_MIN: u8 = 5;

fn field_prec(e: &FieldExpr) -> u8 {
    match e {
        FieldExpr::Binary { op, .. } => binary_prec(*op),
        FieldExpr::Unary { .. } => UNARY_PREC,
        _ => 10,
    }
}

fn write_field(f: &mut Formatter<'_>, e: &FieldExpr, min: u8) -> fmt::Result {
    if field_prec(e) < min {
        write!(f, "({e})")
    } else {
        write!(f, "{e}")
    }
}

impl Display for FieldExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            FieldExpr::Static(s, _) => write!(f, "{s}"),
            FieldExpr::Attribute(a, _) => write!(f, "{a}"),
            FieldExpr::Intrinsic(i, _) => write!(f, "{i}"),
            FieldExpr::Binary { op, lhs, rhs, .. } => {
                let p = binary_prec(*op);
                let (lmin, rmin) = if *op == BinaryOp::Pow {
                    (p + 1, p)
                } else {
                    (p, p + 1)
                };
                write_field(f, lhs, lmin)?;
                write!(f, " {op} ")?;
                write_field(f, rhs, rmin)
            }
            FieldExpr::Unary { op, expr, .. } => {
                write!(f, "{op}")?;
                write_field(f, expr, UNARY_OPERAND_MIN)
            }
        }
    }
}

/// Formats a duration so that it parses back to the same number of nanoseconds: the largest
/// unit that divides it exactly (`1h`, `90m`, `1500ms`, `7ns`).
pub fn format_duration(nanos: i64) -> String {
    const UNITS: [(u64, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    if nanos == 0 {
        return "0s".to_string();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    for (unit, name) in UNITS {
        if abs.is_multiple_of(unit) {
            return format!("{sign}{}{name}", abs / unit);
        }
    }
    format!("{sign}{abs}ns")
}

/// Writes `s` as a double-quoted TraceQL string literal.
pub fn quote_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Display for Static {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Static::Nil => f.write_str("nil"),
            Static::Bool(b) => write!(f, "{b}"),
            Static::Int(i64::MIN) => f.write_str("minInt"),
            Static::Int(i) => write!(f, "{i}"),
            Static::Float(x) => write!(f, "{x:?}"),
            Static::String(s) => f.write_str(&quote_string(s)),
            Static::Duration(d) => f.write_str(&format_duration(*d)),
            Static::Status(s) => write!(f, "{s}"),
            Static::Kind(k) => write!(f, "{k}"),
        }
    }
}

impl Display for Status {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Unset => "unset",
            Status::Ok => "ok",
            Status::Error => "error",
        })
    }
}

impl Display for Kind {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Unspecified => "unspecified",
            Kind::Internal => "internal",
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Producer => "producer",
            Kind::Consumer => "consumer",
        })
    }
}

impl Attribute {
    /// Whether the name has to be written quoted (`."foo bar"`) to parse back unchanged.
    pub fn needs_quotes(&self) -> bool {
        let name = &self.name;
        name.is_empty()
            || name.chars().any(|c| c == '"' || !is_attribute_rune(c))
            || (self.scope == AttributeScope::None
                && !self.parent
                && name.starts_with(|c: char| c.is_ascii_digit()))
            || (self.scope == AttributeScope::None
                && self.parent
                && (name.starts_with("span.") || name.starts_with("resource.")))
    }
}

impl Display for AttributeScope {
    /// The scope prefix including its dot (`span.`; `.` for unscoped).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AttributeScope::None => ".",
            AttributeScope::Span => "span.",
            AttributeScope::Resource => "resource.",
            AttributeScope::Event => "event.",
            AttributeScope::Link => "link.",
            AttributeScope::Instrumentation => "instrumentation.",
        })
    }
}

impl Display for Attribute {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.parent {
            f.write_str("parent.")?;
            if self.scope != AttributeScope::None {
                write!(f, "{}", self.scope)?;
            }
        } else {
            write!(f, "{}", self.scope)?;
        }
        if self.needs_quotes() {
            f.write_char('"')?;
            for c in self.name.chars() {
                if c == '"' || c == '\\' {
                    f.write_char('\\')?;
                }
                f.write_char(c)?;
            }
            f.write_char('"')
        } else {
            f.write_str(&self.name)
        }
    }
}

impl Intrinsic {
    /// The scoped spelling (`span:duration`), if the intrinsic has one.
    pub fn scoped_name(self) -> Option<&'static str> {
        Some(match self {
            Intrinsic::Name => "span:name",
            Intrinsic::Status => "span:status",
            Intrinsic::StatusMessage => "span:statusMessage",
            Intrinsic::Kind => "span:kind",
            Intrinsic::Duration => "span:duration",
            Intrinsic::TraceDuration => "trace:duration",
            Intrinsic::RootName => "trace:rootName",
            Intrinsic::RootServiceName => "trace:rootService",
            Intrinsic::TraceId => "trace:id",
            Intrinsic::SpanId => "span:id",
            Intrinsic::ParentId => "span:parentID",
            Intrinsic::ChildCount => "span:childCount",
            Intrinsic::EventName => "event:name",
            Intrinsic::EventTimeSinceStart => "event:timeSinceStart",
            Intrinsic::LinkTraceId => "link:traceID",
            Intrinsic::LinkSpanId => "link:spanID",
            Intrinsic::InstrumentationName => "instrumentation:name",
            Intrinsic::InstrumentationVersion => "instrumentation:version",
            Intrinsic::NestedSetLeft
            | Intrinsic::NestedSetRight
            | Intrinsic::NestedSetParent
            | Intrinsic::Parent => return None,
        })
    }

    /// The legacy unscoped spelling (`duration`), if the intrinsic has one.
    pub fn legacy_name(self) -> Option<&'static str> {
        Some(match self {
            Intrinsic::Name => "name",
            Intrinsic::Status => "status",
            Intrinsic::StatusMessage => "statusMessage",
            Intrinsic::Kind => "kind",
            Intrinsic::Duration => "duration",
            Intrinsic::TraceDuration => "traceDuration",
            Intrinsic::RootName => "rootName",
            Intrinsic::RootServiceName => "rootServiceName",
            Intrinsic::NestedSetLeft => "nestedSetLeft",
            Intrinsic::NestedSetRight => "nestedSetRight",
            Intrinsic::NestedSetParent => "nestedSetParent",
            Intrinsic::Parent => "parent",
            _ => return None,
        })
    }
}

impl Display for Intrinsic {
    /// The scoped spelling where there is one, else the legacy one.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.scoped_name().or(self.legacy_name()).unwrap_or("?"))
    }
}

impl Display for IntrinsicRef {
    /// As written: scoped or legacy (falling back to the spelling that exists).
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let i = self.intrinsic;
        let name = if self.scoped {
            i.scoped_name().or(i.legacy_name())
        } else {
            i.legacy_name().or(i.scoped_name())
        };
        f.write_str(name.unwrap_or("?"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_format_exactly() {
        assert_eq!(format_duration(3_600_000_000_000), "1h");
        assert_eq!(format_duration(5_400_000_000_000), "90m");
        assert_eq!(format_duration(1_500_000_000), "1500ms");
        assert_eq!(format_duration(7), "7ns");
        assert_eq!(format_duration(-2_000), "-2us");
        assert_eq!(format_duration(0), "0s");
    }
}
