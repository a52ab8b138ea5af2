"""Fetches every trace an OpenTelemetry SDK sent back through Strata's Tempo API — v2 and v1, as
protobuf and as JSON — and checks them span for span against what was sent.

Protobuf answers are decoded with the OTLP Python classes (Tempo's `Trace` has the wire format of
OTLP `TracesData`); JSON answers are parsed with protobuf's own `json_format`, so they must be
canonical protobuf JSON, as Tempo's are.

usage: verify_api.py --api http://HOST:PORT --expected a.json [--expected b.json] [--tenant T]
"""

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections import defaultdict

from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData


def get(url, accept, tenant):
    request = urllib.request.Request(url, headers={"Accept": accept, "X-Scope-OrgID": tenant})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers.get("Content-Type"), response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read()


def varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def trace_by_id_response(data):
    """tempopb.TraceByIDResponse: trace = 1, metrics = 2, status = 3, message = 4."""
    out = {"trace": b"", "status": 0, "message": ""}
    i = 0
    while i < len(data):
        key, i = varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(data, i)
            if field == 3:
                out["status"] = value
        elif wire == 2:
            length, i = varint(data, i)
            chunk = data[i:i + length]
            i += length
            if field == 1:
                out["trace"] = chunk
            elif field == 4:
                out["message"] = chunk.decode()
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return out


def any_value(v):
    kind = v.WhichOneof("value")
    if kind == "string_value":
        return {"str": v.string_value}
    if kind == "bool_value":
        return {"bool": v.bool_value}
    if kind == "int_value":
        return {"int": v.int_value}
    if kind == "double_value":
        return {"double": v.double_value}
    if kind == "array_value":
        return {"array": [any_value(x) for x in v.array_value.values]}
    if kind == "kvlist_value":
        return {"kvlist": {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}}
    if kind == "bytes_value":
        return {"bytes": v.bytes_value.hex()}
    return {}


def attrs(kvs):
    return {kv.key: any_value(kv.value) for kv in kvs}


def records(data):
    out = []
    for rs in data.resource_spans:
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "flags": s.flags,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex() or None,
                    "trace_state": s.trace_state,
                    "name": s.name,
                    "kind": s.kind,
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                    "status_code": s.status.code,
                    "status_message": s.status.message,
                    "attributes": attrs(s.attributes),
                    "events": [{"name": e.name, "time": e.time_unix_nano, "attributes": attrs(e.attributes)} for e in s.events],
                    "links": [
                        {"trace_id": l.trace_id.hex(), "span_id": l.span_id.hex(), "trace_state": l.trace_state,
                         "flags": l.flags, "attributes": attrs(l.attributes)}
                        for l in s.links
                    ],
                    "resource": attrs(rs.resource.attributes),
                    "resource_schema_url": rs.schema_url,
                    "scope_name": ss.scope.name,
                    "scope_version": ss.scope.version,
                    "scope_schema_url": ss.schema_url,
                    "scope_attributes": attrs(ss.scope.attributes),
                })
    return out


def fetch_all_forms(api, trace_id, tenant, problems):
    """Every form of the trace the API serves, as TracesData, by name."""
    forms = {}
    status, ctype, body = get(f"{api}/api/v2/traces/{trace_id}", "application/protobuf", tenant)
    if status != 200 or ctype != "application/protobuf":
        problems.append(f"v2 protobuf {trace_id}: {status} {ctype}")
    else:
        response = trace_by_id_response(body)
        if response["status"] != 0:
            problems.append(f"v2 protobuf {trace_id}: status PARTIAL: {response['message']}")
        forms["v2 protobuf"] = TracesData.FromString(response["trace"])
    status, _, body = get(f"{api}/api/v2/traces/{trace_id}", "application/json", tenant)
    if status != 200:
        problems.append(f"v2 JSON {trace_id}: {status}")
    else:
        forms["v2 JSON"] = json_format.Parse(json.dumps(json.loads(body)["trace"]), TracesData())
    status, _, body = get(f"{api}/api/traces/{trace_id}", "application/protobuf", tenant)
    if status != 200:
        problems.append(f"v1 protobuf {trace_id}: {status}")
    else:
        forms["v1 protobuf"] = TracesData.FromString(body)
    status, _, body = get(f"{api}/api/traces/{trace_id}", "application/json", tenant)
    if status != 200:
        problems.append(f"v1 JSON {trace_id}: {status}")
    else:
        forms["v1 JSON"] = json_format.Parse(json.dumps({"resourceSpans": json.loads(body)["batches"]}), TracesData())
    return forms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--expected", action="append", required=True)
    parser.add_argument("--tenant", default="single-tenant")
    args = parser.parse_args()
    by_trace = defaultdict(dict)
    for path in args.expected:
        for span in json.load(open(path)):
            by_trace[span["trace_id"]][span["span_id"]] = span
    problems = []
    checked = 0
    for trace_id, expected in sorted(by_trace.items()):
        for form, data in fetch_all_forms(args.api, trace_id, args.tenant, problems).items():
            got = {r["span_id"]: r for r in records(data)}
            if set(got) != set(expected):
                problems.append(f"{form} {trace_id}: {len(got)} spans, sent {len(expected)}")
                continue
            for span_id, want in expected.items():
                for field, value in want.items():
                    if got[span_id][field] != value:
                        problems.append(f"{form} {trace_id} span {span_id}: {field} is {got[span_id][field]!r}, sent {value!r}")
            checked += len(got)
    if problems:
        print(f"{len(problems)} problems:", file=sys.stderr)
        for p in problems[:40]:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    print(f"verified {len(by_trace)} traces ({checked} spans in 4 forms)")


if __name__ == "__main__":
    main()
