//! Evaluating a `{ }` filter for every row of a batch at once, column by column, when it has the
//! common shape: comparisons of single-valued intrinsics with literals, combined with `&&`, `||`
//! and `!`. Each comparison is one tight loop over one typed array, with the literal and any
//! regex resolved once, instead of the row evaluator's dispatch per row and node. Anything else
//! (attributes, which may have several candidate values; arithmetic; events and links) returns
//! `None` and is evaluated row by row. Both give the same answer: the loops apply
//! [`row::compare`](super::row::compare) to the values the row evaluator would see, except
//! where a specialised loop over integers computes the same ordering directly.

use std::borrow::Cow;

use arrow::array::{Array, Int32Array, StringArray};
use strata_traceql::{BinaryOp, FieldExpr, Intrinsic, Static, UnaryOp};

use super::row::{
    BatchView, Regexes, Value, compare, kind_of, ordering_holds, static_value, status_of,
};

/// The filter's truth at every row of `view`, or `None` when it must be evaluated row by row.
pub(crate) fn filter_mask(
    view: &BatchView<'_>,
    expr: &FieldExpr,
    regexes: &Regexes,
) -> Option<Vec<bool>> {
    let rows = view.rows();
    match expr {
        FieldExpr::Static(Static::Bool(b), _) => Some(vec![*b; rows]),
        FieldExpr::Unary {
            op: UnaryOp::Not,
            expr,
            ..
        } => {
            // Only over comparisons and `&&`/`||`, which are always booleans: `!` is negation.
            if !is_boolean(expr) {
                return None;
            }
            let mut m = filter_mask(view, expr, regexes)?;
            m.iter_mut().for_each(|b| *b = !*b);
            Some(m)
        }
        FieldExpr::Binary { op, lhs, rhs, .. } => match op {
            BinaryOp::And | BinaryOp::Or => {
                // The row evaluator takes the truth of each side: a side that is not a boolean
                // expression could be a bare attribute, so only boolean sides are columnar.
                if !is_boolean(lhs) || !is_boolean(rhs) {
                    return None;
                }
                let mut l = filter_mask(view, lhs, regexes)?;
                let r = filter_mask(view, rhs, regexes)?;
                let and = *op == BinaryOp::And;
                for (a, b) in l.iter_mut().zip(r) {
                    *a = if and { *a && b } else { *a || b };
                }
                Some(l)
            }
            op if is_comparison(*op) => comparison(view, *op, lhs, rhs, regexes),
            _ => None,
        },
        _ => None,
    }
}

fn is_comparison(op: BinaryOp) -> bool {
    op.is_boolean() && !matches!(op, BinaryOp::And | BinaryOp::Or)
}

/// Whether `e` always evaluates to a boolean (never nil), so its truth is its value.
fn is_boolean(e: &FieldExpr) -> bool {
    match e {
        FieldExpr::Static(Static::Bool(_), _) => true,
        FieldExpr::Unary {
            op: UnaryOp::Not,
            expr,
            ..
        } => is_boolean(expr),
        FieldExpr::Binary { op, .. } => op.is_boolean(),
        _ => false,
    }
}

/// `intrinsic OP literal` over every row; `None` for other shapes.
fn comparison(
    view: &BatchView<'_>,
    op: BinaryOp,
    lhs: &FieldExpr,
    rhs: &FieldExpr,
    regexes: &Regexes,
) -> Option<Vec<bool>> {
    let (FieldExpr::Intrinsic(i, _), FieldExpr::Static(literal, _)) = (lhs, rhs) else {
        return None;
    };
    if matches!(literal, Static::Nil) {
        // `= nil` / `!= nil` test presence, which the row evaluator handles.
        return None;
    }
    let rows = view.rows();
    let literal_value = static_value(literal);
    match i.intrinsic {
        Intrinsic::Status => {
            let Static::Status(s) = literal else {
                return Some(vec![false; rows]);
            };
            codes(view.status, rows, op, *s, status_of)
        }
        Intrinsic::Kind => {
            let Static::Kind(k) = literal else {
                return Some(vec![false; rows]);
            };
            codes(view.kind, rows, op, *k, kind_of)
        }
        Intrinsic::Duration => {
            let a = view.duration?;
            Some(integers(rows, op, &literal_value, |r| a.value(r)))
        }
        Intrinsic::TraceDuration => {
            let a = view.trace_duration?;
            Some(integers(rows, op, &literal_value, |r| {
                i64::try_from(a.value(r)).unwrap_or(i64::MAX)
            }))
        }
        // Absent strings read as "" for span columns and as nil for trace-level ones, as in
        // the row evaluator.
        Intrinsic::Name => strings(view.name, rows, op, &literal_value, regexes, false),
        Intrinsic::StatusMessage => strings(
            view.status_message,
            rows,
            op,
            &literal_value,
            regexes,
            false,
        ),
        Intrinsic::RootName => strings(view.root_name, rows, op, &literal_value, regexes, true),
        Intrinsic::RootServiceName => {
            strings(view.root_service, rows, op, &literal_value, regexes, true)
        }
        _ => None,
    }
}

