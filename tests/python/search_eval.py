"""The search evaluation suite's reference answers, computed by DuckDB over the blocks' Parquet files.

Each entry pairs a TraceQL query with the same question asked in SQL. The SQL is written from the
block format's documentation (schemas/block-v1.md), not from Strata's engine: it finds the spans
that satisfy each condition and combines them per trace the way TraceQL defines. For every query
it returns the matching traces and, where a single spanset is returned, how many spans it holds.

Usage: search_eval.py DIR...   (every data.parquet under the directories is read)
       search_eval.py --list    (prints the TraceQL queries, one per line)
       search_eval.py --time RUNS DIR...
                                (the benchmark: also the queries that match nothing; each query
                                 run once to warm up and then RUNS times, timed)
Prints JSON: [{"q": traceql, "expected": {trace_id_hex: matched_or_null}, "times_ms": [...]}, ...]
("times_ms" only with --time). SEARCH_EVAL_ONLY=TEXT keeps only the queries containing TEXT
(`:no-match`: only the queries that match nothing).
"""

import glob
import json
import os
import sys

import duckdb
import pyarrow.parquet as pq

import time

args = sys.argv[1:]
LIST_ONLY = args == ["--list"]
RUNS = 0
if args[:1] == ["--time"]:
    RUNS = int(args[1])
    args = args[2:]
# Block files only: rollup segments (`<tenant>/rollups/`) are Parquet files of another schema.
files = [] if LIST_ONLY else sorted(
    f for d in args for f in glob.glob(f"{d}/**/data.parquet", recursive=True) if "/rollups/" not in f
)
if not files and not LIST_ONLY:
    sys.exit("no data.parquet under " + " ".join(args))

# Dedicated columns, found from the files' own field metadata (strata.attribute.key/scope).
DEDICATED = {}
for field in pq.read_schema(files[0]) if files else []:
    meta = field.metadata or {}
    key, scope = meta.get(b"strata.attribute.key"), meta.get(b"strata.attribute.scope")
    if key and scope:
        DEDICATED[(scope.decode(), key.decode())] = (field.name, str(field.type))

db = duckdb.connect()
# Footers are cached across queries, as Strata's querier caches them.
db.execute("SET parquet_metadata_cache = true")
if files:
    file_list = ", ".join(f"'{f}'" for f in files)
    db.execute(f"CREATE VIEW spans AS SELECT * FROM read_parquet([{file_list}])")


def lit(v):
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float)):
        return repr(v)
    return "'" + str(v).replace("'", "''") + "'"


def generic(list_col, key, op, value):
    """A generic attribute list holds `key` with a value satisfying `op value` (None: exists)."""
    if value is None:
        cond = "TRUE"
    elif isinstance(value, bool):
        cond = f"a.bool {op} {lit(value)}"
    elif isinstance(value, (int, float)):
        cond = f"(a.int {op} {lit(value)} OR a.double {op} {lit(value)})"
    elif op == "=~":
        cond = f"regexp_full_match(a.str, {lit(value)})"
    else:
        cond = f"a.str {op} {lit(value)}"
    return f"len(list_filter({list_col}, lambda a: a.key = {lit(key)} AND {cond})) > 0"


def scoped(scope, key, op, value=None):
    """SQL for `scope.key op value` on one span row (scope: span, resource or '' for unscoped)."""
    if scope == "":
        return f"(({scoped('span', key, op, value)}) OR ({scoped('resource', key, op, value)}))"
    parts = [generic(f"{scope}_attrs", key, op, value)]
    column = DEDICATED.get((scope, key))
    if column:
        name, ty = column
        numeric = ty.startswith("int")
        if value is None:
            parts.append(f"{name} IS NOT NULL")
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and numeric:
            parts.append(f"{name} {op} {lit(value)}")
        elif isinstance(value, str) and not numeric:
            if op == "=~":
                parts.append(f"regexp_full_match({name}, {lit(value)})")
            else:
                parts.append(f"{name} {op} {lit(value)}")
    return "(" + " OR ".join(parts) + ")"


def exists(scope, key):
    return scoped(scope, key, "=", None)


def event_named(name):
    return f"len(list_filter(events, lambda e: e.name = {lit(name)})) > 0"


SEC = 1_000_000_000
MS = 1_000_000

