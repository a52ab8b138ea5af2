//! Recursive-descent / precedence-climbing parser.
//!
//! The top level of TraceQL overloads `(`, comparisons and arithmetic between spansets,
//! aggregates, metrics queries and plain numbers, so the parser first builds a small untyped
//! tree ([`Node`]) with the right precedence, then [`Parser::convert`] turns it into the typed
//! AST, checking which combinations make sense. Field expressions (inside `{ }`, `by()`,
//! aggregates) are parsed straight into [`FieldExpr`].

use crate::ParseError;
use crate::ast::*;
use crate::lexer::{Op, TokKind, Token, lex};

/// How deeply brackets, unary operators and right-associative chains may nest.
pub(crate) const MAX_NESTING: u32 = 200;
/// How deep the resulting tree may be (long `&&` / `||` chains make deep trees).
pub(crate) const MAX_TREE_DEPTH: u32 = 1000;

type PResult<T> = Result<T, ParseError>;

/// How errors about the nesting / complexity limits start (lenient parsing gives up on them).
pub(crate) const LIMIT_MARK: &str = "query is";

/// The untyped top-level tree.
#[derive(Debug)]
enum Node {
    Filter(SpansetFilter),
    Agg {
        func: AggregateFn,
        arg: Option<FieldExpr>,
        pos: Pos,
    },
    By(FieldExpr, Pos),
    Coalesce(Pos),
    Select(Vec<FieldExpr>, Pos),
    Metrics(MetricsFunction),
    TopK(i64, Pos),
    BottomK(i64, Pos),
    Num(Static, Pos),
    Neg(Box<Node>, Pos),
    Paren(Box<Node>, Pos),
    Bin {
        op: Op,
        op_pos: Pos,
        start: Pos,
        lhs: Box<Node>,
        rhs: Box<Node>,
    },
}

impl Node {
    fn start(&self) -> Pos {
        match self {
            Node::Filter(f) => f.pos,
            Node::Metrics(m) => m.pos,
            Node::Agg { pos, .. }
            | Node::By(_, pos)
            | Node::Coalesce(pos)
            | Node::Select(_, pos)
            | Node::TopK(_, pos)
            | Node::BottomK(_, pos)
            | Node::Num(_, pos)
            | Node::Neg(_, pos)
            | Node::Paren(_, pos) => *pos,
            Node::Bin { start, .. } => *start,
        }
    }
}

/// A converted top-level piece, typed by what it can be used as.
enum Val {
    /// Filters combined by spanset operators.
    Spanset(SpansetExpr),
    /// A parenthesised spanset pipeline.
    SpansetPipe(Pipeline),
    /// `by()`, `coalesce()`, `select()` or a scalar filter.
    Stage(Stage),
    /// An expression over aggregates, not yet compared.
    Agg(ScalarExpr),
    /// An expression over parenthesised pipelines ending in aggregates.
    ScalarPipe(ScalarExpr),
    /// A constant (folded).
    Number(Static),
    /// A bare metrics function with the comparisons written right after it.
    MetricsFn(MetricsFunction, Vec<SecondStage>),
    /// `topk(n)` / `bottomk(n)` with comparisons after it.
    Second(Vec<SecondStage>),
    /// A complete metrics query (wrapped pipeline or metrics math).
    Metrics(RootExpr),
}

impl Val {
    fn describe(&self) -> &'static str {
        match self {
            Val::Spanset(_) => "a spanset",
            Val::SpansetPipe(_) => "a spanset pipeline",
            Val::Stage(Stage::GroupBy(..)) => "`by()`",
            Val::Stage(Stage::Coalesce(..)) => "`coalesce()`",
            Val::Stage(Stage::Select(..)) => "`select()`",
            Val::Stage(Stage::ScalarFilter(..)) => "a scalar filter",
            Val::Stage(_) => "a pipeline stage",
            Val::Agg(_) => "an aggregate",
            Val::ScalarPipe(_) => "a pipeline ending in an aggregate",
            Val::Number(_) => "a number",
            Val::MetricsFn(..) => "a metrics function",
            Val::Second(_) => "a second-stage function",
            Val::Metrics(_) => "a metrics query",
        }
    }

    fn is_spanset(&self) -> bool {
        matches!(self, Val::Spanset(_) | Val::SpansetPipe(_))
    }
}

fn err(pos: Pos, message: impl Into<String>) -> ParseError {
    ParseError {
        pos,
        message: message.into(),
    }
}

fn root_prec(op: Op) -> Option<(u8, bool)> {
    use Op::*;
    Some(match op {
        Pipe => (1, false),
        And | Or => (2, false),
        Eq | Neq | Lt | Lte | Gt | Gte | Re | NotRe | Desc | Ance | Sibl | NotChild | NotParent
        | NotDesc | NotAnce | UnionSibl | UnionChild | UnionParent | UnionDesc | UnionAnce => {
            (3, false)
        }
        Add | Sub => (4, false),
        Mul | Div | Mod => (5, false),
        Pow => (6, true),
        _ => return None,
    })
}

fn field_prec(op: Op) -> Option<(u8, bool, BinaryOp)> {
    Some(match op {
        Op::And => (1, false, BinaryOp::And),
        Op::Or => (1, false, BinaryOp::Or),
        Op::Eq => (2, false, BinaryOp::Eq),
        Op::Neq => (2, false, BinaryOp::Neq),
        Op::Lt => (2, false, BinaryOp::Lt),
        Op::Lte => (2, false, BinaryOp::Lte),
        Op::Gt => (2, false, BinaryOp::Gt),
        Op::Gte => (2, false, BinaryOp::Gte),
        Op::Re => (2, false, BinaryOp::Regex),
        Op::NotRe => (2, false, BinaryOp::NotRegex),
        Op::Add => (3, false, BinaryOp::Add),
        Op::Sub => (3, false, BinaryOp::Sub),
        Op::Mul => (5, false, BinaryOp::Mul),
        Op::Div => (5, false, BinaryOp::Div),
        Op::Mod => (5, false, BinaryOp::Mod),
        Op::Pow => (6, true, BinaryOp::Pow),
        _ => return None,
    })
}