/// Status and kind: only `=` and `!=` compare; `decode` maps a stored code to the enum, as the
/// row evaluator does.
fn codes<T: PartialEq>(
    array: Option<&Int32Array>,
    rows: usize,
    op: BinaryOp,
    want: T,
    decode: fn(i32) -> T,
) -> Option<Vec<bool>> {
    let Some(a) = array else {
        // An absent column is nil: no comparison holds.
        return Some(vec![false; rows]);
    };
    Some(match op {
        BinaryOp::Eq => a.values().iter().map(|&c| decode(c) == want).collect(),
        BinaryOp::Neq => a.values().iter().map(|&c| decode(c) != want).collect(),
        _ => vec![false; rows],
    })
}

/// An integer column against a literal: the ordering of integers when the literal is one,
/// otherwise the general comparison of values.
fn integers(
    rows: usize,
    op: BinaryOp,
    literal: &Value<'_>,
    at: impl Fn(usize) -> i64,
) -> Vec<bool> {
    let want = match literal {
        Value::Int(b) | Value::Duration(b) => *b,
        other => {
            return (0..rows)
                .map(|r| compare(op, &Value::Duration(at(r)), other, &Regexes::new()))
                .collect();
        }
    };
    (0..rows)
        .map(|r| ordering_holds(op, at(r).cmp(&want)))
        .collect()
}

