"""Sends traces to Strata with the real OpenTelemetry Python SDK and records what was sent.

Every export must succeed (the exporters report failures to us through a checking wrapper);
the spans, as the SDK recorded them, are written to --out as JSON for verify_blocks.py.

usage: otel_send.py --grpc HOST:PORT --http http://HOST:PORT/v1/traces --out expected.json
"""

import argparse
import json
import sys
import time

import grpc
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceFlags, TraceState


class CheckingExporter(SpanExporter):
    """Forwards to a real exporter and remembers every result."""

    def __init__(self, inner):
        self.inner = inner
        self.results = []

    def export(self, spans):
        result = self.inner.export(spans)
        self.results.append((len(spans), result))
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def make_provider(service, exporter):
    resource = Resource(
        {
            "service.name": service,
            "service.version": "1.4.2",
            "deployment.environment.name": "test",
            "k8s.pod.name": f"{service}-7d9f-abcde",
            "host.cpu.count": 8,
            "process.runtime.labels": ["a", "b"],
        },
        schema_url="https://opentelemetry.io/schemas/1.26.0",
    )
    provider = TracerProvider(resource=resource)
    recorder = InMemorySpanExporter()
    checker = CheckingExporter(exporter)
    provider.add_span_processor(SimpleSpanProcessor(recorder))
    provider.add_span_processor(BatchSpanProcessor(checker, max_export_batch_size=7, schedule_delay_millis=50))
    return provider, recorder, checker


def send_traces(provider, tag, traces):
    tracer = provider.get_tracer(
        f"strata.e2e.{tag}",
        "0.9.1",
        schema_url="https://opentelemetry.io/schemas/1.24.0",
        attributes={"scope.attr": tag, "scope.n": 3},
    )
    base = time.time_ns() - 60_000_000_000
    linked = None
    for t in range(traces):
        start = base + t * 10_000_000
        remote_parent = SpanContext(
            trace_id=0,
            span_id=0,
            is_remote=True,
        )
        # A trace state travels with the trace when the root continues a remote context.
        parent_ctx = None
        if t % 3 == 0:
            remote_parent = SpanContext(
                trace_id=int.from_bytes(bytes([t + 1] * 16), "big"),
                span_id=int.from_bytes(bytes([0xAB] * 7 + [t + 1]), "big"),
                is_remote=True,
                trace_flags=TraceFlags(TraceFlags.SAMPLED),
                trace_state=TraceState([("vendor", f"v{t}"), ("other", "x")]),
            )
            parent_ctx = trace.set_span_in_context(NonRecordingSpan(remote_parent))
        links = [Link(linked, {"link.kind": "follows", "link.n": t})] if linked is not None else []
        root = tracer.start_span(
            f"POST /api/{tag}/checkout",
            context=parent_ctx,
            kind=SpanKind.SERVER,
            start_time=start,
            links=links,
            attributes={
                "http.request.method": "POST",
                "http.route": f"/api/{tag}/checkout",
                "http.response.status_code": 200 if t % 4 else 500,
                "server.port": 8080,
                "app.user.id": f"user-{t:05d}",
                "app.cart.items": t,
                "app.payment.amount": 12.5 + t,
                "app.feature.enabled": t % 2 == 0,
                "app.tags": ["a", "b", f"t{t}"],
                "app.counts": [1, 2, t],
                "app.ratios": [0.5, 1.25],
                "app.flags": [True, False],
                "app.unicode": "żółw ✓ 🚀",
            },
        )
        root_ctx = trace.set_span_in_context(root)
        linked = root.get_span_context()
        db = tracer.start_span(
            "SELECT shop.orders",
            context=root_ctx,
            kind=SpanKind.CLIENT,
            start_time=start + 1_000_000,
            attributes={
                "db.system.name": "postgresql",
                "db.query.text": "SELECT * FROM orders WHERE id = $1",
                "db.namespace": "shop",
                "server.port": 5432,
            },
        )
        db.add_event("retry", {"attempt": 2, "backoff.ms": 12.5}, timestamp=start + 1_500_000)
        if t % 4 == 0:
            try:
                raise ValueError(f"order {t} not found")
            except ValueError as e:
                db.record_exception(e, timestamp=start + 1_800_000)
            db.set_status(Status(StatusCode.ERROR, "order lookup failed"))
        else:
            db.set_status(Status(StatusCode.OK))
        db.end(end_time=start + 2_000_000 + t)
        db_ctx = trace.set_span_in_context(db)
        for kind, name in [(SpanKind.INTERNAL, "validate_cart"), (SpanKind.PRODUCER, "orders publish"), (SpanKind.CONSUMER, "orders process")]:
            child = tracer.start_span(name, context=db_ctx if kind == SpanKind.INTERNAL else root_ctx, kind=kind, start_time=start + 2_500_000)
            child.set_attribute("messaging.system", "kafka")
            child.add_event("tick")
            child.end(end_time=start + 3_000_000)
        root.end(end_time=start + 9_000_000 + t * 7)


