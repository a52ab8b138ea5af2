//! Property tests: arbitrary input never panics the parser, and printing round-trips.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use strata_traceql::*;

/// Anything that parses must print to text that parses back to the same tree.
fn check_text(text: &str) -> Result<(), TestCaseError> {
    if let Ok(q) = parse(text) {
        let _ = q.validate();
        let printed = q.to_string();
        let again = parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{text:?} printed as {printed:?}: {e}")))?;
        prop_assert_eq!(&again, &q, "{:?} printed as {:?}", text, printed);
    }
    if let Some(q) = parse_lenient(text) {
        let _ = q.validate();
        let _ = q.to_string();
    }
    Ok(())
}

const PIECES: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "{ }",
    ".a",
    ".b",
    "span.http.status_code",
    "resource.\"x y\"",
    "parent.a",
    "event.e",
    "span:id",
    "trace:duration",
    "duration",
    "name",
    "status",
    "kind",
    "parent",
    "nestedSetLeft",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "=~",
    "!~",
    "&&",
    "||",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "^",
    "~",
    ">>",
    "<<",
    "!>>",
    "&>",
    "&~",
    "|",
    ",",
    "1",
    "0",
    "2.5",
    "1e3",
    "10s",
    "1h30m",
    "-1",
    "\"str\"",
    "`raw`",
    "\"[\"",
    "nil",
    "true",
    "false",
    "ok",
    "error",
    "server",
    "minInt",
    "count()",
    "count",
    "avg(",
    "max(duration)",
    "min(.a)",
    "sum(",
    "by(",
    "by (",
    "coalesce()",
    "select(",
    "rate()",
    "count_over_time()",
    "quantile_over_time(duration, 0.5)",
    "histogram_over_time(",
    "compare(",
    "topk(",
    "bottomk(5)",
    "with(",
    "sample=0.1",
    "most_recent=true",
    "5",
    "\n",
    "//c\n",
    "/*",
    "*/",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..24).prop_map(|v| v.join(" "))
}

fn attribute() -> impl Strategy<Value = Attribute> {
    let scope = prop::sample::select(vec![
        AttributeScope::None,
        AttributeScope::Span,
        AttributeScope::Resource,
        AttributeScope::Event,
        AttributeScope::Link,
        AttributeScope::Instrumentation,
    ]);
    (scope, any::<bool>(), "[a-z0-9 ._/:\"\\\\=\\-\n]{0,8}").prop_map(|(scope, parent, name)| {
        // `parent.` only combines with the unscoped, span and resource scopes.
        let parent = parent
            && matches!(
                scope,
                AttributeScope::None | AttributeScope::Span | AttributeScope::Resource
            );
        Attribute {
            scope,
            parent,
            name,
        }
    })
}

const INTRINSICS: &[Intrinsic] = &[
    Intrinsic::Name,
    Intrinsic::Status,
    Intrinsic::StatusMessage,
    Intrinsic::Kind,
    Intrinsic::Duration,
    Intrinsic::TraceDuration,
    Intrinsic::RootName,
    Intrinsic::RootServiceName,
    Intrinsic::TraceId,
    Intrinsic::SpanId,
    Intrinsic::ParentId,
    Intrinsic::ChildCount,
    Intrinsic::EventName,
    Intrinsic::EventTimeSinceStart,
    Intrinsic::LinkTraceId,
    Intrinsic::LinkSpanId,
    Intrinsic::InstrumentationName,
    Intrinsic::InstrumentationVersion,
    Intrinsic::NestedSetLeft,
    Intrinsic::NestedSetRight,
    Intrinsic::NestedSetParent,
    Intrinsic::Parent,
];

fn intrinsic() -> impl Strategy<Value = IntrinsicRef> {
    (prop::sample::select(INTRINSICS), any::<bool>()).prop_map(|(intrinsic, scoped)| {
        // Spell it the way the parser would record it.
        let scoped = match (intrinsic.scoped_name(), intrinsic.legacy_name()) {
            (Some(_), Some(_)) => scoped,
            (Some(_), None) => true,
            _ => false,
        };
        IntrinsicRef { intrinsic, scoped }
    })
}

fn literal() -> impl Strategy<Value = Static> {
    prop_oneof![
        any::<bool>().prop_map(Static::Bool),
        (0..=i64::MAX).prop_map(Static::Int),
        Just(Static::Int(i64::MIN)),
        (0.0..1e300f64).prop_map(Static::Float),
        any::<String>().prop_map(Static::String),
        (0..=i64::MAX).prop_map(Static::Duration),
        prop::sample::select(vec![Status::Ok, Status::Error, Status::Unset])
            .prop_map(Static::Status),
        prop::sample::select(vec![Kind::Server, Kind::Client, Kind::Unspecified])
            .prop_map(Static::Kind),
    ]
}