# Reusable span conditions.
ERR = "status_code = 2"
SERVER = "kind = 2"
CLIENT = "kind = 3"
PG = scoped("span", "db.system.name", "=", "postgresql")
REDIS = scoped("span", "db.system.name", "=", "redis")
svc = lambda s: scoped("resource", "service.name", "=", s)  # noqa: E731

# (TraceQL, kind, SQL parts). Kinds:
#   filter: one spanset filter; SQL is the span condition.
#   and/or: two spanset filters joined by && / ||; SQL is (left, right).
#   child/descendant/sibling/parent/ancestor: structural; SQL is (left, right).
#   not_descendant: negated structural.
#   count_gt: `{cond} | count() > n`: (cond, n).
#   agg: `{cond} | agg(duration) op x`: (cond, sql aggregate, op, x).
#   by_count: `{cond} | by(resource.service.name) | count() > n`: (cond, n).
#   trace: a trace-level condition on every row: SQL condition on trace columns (with a span cond).
QUERIES = [
    ('{ resource.service.name = "payment" }', "filter", svc("payment")),
    ('{ resource.service.name != "frontend" && kind = server && duration > 40ms }', "filter",
     f"{SERVER} AND NOT {svc('frontend')} AND resource_service_name IS NOT NULL AND duration_nano > {40 * MS}"),
    ('{ status = error }', "filter", ERR),
    ('{ span:status = error && resource.service.name = "order" }', "filter", f"{ERR} AND {svc('order')}"),
    ('{ status = unset && span.http.response.status_code >= 400 }', "filter",
     f"status_code = 0 AND {scoped('span', 'http.response.status_code', '>=', 400)}"),
    ('{ duration > 100ms }', "filter", f"duration_nano > {100 * MS}"),
    ('{ span:duration >= 50ms && span:duration < 80ms }', "filter",
     f"duration_nano >= {50 * MS} AND duration_nano < {80 * MS}"),
    ('{ name = "POST /orders" }', "filter", "name = 'POST /orders'"),
    ('{ name =~ "GET .*" }', "filter", "regexp_full_match(name, 'GET .*')"),
    ('{ name !~ "(GET|POST).*" && kind = server }', "filter",
     f"NOT regexp_full_match(name, '(GET|POST).*') AND {SERVER}"),
    ('{ kind = client && duration > 100ms }', "filter", f"{CLIENT} AND duration_nano > {100 * MS}"),
    ('{ span:kind = producer || span:kind = consumer }', "filter", "kind IN (4, 5)"),
    ('{ span.http.response.status_code >= 500 }', "filter",
     scoped("span", "http.response.status_code", ">=", 500)),
    ('{ span.http.response.status_code = 404 }', "filter",
     scoped("span", "http.response.status_code", "=", 404)),
    ('{ span.http.request.method = "POST" && resource.service.name = "cart" }', "filter",
     f"{scoped('span', 'http.request.method', '=', 'POST')} AND {svc('cart')}"),
    ('{ span.db.system.name = "postgresql" && duration > 20ms }', "filter", f"{PG} AND duration_nano > {20 * MS}"),
    ('{ span.db.system.name = "redis" && duration > 2ms }', "filter", f"{REDIS} AND duration_nano > {2 * MS}"),
    ('{ .db.system.name = "redis" && status = error }', "filter",
     f"{scoped('', 'db.system.name', '=', 'redis')} AND {ERR}"),
    ('{ span.db.operation.name =~ "INSERT|UPDATE" }', "filter",
     scoped("span", "db.operation.name", "=~", "INSERT|UPDATE")),
    ('{ span.app.cart.items > 3 }', "filter", scoped("span", "app.cart.items", ">", 3)),
    ('{ .app.user.id != nil && resource.service.name = "cart" }', "filter",
     f"{exists('', 'app.user.id')} AND {svc('cart')}"),
    ('{ span.error.type != nil }', "filter", exists("span", "error.type")),
    ('{ span.app.payment.currency = nil && resource.service.name = "payment" }', "filter",
     f"NOT {exists('span', 'app.payment.currency')} AND {svc('payment')}"),
    ('{ resource.service.version = "2.0.7" }', "filter", scoped("resource", "service.version", "=", "2.0.7")),
    ('{ resource.telemetry.sdk.language = "python" && kind = server && duration > 50ms }', "filter",
     f"{scoped('resource', 'telemetry.sdk.language', '=', 'python')} AND {SERVER} AND duration_nano > {50 * MS}"),
    ('{ event:name = "exception" }', "filter", event_named("exception")),
    ('{ statusMessage != "" }', "filter", "status_message IS NOT NULL AND status_message != ''"),
    ('{ span.messaging.system = "kafka" && kind = consumer }', "filter",
     f"{scoped('span', 'messaging.system', '=', 'kafka')} AND kind = 5"),
    ('{ traceDuration > 300ms }', "trace", f"trace_duration_nano > {300 * MS}"),
    ('{ rootServiceName = "frontend" && trace:rootName = "POST /api/checkout" && status = error }', "trace",
     f"trace_root_service_name = 'frontend' AND trace_root_span_name = 'POST /api/checkout' AND {ERR}"),
    ('{ resource.service.name = "payment" } && { span.db.system.name = "redis" }', "and",
     (svc("payment"), REDIS)),
    ('{ status = error } || { duration > 200ms }', "or", (ERR, f"duration_nano > {200 * MS}")),
    ('{ resource.service.name = "order" } > { resource.service.name = "payment" }', "child",
     (svc("order"), svc("payment"))),
    ('{ resource.service.name = "frontend" } >> { span.db.system.name = "postgresql" }', "descendant",
     (svc("frontend"), PG)),
    ('{ span.db.system.name = "postgresql" } ~ { span.db.system.name = "redis" }', "sibling", (PG, REDIS)),
    ('{ span.db.system.name = "postgresql" } ~ { span.db.system.name = "postgresql" }', "sibling", (PG, PG)),
    ('{ resource.service.name = "order" } &> { resource.service.name = "payment" }', "union_child",
     (svc("order"), svc("payment"))),
    ('{ status = error } < { kind = server }', "parent", (ERR, SERVER)),
    ('{ span.db.system.name = "redis" && duration > 3ms } << { resource.service.name = "frontend" }', "ancestor",
     (f"{REDIS} AND duration_nano > {3 * MS}", svc("frontend"))),
    ('{ kind = server } !>> { status = error }', "not_descendant", (SERVER, ERR)),
    ('{ span.db.system.name = "postgresql" } | count() > 10', "count_gt", (PG, 10)),
    ('{ kind = client } | avg(duration) > 30ms', "agg", (CLIENT, "avg(duration_nano)", ">", 30 * MS)),
    ('{ span.db.system.name = "redis" } | max(duration) > 5ms', "agg", (REDIS, "max(duration_nano)", ">", 5 * MS)),
    ('{ span.db.system.name = "postgresql" } | by(resource.service.name) | count() > 5', "by_count", (PG, 5)),
]

