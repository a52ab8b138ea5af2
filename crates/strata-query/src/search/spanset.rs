//! Running a TraceQL pipeline over the candidate spans of one trace.
//!
//! Each span carries a bit mask of the `{ }` filters it satisfies (computed row by row), and its
//! nested-set numbers. Spanset operators and pipeline stages then work on small index lists:
//! structural relations are integer comparisons on nested sets (`A` is an ancestor of `B` when
//! `A.left < B.left` and `B.right < A.right`), sorted and searched, never walked.

use std::collections::{HashMap, HashSet};

use strata_traceql::{
    AggregateFn, FieldExpr, Pipeline, ScalarExpr, ScalarFilter, SpansetExpr, SpansetOp, Stage,
};

use super::plan::Plan;
use super::row::{Evaluator, Value, compare, static_value};

/// One candidate span of a trace.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cand {
    pub(crate) row: usize,
    pub(crate) mask: u64,
    pub(crate) left: i32,
    pub(crate) right: i32,
    pub(crate) parent: i32,
}

/// A spanset of one trace: indices into the trace's candidates, ascending, and the `by()`
/// values that formed it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Group {
    pub(crate) spans: Vec<usize>,
    pub(crate) labels: Vec<(String, Value<'static>)>,
}

/// Evaluates pipelines over one trace's candidates.
pub(crate) struct TraceEval<'e, 'v, 'a> {
    pub(crate) plan: &'e Plan,
    pub(crate) eval: &'e Evaluator<'v, 'a>,
    pub(crate) cands: &'e [Cand],
}

impl<'a> TraceEval<'_, '_, 'a> {
    /// The spansets the whole pipeline yields for the trace (none: no match).
    pub(crate) fn run(&self, pipeline: &'a Pipeline) -> Vec<Group> {
        let all = Group {
            spans: (0..self.cands.len()).collect(),
            labels: Vec::new(),
        };
        self.pipeline(pipeline, vec![all])
    }

    fn pipeline(&self, pipeline: &'a Pipeline, mut groups: Vec<Group>) -> Vec<Group> {
        for stage in &pipeline.stages {
            if groups.is_empty() {
                break;
            }
            groups = self.stage(stage, groups);
        }
        groups
    }

    fn stage(&self, stage: &'a Stage, groups: Vec<Group>) -> Vec<Group> {
        match stage {
            Stage::Spanset(expr) => groups
                .into_iter()
                .filter_map(|g| {
                    let spans = self.spanset(expr, &g.spans);
                    (!spans.is_empty()).then_some(Group {
                        spans,
                        labels: g.labels,
                    })
                })
                .collect(),
            Stage::ScalarFilter(f) => groups
                .into_iter()
                .filter(|g| self.scalar_filter(f, &g.spans))
                .collect(),
            Stage::GroupBy(expr, _) => {
                let label = format!("by({expr})");
                let mut out = Vec::new();
                for g in groups {
                    let mut split: Vec<(String, Group)> = Vec::new();
                    let mut index: HashMap<String, usize> = HashMap::new();
                    for &i in &g.spans {
                        let value = self.eval.value(self.cands[i].row, expr).into_owned();
                        let key = value.group_key();
                        let slot = *index.entry(key.clone()).or_insert_with(|| {
                            let mut labels = g.labels.clone();
                            labels.push((label.clone(), value));
                            split.push((
                                key,
                                Group {
                                    spans: Vec::new(),
                                    labels,
                                },
                            ));
                            split.len() - 1
                        });
                        split[slot].1.spans.push(i);
                    }
                    out.extend(split.into_iter().map(|(_, g)| g));
                }
                out
            }
            Stage::Coalesce(_) => {
                let mut spans: Vec<usize> = groups.into_iter().flat_map(|g| g.spans).collect();
                spans.sort_unstable();
                spans.dedup();
                vec![Group {
                    spans,
                    labels: Vec::new(),
                }]
            }
            // What select returns is decided by the plan; the spans stay as they are. A
            // trailing aggregate is refused by the plan.
            Stage::Select(..) | Stage::Aggregate { .. } => groups,
        }
    }

