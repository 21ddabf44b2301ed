"""Copies of exemplars, made set-based: INSERT ... SELECT FROM generate_series on PostgreSQL,
bulk_create batches elsewhere; each copy gets new ids and its own time in the last week."""

from __future__ import annotations

import json
import random
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.utils import timezone

from executions.models import Kind, object_id, run_id

from .exemplars import _CHILDREN, _MODELS, _copied_fields

WEEK = timedelta(days=7)


@dataclass
class _Table:
    model: type[models.Model]
    ids: dict[str, str]  # column -> how copies get it (see _ID_SQL)
    templates: list[dict] = field(default_factory=list)  # each with "k": its parent's template


@dataclass
class _Plan:
    kind: str
    parent: _Table
    child: _Table | None


_PARENT_IDS = {
    Kind.FUNCTION: {"id": "object_id"},
    Kind.AUTOMATION: {"execution_id": "uuid"},
    Kind.JOB: {"job_id": "uuid"},
    Kind.WORKFLOW: {"id": "uuid", "engine_execution_id": "random_uuid"},
    Kind.RUN: {"id": "run_id"},
}
_CHILD_IDS = {
    Kind.JOB: {"job_id": "uuid"},
    # A task's own id follows its execution's time too: its primary key is one of the two
    # indexes the load keeps filling on that table (2.7 tasks per execution), both unique.
    Kind.WORKFLOW: {"id": "task_uuid", "execution_id": "uuid"},
}


def _plan(kind: str, entries: list[tuple[dict, list[dict]]], *, per_row_numbers: bool) -> _Plan:
    """Templates numbered k = 0..K-1 (copy i uses template i mod K). Without `per_row_numbers`
    the "{n}" of a payload is fixed per template, not per copy: the JSON then stays a constant
    instead of being edited and parsed for every row."""
    plan = _Plan(kind, _Table(_MODELS[kind], _PARENT_IDS[kind]), None)
    if kind in _CHILDREN:
        plan.child = _Table(_CHILDREN[kind][0], _CHILD_IDS[kind])

    def numbered(template: dict, k: int) -> dict:
        if per_row_numbers:
            return {**template, "k": k}
        number = str(1000 + k * 7919 % 9000)
        return {
            **{
                c: v.replace("__N__", number) if isinstance(v, str) else v
                for c, v in template.items()
            },
            "k": k,
        }

    for k, (row, children) in enumerate(entries):
        plan.parent.templates.append(numbered(row, k))
        if plan.child is not None:
            plan.child.templates += [numbered(c, k) for c in children]
    return plan


# On PostgreSQL every copy is a row of `s`: i, its template k, h = md5(batch || i), its time ts,
# ts as ISO text, a number for its payload, and v7: a time-ordered (UUIDv7 layout) id. Copies are
# numbered in time order and their ids follow time, so every index grows at a few points instead
# of everywhere at random (far fewer pages touched and written). The same expression gives a child
# its parent's id.
_ID_SQL = {
    "uuid": "s.v7::uuid",
    "task_uuid": "(substr(s.v7, 1, 17) || substr(md5(s.h || v.task_external_id), 1, 15))::uuid",
    "random_uuid": "gen_random_uuid()",
    "object_id": (
        "lpad(to_hex(floor(extract(epoch from s.ts))::bigint), 8, '0') || substr(s.h, 1, 16)"
    ),
    "run_id": "'run_' || s.v7",
}


def _select_list(table: _Table) -> tuple[list[str], list[str], list[str], list[str]]:
    """(columns, SELECT expressions over `s` and template `v`, jsonb_to_recordset column defs,
    the JSON columns the templates must carry as JSON rather than as text)."""
    q = connection.ops.quote_name
    columns, exprs, defs, as_json = [], [], ["k integer"], []
    for f in _copied_fields(table.model):
        columns.append(q(f.column))
        if f.column in table.ids:
            exprs.append(_ID_SQL[table.ids[f.column]])
            continue
        col = f"v.{q(f.column)}"
        if isinstance(f, models.JSONField):
            texts = [t[f.column] or "" for t in table.templates]
            stamped = any("__TS__" in t for t in texts)
            numbered = any("__N__" in t for t in texts)
            # Only JSON that differs per copy is edited as text and parsed per row.
            defs.append(f"{q(f.column)} {'text' if stamped or numbered else 'jsonb'}")
            if stamped:
                col = f"replace({col}, '__TS__', s.iso)"
            if numbered:
                col = f"replace({col}, '__N__', s.num)"
            exprs.append(f"({col})::jsonb" if stamped or numbered else col)
            if not (stamped or numbered):
                as_json.append(f.column)
        elif isinstance(f, models.DateTimeField):
            defs.append(f"{q(f.column)} double precision")
            exprs.append(f"s.ts + {col} * interval '1 millisecond'")
        else:
            defs.append(f"{q(f.column)} {f.db_type(connection)}")
            exprs.append(col)
    return columns, exprs, defs, as_json