/// The operand of a prefix `-` / `!` extends over `* / % ^` (as in Tempo's grammar).
const FIELD_UNARY_OPERAND: u8 = 5;

fn spanset_op(op: Op) -> Option<SpansetOp> {
    Some(match op {
        Op::And => SpansetOp::And,
        Op::Or => SpansetOp::Or,
        Op::Desc => SpansetOp::Descendant,
        Op::Gt => SpansetOp::Child,
        Op::Ance => SpansetOp::Ancestor,
        Op::Lt => SpansetOp::Parent,
        Op::Sibl => SpansetOp::Sibling,
        Op::NotDesc => SpansetOp::NotDescendant,
        Op::NotChild => SpansetOp::NotChild,
        Op::NotAnce => SpansetOp::NotAncestor,
        Op::NotParent => SpansetOp::NotParent,
        Op::NotRe => SpansetOp::NotSibling,
        Op::UnionDesc => SpansetOp::UnionDescendant,
        Op::UnionChild => SpansetOp::UnionChild,
        Op::UnionAnce => SpansetOp::UnionAncestor,
        Op::UnionParent => SpansetOp::UnionParent,
        Op::UnionSibl => SpansetOp::UnionSibling,
        _ => return None,
    })
}

fn cmp_op(op: Op) -> Option<BinaryOp> {
    Some(match op {
        Op::Eq => BinaryOp::Eq,
        Op::Neq => BinaryOp::Neq,
        Op::Lt => BinaryOp::Lt,
        Op::Lte => BinaryOp::Lte,
        Op::Gt => BinaryOp::Gt,
        Op::Gte => BinaryOp::Gte,
        _ => return None,
    })
}

fn arith_op(op: Op) -> Option<ArithOp> {
    Some(match op {
        Op::Add => ArithOp::Add,
        Op::Sub => ArithOp::Sub,
        Op::Mul => ArithOp::Mul,
        Op::Div => ArithOp::Div,
        Op::Mod => ArithOp::Mod,
        Op::Pow => ArithOp::Pow,
        _ => return None,
    })
}

fn is_nil(e: &FieldExpr) -> bool {
    matches!(e, FieldExpr::Static(Static::Nil, _))
}

fn nil_error(pos: Pos) -> ParseError {
    err(pos, "`nil` can only be compared with `=` or `!=`")
}

/// A legacy (unscoped) intrinsic name.
fn legacy_intrinsic(word: &str) -> Option<Intrinsic> {
    Some(match word {
        "duration" => Intrinsic::Duration,
        "name" => Intrinsic::Name,
        "status" => Intrinsic::Status,
        "statusMessage" => Intrinsic::StatusMessage,
        "kind" => Intrinsic::Kind,
        "rootName" => Intrinsic::RootName,
        "rootServiceName" => Intrinsic::RootServiceName,
        "traceDuration" => Intrinsic::TraceDuration,
        "nestedSetLeft" => Intrinsic::NestedSetLeft,
        "nestedSetRight" => Intrinsic::NestedSetRight,
        "nestedSetParent" => Intrinsic::NestedSetParent,
        "parent" => Intrinsic::Parent,
        _ => return None,
    })
}

/// A keyword literal: `true`, `nil`, `ok`, `server`, `minInt`, ...
fn keyword_static(word: &str) -> Option<Static> {
    Some(match word {
        "true" => Static::Bool(true),
        "false" => Static::Bool(false),
        "nil" => Static::Nil,
        "ok" => Static::Status(Status::Ok),
        "error" => Static::Status(Status::Error),
        "unset" => Static::Status(Status::Unset),
        "unspecified" => Static::Kind(Kind::Unspecified),
        "internal" => Static::Kind(Kind::Internal),
        "server" => Static::Kind(Kind::Server),
        "client" => Static::Kind(Kind::Client),
        "producer" => Static::Kind(Kind::Producer),
        "consumer" => Static::Kind(Kind::Consumer),
        "minInt" => Static::Int(i64::MIN),
        "maxInt" => Static::Int(i64::MAX),
        _ => return None,
    })
}

/// Folds `-x` for a constant.
fn negate(s: Static, pos: Pos) -> PResult<Static> {
    match s {
        Static::Int(i) => i
            .checked_neg()
            .map(Static::Int)
            .ok_or_else(|| err(pos, "integer overflow")),
        Static::Float(f) => Ok(Static::Float(-f)),
        Static::Duration(d) => d
            .checked_neg()
            .map(Static::Duration)
            .ok_or_else(|| err(pos, "duration overflow")),
        other => Err(err(
            pos,
            format!("unary `-` cannot be applied to `{other}`"),
        )),
    }
}

/// Folds arithmetic between two constants (Tempo folds these at parse time too): ints stay ints
/// (`1 / 2` is `0`), anything with a float is a float; durations, `%` and `^` are not allowed.
fn fold(op: ArithOp, a: &Static, b: &Static, pos: Pos) -> PResult<Static> {
    if matches!(op, ArithOp::Mod | ArithOp::Pow) {
        return Err(err(
            pos,
            format!("`{op}` is not allowed between constants here; only `+ - * /` are"),
        ));
    }
    let num = |s: &Static| -> PResult<f64> {
        match s {
            #[allow(clippy::cast_precision_loss)]
            Static::Int(i) => Ok(*i as f64),
            Static::Float(f) => Ok(*f),
            Static::Duration(_) => Err(err(
                pos,
                "durations cannot be used in arithmetic between constants",
            )),
            other => Err(err(pos, format!("`{other}` is not a number"))),
        }
    };
    if let (Static::Int(x), Static::Int(y)) = (a, b) {
        let r = match op {
            ArithOp::Add => x.checked_add(*y),
            ArithOp::Sub => x.checked_sub(*y),
            ArithOp::Mul => x.checked_mul(*y),
            _ => {
                if *y == 0 {
                    return Err(err(pos, "division by zero"));
                }
                x.checked_div(*y)
            }
        };
        return r
            .map(Static::Int)
            .ok_or_else(|| err(pos, "integer overflow in constant arithmetic"));
    }
    let (x, y) = (num(a)?, num(b)?);
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        _ => {
            if y == 0.0 {
                return Err(err(pos, "division by zero"));
            }
            x / y
        }
    };
    if !r.is_finite() {
        return Err(err(pos, "constant arithmetic result is out of range"));
    }
    Ok(Static::Float(r))
}

