//! `strata trace` output: a trace as an indented tree, one span a line — service, operation,
//! duration — children in start order, errors and slow spans marked.
//!
//! A span is marked **slow** when either holds:
//! * among its peers in the trace — spans of the same operation (service and span name), or else
//!   calls to the same kind of database (`db.system.name` / `db.system`) — of which there are at
//!   least 3, it took at least 3× the median duration; or
//! * it took more than half of its parent's time, most of that time was its own (not spent in
//!   its children), and it accounts for at least 20% of the whole trace — the span where the
//!   request actually spent its time, not the spans that merely waited for it.

use std::collections::HashMap;
use std::fmt::Write;

use strata_model::{Span, SpanId, SpanKind, StatusCode};

/// Renders the trace. `spans` must be non-empty and share a trace ID.
pub fn render(spans: &[Span]) -> String {
    let mut spans: Vec<&Span> = spans.iter().collect();
    spans.sort_by_key(|s| (s.start_unix_nano, s.span_id));
    let ids: HashMap<SpanId, usize> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| (s.span_id, i))
        .collect();
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s.parent_span_id.and_then(|p| ids.get(&p)) {
            Some(&p) if p != i => children[p].push(i),
            _ => roots.push(i),
        }
    }
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let end = spans.iter().map(|s| s.end_unix_nano).max().unwrap_or(start);
    let total = end.saturating_sub(start).max(1);
    let slow = slow_marks(&spans, &children, total);
    let services: std::collections::BTreeSet<&str> =
        spans.iter().filter_map(|s| s.service_name()).collect();
    let errors = spans.iter().filter(|s| s.is_error()).count();

    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {} — {} spans, {} services, {}{}",
        spans[0].trace_id,
        spans.len(),
        services.len(),
        duration(total),
        match errors {
            0 => String::new(),
            1 => ", 1 error".to_owned(),
            n => format!(", {n} errors"),
        }
    );
    let mut visited = vec![false; spans.len()];
    let mut stack: Vec<(usize, String, bool)> = roots
        .iter()
        .rev()
        .map(|&r| (r, String::new(), true))
        .collect();
    let mut first = true;
    while let Some((i, prefix, last)) = stack.pop() {
        if std::mem::replace(&mut visited[i], true) {
            continue;
        }
        let s = spans[i];
        let is_root = prefix.is_empty() && first;
        first = false;
        let branch = if prefix.is_empty() && roots.contains(&i) {
            ""
        } else if last {
            "└─ "
        } else {
            "├─ "
        };
        let _ = write!(
            out,
            "{prefix}{branch}{}  {}  {}",
            s.service_name().unwrap_or("<unknown service>"),
            s.name,
            duration(s.duration_nanos())
        );
        if s.parent_span_id.is_some() && is_root {
            out.push_str("  (parent not received)");
        }
        if s.kind == SpanKind::CLIENT || s.kind == SpanKind::PRODUCER {
            out.push_str(if s.kind == SpanKind::CLIENT {
                "  →"
            } else {
                "  ⇢"
            });
        }
        if s.status_code == StatusCode::ERROR {
            let _ = write!(
                out,
                "  ✗ ERROR{}",
                if s.status_message.is_empty() {
                    String::new()
                } else {
                    format!(": {}", s.status_message)
                }
            );
        }
        if let Some(why) = &slow[i] {
            let _ = write!(out, "  ⚠ SLOW ({why})");
        }
        out.push('\n');
        let child_prefix = if branch.is_empty() {
            prefix.clone()
        } else {
            format!("{prefix}{}", if last { "   " } else { "│  " })
        };
        let kids = &children[i];
        for (n, &c) in kids.iter().enumerate().rev() {
            stack.push((c, child_prefix.clone(), n + 1 == kids.len()));
        }
    }
    out
}

/// Why each span is slow, if it is (see the module docs for the rule).
fn slow_marks(spans: &[&Span], children: &[Vec<usize>], total: u64) -> Vec<Option<String>> {
    let peers = Peers::of(spans);
    let mut parent_of = vec![None; spans.len()];
    for (p, kids) in children.iter().enumerate() {
        for &c in kids {
            parent_of[c] = Some(p);
        }
    }
    spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = s.duration_nanos();
            if let Some(why) = peers.outlier(s) {
                return Some(why);
            }
            let parent = parent_of[i]?;
            let parent_d = spans[parent].duration_nanos();
            let own = d.saturating_sub(busy_time(spans, &children[i]));
            let dominant = parent_d > 0 && d * 2 > parent_d;
            (dominant && own * 2 > d && d * 5 >= total).then(|| {
                format!(
                    "{:.0}% of its parent's time",
                    100.0 * d as f64 / parent_d as f64
                )
            })
        })
        .collect()
}

/// Durations of each span's peers: the same operation, or calls to the same database system.
struct Peers<'a> {
    operations: HashMap<(Option<&'a str>, &'a str), Vec<u64>>,
    databases: HashMap<&'a str, Vec<u64>>,
}

fn db_system(span: &Span) -> Option<&str> {
    span.attributes
        .iter()
        .find(|kv| kv.key == "db.system.name" || kv.key == "db.system")
        .and_then(|kv| kv.value.as_str())
}