def _clone_postgresql(plan: _Plan, n: int) -> None:
    """One statement per kind: copy i of n uses template mod(i, K); the parent rows and their
    children are inserted by data-modifying CTEs."""
    params: list[Any] = [f"{secrets.token_hex(8)}:{plan.kind}:", n]
    parts = []
    for name, table in (("p", plan.parent), ("c", plan.child)):
        if table is None:
            continue
        columns, exprs, defs, as_json = _select_list(table)
        templates = [
            {**t, **{c: json.loads(t[c]) for c in as_json if t[c] is not None}}
            for t in table.templates
        ]
        params.append(json.dumps(templates, cls=DjangoJSONEncoder))
        source = f"jsonb_to_recordset(%s::jsonb) AS v({', '.join(defs)})"
        # Identifiers come from model metadata and numbers from this module; values are params.
        parts.append(
            f"{name} AS (INSERT INTO {connection.ops.quote_name(table.model._meta.db_table)} "  # noqa: S608
            f"({', '.join(columns)}) SELECT {', '.join(exprs)} FROM s JOIN {source} USING (k))"
        )
    week = int(WEEK.total_seconds())
    sql = f"""
        WITH s AS MATERIALIZED (
            SELECT i, mod(i, {len(plan.parent.templates)}) AS k, h, ts,
                   to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"') AS iso,
                   (1000 + mod(i * 7919, 9000))::text AS num,
                   lpad(to_hex((extract(epoch from ts) * 1000)::bigint), 12, '0')
                       || '7' || substr(h, 1, 3) || '8' || substr(h, 4, 15) AS v7
            FROM (
                -- i - random() in (i - 1, i]: times rise with i, from 7 days to 5 min ago.
                SELECT i, md5(%s || i::text) AS h,
                       now() - interval '{week - 300} seconds'
                           + (i - random()) / {int(n)} * interval '{week - 600} seconds' AS ts
                FROM generate_series(1, %s) AS g(i)
            ) AS x
        ), {", ".join(parts)}
        SELECT count(*) FROM s
    """  # noqa: S608 (see above)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


_ID_PY = {
    "uuid": lambda ctx: ctx["id"],
    "task_uuid": lambda ctx: uuid.uuid4(),
    "random_uuid": lambda ctx: uuid.uuid4(),
    "object_id": lambda ctx: object_id(),
    "run_id": lambda ctx: run_id(),
}


def _instance(table: _Table, template: dict, ctx: dict) -> models.Model:
    values = {}
    for f in _copied_fields(table.model):
        value = template[f.column]
        if f.column in table.ids:
            value = _ID_PY[table.ids[f.column]](ctx)
        elif isinstance(f, models.JSONField) and value is not None:
            value = json.loads(value.replace("__TS__", ctx["iso"]).replace("__N__", ctx["num"]))
        elif isinstance(f, models.DateTimeField) and value is not None:
            value = ctx["ts"] + timedelta(milliseconds=value)
        values[f.attname] = value
    return table.model(**values)


def _clone_python(plan: _Plan, n: int, batch_size: int = 1000) -> None:
    """The portable (SQLite) path: the same rows, built here and bulk-inserted in batches."""
    now, rng = timezone.now(), random.Random()
    children: dict[int, list[dict]] = {}
    for t in plan.child.templates if plan.child else []:
        children.setdefault(t["k"], []).append(t)
    templates = plan.parent.templates
    for start in range(1, n + 1, batch_size):
        parents, kids = [], []
        for i in range(start, min(start + batch_size, n + 1)):
            ts = now - timedelta(seconds=300 + rng.random() * (WEEK.total_seconds() - 600))
            ctx = {"id": uuid.uuid4(), "ts": ts, "iso": ts.isoformat(), "num": str(1000 + i % 9000)}
            k = i % len(templates)
            parents.append(_instance(plan.parent, templates[k], ctx))
            ctx["id"] = parents[-1].pk
            kids += [_instance(plan.child, t, ctx) for t in children.get(k, [])]
        plan.parent.model.objects.bulk_create(parents)
        if plan.child is not None and kids:
            plan.child.model.objects.bulk_create(kids)


def _clone(plan: _Plan, n: int) -> None:
    if connection.vendor == "postgresql":
        _clone_postgresql(plan, n)
    else:
        _clone_python(plan, n)