    fn scalar_filter(&self, f: &'a ScalarFilter, spans: &[usize]) -> bool {
        let l = self.scalar(&f.lhs, spans);
        let r = self.scalar(&f.rhs, spans);
        compare(f.op, &l, &r, &self.plan.regexes)
    }

    fn scalar(&self, e: &'a ScalarExpr, spans: &[usize]) -> Value<'a> {
        match e {
            ScalarExpr::Static(s, _) => static_value(s),
            ScalarExpr::Aggregate { func, arg, .. } => self.aggregate(*func, arg.as_ref(), spans),
            // Refused by the plan.
            ScalarExpr::Binary { .. } | ScalarExpr::Pipeline(..) => Value::Nil,
        }
    }

    fn aggregate(
        &self,
        func: AggregateFn,
        arg: Option<&'a FieldExpr>,
        spans: &[usize],
    ) -> Value<'a> {
        let Some(arg) = arg else {
            return Value::Int(spans.len() as i64);
        };
        if func == AggregateFn::Count {
            return Value::Int(spans.len() as i64);
        }
        let mut duration = false;
        let mut all_int = true;
        let mut values = Vec::with_capacity(spans.len());
        for &i in spans {
            match self.eval.value(self.cands[i].row, arg) {
                Value::Int(v) => values.push(v as f64),
                Value::Duration(v) => {
                    duration = true;
                    values.push(v as f64);
                }
                Value::Float(v) => {
                    all_int = false;
                    values.push(v);
                }
                _ => {}
            }
        }
        if values.is_empty() {
            return Value::Nil;
        }
        let v = match func {
            AggregateFn::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
            AggregateFn::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            AggregateFn::Sum => values.iter().sum(),
            AggregateFn::Avg => values.iter().sum::<f64>() / values.len() as f64,
            AggregateFn::Count => values.len() as f64,
        };
        let exact = all_int && func != AggregateFn::Avg;
        match (duration, exact) {
            (true, true) => Value::Duration(v as i64),
            (false, true) => Value::Int(v as i64),
            _ => Value::Float(v),
        }
    }

    fn spanset(&self, expr: &'a SpansetExpr, input: &[usize]) -> Vec<usize> {
        match expr {
            SpansetExpr::Filter(f) => {
                // The plan numbers the filters of the query it was made from; a filter it does
                // not know (a query rebuilt after planning) matches nothing rather than being
                // read as another filter's bit (review E5).
                let Some(&bit) = self.plan.filter_bits.get(&(f as *const _ as usize)) else {
                    tracing::error!("a search filter is not in its plan; it matches nothing");
                    return Vec::new();
                };
                input
                    .iter()
                    .copied()
                    .filter(|&i| self.cands[i].mask & (1u64 << bit) != 0)
                    .collect()
            }
            SpansetExpr::Pipeline(p, _) => {
                let groups = self.pipeline(
                    p,
                    vec![Group {
                        spans: input.to_vec(),
                        labels: Vec::new(),
                    }],
                );
                let mut spans: Vec<usize> = groups.into_iter().flat_map(|g| g.spans).collect();
                spans.sort_unstable();
                spans.dedup();
                spans
            }
            SpansetExpr::Op { op, lhs, rhs, .. } => {
                let l = self.spanset(lhs, input);
                // Every operator but `||` needs spans on the left: relations (negated ones too)
                // are to left-hand spans.
                if l.is_empty() && *op != SpansetOp::Or {
                    return Vec::new();
                }
                let r = self.spanset(rhs, input);
                self.combine(*op, &l, &r)
            }
        }
    }