# The benchmark's queries that match nothing on the standard workload: one per way of ruling data
# out (a dedicated string no block holds, a span name, a duration, an attribute value, a trace-level
# bound). The evaluation suite leaves them out, since it refuses queries that match nothing.
NO_MATCH = [
    ('{ resource.service.name = "no-such-service" }', "filter", svc("no-such-service")),
    ('{ name = "no-such-operation" }', "filter", "name = 'no-such-operation'"),
    ("{ duration > 1h }", "filter", f"duration_nano > {3600 * SEC}"),
    ("{ span.http.response.status_code = 999 }", "filter", scoped("span", "http.response.status_code", "=", 999)),
    ("{ traceDuration > 1h && status = error }", "trace", f"trace_duration_nano > {3600 * SEC} AND {ERR}"),
]


def rows(sql):
    return db.execute(sql).fetchall()


def structural(rel, left, right):
    joins = {
        "child": "r.nested_set_parent = l.nested_set_left AND r.nested_set_parent != 0",
        "parent": "l.nested_set_parent = r.nested_set_left AND l.nested_set_parent != 0",
        "descendant": "l.nested_set_left < r.nested_set_left AND r.nested_set_right < l.nested_set_right",
        "ancestor": "r.nested_set_left < l.nested_set_left AND l.nested_set_right < r.nested_set_right",
        "sibling": "r.nested_set_parent = l.nested_set_parent AND r.nested_set_parent != 0 "
        "AND r.nested_set_left != l.nested_set_left",
    }
    cond = joins[rel.removeprefix("not_")]
    related = (
        f"EXISTS (SELECT 1 FROM spans l WHERE l.trace_id = r.trace_id AND ({left.replace('spans.', 'l.')}) "
        f"AND {cond})"
    )
    if rel.startswith("not_"):
        # Negated: right-hand spans of traces that have left-hand spans, with no relation.
        related = (
            f"NOT {related} AND EXISTS (SELECT 1 FROM spans l WHERE l.trace_id = r.trace_id AND ({left}))"
        )
    return rows(
        f"SELECT hex(trace_id), count(DISTINCT span_id) FROM spans r WHERE ({right}) AND {related} GROUP BY 1"
    )


