//! Parser, printer, validation and lenient-parsing behaviour beyond the conformance corpus.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use strata_traceql::*;

fn parse_ok(q: &str) -> Query {
    parse(q).unwrap_or_else(|e| panic!("{q:?} should parse: {e}"))
}

fn parse_err(q: &str) -> ParseError {
    match parse(q) {
        Ok(p) => panic!("{q:?} should not parse, got {p}"),
        Err(e) => e,
    }
}

fn assert_round_trip(q: &str) -> String {
    let parsed = parse_ok(q);
    let printed = parsed.to_string();
    let again = parse(&printed).unwrap_or_else(|e| panic!("{q:?} printed as {printed:?}: {e}"));
    assert_eq!(again, parsed, "{q:?} printed as {printed:?}");
    printed
}

// ----------------------------------------------------------------------------------------------
// Errors
// ----------------------------------------------------------------------------------------------

#[test]
fn error_positions_on_multi_line_queries() {
    let e = parse_err("{ .a = 1 &&\n  .b = }");
    assert_eq!((e.pos.line, e.pos.column), (2, 8));
    assert_eq!(
        e.message,
        "expected a value, an attribute or an intrinsic, found `}`"
    );
    assert_eq!(
        e.to_string(),
        "parse error at line 2, column 8: expected a value, an attribute or an intrinsic, found `}`"
    );

    let e = parse_err("{ .a = 1\n  foo }");
    assert_eq!((e.pos.line, e.pos.column), (2, 3));
    assert_eq!(e.message, "expected `}` or an operator, found `foo`");

    let e = parse_err("{ .a = 1 &&\n\t.b = 2");
    assert_eq!((e.pos.line, e.pos.column), (2, 8));
    assert_eq!(
        e.message,
        "unexpected end of query, expected `}` or an operator"
    );
}

#[test]
fn error_positions_count_characters_not_bytes() {
    let e = parse_err("{ .\"é\" = \"ü\" foo }");
    assert_eq!((e.pos.line, e.pos.column), (1, 14));
    assert_eq!(e.pos.offset, 15);
}

#[test]
fn error_messages() {
    let cases = [
        (
            "{ trace:status = error }",
            1,
            3,
            "unknown intrinsic `trace:status`",
        ),
        ("{ .a = \"x }", 1, 8, "unterminated string"),
        (
            "{ span. = 1 }",
            1,
            3,
            "expected an attribute name after `span.`, found whitespace",
        ),
        (
            "{ .a = nil + 1 }",
            1,
            8,
            "`nil` can only be compared with `=` or `!=`",
        ),
        (
            "{ .a = 1 } | rate() | topk(-1)",
            1,
            28,
            "expected a positive integer, found `-`",
        ),
        (
            "{ .a = 99999999999999999999 }",
            1,
            8,
            "integer `99999999999999999999` is out of range",
        ),
        (
            "{ .a = 1 } with(sample=)",
            1,
            24,
            "expected a hint value, found `)`",
        ),
        ("foo()", 1, 1, "unknown function `foo`"),
    ];
    for (q, line, column, message) in cases {
        let e = parse_err(q);
        assert_eq!(
            (e.pos.line, e.pos.column, e.message.as_str()),
            (line, column, message),
            "{q}"
        );
    }
}

#[test]
fn validate_errors_carry_positions_and_kind() {
    let e = parse_ok("{ .a = 1 &&\n  1 = \"x\" }")
        .validate()
        .unwrap_err();
    assert!(!e.unsupported);
    assert_eq!((e.pos.line, e.pos.column), (2, 5));
    assert!(
        e.to_string()
            .starts_with("invalid query at line 2, column 5: "),
        "{e}"
    );

    let e = parse_ok("{ parent.a = 1 }").validate().unwrap_err();
    assert!(e.unsupported);
    assert!(
        e.to_string()
            .starts_with("unsupported at line 1, column 3: "),
        "{e}"
    );
}

#[test]
fn numeric_edge_cases() {
    parse_err("{ .a = 9223372036854775808 }");
    parse_ok("{ .a = 9223372036854775807 }");
    parse_err("({} | rate()) * 1e400");
    parse_err("({} | rate()) > 1 / 0");
    parse_err("({} | rate()) > 9223372036854775807 + 1");
    let q = parse_ok("{ .a > minInt && .b < maxInt }");
    assert_round_trip(&q.to_string());
    let q = parse_ok("({} | rate()) > -9223372036854775807 - 1");
    assert_round_trip(&q.to_string());
}