def any_value(v):
    if isinstance(v, bool):
        return {"bool": v}
    if isinstance(v, int):
        return {"int": v}
    if isinstance(v, float):
        return {"double": v}
    if isinstance(v, str):
        return {"str": v}
    if isinstance(v, (list, tuple)):
        return {"array": [any_value(x) for x in v]}
    raise TypeError(f"unexpected attribute value {v!r}")


def attrs(mapping):
    return {k: any_value(v) for k, v in (mapping or {}).items()}


def wire_flags(context):
    """The `flags` the SDK's OTLP encoder sends: HAS_IS_REMOTE, plus IS_REMOTE for a remote
    context (see opentelemetry.exporter.otlp.proto.common, _span_flags)."""
    return 0x100 | (0x200 if context is not None and context.is_remote else 0)


def record(span):
    ctx = span.context
    return {
        "flags": wire_flags(span.parent),
        "trace_id": f"{ctx.trace_id:032x}",
        "span_id": f"{ctx.span_id:016x}",
        "parent_span_id": f"{span.parent.span_id:016x}" if span.parent else None,
        "trace_state": ",".join(f"{k}={v}" for k, v in ctx.trace_state.items()),
        "name": span.name,
        "kind": span.kind.value + 1,  # the SDK counts from INTERNAL=0; OTLP from UNSPECIFIED=0
        "start": span.start_time,
        "end": span.end_time,
        "status_code": span.status.status_code.value,
        "status_message": span.status.description or "",
        "attributes": attrs(span.attributes),
        "events": [{"name": e.name, "time": e.timestamp, "attributes": attrs(e.attributes)} for e in span.events],
        "links": [
            {
                "trace_id": f"{l.context.trace_id:032x}",
                "span_id": f"{l.context.span_id:016x}",
                # The SDK's OTLP encoder does not send a link's trace state.
                "trace_state": "",
                "flags": wire_flags(l.context),
                "attributes": attrs(l.attributes),
            }
            for l in span.links
        ],
        "resource": attrs(span.resource.attributes),
        "resource_schema_url": span.resource.schema_url,
        "scope_name": span.instrumentation_scope.name,
        "scope_version": span.instrumentation_scope.version,
        "scope_schema_url": span.instrumentation_scope.schema_url,
        "scope_attributes": attrs(span.instrumentation_scope.attributes),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--traces", type=int, default=12)
    parser.add_argument("--tenant", default=None)
    args = parser.parse_args()
    headers = {"X-Scope-OrgID": args.tenant} if args.tenant else None

    exporters = {
        "grpc": GrpcExporter(endpoint=args.grpc, insecure=True, compression=grpc.Compression.Gzip,
                             headers=headers and {k.lower(): v for k, v in headers.items()}),
        "http": HttpExporter(endpoint=args.http, compression=HttpCompression.Gzip, headers=headers),
    }
    spans = []
    failures = []
    for tag, exporter in exporters.items():
        provider, recorder, checker = make_provider(f"checkout-{tag}", exporter)
        send_traces(provider, tag, args.traces)
        provider.force_flush()
        provider.shutdown()
        sent = sum(n for n, _ in checker.results)
        bad = [r for _, r in checker.results if r != SpanExportResult.SUCCESS]
        if bad or sent != len(recorder.get_finished_spans()):
            failures.append(f"{tag}: {len(bad)} failed exports, {sent} of {len(recorder.get_finished_spans())} spans exported")
        spans.extend(record(s) for s in recorder.get_finished_spans())
    with open(args.out, "w") as f:
        json.dump(spans, f)
    if failures:
        print("export failures: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)
    print(f"sent {len(spans)} spans")


if __name__ == "__main__":
    main()
