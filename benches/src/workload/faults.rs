//! Faults applied to a finished span tree: server errors that start at one database, Redis or
//! provider call and travel up to the root as real services would report them, and slow
//! outliers where one call takes 10–50 times longer and everything waiting on it stretches.
//!
//! Working on the finished tree keeps the flows free of fault logic: a flow only describes the
//! happy path (and its expected client errors, such as a 404).

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Status;
use opentelemetry_proto::tonic::trace::v1::span::Event;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;

use super::attrs::{text, upsert};
use super::dice::Dice;
use super::exceptions::{Exception, Source, exception_for};
use super::tree::{Node, Role};

/// The fewest spans a trace may have, faults included.
pub(crate) const MIN_SPANS: usize = 5;

/// Makes one database, Redis or provider call fail, drops the work that would have followed it
/// in the failing request path, and propagates the error to every ancestor. Calls whose removal
/// would leave fewer than [`MIN_SPANS`] spans are skipped. Returns whether a fault was injected.
pub(crate) fn inject_error(nodes: &mut Vec<Node>, dice: &mut Dice) -> bool {
    let candidates: Vec<usize> = (0..nodes.len())
        .filter(|&i| {
            let n = &nodes[i];
            matches!(n.role, Role::Db | Role::Cache | Role::External)
                && !n.detached
                && n.span.status.is_none()
        })
        .collect();
    if candidates.is_empty() {
        return false;
    }
    let first = dice.index(candidates.len());
    for k in 0..candidates.len() {
        let failing = candidates[(first + k) % candidates.len()];
        let keep = survivors(nodes, failing);
        if keep.iter().filter(|&&k| k).count() >= MIN_SPANS {
            fail_at(nodes, failing, &keep, dice);
            return true;
        }
    }
    false
}

/// Which spans still happen when `failing` fails: all but those an ancestor of `failing` would
/// only have started after the failure, and their descendants.
fn survivors(nodes: &[Node], failing: usize) -> Vec<bool> {
    let on_path = ancestors(nodes, failing);
    let mut is_ancestor = vec![false; nodes.len()];
    for &a in &on_path {
        is_ancestor[a] = true;
    }
    let cut = nodes[failing].span.end_time_unix_nano;
    let mut keep = vec![true; nodes.len()];
    for i in 0..nodes.len() {
        // Parents always precede their children, so `keep[p]` is already final here.
        if let Some(p) = nodes[i].parent {
            let late = is_ancestor[p] && nodes[i].span.start_time_unix_nano >= cut;
            keep[i] = keep[p] && !late;
        }
    }
    keep
}

/// The ancestors of `index`, nearest first.
fn ancestors(nodes: &[Node], index: usize) -> Vec<usize> {
    let mut out = Vec::new();
    let mut at = nodes[index].parent;
    while let Some(p) = at {
        out.push(p);
        at = nodes[p].parent;
    }
    out
}