// ----------------------------------------------------------------------------------------------
// Structure
// ----------------------------------------------------------------------------------------------

#[test]
fn precedence_inside_filters() {
    // `&&` and `||` share a level and associate left, as in Tempo.
    let q = parse_ok("{ .a || .b && .c }");
    let RootExpr::Spans(p) = &q.expr else {
        panic!()
    };
    let Stage::Spanset(SpansetExpr::Filter(f)) = &p.stages[0] else {
        panic!()
    };
    let FieldExpr::Binary { op, lhs, .. } = &f.expr else {
        panic!()
    };
    assert_eq!(*op, BinaryOp::And);
    assert!(matches!(
        **lhs,
        FieldExpr::Binary {
            op: BinaryOp::Or,
            ..
        }
    ));

    // Prefix `-` takes in `*` but not `+`.
    assert_eq!(
        parse_ok("{ -.a * 2 + 1 = 0 }"),
        parse_ok("{ (-(.a * 2)) + 1 = 0 }")
    );
    // `^` is right-associative.
    assert_eq!(
        parse_ok("{ 2 ^ 3 ^ 2 = .a }"),
        parse_ok("{ 2 ^ (3 ^ 2) = .a }")
    );
    // Structural operators bind tighter than spanset `&&`.
    assert_eq!(
        parse_ok("{ .a } && { .b } >> { .c }"),
        parse_ok("{ .a } && ({ .b } >> { .c })")
    );
}

#[test]
fn nil_comparisons_parse_as_binary_nodes() {
    let q = parse_ok("{ .a != nil }");
    let RootExpr::Spans(p) = &q.expr else {
        panic!()
    };
    let Stage::Spanset(SpansetExpr::Filter(f)) = &p.stages[0] else {
        panic!()
    };
    assert!(matches!(
        &f.expr,
        FieldExpr::Binary { op: BinaryOp::Neq, rhs, .. } if matches!(**rhs, FieldExpr::Static(Static::Nil, _))
    ));
    parse_err("{ nil }");
    parse_err("{ (nil) = .a }");
    parse_err("{ .a > nil }");
}

#[test]
fn metrics_shapes() {
    let q = parse_ok("({ } | rate()) > 10 | topk(3)");
    let RootExpr::Metrics(m) = &q.expr else {
        panic!("{q:?}")
    };
    assert_eq!(m.second_stages.len(), 2);

    let q = parse_ok("({} | rate()) + ({} | rate()) | topk(5) > 10");
    let RootExpr::SecondStages { expr, stages, .. } = &q.expr else {
        panic!("{q:?}")
    };
    assert!(matches!(
        **expr,
        RootExpr::MetricsMath {
            op: ArithOp::Add,
            ..
        }
    ));
    assert_eq!(stages.len(), 2);

    let q = parse_ok("3 / 2 + ({} | rate())");
    let RootExpr::MetricsMath { lhs, .. } = &q.expr else {
        panic!()
    };
    assert!(matches!(**lhs, RootExpr::Number(Static::Int(1), _)));

    let q = parse_ok("({ .a } | count()) > 2");
    let RootExpr::Spans(p) = &q.expr else {
        panic!()
    };
    let Stage::ScalarFilter(sf) = &p.stages[0] else {
        panic!()
    };
    let ScalarExpr::Pipeline(inner, _) = &sf.lhs else {
        panic!()
    };
    assert!(matches!(
        inner.stages.last(),
        Some(Stage::Aggregate {
            func: AggregateFn::Count,
            ..
        })
    ));
}

