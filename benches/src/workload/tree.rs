//! The span tree of one trace while a flow builds it.
//!
//! Building follows a single clock, `now`: opening a span starts it at `now`, time passes as
//! the flow does work, closing a span ends it at `now`. Children therefore nest inside their
//! parents by construction, and a slow child pushes back everything after it. Parallel calls
//! rewind the clock to the fork point for each branch and continue from the latest branch end.

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link, SpanKind};
use opentelemetry_proto::tonic::trace::v1::{Span, Status, status::StatusCode};

use super::dice::Dice;
use super::services::{Pod, Svc};

/// `flags` of a span whose parent lives in the same process: sampled, parent known local.
const FLAGS_LOCAL_PARENT: u32 = 0x101;
/// `flags` of a span whose parent (or linked span) is in another process: sampled, remote.
pub(crate) const FLAGS_REMOTE_PARENT: u32 = 0x301;

/// What part a span plays; decides where faults can start and how they travel upwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    HttpServer,
    HttpClient,
    GrpcServer,
    GrpcClient,
    Db,
    Cache,
    /// An HTTP call to a system outside the shop (payment provider, mail relay).
    External,
    Producer,
    Consumer,
    Internal,
}

/// One span with what the generator needs to know about it.
pub(crate) struct Node {
    pub(crate) span: Span,
    /// Index of the parent node; `None` for the root.
    pub(crate) parent: Option<usize>,
    pub(crate) pod: Pod,
    /// Index into the scope table.
    pub(crate) scope: u16,
    pub(crate) role: Role,
    /// Whether the span runs asynchronously to the request (a message consumer or below it).
    pub(crate) detached: bool,
}

/// What a new span is, before it has IDs and times.
pub(crate) struct Opening {
    pub(crate) pod: Pod,
    pub(crate) scope: u16,
    pub(crate) role: Role,
    pub(crate) kind: SpanKind,
    pub(crate) name: String,
    pub(crate) attributes: Vec<KeyValue>,
}

/// The start of a group of parallel branches and the latest end among them so far.
#[derive(Clone, Copy)]
pub(crate) struct Fork {
    start: u64,
    end: u64,
}

/// A trace under construction.
pub(crate) struct TraceBuilder<'d> {
    pub(crate) dice: &'d mut Dice,
    pub(crate) trace_id: [u8; 16],
    /// The clock, in Unix nanoseconds.
    pub(crate) now: u64,
    pub(crate) nodes: Vec<Node>,
    /// Open spans, innermost last.
    stack: Vec<usize>,
}

impl<'d> TraceBuilder<'d> {
    /// An empty trace whose first span will start at `start`.
    pub(crate) fn new(dice: &'d mut Dice, start: u64) -> Self {
        let trace_id = dice.trace_id();
        Self {
            dice,
            trace_id,
            now: start,
            nodes: Vec::with_capacity(64),
            stack: Vec::new(),
        }
    }

    /// Starts a span at `now`, as a child of the innermost open span, and makes it innermost.
    pub(crate) fn open(&mut self, o: Opening) -> usize {
        let parent = self.stack.last().copied();
        let parent_node = parent.map(|p| &self.nodes[p]);
        let flags = match parent_node {
            Some(p) if p.pod != o.pod => FLAGS_REMOTE_PARENT,
            _ => FLAGS_LOCAL_PARENT,
        };
        let detached = o.role == Role::Consumer || parent_node.is_some_and(|p| p.detached);
        let parent_span_id = parent_node
            .map(|p| p.span.span_id.clone())
            .unwrap_or_default();
        let span = Span {
            trace_id: self.trace_id.to_vec(),
            span_id: self.dice.span_id().to_vec(),
            parent_span_id,
            flags,
            name: o.name,
            kind: o.kind as i32,
            start_time_unix_nano: self.now,
            end_time_unix_nano: self.now,
            attributes: o.attributes,
            ..Default::default()
        };
        let node = Node {
            span,
            parent,
            pod: o.pod,
            scope: o.scope,
            role: o.role,
            detached,
        };
        self.nodes.push(node);
        let index = self.nodes.len() - 1;
        self.stack.push(index);
        index
    }