fn fail_at(nodes: &mut Vec<Node>, failing: usize, keep: &[bool], dice: &mut Dice) {
    let source = match nodes[failing].role {
        Role::Db => Source::Postgres,
        Role::Cache => Source::Redis,
        _ => Source::Provider,
    };
    let exception = exception_for(nodes[failing].pod.svc.def().lang, source);
    let status: i64 = if source == Source::Postgres { 500 } else { 503 };
    let grpc_status: i64 = if status == 500 { 13 } else { 14 };

    let leaf = &mut nodes[failing];
    let at = leaf.span.end_time_unix_nano;
    if source == Source::Provider {
        upsert(
            &mut leaf.span.attributes,
            "http.response.status_code",
            Value::IntValue(status),
        );
        leaf.span
            .attributes
            .push(text("error.type", status.to_string()));
        set_error(leaf, "");
    } else {
        leaf.span
            .attributes
            .retain(|kv| kv.key != "db.response.returned_rows");
        leaf.span
            .attributes
            .push(text("error.type", exception.kind));
        leaf.span.events.push(exception_event(exception, at));
        set_error(leaf, exception.message);
    }

    let mut recorded = false;
    for a in ancestors(nodes, failing) {
        let latest_child = (0..nodes.len())
            .filter(|&i| keep[i] && nodes[i].parent == Some(a))
            .map(|i| nodes[i].span.end_time_unix_nano)
            .max()
            .unwrap_or(at);
        let node = &mut nodes[a];
        let end = node
            .span
            .end_time_unix_nano
            .min(latest_child + dice.between(20_000, 400_000));
        node.span.end_time_unix_nano = end;
        node.span.events.retain(|e| e.time_unix_nano <= end);
        match node.role {
            Role::HttpServer | Role::HttpClient => {
                let code = Value::IntValue(status);
                upsert(&mut node.span.attributes, "http.response.status_code", code);
                node.span
                    .attributes
                    .push(text("error.type", status.to_string()));
                set_error(node, "");
            }
            Role::GrpcServer | Role::GrpcClient => {
                let code = Value::IntValue(grpc_status);
                upsert(&mut node.span.attributes, "rpc.grpc.status_code", code);
                set_error(node, exception.message);
            }
            _ => set_error(node, exception.message),
        }
        // The first server span above the failure is where the framework sees the exception.
        if !recorded && matches!(node.role, Role::HttpServer | Role::GrpcServer) {
            let at = end
                .saturating_sub(1_000)
                .max(node.span.start_time_unix_nano);
            node.span.events.push(exception_event(exception, at));
            recorded = true;
        }
    }
    remove_dropped(nodes, keep);
}

fn set_error(node: &mut Node, message: &str) {
    let code = StatusCode::Error as i32;
    node.span.status = Some(Status {
        message: message.to_owned(),
        code,
    });
}

fn exception_event(exception: &Exception, at: u64) -> Event {
    Event {
        time_unix_nano: at,
        name: "exception".to_owned(),
        attributes: vec![
            text("exception.type", exception.kind),
            text("exception.message", exception.message),
            text("exception.stacktrace", exception.stacktrace),
        ],
        dropped_attributes_count: 0,
    }
}

/// Removes the spans not kept, renumbering parent indices.
fn remove_dropped(nodes: &mut Vec<Node>, keep: &[bool]) {
    let mut new_index = vec![usize::MAX; nodes.len()];
    let mut next = 0;
    for (i, &k) in keep.iter().enumerate() {
        if k {
            new_index[i] = next;
            next += 1;
        }
    }
    let mut i = 0;
    nodes.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    for node in nodes.iter_mut() {
        // A kept span's parent is always kept (see `survivors`), so the new index is valid.
        node.parent = node.parent.map(|p| new_index[p]);
    }
}

/// Makes one database or provider call (a Redis call in traces that have neither) 10–50 times
/// slower, delaying everything that started after it and stretching every span that was still
/// running. Returns whether it did.
pub(crate) fn inject_slowness(nodes: &mut [Node], dice: &mut Dice) -> bool {
    let eligible = |roles: &[Role]| -> Vec<usize> {
        (0..nodes.len())
            .filter(|&i| roles.contains(&nodes[i].role) && !nodes[i].detached)
            .collect()
    };
    let mut candidates = eligible(&[Role::Db, Role::External]);
    if candidates.is_empty() {
        candidates = eligible(&[Role::Cache]);
    }
    if candidates.is_empty() {
        return false;
    }
    let slow = candidates[dice.index(candidates.len())];
    let span = &nodes[slow].span;
    let took = span.end_time_unix_nano - span.start_time_unix_nano;
    let delay = took * (dice.between(10, 50) - 1);
    let from = span.end_time_unix_nano;
    for node in nodes.iter_mut() {
        let span = &mut node.span;
        if span.start_time_unix_nano >= from {
            span.start_time_unix_nano += delay;
        }
        if span.end_time_unix_nano >= from {
            span.end_time_unix_nano += delay;
        }
        for event in span.events.iter_mut().filter(|e| e.time_unix_nano >= from) {
            event.time_unix_nano += delay;
        }
    }
    took > 0
}