/// Adds second stages to a metrics query.
fn attach(root: RootExpr, stages: Vec<SecondStage>, pos: Pos) -> RootExpr {
    if stages.is_empty() {
        return root;
    }
    match root {
        RootExpr::Metrics(mut mp) => {
            mp.second_stages.extend(stages);
            RootExpr::Metrics(mp)
        }
        RootExpr::SecondStages {
            expr,
            stages: mut existing,
            pos,
        } => {
            existing.extend(stages);
            RootExpr::SecondStages {
                expr,
                stages: existing,
                pos,
            }
        }
        other => RootExpr::SecondStages {
            expr: Box::new(other),
            stages,
            pos,
        },
    }
}

pub(crate) struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    i: usize,
    nesting: u32,
}

impl<'a> Parser<'a> {
    /// Lexes `text`; fails on the first lexical error.
    pub(crate) fn new(text: &'a str) -> PResult<Self> {
        let (toks, lex_err) = lex(text);
        if let Some(e) = lex_err {
            return Err(e);
        }
        Ok(Parser {
            text,
            toks,
            i: 0,
            nesting: 0,
        })
    }

    fn tok(&self) -> &Token {
        // The token list always ends with Eof, and `bump` never moves past it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn kind(&self) -> &TokKind {
        &self.tok().kind
    }

    fn pos(&self) -> Pos {
        self.tok().pos
    }

    fn bump(&mut self) {
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
    }

    fn peek_op(&self) -> Option<Op> {
        match self.kind() {
            TokKind::Op(op) => Some(*op),
            _ => None,
        }
    }

    fn peek_ident(&self) -> Option<&str> {
        match self.kind() {
            TokKind::Ident(w) => Some(w.as_str()),
            _ => None,
        }
    }

    /// The current token as written, for messages.
    fn found(&self) -> String {
        let tok = self.tok();
        if tok.kind == TokKind::Eof {
            return "end of query".to_string();
        }
        let start = tok.pos.offset as usize;
        let text = self.text.get(start..tok.end).unwrap_or("");
        let mut shown: String = text.chars().take(40).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        format!("`{shown}`")
    }

    /// "expected X, found Y" at the current token.
    fn expected(&self, what: &str) -> ParseError {
        if self.tok().kind == TokKind::Eof {
            err(
                self.pos(),
                format!("unexpected end of query, expected {what}"),
            )
        } else {
            err(
                self.pos(),
                format!("expected {what}, found {}", self.found()),
            )
        }
    }