const BINARY_OPS: &[BinaryOp] = &[
    BinaryOp::And,
    BinaryOp::Or,
    BinaryOp::Eq,
    BinaryOp::Neq,
    BinaryOp::Lt,
    BinaryOp::Lte,
    BinaryOp::Gt,
    BinaryOp::Gte,
    BinaryOp::Regex,
    BinaryOp::NotRegex,
    BinaryOp::Add,
    BinaryOp::Sub,
    BinaryOp::Mul,
    BinaryOp::Div,
    BinaryOp::Mod,
    BinaryOp::Pow,
];

fn field_expr() -> impl Strategy<Value = FieldExpr> {
    let p = Pos::default();
    let leaf = prop_oneof![
        literal().prop_map(move |s| FieldExpr::Static(s, p)),
        attribute().prop_map(move |a| FieldExpr::Attribute(a, p)),
        intrinsic().prop_map(move |i| FieldExpr::Intrinsic(i, p)),
    ];
    leaf.prop_recursive(5, 40, 2, move |inner| {
        prop_oneof![
            (
                prop::sample::select(BINARY_OPS),
                inner.clone(),
                inner.clone()
            )
                .prop_map(move |(op, lhs, rhs)| FieldExpr::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                    pos: p,
                }),
            (any::<bool>(), inner.clone()).prop_map(move |(not, e)| FieldExpr::Unary {
                op: if not { UnaryOp::Not } else { UnaryOp::Neg },
                expr: Box::new(e),
                pos: p,
            }),
            // `x = nil` / `x != nil`.
            (any::<bool>(), inner).prop_map(move |(eq, e)| FieldExpr::Binary {
                op: if eq { BinaryOp::Eq } else { BinaryOp::Neq },
                lhs: Box::new(e),
                rhs: Box::new(FieldExpr::Static(Static::Nil, p)),
                pos: p,
            }),
        ]
    })
}

fn query() -> impl Strategy<Value = Query> {
    let p = Pos::default();
    let filter =
        field_expr().prop_map(move |expr| SpansetExpr::Filter(SpansetFilter { expr, pos: p }));
    let spanset = filter.prop_recursive(3, 8, 2, move |inner| {
        (
            prop::sample::select(vec![
                SpansetOp::And,
                SpansetOp::Or,
                SpansetOp::Descendant,
                SpansetOp::Child,
                SpansetOp::NotSibling,
                SpansetOp::UnionAncestor,
            ]),
            inner.clone(),
            inner,
        )
            .prop_map(move |(op, lhs, rhs)| SpansetExpr::Op {
                op,
                lhs: Box::new(lhs),
                rhs: Box::new(rhs),
                pos: p,
            })
    });
    let stage = prop_oneof![
        spanset.prop_map(Stage::Spanset),
        field_expr().prop_map(move |e| Stage::GroupBy(e, p)),
        (1..100i64).prop_map(move |n| Stage::ScalarFilter(ScalarFilter {
            op: BinaryOp::Gt,
            lhs: ScalarExpr::Aggregate {
                func: AggregateFn::Count,
                arg: None,
                pos: p
            },
            rhs: ScalarExpr::Static(Static::Int(n), p),
            pos: p,
        })),
        prop::collection::vec(attribute(), 1..3).prop_map(move |attrs| Stage::Select(
            attrs
                .into_iter()
                .map(|a| FieldExpr::Attribute(a, p))
                .collect(),
            p
        )),
    ];
    (prop::collection::vec(stage, 1..4), any::<bool>()).prop_map(move |(mut stages, metrics)| {
        if let Some(Stage::Spanset(_)) = stages.first() {
        } else {
            stages.insert(
                0,
                Stage::Spanset(SpansetExpr::Filter(SpansetFilter {
                    expr: FieldExpr::Static(Static::Bool(true), p),
                    pos: p,
                })),
            );
        }
        let spans = Pipeline { stages, pos: p };
        let expr = if metrics {
            RootExpr::Metrics(Box::new(MetricsPipeline {
                spans,
                function: MetricsFunction {
                    kind: MetricsFunctionKind::Rate,
                    arg: None,
                    params: vec![],
                    compare_filter: None,
                    by: vec![],
                    pos: p,
                },
                second_stages: vec![SecondStage::TopK(3, p)],
            }))
        } else {
            RootExpr::Spans(spans)
        };
        Query {
            expr,
            hints: vec![],
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        check_text(&text)?;
    }

    #[test]
    fn token_soup_never_panics_and_round_trips(text in token_soup()) {
        check_text(&text)?;
    }

    #[test]
    fn generated_trees_round_trip(q in query()) {
        let printed = q.to_string();
        let again = parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
        prop_assert_eq!(&again, &q, "printed as {:?}", printed);
        let _ = again.validate();
    }
}