#[test]
fn durations_and_comments() {
    let dur = |q: &str| match parse_ok(q).expr {
        RootExpr::Spans(p) => match &p.stages[0] {
            Stage::Spanset(SpansetExpr::Filter(SpansetFilter {
                expr: FieldExpr::Binary { rhs, .. },
                ..
            })) => match **rhs {
                FieldExpr::Static(Static::Duration(d), _) => d,
                _ => panic!("{q}"),
            },
            _ => panic!("{q}"),
        },
        _ => panic!("{q}"),
    };
    assert_eq!(dur("{ duration > 1h30m }"), 5_400_000_000_000);
    assert_eq!(dur("{ duration > 1.5s }"), 1_500_000_000);
    assert_eq!(dur("{ duration > 100µs }"), 100_000);
    assert_eq!(dur("{ duration > 100us }"), 100_000);
    assert_eq!(dur("{ duration > 2d }"), 172_800_000_000_000);
    assert_eq!(dur("{ duration > 1w }"), 604_800_000_000_000);
    assert_eq!(dur("{ duration > 1h0m0s }"), 3_600_000_000_000);
    assert_eq!(dur("{ duration > 1.000000001s }"), 1_000_000_001);
    assert_eq!(dur("{ duration > 0s // trailing comment\n }"), 0);
    assert_eq!(dur("{ /* c */ duration > 5ms }"), 5_000_000);
    assert_eq!(parse_duration("1h30m"), Some(5_400_000_000_000));
    assert_eq!(parse_duration("1x"), None);
}

