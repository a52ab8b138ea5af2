"""Reads Strata blocks with independent tools (pyarrow, DuckDB) and checks that every span an
OpenTelemetry SDK sent is there, field by field.

usage: verify_blocks.py --expected expected.json (--local DIR | --s3-endpoint URL --bucket B)
       [--tenant single-tenant]

Only the block layout and Parquet schema documented in schemas/block-v1.md are relied on:
<tenant>/blocks/<block-id>/{data.parquet, bloom-N, meta.json}; dedicated attribute columns are
recognised by their Arrow field metadata (strata.attribute.key / strata.attribute.scope).
"""

import argparse
import io
import json
import os
import sys
import tempfile
from collections import defaultdict

import duckdb
import pyarrow.parquet as pq


def local_objects(root, tenant):
    base = os.path.join(root, tenant, "blocks")
    out = {}
    for block in sorted(os.listdir(base)):
        for name in os.listdir(os.path.join(base, block)):
            with open(os.path.join(base, block, name), "rb") as f:
                out[(block, name)] = f.read()
    return out


def s3_objects(endpoint, bucket, tenant):
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test",
                      aws_secret_access_key="test", region_name="us-east-1")
    out = {}
    prefix = f"{tenant}/blocks/"
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            block, name = obj["Key"][len(prefix):].split("/", 1)
            out[(block, name)] = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def otlp_json_value(v):
    """An OTLP/JSON AnyValue, as stored in the `json` field, to the typed form used here."""
    if "stringValue" in v:
        return {"str": v["stringValue"]}
    if "boolValue" in v:
        return {"bool": v["boolValue"]}
    if "intValue" in v:
        return {"int": int(v["intValue"])}
    if "doubleValue" in v:
        return {"double": float(v["doubleValue"])}
    if "arrayValue" in v:
        return {"array": [otlp_json_value(x) for x in v["arrayValue"].get("values", [])]}
    if "kvlistValue" in v:
        return {"kvlist": {kv["key"]: otlp_json_value(kv.get("value", {})) for kv in v["kvlistValue"].get("values", [])}}
    if "bytesValue" in v:
        return {"bytes": v["bytesValue"]}
    return {}


def generic_attrs(items):
    out = {}
    for a in items or []:
        if a["str"] is not None:
            value = {"str": a["str"]}
        elif a["int"] is not None:
            value = {"int": a["int"]}
        elif a["double"] is not None:
            value = {"double": a["double"]}
        elif a["bool"] is not None:
            value = {"bool": a["bool"]}
        elif a["bytes"] is not None:
            value = {"bytes": a["bytes"].hex()}
        elif a["json"] is not None:
            value = otlp_json_value(json.loads(a["json"]))
        else:
            value = {}
        out[a["key"]] = value
    return out


def dedicated_columns(schema):
    cols = {"resource": {}, "span": {}}
    for field in schema:
        meta = field.metadata or {}
        key = meta.get(b"strata.attribute.key")
        if key:
            cols[meta[b"strata.attribute.scope"].decode()][field.name] = key.decode()
    return cols


def typed(value, column_type):
    return {"int": value} if column_type == "int" else {"str": value}