impl<'a> Peers<'a> {
    fn of(spans: &[&'a Span]) -> Self {
        let mut peers = Self {
            operations: HashMap::new(),
            databases: HashMap::new(),
        };
        for s in spans {
            peers
                .operations
                .entry((s.service_name(), s.name.as_str()))
                .or_default()
                .push(s.duration_nanos());
            if let Some(system) = db_system(s) {
                peers
                    .databases
                    .entry(system)
                    .or_default()
                    .push(s.duration_nanos());
            }
        }
        for list in peers
            .operations
            .values_mut()
            .chain(peers.databases.values_mut())
        {
            list.sort_unstable();
        }
        peers
    }

    fn outlier(&self, span: &Span) -> Option<String> {
        let d = span.duration_nanos();
        let check = |list: &Vec<u64>, what: String| {
            let median = list[list.len() / 2];
            (list.len() >= 3 && median > 0 && d >= 3 * median).then(|| {
                format!(
                    "{:.0}× the median {} of {} {what}",
                    d as f64 / median as f64,
                    duration(median),
                    list.len()
                )
            })
        };
        let operation = &self.operations[&(span.service_name(), span.name.as_str())];
        check(operation, "such spans".to_owned()).or_else(|| {
            let system = db_system(span)?;
            check(&self.databases[system], format!("{system} calls"))
        })
    }
}

/// Time covered by the union of the given spans' intervals.
fn busy_time(spans: &[&Span], kids: &[usize]) -> u64 {
    let mut intervals: Vec<(u64, u64)> = kids
        .iter()
        .map(|&k| (spans[k].start_unix_nano, spans[k].end_unix_nano))
        .collect();
    intervals.sort_unstable();
    let (mut busy, mut current) = (0u64, None::<(u64, u64)>);
    for (s, e) in intervals {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                busy += ce.saturating_sub(cs);
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    busy + current.map_or(0, |(s, e)| e.saturating_sub(s))
}

/// A duration with three significant digits: `812 µs`, `12.3 ms`, `1.23 s`.
pub fn duration(nanos: u64) -> String {
    let n = nanos as f64;
    let (value, unit) = match nanos {
        0..1_000 => return format!("{nanos} ns"),
        1_000..1_000_000 => (n / 1e3, "µs"),
        1_000_000..1_000_000_000 => (n / 1e6, "ms"),
        _ => (n / 1e9, "s"),
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use strata_model::{KeyValue, Resource, Scope, TraceId};

    fn span(
        id: u8,
        parent: Option<u8>,
        service: &str,
        name: &str,
        start_ms: u64,
        end_ms: u64,
    ) -> Span {
        Span {
            trace_id: TraceId([9; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: parent.map(|p| SpanId([p; 8])),
            trace_state: String::new(),
            flags: 0,
            name: name.into(),
            kind: SpanKind::SERVER,
            start_unix_nano: start_ms * 1_000_000,
            end_unix_nano: end_ms * 1_000_000,
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status_code: StatusCode::UNSET,
            status_message: String::new(),
            resource: Arc::new(Resource {
                attributes: vec![KeyValue::str("service.name", service)],
                ..Default::default()
            }),
            scope: Arc::new(Scope::default()),
        }
    }

    #[test]
    fn tree_with_error_and_slow_spans() {
        let mut failing = span(6, Some(1), "payment", "charge", 20, 30);
        failing.status_code = StatusCode::ERROR;
        failing.status_message = "card declined".into();
        let spans = vec![
            span(1, None, "gateway", "POST /checkout", 0, 1000),
            span(2, Some(1), "db", "SELECT", 1, 3),
            span(3, Some(1), "db", "SELECT", 4, 6),
            span(4, Some(1), "db", "SELECT", 7, 9),
            span(5, Some(1), "db", "SELECT", 10, 19),
            failing,
            span(7, Some(1), "psp", "authorize", 31, 990),
        ];
        let text = render(&spans);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].contains("7 spans, 4 services, 1.00 s, 1 error"),
            "{text}"
        );
        assert!(
            lines[1].starts_with("gateway  POST /checkout  1.00 s"),
            "{text}"
        );
        assert!(lines[2].starts_with("├─ db  SELECT  2.00 ms"), "{text}");
        assert!(
            lines[5].contains("⚠ SLOW (4× the median 2.00 ms of 4 such spans)"),
            "{text}"
        );
        assert!(lines[6].contains("✗ ERROR: card declined"), "{text}");
        assert!(
            lines[7].starts_with("└─ psp  authorize  959 ms  ⚠ SLOW (96% of its parent's time)"),
            "{text}"
        );
        assert!(!lines[1].contains("SLOW"), "{text}");
    }

    #[test]
    fn a_database_call_far_slower_than_its_peers_is_slow() {
        let db = |id: u8, name: &str, start: u64, end: u64| {
            let mut s = span(id, Some(1), "shop", name, start, end);
            s.attributes
                .push(KeyValue::str("db.system.name", "postgresql"));
            s
        };
        let spans = vec![
            span(1, None, "shop", "GET /", 0, 100),
            db(2, "SELECT a", 1, 2),
            db(3, "SELECT b", 3, 4),
            db(4, "UPDATE c", 5, 6),
            db(5, "INSERT d", 10, 40),
        ];
        let text = render(&spans);
        let line = text.lines().find(|l| l.contains("INSERT d")).unwrap();
        assert!(
            line.contains("SLOW (30× the median 1.00 ms of 4 postgresql calls)"),
            "{text}"
        );
        assert!(
            !text
                .lines()
                .any(|l| l.contains("SELECT a") && l.contains("SLOW")),
            "{text}"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(999), "999 ns");
        assert_eq!(duration(812_000), "812 µs");
        assert_eq!(duration(12_340_000), "12.3 ms");
        assert_eq!(duration(1_234_000_000), "1.23 s");
    }
}