/// A string column against a literal. `null_is_nil`: a null row is nil (no comparison holds)
/// rather than the empty string.
fn strings(
    array: Option<&StringArray>,
    rows: usize,
    op: BinaryOp,
    literal: &Value<'_>,
    regexes: &Regexes,
    null_is_nil: bool,
) -> Option<Vec<bool>> {
    let Some(a) = array else {
        return Some(vec![false; rows]);
    };
    let text = |r: usize| -> Option<&str> {
        if a.is_valid(r) {
            Some(a.value(r))
        } else if null_is_nil {
            None
        } else {
            Some("")
        }
    };
    if let Value::Str(pattern) = literal
        && matches!(op, BinaryOp::Regex | BinaryOp::NotRegex)
    {
        let Some(re) = regexes.get(pattern.as_ref()) else {
            return Some(vec![false; rows]);
        };
        let want = op == BinaryOp::Regex;
        return Some(
            (0..rows)
                .map(|r| text(r).is_some_and(|t| re.is_match(t) == want))
                .collect(),
        );
    }
    Some(
        (0..rows)
            .map(|r| {
                text(r)
                    .is_some_and(|t| compare(op, &Value::Str(Cow::Borrowed(t)), literal, regexes))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use strata_block::traces_to_batch;
    use strata_model::{Resource, Scope, Span, SpanId, SpanKind, StatusCode, TraceId};
    use strata_traceql::{RootExpr, SpansetExpr, Stage};

    use super::*;
    use crate::search::row::{Evaluator, compile_regex};

    /// Spans covering every status and kind code (and codes outside the enums), empty and
    /// missing strings, and a spread of durations, in a few traces (one without a root).
    fn spans() -> Vec<Vec<Span>> {
        let names = ["GET /a", "POST /orders", "", "GET", "select"];
        let messages = ["", "boom", "timeout"];
        (0u8..4)
            .map(|t| {
                (0u8..12)
                    .map(|i| {
                        let n = usize::from(t * 12 + i);
                        Span {
                            trace_id: TraceId([t + 1; 16]),
                            span_id: SpanId([i + 1, t + 1, 0, 0, 0, 0, 0, 1]),
                            parent_span_id: (i > 0 || t == 3)
                                .then(|| SpanId([1, t + 1, 0, 0, 0, 0, 0, 9])),
                            trace_state: String::new(),
                            flags: 0,
                            name: names[n % names.len()].into(),
                            kind: SpanKind([0, 1, 2, 3, 4, 5, 7][n % 7]),
                            start_unix_nano: 1_000_000_000 + n as u64 * 1000,
                            end_unix_nano: 1_000_000_000
                                + n as u64 * 1000
                                + (n as u64 % 9) * 40_000_000,
                            attributes: Vec::new(),
                            dropped_attributes_count: 0,
                            events: Vec::new(),
                            dropped_events_count: 0,
                            links: Vec::new(),
                            dropped_links_count: 0,
                            status_code: StatusCode([0, 1, 2, 5][n % 4]),
                            status_message: messages[n % messages.len()].into(),
                            resource: Arc::new(Resource::default()),
                            scope: Arc::new(Scope::default()),
                        }
                    })
                    .collect()
            })
            .collect()
    }

    fn filter_expr(q: &str) -> FieldExpr {
        let query = strata_traceql::parse(q).unwrap();
        let RootExpr::Spans(p) = query.expr else {
            panic!("{q}")
        };
        let Some(Stage::Spanset(SpansetExpr::Filter(f))) = p.stages.into_iter().next() else {
            panic!("{q}")
        };
        f.expr
    }

    #[test]
    fn columnar_masks_agree_with_the_row_evaluator() {
        let traces = spans();
        let batch = traces_to_batch(traces.iter().map(Vec::as_slice)).unwrap();
        let view = BatchView::new(&batch).unwrap();
        let mut regexes = Regexes::new();
        for p in ["GET .*", "(GET|POST).*", ".*orders"] {
            regexes.insert(p.into(), compile_regex(p).unwrap());
        }
        let columnar = [
            "{ }",
            "{ status = error }",
            "{ status = unset }",
            "{ status != ok }",
            "{ kind = server }",
            "{ kind = unspecified }",
            "{ kind != client && kind != producer }",
            "{ duration > 100ms }",
            "{ duration >= 80ms && duration < 200ms }",
            "{ duration = 0 }",
            "{ duration > 0.05 }",
            "{ traceDuration > 300ms }",
            r#"{ name = "POST /orders" }"#,
            r#"{ name != "" }"#,
            r#"{ name < "H" }"#,
            r#"{ name =~ "GET .*" }"#,
            r#"{ name !~ "(GET|POST).*" || status = error }"#,
            r#"{ statusMessage != "" }"#,
            r#"{ statusMessage = "boom" }"#,
            r#"{ rootName = "GET /a" }"#,
            r#"{ rootServiceName != "x" }"#,
            r#"{ !(status = error) }"#,
            r#"{ !(name =~ ".*orders" && duration > 10ms) }"#,
            "{ status = 2 }",
            "{ kind > server }",
        ];
        let exprs: Vec<FieldExpr> = columnar.iter().map(|q| filter_expr(q)).collect();
        let eval = Evaluator::new(&view, &regexes);
        let mut rows_true = 0;
        for (q, expr) in columnar.iter().zip(&exprs) {
            let mask = filter_mask(&view, expr, &regexes)
                .unwrap_or_else(|| panic!("{q} should be evaluated column by column"));
            assert_eq!(mask.len(), view.rows(), "{q}");
            for (row, &holds) in mask.iter().enumerate() {
                assert_eq!(holds, eval.truth(row, expr), "{q} at row {row}");
                rows_true += usize::from(holds);
            }
        }
        assert!(rows_true > 0 && rows_true < columnar.len() * view.rows());
        for q in [
            r#"{ span.http.method = "GET" }"#,
            "{ .a }",
            "{ status = error && .a }",
            "{ duration * 2 > 1s }",
            "{ name = nil }",
            r#"{ "x" = name }"#,
        ] {
            assert!(
                filter_mask(&view, &filter_expr(q), &regexes).is_none(),
                "{q}"
            );
        }
    }
}