#[test]
fn strings_and_escapes() {
    let q = parse_ok(r#"{ .a = "tab\tquote\"back\\slash\nnl\u00e9\x41" && .b = `raw\n` }"#);
    let printed = assert_round_trip(&q.to_string());
    assert!(
        printed.contains(r#""tab\tquote\"back\\slash\nnléA""#),
        "{printed}"
    );
    assert!(printed.contains(r#""raw\\n""#), "{printed}");
    parse_err(r#"{ .a = "\q" }"#);
}

// ----------------------------------------------------------------------------------------------
// Printing
// ----------------------------------------------------------------------------------------------

#[test]
fn display_round_trips_tricky_cases() {
    let cases = [
        r#"{ ."foo bar" = "v" }"#,
        r#"{ ."5abc" = 1 }"#,
        r#"{ ."" = 1 }"#,
        r#"{ parent."span.x" = 1 }"#,
        r#"{ span."a\"b\\c" = 1 }"#,
        r#"{ .a-b/c:d.e = 1 }"#,
        "{ .a = 1.0 && .b = 1e300 && .c = 1e-9 && .d = 0.1 }",
        "{ .a = -(1 + 2) * 3 }",
        "{ (-.a) * 2 = -(.a * 2) }",
        "{ -.a ^ 2 = (-.a) ^ 2 }",
        "{ 2 ^ (3 ^ 2) = (2 ^ 3) ^ 2 }",
        "{ !(.a && .b) || !.c }",
        "{ .a - (.b - .c) = .a - .b - .c }",
        "{ .a || (.b && .c) }",
        "{ (.a = 1) = (.b = 2) }",
        "{ - -.a = 1 }",
        "{ duration > 90m && duration < 1500ms && duration != 7ns }",
        "{ span:duration > 1s && duration > 1s && trace:rootService = rootServiceName }",
        "({ .a } >> { .b }) && { .c } ~ ({ .d } || { .e })",
        "{ .a } | by(.b) | coalesce() | select(.c, span:id, name)",
        "({ .a } | count() > 2) >> { .b }",
        "{ .a } | ({ .b } | { .c })",
        "(count() > 1) && ({ .a })",
        "({ .a } | count()) ^ ({ .c } | count()) * ({ .b } | avg(duration)) > 3",
        "count() * 2 + 1 > 3 | avg(duration) > -1s",
        "2 ^ count() > 1",
        "{} | quantile_over_time(duration, .5, 0.99) by (span.a, resource.b)",
        "{} | compare({ .a = 1 }, 5, 1000, 2000)",
        "{} | histogram_over_time(span:duration) by (name) | topk(3) > 1.5",
        "({} | rate() > 6) * 100 > 5",
        "(({} | rate()) * 2 | topk(3)) + 1",
        "({} | rate()) - (({} | rate()) - ({} | rate()))",
        "({} | rate()) / (2 * ({} | rate()))",
        "({} | max_over_time(duration)) > -10s",
        "{ .a } with(most_recent=true, sample=0.5, job_size=\"10MB\", debug=1)",
    ];
    for q in cases {
        assert_round_trip(q);
    }
}

#[test]
fn display_style() {
    assert_eq!(parse_ok("{.a=2}").to_string(), "{ .a = 2 }");
    assert_eq!(
        parse_ok("{}|rate()by(span.x)|topk(5)with(sample=0.1)").to_string(),
        "{ true } | rate() by (span.x) | topk(5) with(sample=0.1)"
    );
    assert_eq!(
        parse_ok(r#"{ ."a b" = `x` }"#).to_string(),
        r#"{ ."a b" = "x" }"#
    );
}

// ----------------------------------------------------------------------------------------------
// Lenient parsing
// ----------------------------------------------------------------------------------------------

#[test]
fn lenient_parsing() {
    let cases: [(&str, Option<&str>); 14] = [
        (
            r#"{ resource.service.name="cart" && span.http.method="#,
            Some(r#"{ resource.service.name = "cart" }"#),
        ),
        (r#"{ .a = "x" && "#, Some(r#"{ .a = "x" }"#)),
        (r#"{ .a = "x" && .b = "y"#, Some(r#"{ .a = "x" }"#)),
        (r#"{ .a = "x" && name = }"#, Some(r#"{ .a = "x" }"#)),
        (r#"{ name = && .a = "x" }"#, Some(r#"{ .a = "x" }"#)),
        (
            r#"{ .a = "x" || .b = 1 && span."#,
            Some(r#"{ .a = "x" || .b = 1 }"#),
        ),
        (r#"{ .a = "x" } | by("#, Some(r#"{ .a = "x" }"#)),
        (r#"{ .a = "x" } && { .b ="#, Some(r#"{ .a = "x" }"#)),
        (
            r#"{ .a = "x" && (.b = 1 || .c ="#,
            Some(r#"{ .a = "x" && .b = 1 }"#),
        ),
        (r#"{ .a = 1 }"#, Some(r#"{ .a = 1 }"#)),
        (r#"{ .a = "#, None),
        (r#"{ "#, None),
        ("", None),
        ("{ span.http.method=", None),
    ];
    for (q, want) in cases {
        let got = parse_lenient(q).map(|q| q.to_string());
        assert_eq!(got.as_deref(), want, "{q:?}");
    }
    // Positions still point into the original text.
    let q = parse_lenient("{ name = &&\n  .a = \"x\" }").unwrap();
    let RootExpr::Spans(p) = &q.expr else {
        panic!()
    };
    let Stage::Spanset(SpansetExpr::Filter(f)) = &p.stages[0] else {
        panic!()
    };
    assert_eq!((f.expr.pos().line, f.expr.pos().column), (2, 6));
}

// ----------------------------------------------------------------------------------------------
// Limits
// ----------------------------------------------------------------------------------------------

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for q in [
        format!("{}{{ .a }}{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{{ {}.a{} }}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("{{ {}.a }}", "!".repeat(100_000)),
        format!("{{ {}.a = 1 }}", "-".repeat(100_000)),
        format!("{{ .a {} = 1 }}", "^ 2 ".repeat(100_000)),
        format!("{}1 + ({{}} | rate())", "-".repeat(100_000)),
        format!("{{ .a = 1 {} }}", "|| .a = 1 ".repeat(100_000)),
        format!("{{ .a }} {}", "&& { .a } ".repeat(100_000)),
        "(".repeat(100_000),
    ] {
        let e = parse_err(&q);
        assert!(
            e.message.contains("too deeply") || e.message.contains("too complex"),
            "{}",
            e.message
        );
        assert!(parse_lenient(&q).is_none());
    }
    // Not a nesting error, but must not crash either.
    parse_err(&"{".repeat(100_000));
    assert!(parse_lenient(&"{".repeat(100_000)).is_none());
}

#[test]
fn long_chains_within_limits_work() {
    // A chain as deep as allowed parses, validates, prints and round-trips on a normal
    // (2 MiB) test thread.
    let n = (MAX_TREE_DEPTH as usize) / 2 - 1;
    let q = format!("{{ .a = 1 {} }}", "|| .a = 1 ".repeat(n));
    let parsed = parse_ok(&q);
    parsed.validate().unwrap();
    assert_round_trip(&parsed.to_string());

    let q = format!(
        "{{ .a }} {}",
        "&& { .a } ".repeat(MAX_TREE_DEPTH as usize - 2)
    );
    let parsed = parse_ok(&q);
    parsed.validate().unwrap();
    assert_round_trip(&parsed.to_string());

    let depth = MAX_NESTING as usize - 2;
    let q = format!("{{ {}.a{} }}", "(".repeat(depth), ")".repeat(depth));
    parse_ok(&q).validate().unwrap();
}