    /// Ends the innermost open span at `now`.
    pub(crate) fn close(&mut self) {
        if let Some(index) = self.stack.pop() {
            self.nodes[index].span.end_time_unix_nano = self.now;
        }
    }

    /// Lets between `lo` and `hi` nanoseconds pass, usually nearer `lo`.
    pub(crate) fn pass(&mut self, lo: u64, hi: u64) {
        self.now += self.dice.skewed(lo, hi);
    }

    /// The pod running the innermost open span.
    pub(crate) fn here(&self) -> Pod {
        let top = self.stack.last().map(|&i| self.nodes[i].pod);
        top.unwrap_or(Pod {
            svc: Svc::Frontend,
            replica: 0,
        })
    }

    /// A replica of `svc` chosen by the load balancer.
    pub(crate) fn pod_of(&mut self, svc: Svc) -> Pod {
        let replica = self.dice.below(u64::from(svc.def().replicas)) as u8;
        Pod { svc, replica }
    }

    /// Adds an attribute to span `index`.
    pub(crate) fn add(&mut self, index: usize, kv: KeyValue) {
        self.nodes[index].span.attributes.push(kv);
    }

    /// Sets an attribute of span `index`, replacing an earlier value of the same key.
    pub(crate) fn set(&mut self, index: usize, kv: KeyValue) {
        let attributes = &mut self.nodes[index].span.attributes;
        match attributes.iter_mut().find(|a| a.key == kv.key) {
            Some(old) => *old = kv,
            None => attributes.push(kv),
        }
    }

    /// Sets span `index`'s status to ERROR with `message`.
    pub(crate) fn fail(&mut self, index: usize, message: &str) {
        let code = StatusCode::Error as i32;
        self.nodes[index].span.status = Some(Status {
            message: message.to_owned(),
            code,
        });
    }

    /// Records an event on span `index` at `now`.
    pub(crate) fn event(&mut self, index: usize, name: &str, attributes: Vec<KeyValue>) {
        let event = Event {
            time_unix_nano: self.now,
            name: name.to_owned(),
            attributes,
            dropped_attributes_count: 0,
        };
        self.nodes[index].span.events.push(event);
    }

    /// Links span `index` to a span in another process.
    pub(crate) fn link(&mut self, index: usize, trace_id: &[u8], span_id: &[u8]) {
        let link = Link {
            trace_id: trace_id.to_vec(),
            span_id: span_id.to_vec(),
            flags: FLAGS_REMOTE_PARENT,
            ..Default::default()
        };
        self.nodes[index].span.links.push(link);
    }

    /// Marks `now` as the start of parallel branches.
    pub(crate) fn fork(&self) -> Fork {
        Fork {
            start: self.now,
            end: self.now,
        }
    }

    /// Runs `branch` starting shortly after the fork point, concurrently with its siblings.
    pub(crate) fn branch(&mut self, fork: &mut Fork, branch: impl FnOnce(&mut Self)) {
        self.now = fork.start + self.dice.between(2_000, 40_000);
        branch(self);
        fork.end = fork.end.max(self.now);
    }

    /// Continues after the last of the parallel branches has finished.
    pub(crate) fn join(&mut self, fork: Fork) {
        self.now = fork.end;
    }

    /// Runs `work` as asynchronous follow-up of span `parent`, starting at `start`, outside the
    /// request's own timeline; the clock and open spans are restored afterwards.
    pub(crate) fn detached(&mut self, parent: usize, start: u64, work: impl FnOnce(&mut Self)) {
        let saved_now = self.now;
        let saved_stack = std::mem::replace(&mut self.stack, vec![parent]);
        self.now = start;
        work(self);
        self.now = saved_now;
        self.stack = saved_stack;
    }
}