def answer(kind, sql):
    if kind in ("filter", "trace"):
        return rows(f"SELECT hex(trace_id), count(DISTINCT span_id) FROM spans WHERE {sql} GROUP BY 1")
    if kind == "and":
        left, right = sql
        return rows(
            f"SELECT hex(trace_id), count(DISTINCT span_id) FROM spans WHERE ({left}) OR ({right}) GROUP BY 1 "
            f"HAVING count(*) FILTER (WHERE {left}) > 0 AND count(*) FILTER (WHERE {right}) > 0"
        )
    if kind == "or":
        left, right = sql
        return rows(
            f"SELECT hex(trace_id), count(DISTINCT span_id) FROM spans WHERE ({left}) OR ({right}) GROUP BY 1"
        )
    if kind in ("child", "parent", "descendant", "ancestor", "sibling", "not_descendant"):
        return structural(kind, *sql)
    if kind == "union_child":
        # Both sides: right-hand children of left-hand spans, and left-hand parents of right-hand spans.
        left, right = sql
        children = structural("child", left, right)
        parents = structural("parent", right, left)
        spans = rows(
            f"""SELECT hex(trace_id), count(DISTINCT span_id) FROM spans s WHERE
                (({right}) AND EXISTS (SELECT 1 FROM spans l WHERE l.trace_id = s.trace_id AND ({left})
                    AND s.nested_set_parent = l.nested_set_left AND s.nested_set_parent != 0))
             OR (({left}) AND EXISTS (SELECT 1 FROM spans r WHERE r.trace_id = s.trace_id AND ({right})
                    AND r.nested_set_parent = s.nested_set_left AND r.nested_set_parent != 0))
             GROUP BY 1"""
        )
        assert {t for t, _ in spans} == {t for t, _ in children} | {t for t, _ in parents}
        return spans
    if kind == "count_gt":
        cond, n = sql
        return rows(
            f"SELECT hex(trace_id), count(DISTINCT span_id) FROM spans WHERE {cond} GROUP BY 1 "
            f"HAVING count(DISTINCT span_id) > {n}"
        )
    if kind == "agg":
        cond, agg, op, x = sql
        return rows(
            f"SELECT hex(trace_id), count(DISTINCT span_id) FROM spans WHERE {cond} GROUP BY 1 HAVING {agg} {op} {x}"
        )
    if kind == "by_count":
        cond, n = sql
        # Several spansets per trace: only which traces match is compared.
        return [
            (t, None)
            for (t,) in rows(
                f"SELECT DISTINCT hex(trace_id) FROM (SELECT trace_id, resource_service_name FROM spans "
                f"WHERE {cond} GROUP BY 1, 2 HAVING count(DISTINCT span_id) > {n})"
            )
        ]
    raise ValueError(kind)


if LIST_ONLY:
    print("\n".join(q for q, _, _ in QUERIES))
    sys.exit(0)

out = []
ONLY = os.environ.get("SEARCH_EVAL_ONLY", "")
for q, kind, sql in QUERIES + (NO_MATCH if RUNS else []):
    if ONLY == ":no-match" and (q, kind, sql) not in NO_MATCH or ONLY not in (":no-match", "") and ONLY not in q:
        continue
    expected = {t.lower(): m for t, m in answer(kind, sql)}
    case = {"q": q, "expected": expected}
    if RUNS:
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            answer(kind, sql)
            times.append((time.perf_counter() - started) * 1000)
        case["times_ms"] = times
    out.append(case)
json.dump(out, sys.stdout)