def span_from_row(row, dedicated, types):
    start = row["start_unix_nano"]
    attrs = generic_attrs(row["span_attrs"])
    for column, key in dedicated["span"].items():
        if row[column] is not None:
            attrs[key] = typed(row[column], types[column])
    resource = generic_attrs(row["resource_attrs"])
    for column, key in dedicated["resource"].items():
        if row[column] is not None:
            resource[key] = typed(row[column], types[column])
    return {
        "flags": row["flags"],
        "trace_id": row["trace_id"].hex(),
        "span_id": row["span_id"].hex(),
        "parent_span_id": row["parent_span_id"].hex() if row["parent_span_id"] else None,
        "trace_state": row["trace_state"] or "",
        "name": row["name"],
        "kind": row["kind"],
        "start": start,
        "end": start + row["duration_nano"],
        "status_code": row["status_code"],
        "status_message": row["status_message"] or "",
        "attributes": attrs,
        "events": [
            {"name": e["name"], "time": start + e["time_since_start_nano"], "attributes": generic_attrs(e["attrs"])}
            for e in row["events"]
        ],
        "links": [
            {
                "trace_id": l["trace_id"].hex(),
                "span_id": l["span_id"].hex(),
                "trace_state": l["trace_state"] or "",
                "flags": l["flags"],
                "attributes": generic_attrs(l["attrs"]),
            }
            for l in row["links"]
        ],
        "resource": resource,
        "resource_schema_url": row["resource_schema_url"] or "",
        "scope_name": row["scope_name"] or "",
        "scope_version": row["scope_version"] or "",
        "scope_schema_url": row["scope_schema_url"] or "",
        "scope_attributes": generic_attrs(row["scope_attrs"]),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--expected", required=True)
    parser.add_argument("--local")
    parser.add_argument("--s3-endpoint")
    parser.add_argument("--bucket")
    parser.add_argument("--tenant", default="single-tenant")
    args = parser.parse_args()
    expected = json.load(open(args.expected))

    objects = local_objects(args.local, args.tenant) if args.local else s3_objects(args.s3_endpoint, args.bucket, args.tenant)
    blocks = defaultdict(dict)
    for (block, name), data in objects.items():
        blocks[block][name] = data
    problems = []
    found = defaultdict(list)
    parquet_dir = tempfile.mkdtemp()
    for block, files in sorted(blocks.items()):
        if "meta.json" not in files:
            problems.append(f"block {block}: no meta.json")
            continue
        meta = json.loads(files["meta.json"])
        shards = [n for n in files if n.startswith("bloom-")]
        if len(shards) != meta["bloom"]["shards"]:
            problems.append(f"block {block}: {len(shards)} bloom shards, meta says {meta['bloom']['shards']}")
        if len(files["data.parquet"]) != meta["data_size"]:
            problems.append(f"block {block}: data.parquet is {len(files['data.parquet'])} bytes, meta says {meta['data_size']}")
        with open(os.path.join(parquet_dir, f"{block}.parquet"), "wb") as f:
            f.write(files["data.parquet"])
        table = pq.read_table(io.BytesIO(files["data.parquet"]))
        if table.num_rows != meta["span_count"]:
            problems.append(f"block {block}: {table.num_rows} rows, meta says {meta['span_count']}")
        dedicated = dedicated_columns(table.schema)
        types = {f.name: ("int" if str(f.type) == "int64" else "str") for f in table.schema}
        for row in table.to_pylist():
            found[(row["trace_id"].hex(), row["span_id"].hex())].append((block, span_from_row(row, dedicated, types), row))

    # DuckDB, a second independent reader, must agree on what is there.
    rows, distinct = duckdb.connect().execute(
        f"SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM read_parquet('{parquet_dir}/*.parquet')"
    ).fetchone()
    if distinct != len(found):
        problems.append(f"DuckDB sees {distinct} distinct spans, pyarrow {len(found)}")

    spans_per_trace = defaultdict(int)
    for span in expected:
        spans_per_trace[span["trace_id"]] += 1
    for span in expected:
        copies = found.get((span["trace_id"], span["span_id"]))
        if not copies:
            problems.append(f"span {span['span_id']} ({span['name']}) of trace {span['trace_id']} is missing")
            continue
        for block, got, row in copies:
            for field, want in span.items():
                if got[field] != want:
                    problems.append(f"span {span['span_id']} ({span['name']}) in block {block}: {field} is {got[field]!r}, sent {want!r}")
            if row["trace_span_count"] < 1:
                problems.append(f"span {span['span_id']}: trace_span_count {row['trace_span_count']}")
    if len(found) != len({(s["trace_id"], s["span_id"]) for s in expected}):
        problems.append(f"blocks hold {len(found)} distinct spans, {len(expected)} were sent")
    if problems:
        print(f"{len(problems)} problems:", file=sys.stderr)
        for p in problems[:40]:
            print("  " + p, file=sys.stderr)
        sys.exit(1)
    print(f"verified {len(expected)} spans field by field in {len(blocks)} blocks ({rows} rows, DuckDB agrees)")


if __name__ == "__main__":
    main()