    fn combine(&self, op: SpansetOp, l: &[usize], r: &[usize]) -> Vec<usize> {
        let keep = |rel: Relation, from: &[usize], to: &[usize], want: bool| -> Vec<usize> {
            let related = self.related(rel, from, to);
            to.iter()
                .zip(related)
                .filter(|(_, m)| *m == want)
                .map(|(i, _)| *i)
                .collect()
        };
        let union_of = |a: Vec<usize>, b: Vec<usize>| {
            let mut all: Vec<usize> = a.into_iter().chain(b).collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        match op {
            SpansetOp::And if l.is_empty() || r.is_empty() => Vec::new(),
            SpansetOp::And | SpansetOp::Or => union_of(l.to_vec(), r.to_vec()),
            SpansetOp::Descendant => keep(Relation::Descendant, l, r, true),
            SpansetOp::Child => keep(Relation::Child, l, r, true),
            SpansetOp::Ancestor => keep(Relation::Ancestor, l, r, true),
            SpansetOp::Parent => keep(Relation::Parent, l, r, true),
            SpansetOp::Sibling => keep(Relation::Sibling, l, r, true),
            SpansetOp::NotDescendant => keep(Relation::Descendant, l, r, false),
            SpansetOp::NotChild => keep(Relation::Child, l, r, false),
            SpansetOp::NotAncestor => keep(Relation::Ancestor, l, r, false),
            SpansetOp::NotParent => keep(Relation::Parent, l, r, false),
            SpansetOp::NotSibling => keep(Relation::Sibling, l, r, false),
            SpansetOp::UnionDescendant => union_of(
                keep(Relation::Descendant, l, r, true),
                keep(Relation::Ancestor, r, l, true),
            ),
            SpansetOp::UnionChild => union_of(
                keep(Relation::Child, l, r, true),
                keep(Relation::Parent, r, l, true),
            ),
            SpansetOp::UnionAncestor => union_of(
                keep(Relation::Ancestor, l, r, true),
                keep(Relation::Descendant, r, l, true),
            ),
            SpansetOp::UnionParent => union_of(
                keep(Relation::Parent, l, r, true),
                keep(Relation::Child, r, l, true),
            ),
            SpansetOp::UnionSibling => union_of(
                keep(Relation::Sibling, l, r, true),
                keep(Relation::Sibling, r, l, true),
            ),
        }
    }

    /// For each span of `to`: does it stand in `rel` to some span of `from`?
    fn related(&self, rel: Relation, from: &[usize], to: &[usize]) -> Vec<bool> {
        let c = self.cands;
        match rel {
            Relation::Descendant => {
                // The outermost intervals of `from`; nested sets never partly overlap.
                let mut outer: Vec<(i32, i32)> =
                    from.iter().map(|&i| (c[i].left, c[i].right)).collect();
                outer.sort_unstable();
                let mut maximal: Vec<(i32, i32)> = Vec::new();
                for (l, r) in outer {
                    match maximal.last() {
                        Some(&(_, end)) if l < end => {}
                        _ => maximal.push((l, r)),
                    }
                }
                to.iter()
                    .map(|&i| {
                        let left = c[i].left;
                        let k = maximal.partition_point(|&(l, _)| l < left);
                        k > 0 && left < maximal[k - 1].1
                    })
                    .collect()
            }
            Relation::Ancestor => {
                let mut lefts: Vec<i32> = from.iter().map(|&i| c[i].left).collect();
                lefts.sort_unstable();
                to.iter()
                    .map(|&i| {
                        let k = lefts.partition_point(|&l| l <= c[i].left);
                        k < lefts.len() && lefts[k] < c[i].right
                    })
                    .collect()
            }
            Relation::Child => {
                let lefts: HashSet<i32> = from.iter().map(|&i| c[i].left).collect();
                to.iter()
                    .map(|&i| c[i].parent != 0 && lefts.contains(&c[i].parent))
                    .collect()
            }
            Relation::Parent => {
                let parents: HashSet<i32> = from
                    .iter()
                    .map(|&i| c[i].parent)
                    .filter(|&p| p != 0)
                    .collect();
                to.iter().map(|&i| parents.contains(&c[i].left)).collect()
            }
            Relation::Sibling => {
                let mut by_parent: HashMap<i32, Vec<i32>> = HashMap::new();
                for &i in from {
                    if c[i].parent != 0 {
                        by_parent.entry(c[i].parent).or_default().push(c[i].left);
                    }
                }
                to.iter()
                    .map(|&i| {
                        c[i].parent != 0
                            && by_parent
                                .get(&c[i].parent)
                                .is_some_and(|s| s.iter().any(|&l| l != c[i].left))
                    })
                    .collect()
            }
        }
    }
}

/// How a span stands to another.
#[derive(Debug, Clone, Copy)]
enum Relation {
    Descendant,
    Ancestor,
    Child,
    Parent,
    Sibling,
}