    fn expect_op(&mut self, op: Op, what: &str) -> PResult<Pos> {
        if self.peek_op() == Some(op) {
            let pos = self.pos();
            self.bump();
            Ok(pos)
        } else {
            Err(self.expected(what))
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(err(
                self.pos(),
                format!("{LIMIT_MARK} nested too deeply (more than {MAX_NESTING} levels)"),
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    fn check_depth(depth: u32, pos: Pos) -> PResult<()> {
        if depth > MAX_TREE_DEPTH {
            return Err(err(
                pos,
                format!("{LIMIT_MARK} too complex (expression tree deeper than {MAX_TREE_DEPTH})"),
            ));
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Whole query
    // ---------------------------------------------------------------------------------------

    pub(crate) fn query(&mut self) -> PResult<Query> {
        let (node, _) = self.node(0)?;
        let hints = if self.peek_ident() == Some("with") {
            self.hints()?
        } else {
            Vec::new()
        };
        if self.tok().kind != TokKind::Eof {
            return Err(self.expected("an operator or the end of the query"));
        }
        let expr = self.convert_root(node)?;
        Ok(Query { expr, hints })
    }

    fn hints(&mut self) -> PResult<Vec<Hint>> {
        self.bump();
        self.expect_op(Op::LParen, "`(` after `with`")?;
        let mut hints = Vec::new();
        loop {
            let pos = self.pos();
            let Some(name) = self.peek_ident().map(str::to_string) else {
                return Err(self.expected("a hint name"));
            };
            self.bump();
            self.expect_op(Op::Eq, "`=` after the hint name")?;
            let value = match self.kind().clone() {
                TokKind::Str(s) => Static::String(s),
                TokKind::Int(i) => Static::Int(i),
                TokKind::Float(f) => Static::Float(f),
                TokKind::Duration(d) => Static::Duration(d),
                TokKind::Ident(w) => match keyword_static(&w) {
                    Some(s) if s != Static::Nil => s,
                    _ => return Err(self.expected("a hint value")),
                },
                _ => return Err(self.expected("a hint value")),
            };
            self.bump();
            hints.push(Hint { name, value, pos });
            match self.peek_op() {
                Some(Op::Comma) => self.bump(),
                Some(Op::RParen) => {
                    self.bump();
                    return Ok(hints);
                }
                _ => return Err(self.expected("`,` or `)`")),
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Top-level expressions (untyped)
    // ---------------------------------------------------------------------------------------

    fn node(&mut self, min: u8) -> PResult<(Node, u32)> {
        let (mut lhs, mut depth) = self.node_unary()?;
        while let Some(op) = self.peek_op() {
            let Some((prec, right)) = root_prec(op) else {
                break;
            };
            if prec < min {
                break;
            }
            let op_pos = self.pos();
            self.bump();
            self.enter()?;
            let (rhs, rd) = self.node(if right { prec } else { prec + 1 })?;
            self.leave();
            depth = depth.max(rd) + 1;
            Self::check_depth(depth, op_pos)?;
            let start = lhs.start();
            lhs = Node::Bin {
                op,
                op_pos,
                start,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
            };
        }
        Ok((lhs, depth))
    }

    fn node_unary(&mut self) -> PResult<(Node, u32)> {
        if self.peek_op() == Some(Op::Sub) {
            let pos = self.pos();
            self.bump();
            self.enter()?;
            let (operand, d) = self.node_unary()?;
            self.leave();
            return Ok((Node::Neg(Box::new(operand), pos), d + 1));
        }
        self.node_primary()
    }

    fn node_primary(&mut self) -> PResult<(Node, u32)> {
        let pos = self.pos();
        match self.kind().clone() {
            TokKind::Op(Op::LBrace) => {
                let (f, d) = self.spanset_filter()?;
                Ok((Node::Filter(f), d))
            }
            TokKind::Op(Op::LParen) => {
                self.bump();
                self.enter()?;
                let (inner, d) = self.node(0)?;
                self.expect_op(Op::RParen, "`)` or an operator")?;
                self.leave();
                Ok((Node::Paren(Box::new(inner), pos), d + 1))
            }
            TokKind::Int(i) => {
                self.bump();
                Ok((Node::Num(Static::Int(i), pos), 1))
            }
            TokKind::Float(f) => {
                self.bump();
                Ok((Node::Num(Static::Float(f), pos), 1))
            }
            TokKind::Duration(d) => {
                self.bump();
                Ok((Node::Num(Static::Duration(d), pos), 1))
            }
            TokKind::Ident(word) => self.function(&word, pos),
            _ => {
                Err(self.expected("`{`, `(`, a number or a function such as `count()` or `rate()`"))
            }
        }
    }

    fn open_paren(&mut self, name: &str) -> PResult<()> {
        self.expect_op(Op::LParen, &format!("`(` after `{name}`"))
            .map(|_| ())
    }

    fn close_paren(&mut self, what: &str) -> PResult<()> {
        self.expect_op(Op::RParen, what).map(|_| ())
    }

    fn function(&mut self, word: &str, pos: Pos) -> PResult<(Node, u32)> {
        let aggregate = match word {
            "count" => Some(AggregateFn::Count),
            "avg" => Some(AggregateFn::Avg),
            "min" => Some(AggregateFn::Min),
            "max" => Some(AggregateFn::Max),
            "sum" => Some(AggregateFn::Sum),
            _ => None,
        };
        if let Some(func) = aggregate {
            self.bump();
            self.open_paren(word)?;
            if func == AggregateFn::Count {
                self.close_paren("`)`: `count()` takes no argument")?;
                return Ok((
                    Node::Agg {
                        func,
                        arg: None,
                        pos,
                    },
                    1,
                ));
            }
            let (arg, d) = self.field_top()?;
            self.close_paren("`)` or an operator")?;
            return Ok((
                Node::Agg {
                    func,
                    arg: Some(arg),
                    pos,
                },
                d + 1,
            ));
        }
        let metrics = match word {
            "rate" => Some(MetricsFunctionKind::Rate),
            "count_over_time" => Some(MetricsFunctionKind::CountOverTime),
            "min_over_time" => Some(MetricsFunctionKind::MinOverTime),
            "max_over_time" => Some(MetricsFunctionKind::MaxOverTime),
            "avg_over_time" => Some(MetricsFunctionKind::AvgOverTime),
            "sum_over_time" => Some(MetricsFunctionKind::SumOverTime),
            "quantile_over_time" => Some(MetricsFunctionKind::QuantileOverTime),
            "histogram_over_time" => Some(MetricsFunctionKind::HistogramOverTime),
            "compare" => Some(MetricsFunctionKind::Compare),
            _ => None,
        };
        if let Some(kind) = metrics {
            self.bump();
            let f = self.metrics_function(kind, word, pos)?;
            return Ok((Node::Metrics(f), 2));
        }
        match word {
            "by" => {
                self.bump();
                self.open_paren(word)?;
                let (e, d) = self.field_top()?;
                self.close_paren("`)` or an operator")?;
                Ok((Node::By(e, pos), d + 1))
            }
            "coalesce" => {
                self.bump();
                self.open_paren(word)?;
                self.close_paren("`)`: `coalesce()` takes no argument")?;
                Ok((Node::Coalesce(pos), 1))
            }
            "select" => {
                self.bump();
                self.open_paren(word)?;
                let attrs = self.attribute_list()?;
                Ok((Node::Select(attrs, pos), 2))
            }
            "topk" | "bottomk" => {
                self.bump();
                self.open_paren(word)?;
                let TokKind::Int(n) = *self.kind() else {
                    return Err(self.expected("a positive integer"));
                };
                self.bump();
                self.close_paren("`)`")?;
                let node = if word == "topk" {
                    Node::TopK(n, pos)
                } else {
                    Node::BottomK(n, pos)
                };
                Ok((node, 1))
            }
            _ if keyword_static(word).is_some() || legacy_intrinsic(word).is_some() => {
                Err(self.expected("`{`, `(`, a number or a function such as `count()` or `rate()`"))
            }
            _ => Err(err(pos, format!("unknown function `{word}`"))),
        }
    }

    /// `attr, attr, ... )` (after the opening parenthesis).
    fn attribute_list(&mut self) -> PResult<Vec<FieldExpr>> {
        let mut attrs = Vec::new();
        loop {
            attrs.push(self.attribute_ref()?);
            match self.peek_op() {
                Some(Op::Comma) => self.bump(),
                Some(Op::RParen) => {
                    self.bump();
                    return Ok(attrs);
                }
                _ => return Err(self.expected("`,` or `)`")),
            }
        }
    }

    /// An attribute or intrinsic (what `select()`, `by (...)` and metrics functions take).
    fn attribute_ref(&mut self) -> PResult<FieldExpr> {
        let pos = self.pos();
        let e = match self.kind() {
            TokKind::Attr(a) => FieldExpr::Attribute(a.clone(), pos),
            TokKind::Intrinsic(i) => FieldExpr::Intrinsic(
                IntrinsicRef {
                    intrinsic: *i,
                    scoped: true,
                },
                pos,
            ),
            TokKind::Ident(w) if legacy_intrinsic(w).is_some() => match legacy_intrinsic(w) {
                Some(intrinsic) => FieldExpr::Intrinsic(
                    IntrinsicRef {
                        intrinsic,
                        scoped: false,
                    },
                    pos,
                ),
                None => return Err(self.expected("an attribute or intrinsic")),
            },
            _ => return Err(self.expected("an attribute or intrinsic")),
        };
        self.bump();
        Ok(e)
    }

    fn metrics_function(
        &mut self,
        kind: MetricsFunctionKind,
        word: &str,
        pos: Pos,
    ) -> PResult<MetricsFunction> {
        self.open_paren(word)?;
        let mut f = MetricsFunction {
            kind,
            arg: None,
            params: Vec::new(),
            compare_filter: None,
            by: Vec::new(),
            pos,
        };
        match kind {
            MetricsFunctionKind::Rate | MetricsFunctionKind::CountOverTime => {
                self.close_paren(&format!("`)`: `{word}()` takes no argument"))?;
            }
            MetricsFunctionKind::QuantileOverTime => {
                f.arg = Some(self.attribute_ref()?);
                self.expect_op(Op::Comma, "`,` and the quantiles")?;
                loop {
                    match *self.kind() {
                        #[allow(clippy::cast_precision_loss)]
                        TokKind::Int(i) => f.params.push(Static::Float(i as f64)),
                        TokKind::Float(x) => f.params.push(Static::Float(x)),
                        _ => return Err(self.expected("a quantile (a number)")),
                    }
                    self.bump();
                    match self.peek_op() {
                        Some(Op::Comma) => self.bump(),
                        Some(Op::RParen) => {
                            self.bump();
                            break;
                        }
                        _ => return Err(self.expected("`,` or `)`")),
                    }
                }
            }
            MetricsFunctionKind::Compare => {
                if self.peek_op() != Some(Op::LBrace) {
                    return Err(self.expected("a spanset filter `{ ... }`"));
                }
                let (filter, _) = self.spanset_filter()?;
                f.compare_filter = Some(filter);
                while self.peek_op() == Some(Op::Comma) {
                    self.bump();
                    let TokKind::Int(i) = *self.kind() else {
                        return Err(self.expected("an integer"));
                    };
                    self.bump();
                    f.params.push(Static::Int(i));
                }
                if f.params.len() == 2 || f.params.len() > 3 {
                    return Err(err(
                        pos,
                        "`compare()` takes a filter, then optionally topN, then optionally start and end",
                    ));
                }
                self.close_paren("`,` or `)`")?;
                return Ok(f);
            }
            _ => {
                f.arg = Some(self.attribute_ref()?);
                self.close_paren("`)`")?;
            }
        }
        if self.peek_ident() == Some("by") {
            self.bump();
            self.open_paren("by")?;
            f.by = self.attribute_list()?;
        }
        Ok(f)
    }

    // ---------------------------------------------------------------------------------------
    // Field expressions
    // ---------------------------------------------------------------------------------------

    /// `{ }` or `{ expr }`.
    fn spanset_filter(&mut self) -> PResult<(SpansetFilter, u32)> {
        let pos = self.pos();
        self.bump();
        if self.peek_op() == Some(Op::RBrace) {
            self.bump();
            return Ok((
                SpansetFilter {
                    expr: FieldExpr::Static(Static::Bool(true), pos),
                    pos,
                },
                1,
            ));
        }
        self.enter()?;
        let (expr, d) = self.field_top()?;
        self.expect_op(Op::RBrace, "`}` or an operator")?;
        self.leave();
        Ok((SpansetFilter { expr, pos }, d + 1))
    }

    /// A whole field expression (which may not be a bare `nil`).
    fn field_top(&mut self) -> PResult<(FieldExpr, u32)> {
        let (e, d) = self.field_expr(0)?;
        if is_nil(&e) {
            return Err(nil_error(e.pos()));
        }
        Ok((e, d))
    }

    fn field_expr(&mut self, min: u8) -> PResult<(FieldExpr, u32)> {
        let (mut lhs, mut depth) = self.field_unary()?;
        while let Some(op) = self.peek_op() {
            let Some((prec, right, bop)) = field_prec(op) else {
                break;
            };
            if prec < min {
                break;
            }
            let pos = self.pos();
            self.bump();
            self.enter()?;
            let (rhs, rd) = self.field_expr(if right { prec } else { prec + 1 })?;
            self.leave();
            if !matches!(bop, BinaryOp::Eq | BinaryOp::Neq) {
                for side in [&lhs, &rhs] {
                    if is_nil(side) {
                        return Err(nil_error(side.pos()));
                    }
                }
            }
            depth = depth.max(rd) + 1;
            Self::check_depth(depth, pos)?;
            lhs = FieldExpr::Binary {
                op: bop,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                pos,
            };
        }
        Ok((lhs, depth))
    }

    fn field_unary(&mut self) -> PResult<(FieldExpr, u32)> {
        let op = match self.peek_op() {
            Some(Op::Sub) => UnaryOp::Neg,
            Some(Op::Not) => UnaryOp::Not,
            _ => return self.field_primary(),
        };
        let pos = self.pos();
        self.bump();
        self.enter()?;
        let (expr, d) = self.field_expr(FIELD_UNARY_OPERAND)?;
        self.leave();
        if is_nil(&expr) {
            return Err(nil_error(expr.pos()));
        }
        Ok((
            FieldExpr::Unary {
                op,
                expr: Box::new(expr),
                pos,
            },
            d + 1,
        ))
    }

    fn field_primary(&mut self) -> PResult<(FieldExpr, u32)> {
        let pos = self.pos();
        let e = match self.kind().clone() {
            TokKind::Op(Op::LParen) => {
                self.bump();
                self.enter()?;
                let (e, d) = self.field_top()?;
                self.expect_op(Op::RParen, "`)` or an operator")?;
                self.leave();
                return Ok((e, d));
            }
            TokKind::Str(s) => FieldExpr::Static(Static::String(s), pos),
            TokKind::Int(i) => FieldExpr::Static(Static::Int(i), pos),
            TokKind::Float(f) => FieldExpr::Static(Static::Float(f), pos),
            TokKind::Duration(d) => FieldExpr::Static(Static::Duration(d), pos),
            TokKind::Attr(a) => FieldExpr::Attribute(a, pos),
            TokKind::Intrinsic(intrinsic) => FieldExpr::Intrinsic(
                IntrinsicRef {
                    intrinsic,
                    scoped: true,
                },
                pos,
            ),
            TokKind::Ident(w) => {
                if let Some(s) = keyword_static(&w) {
                    FieldExpr::Static(s, pos)
                } else if let Some(intrinsic) = legacy_intrinsic(&w) {
                    FieldExpr::Intrinsic(
                        IntrinsicRef {
                            intrinsic,
                            scoped: false,
                        },
                        pos,
                    )
                } else {
                    return Err(err(
                        pos,
                        format!(
                            "unknown identifier `{w}`: attribute names start with `.` or a scope such as `span.` or `resource.`"
                        ),
                    ));
                }
            }
            _ => return Err(self.expected("a value, an attribute or an intrinsic")),
        };
        self.bump();
        Ok((e, 1))
    }

    // ---------------------------------------------------------------------------------------
    // Conversion of the untyped tree
    // ---------------------------------------------------------------------------------------

    fn convert_root(&self, node: Node) -> PResult<RootExpr> {
        let start = node.start();
        match self.convert(node)? {
            Val::Spanset(e) => Ok(RootExpr::Spans(Pipeline {
                stages: vec![Stage::Spanset(e)],
                pos: start,
            })),
            Val::SpansetPipe(p) => Ok(RootExpr::Spans(p)),
            Val::Stage(Stage::Coalesce(pos)) => {
                Err(err(pos, "a pipeline cannot start with `coalesce()`"))
            }
            Val::Stage(s) => Ok(RootExpr::Spans(Pipeline {
                stages: vec![s],
                pos: start,
            })),
            Val::Metrics(r) => Ok(r),
            Val::Agg(_) => Err(err(
                start,
                "an aggregate must be compared with something, e.g. `count() > 1`",
            )),
            Val::ScalarPipe(_) => Err(err(
                start,
                "a pipeline ending in an aggregate must be compared with something, e.g. `({ } | count()) > 1`",
            )),
            Val::Number(_) => Err(err(
                start,
                "a constant expression is not a query; expected a spanset filter `{ ... }` or a metrics query",
            )),
            Val::MetricsFn(..) => Err(err(
                start,
                "a metrics function must follow a spanset pipeline, e.g. `{ } | rate()`",
            )),
            Val::Second(_) => Err(err(
                start,
                "`topk()` and `bottomk()` must follow a metrics function such as `rate()`",
            )),
        }
    }

    fn convert(&self, node: Node) -> PResult<Val> {
        match node {
            Node::Bin { op: Op::Pipe, .. } => self.convert_pipe(node, false),
            Node::Bin { .. } => self.convert_chain(node),
            Node::Paren(inner, pos) => self.convert_paren(*inner, pos),
            Node::Neg(inner, pos) => self.convert_neg(*inner, pos),
            leaf => Ok(convert_leaf(leaf)),
        }
    }

    /// A chain of (non-pipe) binary operators, walked iteratively down its left spine so that
    /// long `a && b && c ...` chains do not recurse.
    #[inline(never)]
    fn convert_chain(&self, node: Node) -> PResult<Val> {
        let mut spine = Vec::new();
        let mut n = node;
        loop {
            match n {
                Node::Bin {
                    op,
                    op_pos,
                    start,
                    lhs,
                    rhs,
                } if op != Op::Pipe => {
                    spine.push((op, op_pos, start, rhs));
                    n = *lhs;
                }
                other => {
                    n = other;
                    break;
                }
            }
        }
        let mut acc = self.convert(n)?;
        while let Some((op, op_pos, start, rhs)) = spine.pop() {
            let rhs_start = rhs.start();
            let r = self.convert(*rhs)?;
            acc = self.convert_binary(op, op_pos, start, acc, rhs_start, r)?;
        }
        Ok(acc)
    }

    #[inline(never)]
    fn convert_neg(&self, inner: Node, pos: Pos) -> PResult<Val> {
        match self.convert(inner)? {
            Val::Number(s) => Ok(Val::Number(negate(s, pos)?)),
            other => Err(err(
                pos,
                format!(
                    "unary `-` can only be applied to a number here, found {}",
                    other.describe()
                ),
            )),
        }
    }

    #[inline(never)]
    fn convert_paren(&self, inner: Node, pos: Pos) -> PResult<Val> {
        if matches!(inner, Node::Bin { op: Op::Pipe, .. }) {
            return self.convert_pipe(inner, true);
        }
        match self.convert(inner)? {
            Val::Stage(Stage::Coalesce(p)) => {
                Err(err(p, "a pipeline cannot start with `coalesce()`"))
            }
            Val::Stage(s) => Ok(Val::SpansetPipe(Pipeline {
                stages: vec![s],
                pos,
            })),
            Val::MetricsFn(..) => Err(err(
                pos,
                "a metrics function must follow a spanset pipeline, e.g. `({ } | rate())`",
            )),
            Val::Second(_) => Err(err(
                pos,
                "`topk()` and `bottomk()` must follow a metrics function such as `rate()`",
            )),
            other => Ok(other),
        }
    }

    #[inline(never)]
    fn convert_binary(
        &self,
        op: Op,
        op_pos: Pos,
        start: Pos,
        l: Val,
        rhs_start: Pos,
        r: Val,
    ) -> PResult<Val> {
        if let Some(sop) = spanset_op(op) {
            if l.is_spanset() && r.is_spanset() {
                return Ok(Val::Spanset(SpansetExpr::Op {
                    op: sop,
                    lhs: Box::new(to_spanset(l, start)),
                    rhs: Box::new(to_spanset(r, rhs_start)),
                    pos: op_pos,
                }));
            }
            if cmp_op(op).is_none() {
                let (bad, bad_pos) = if l.is_spanset() {
                    (&r, rhs_start)
                } else {
                    (&l, start)
                };
                return Err(err(
                    bad_pos,
                    format!(
                        "`{}` combines spansets, found {}",
                        op.text(),
                        bad.describe()
                    ),
                ));
            }
        }
        if let Some(cop) = cmp_op(op) {
            return self.convert_compare(cop, op_pos, start, l, rhs_start, r);
        }
        if let Some(aop) = arith_op(op) {
            return self.convert_arith(aop, op_pos, start, l, rhs_start, r);
        }
        Err(err(
            op_pos,
            format!("`{}` can only be used inside `{{ }}`", op.text()),
        ))
    }

    fn convert_compare(
        &self,
        op: BinaryOp,
        op_pos: Pos,
        start: Pos,
        l: Val,
        rhs_start: Pos,
        r: Val,
    ) -> PResult<Val> {
        let filter = |value: Static| SecondStage::Filter {
            op,
            value,
            pos: op_pos,
        };
        match (l, r) {
            (Val::Metrics(root), Val::Number(s)) => {
                Ok(Val::Metrics(attach(root, vec![filter(s)], op_pos)))
            }
            (Val::MetricsFn(f, mut st), Val::Number(s)) => {
                st.push(filter(s));
                Ok(Val::MetricsFn(f, st))
            }
            (Val::Second(mut st), Val::Number(s)) => {
                st.push(filter(s));
                Ok(Val::Second(st))
            }
            (Val::Metrics(_) | Val::MetricsFn(..) | Val::Second(_), other) => Err(err(
                rhs_start,
                format!(
                    "a filter on metrics compares with a number, found {}",
                    other.describe()
                ),
            )),
            (Val::ScalarPipe(lhs), Val::ScalarPipe(rhs)) => {
                Ok(Val::Stage(Stage::ScalarFilter(ScalarFilter {
                    op,
                    lhs,
                    rhs,
                    pos: start,
                })))
            }
            (Val::ScalarPipe(lhs), Val::Number(s)) => {
                Ok(Val::Stage(Stage::ScalarFilter(ScalarFilter {
                    op,
                    lhs,
                    rhs: ScalarExpr::Static(s, rhs_start),
                    pos: start,
                })))
            }
            (Val::Number(_), Val::ScalarPipe(_)) => Err(err(
                start,
                "in a comparison with a pipeline the number must be on the right",
            )),
            (Val::Agg(lhs), Val::Agg(rhs)) => Ok(Val::Stage(Stage::ScalarFilter(ScalarFilter {
                op,
                lhs,
                rhs,
                pos: start,
            }))),
            (Val::Agg(lhs), Val::Number(s)) => Ok(Val::Stage(Stage::ScalarFilter(ScalarFilter {
                op,
                lhs,
                rhs: ScalarExpr::Static(s, rhs_start),
                pos: start,
            }))),
            (Val::Number(s), Val::Agg(rhs)) => Ok(Val::Stage(Stage::ScalarFilter(ScalarFilter {
                op,
                lhs: ScalarExpr::Static(s, start),
                rhs,
                pos: start,
            }))),
            (Val::Number(_), Val::Number(_)) => Err(err(
                start,
                "a comparison between constants is not a query; compare an aggregate such as `count()`",
            )),
            (l, r) => Err(err(
                op_pos,
                format!(
                    "`{op}` cannot compare {} with {}",
                    l.describe(),
                    r.describe()
                ),
            )),
        }
    }

    fn convert_arith(
        &self,
        op: ArithOp,
        op_pos: Pos,
        start: Pos,
        l: Val,
        rhs_start: Pos,
        r: Val,
    ) -> PResult<Val> {
        let metrics_side = |v: Val, pos: Pos| -> PResult<RootExpr> {
            match v {
                Val::Metrics(root) => Ok(root),
                Val::Number(Static::Duration(_)) => Err(err(
                    pos,
                    "durations cannot be used in arithmetic with metrics",
                )),
                Val::Number(s) => Ok(RootExpr::Number(s, pos)),
                other => Err(err(
                    pos,
                    format!(
                        "expected a metrics query or a number, found {}",
                        other.describe()
                    ),
                )),
            }
        };
        let scalar_side = |v: Val, pos: Pos| -> ScalarExpr {
            match v {
                Val::Agg(e) | Val::ScalarPipe(e) => e,
                Val::Number(s) => ScalarExpr::Static(s, pos),
                // Callers only pass the variants above.
                _ => ScalarExpr::Static(Static::Nil, pos),
            }
        };
        match (&l, &r) {
            (Val::Number(a), Val::Number(b)) => Ok(Val::Number(fold(op, a, b, op_pos)?)),
            (Val::MetricsFn(..), _) | (_, Val::MetricsFn(..)) => Err(err(
                op_pos,
                "wrap a metrics pipeline in parentheses to use it in arithmetic, e.g. `({ } | rate()) * 2`",
            )),
            (Val::Metrics(_), Val::Metrics(_) | Val::Number(_))
            | (Val::Number(_), Val::Metrics(_)) => {
                if matches!(op, ArithOp::Mod | ArithOp::Pow) {
                    return Err(err(
                        op_pos,
                        format!("`{op}` is not allowed between metrics; only `+ - * /` are"),
                    ));
                }
                let lhs = metrics_side(l, start)?;
                let rhs = metrics_side(r, rhs_start)?;
                Ok(Val::Metrics(RootExpr::MetricsMath {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                    pos: op_pos,
                }))
            }
            (Val::Agg(_), Val::Agg(_) | Val::Number(_)) | (Val::Number(_), Val::Agg(_)) => {
                Ok(Val::Agg(ScalarExpr::Binary {
                    op,
                    lhs: Box::new(scalar_side(l, start)),
                    rhs: Box::new(scalar_side(r, rhs_start)),
                    pos: op_pos,
                }))
            }
            (Val::ScalarPipe(_), Val::ScalarPipe(_)) => Ok(Val::ScalarPipe(ScalarExpr::Binary {
                op,
                lhs: Box::new(scalar_side(l, start)),
                rhs: Box::new(scalar_side(r, rhs_start)),
                pos: op_pos,
            })),
            (l, r) => Err(err(
                op_pos,
                format!(
                    "`{op}` is not allowed between {} and {}",
                    l.describe(),
                    r.describe()
                ),
            )),
        }
    }

    /// A chain `a | b | c`; `wrapped` when it was written in parentheses.
    #[inline(never)]
    fn convert_pipe(&self, node: Node, wrapped: bool) -> PResult<Val> {
        let mut items = Vec::new();
        let mut n = node;
        loop {
            match n {
                Node::Bin {
                    op: Op::Pipe,
                    lhs,
                    rhs,
                    ..
                } => {
                    items.push(*rhs);
                    n = *lhs;
                }
                other => {
                    items.push(other);
                    break;
                }
            }
        }
        items.reverse();
        let mut vals = Vec::with_capacity(items.len());
        for item in items {
            let pos = item.start();
            vals.push((self.convert(item)?, pos));
        }
        let pipeline_pos = vals.first().map(|(_, p)| *p).unwrap_or_default();

        if let Some(m) = vals
            .iter()
            .position(|(v, _)| matches!(v, Val::MetricsFn(..)))
        {
            let mut rest = vals.split_off(m);
            if vals.is_empty() {
                return Err(err(
                    pipeline_pos,
                    "a metrics function must follow a spanset pipeline, e.g. `{ } | rate()`",
                ));
            }
            let spans = stages_from(vals, pipeline_pos)?;
            let mut rest_iter = rest.drain(..);
            let Some((Val::MetricsFn(function, mut second_stages), _)) = rest_iter.next() else {
                return Err(err(
                    pipeline_pos,
                    "internal error: metrics function not found",
                ));
            };
            for (v, pos) in rest_iter {
                match v {
                    Val::Second(st) => second_stages.extend(st),
                    other => {
                        return Err(err(
                            pos,
                            format!(
                                "expected `topk()`, `bottomk()` or a comparison after a metrics function, found {}",
                                other.describe()
                            ),
                        ));
                    }
                }
            }
            return Ok(Val::Metrics(RootExpr::Metrics(Box::new(MetricsPipeline {
                spans,
                function,
                second_stages,
            }))));
        }

        if matches!(vals.first(), Some((Val::Metrics(_), _))) {
            let mut iter = vals.into_iter();
            let Some((Val::Metrics(mut root), _)) = iter.next() else {
                return Err(err(pipeline_pos, "internal error: metrics query not found"));
            };
            for (v, pos) in iter {
                match v {
                    Val::Second(st) => root = attach(root, st, pos),
                    other => {
                        return Err(err(
                            pos,
                            format!(
                                "expected `topk()`, `bottomk()` or a comparison after a metrics query, found {}",
                                other.describe()
                            ),
                        ));
                    }
                }
            }
            return Ok(Val::Metrics(root));
        }

        if wrapped
            && vals.len() >= 2
            && matches!(
                vals.last(),
                Some((Val::Agg(ScalarExpr::Aggregate { .. }), _))
            )
        {
            let last = vals.pop();
            let mut stages = stages_from(vals, pipeline_pos)?.stages;
            if let Some((Val::Agg(ScalarExpr::Aggregate { func, arg, pos }), _)) = last {
                stages.push(Stage::Aggregate { func, arg, pos });
            }
            let p = Pipeline {
                stages,
                pos: pipeline_pos,
            };
            return Ok(Val::ScalarPipe(ScalarExpr::Pipeline(
                Box::new(p),
                pipeline_pos,
            )));
        }

        Ok(Val::SpansetPipe(stages_from(vals, pipeline_pos)?))
    }
}

/// Nodes without sub-nodes.
fn convert_leaf(node: Node) -> Val {
    match node {
        Node::Filter(f) => Val::Spanset(SpansetExpr::Filter(f)),
        Node::Agg { func, arg, pos } => Val::Agg(ScalarExpr::Aggregate { func, arg, pos }),
        Node::By(e, pos) => Val::Stage(Stage::GroupBy(e, pos)),
        Node::Coalesce(pos) => Val::Stage(Stage::Coalesce(pos)),
        Node::Select(attrs, pos) => Val::Stage(Stage::Select(attrs, pos)),
        Node::Metrics(f) => Val::MetricsFn(f, Vec::new()),
        Node::TopK(n, pos) => Val::Second(vec![SecondStage::TopK(n, pos)]),
        Node::BottomK(n, pos) => Val::Second(vec![SecondStage::BottomK(n, pos)]),
        Node::Num(s, _) => Val::Number(s),
        // Nodes with children are handled by `Parser::convert`.
        Node::Neg(..) | Node::Paren(..) | Node::Bin { .. } => Val::Number(Static::Nil),
    }
}

fn to_spanset(v: Val, pos: Pos) -> SpansetExpr {
    match v {
        Val::Spanset(e) => e,
        Val::SpansetPipe(p) => SpansetExpr::Pipeline(Box::new(p), pos),
        // Callers check `is_spanset` first.
        _ => SpansetExpr::Filter(SpansetFilter {
            expr: FieldExpr::Static(Static::Bool(false), pos),
            pos,
        }),
    }
}

/// Turns pipeline items into spanset-pipeline stages.
fn stages_from(vals: Vec<(Val, Pos)>, pos: Pos) -> PResult<Pipeline> {
    let mut stages = Vec::with_capacity(vals.len());
    for (i, (v, p)) in vals.into_iter().enumerate() {
        let stage = match v {
            Val::Spanset(e) => Stage::Spanset(e),
            Val::SpansetPipe(pl) => Stage::Spanset(SpansetExpr::Pipeline(Box::new(pl), p)),
            Val::Stage(Stage::Coalesce(cp)) if i == 0 => {
                return Err(err(cp, "a pipeline cannot start with `coalesce()`"));
            }
            Val::Stage(s) => s,
            Val::Agg(_) => {
                return Err(err(
                    p,
                    "an aggregate must be compared with something, e.g. `count() > 1`",
                ));
            }
            Val::Second(_) => {
                return Err(err(
                    p,
                    "`topk()` and `bottomk()` must follow a metrics function such as `rate()`",
                ));
            }
            other => {
                return Err(err(
                    p,
                    format!("{} cannot be a pipeline stage", other.describe()),
                ));
            }
        };
        stages.push(stage);
    }
    Ok(Pipeline { stages, pos })
}
