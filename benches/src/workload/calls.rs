//! The kinds of work a flow is made of — HTTP and gRPC hops, database and Redis calls, calls to
//! outside providers, Kafka publishes, internal steps — each producing the spans and semantic-
//! convention attributes that real OpenTelemetry instrumentation would.
//!
//! Latencies (nanoseconds) are drawn skewed towards the fast end of each range.

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;

use super::attrs::{KAFKA_HOST, POSTGRES_HOST, REDIS_HOST, Sql, attrs, int, text};
use super::services::{Instr, Svc, app_scope_of, client_user_agent, scope_of};
use super::tree::{Opening, Role, TraceBuilder};

/// An HTTP request between two of the shop's services.
pub(crate) struct Http {
    pub(crate) method: &'static str,
    /// The route template, e.g. `/products/{id}`.
    pub(crate) route: &'static str,
    /// The concrete path, e.g. `/products/4711`.
    pub(crate) path: String,
}

/// A gRPC method, e.g. `inventory.v1.InventoryService` / `ReserveStock`.
#[derive(Clone, Copy)]
pub(crate) struct Rpc {
    pub(crate) service: &'static str,
    pub(crate) method: &'static str,
}

impl TraceBuilder<'_> {
    /// A CLIENT span in the current service and a SERVER span in a replica of `to`, which runs
    /// `serve` (given the server span's index) and answers with the status code it returns.
    pub(crate) fn http_call(
        &mut self,
        to: Svc,
        req: Http,
        serve: impl FnOnce(&mut Self, usize) -> i64,
    ) -> i64 {
        let from = self.here();
        let callee = self.pod_of(to);
        let def = to.def();
        let client = self.open(Opening {
            pod: from,
            scope: scope_of(from.svc, Instr::HttpClient),
            role: Role::HttpClient,
            kind: SpanKind::Client,
            name: req.method.to_owned(),
            attributes: attrs![
                text("http.request.method", req.method),
                text(
                    "url.full",
                    format!("http://{}:{}{}", def.name, def.port, req.path)
                ),
                text("server.address", def.name),
                int("server.port", def.port),
                text("network.protocol.version", "1.1"),
            ],
        });
        self.pass(150_000, 900_000);
        let server = self.open(Opening {
            pod: callee,
            scope: scope_of(to, Instr::HttpServer),
            role: Role::HttpServer,
            kind: SpanKind::Server,
            name: format!("{} {}", req.method, req.route),
            attributes: attrs![
                text("http.request.method", req.method),
                text("http.route", req.route),
                text("url.path", req.path),
                text("url.scheme", "http"),
                text("server.address", def.name),
                int("server.port", def.port),
                text("network.protocol.version", "1.1"),
                text("client.address", from.ip()),
                text(
                    "user_agent.original",
                    client_user_agent(from.svc.def().lang)
                ),
            ],
        });
        self.pass(20_000, 250_000);
        let status = serve(self, server);
        self.pass(10_000, 150_000);
        self.add(server, int("http.response.status_code", status));
        self.close();
        self.pass(100_000, 700_000);
        self.add(client, int("http.response.status_code", status));
        if status >= 400 {
            // Client spans treat every 4xx and 5xx as an error; server spans only 5xx.
            self.add(client, text("error.type", status.to_string()));
            self.fail(client, "");
        }
        self.close();
        status
    }

    /// A gRPC CLIENT span in the current service and the SERVER span in a replica of `to`.
    pub(crate) fn grpc_call(&mut self, to: Svc, rpc: Rpc, serve: impl FnOnce(&mut Self, usize)) {
        let from = self.here();
        let callee = self.pod_of(to);
        let name = format!("{}/{}", rpc.service, rpc.method);
        let attributes = attrs![
            text("rpc.system", "grpc"),
            text("rpc.service", rpc.service),
            text("rpc.method", rpc.method),
            text("server.address", to.def().name),
            int("server.port", to.def().port),
        ];
        let client = self.open(Opening {
            pod: from,
            scope: scope_of(from.svc, Instr::Grpc),
            role: Role::GrpcClient,
            kind: SpanKind::Client,
            name: name.clone(),
            attributes: attributes.clone(),
        });
        self.pass(80_000, 500_000);
        let server = self.open(Opening {
            pod: callee,
            scope: scope_of(to, Instr::Grpc),
            role: Role::GrpcServer,
            kind: SpanKind::Server,
            name,
            attributes,
        });
        self.add(server, text("client.address", from.ip()));
        self.pass(10_000, 120_000);
        serve(self, server);
        self.pass(5_000, 80_000);
        self.add(server, int("rpc.grpc.status_code", 0));
        self.close();
        self.pass(60_000, 400_000);
        self.add(client, int("rpc.grpc.status_code", 0));
        self.close();
    }

    /// A PostgreSQL statement returning `rows` rows (`None` for writes).
    pub(crate) fn query(&mut self, sql: &Sql, rows: Option<i64>) -> usize {
        self.pass(5_000, 60_000);
        let pod = self.here();
        let span = self.open(Opening {
            pod,
            scope: scope_of(pod.svc, Instr::Postgres),
            role: Role::Db,
            kind: SpanKind::Client,
            name: sql.name.to_owned(),
            attributes: attrs![
                text("db.system.name", "postgresql"),
                text("db.namespace", "shop"),
                text("db.operation.name", sql.op),
                text("db.collection.name", sql.table),
                text("db.query.text", sql.text),
                text("server.address", POSTGRES_HOST),
                int("server.port", 5432),
            ],
        });
        match rows {
            Some(rows) => {
                self.pass(200_000, 3_000_000 + 20_000 * rows as u64);
                self.add(span, int("db.response.returned_rows", rows));
            }
            None => self.pass(400_000, 5_000_000),
        }
        self.close();
        span
    }

    /// A Redis command on `key`; `args` is what the instrumentation shows of the arguments.
    pub(crate) fn redis(&mut self, command: &str, key: &str, args: &str) -> usize {
        self.pass(5_000, 40_000);
        let pod = self.here();
        let statement = if args.is_empty() {
            format!("{command} {key}")
        } else {
            format!("{command} {key} {args}")
        };
        let span = self.open(Opening {
            pod,
            scope: scope_of(pod.svc, Instr::Redis),
            role: Role::Cache,
            kind: SpanKind::Client,
            name: command.to_owned(),
            attributes: attrs![
                text("db.system.name", "redis"),
                text("db.namespace", "0"),
                text("db.operation.name", command),
                text("db.query.text", statement),
                text("server.address", REDIS_HOST),
                int("server.port", 6379),
            ],
        });
        self.pass(50_000, 1_000_000);
        self.close();
        span
    }

    /// An HTTPS call to a provider outside the shop, taking between `lo` and `hi` nanoseconds.
    pub(crate) fn external(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        lo: u64,
        hi: u64,
    ) -> usize {
        self.pass(10_000, 80_000);
        let pod = self.here();
        let span = self.open(Opening {
            pod,
            scope: scope_of(pod.svc, Instr::HttpClient),
            role: Role::External,
            kind: SpanKind::Client,
            name: method.to_owned(),
            attributes: attrs![
                text("http.request.method", method),
                text("url.full", format!("https://{host}{path}")),
                text("server.address", host),
                int("server.port", 443),
                text("network.protocol.version", "1.1"),
            ],
        });
        self.pass(lo, hi);
        self.add(span, int("http.response.status_code", 200));
        self.close();
        span
    }

    /// A Kafka PRODUCER span sending a message keyed `key` to `topic`.
    pub(crate) fn publish(&mut self, topic: &str, key: &str, partition: u64) -> usize {
        self.pass(10_000, 80_000);
        let pod = self.here();
        let span = self.open(Opening {
            pod,
            scope: scope_of(pod.svc, Instr::Kafka),
            role: Role::Producer,
            kind: SpanKind::Producer,
            name: format!("{topic} publish"),
            attributes: attrs![
                text("messaging.system", "kafka"),
                text("messaging.destination.name", topic),
                text("messaging.operation.type", "publish"),
                text("messaging.kafka.message.key", key),
                text("messaging.destination.partition.id", partition.to_string()),
                text("server.address", KAFKA_HOST),
                int("server.port", 9092),
            ],
        });
        self.pass(400_000, 4_000_000);
        self.close();
        span
    }

    /// The CONSUMER span in a replica of `to` processing the message that span `producer` sent,
    /// `lag` nanoseconds after the send and outside the request's timeline (it may well end
    /// after the request has been answered). `process` handles the message.
    pub(crate) fn consume(
        &mut self,
        producer: usize,
        to: Svc,
        message: (&str, &str),
        lag: u64,
        process: impl FnOnce(&mut Self, usize),
    ) {
        let (topic, key) = message;
        let start = self.nodes[producer].span.end_time_unix_nano + lag;
        let pod = self.pod_of(to);
        let offset = self.dice.between(1_000_000, 90_000_000) as i64;
        self.detached(producer, start, |b| {
            let span = b.open(Opening {
                pod,
                scope: scope_of(to, Instr::Kafka),
                role: Role::Consumer,
                kind: SpanKind::Consumer,
                name: format!("{topic} process"),
                attributes: attrs![
                    text("messaging.system", "kafka"),
                    text("messaging.destination.name", topic),
                    text("messaging.operation.type", "process"),
                    text("messaging.consumer.group.name", to.def().name),
                    text("messaging.kafka.message.key", key),
                    int("messaging.kafka.offset", offset),
                    text("server.address", KAFKA_HOST),
                    int("server.port", 9092),
                ],
            });
            let trace_id = b.trace_id;
            let producer_id = b.nodes[producer].span.span_id.clone();
            b.link(span, &trace_id, &producer_id);
            b.pass(20_000, 300_000);
            process(b, span);
            b.pass(10_000, 200_000);
            b.close();
        });
    }

    /// Opens a hand-made INTERNAL span of the current service; close it with `close`.
    pub(crate) fn open_internal(&mut self, name: &str) -> usize {
        self.pass(3_000, 30_000);
        let pod = self.here();
        self.open(Opening {
            pod,
            scope: app_scope_of(pod.svc),
            role: Role::Internal,
            kind: SpanKind::Internal,
            name: name.to_owned(),
            attributes: Vec::new(),
        })
    }

    /// An INTERNAL span doing `lo..=hi` nanoseconds of in-process work.
    pub(crate) fn internal(&mut self, name: &str, lo: u64, hi: u64) -> usize {
        let span = self.open_internal(name);
        self.pass(lo, hi);
        self.close();
        span
    }
}
