"""Set-based inserts for bulk retries.

Django's bulk_create builds a model instance and quotes every value in Python, per row of an
audit or history table: that dominated bench/bulk_retry.py. On PostgreSQL these helpers let the
server do it:

- insert_select(): `INSERT INTO t (cols) SELECT ...` where the SELECT is a compiled ORM queryset
  (values() keeps the order of its expressions), so rows are copied inside the database;
- insert_rows(): `INSERT INTO t (cols) SELECT ... FROM unnest(%s::text[], ...)`, one array per
  column, for rows that exist only in Python.

Elsewhere (SQLite, the zero-setup development database) both fall back to bulk_create.

each_batch() runs a bulk retry's batches on several connections at once.

And the other way, for hot paths: Loader builds model instances from the rows of a hand-written
statement as the ORM would (the API key lookup and the API retry's answer, once per request).
"""

from __future__ import annotations

import functools
import json
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from django.db import connection, connections
from django.db.models import Field, JSONField, Model, QuerySet


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def _columns(model: type[Model], fields: list[str]) -> tuple[str, list]:
    objs = [model._meta.get_field(f) for f in fields]
    return ", ".join(connection.ops.quote_name(f.column) for f in objs), objs


def insert_select(
    model: type[Model], fields: list[str], queryset: QuerySet, returning: str | None = None
) -> list:
    """PostgreSQL only: insert the rows of `queryset` (a values() queryset with one expression per
    field, in order) into `model`. Returns the `returning` column of the inserted rows."""
    assert is_postgresql()
    cols, _ = _columns(model, fields)
    sql, params = queryset.query.sql_with_params()
    table = connection.ops.quote_name(model._meta.db_table)
    suffix = f" RETURNING {connection.ops.quote_name(returning)}" if returning else ""
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({cols}) {sql}{suffix}", params)  # noqa: S608
        return [row[0] for row in cursor.fetchall()] if returning else []


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def insert_rows(
    model: type[Model],
    constants: dict[str, Any],
    columns: dict[str, list],
    returning: str | None = None,
) -> list:
    """Insert len(any column) rows: `columns` vary per row, `constants` are the same in each."""
    lengths = {len(values) for values in columns.values()}
    assert len(lengths) == 1, "every column needs one value per row"
    if not is_postgresql():
        n = lengths.pop()
        objs = model.objects.bulk_create(
            model(**constants, **{name: values[i] for name, values in columns.items()})
            for i in range(n)
        )
        return [getattr(o, returning) for o in objs] if returning else []
    names = list(constants) + list(columns)
    cols, fields = _columns(model, names)
    selects, params = [], []
    for name, field in zip(names, fields, strict=True):
        if name in constants:
            selects.append(_constant(field, constants[name], params))
        else:
            selects.append(f"CAST(u.{name} AS {field.db_type(connection)})")
    arrays = ", ".join("%s::text[]" for _ in columns)
    aliases = ", ".join(columns)
    params += [[_text(v) for v in values] for values in columns.values()]
    table = connection.ops.quote_name(model._meta.db_table)
    suffix = f" RETURNING {connection.ops.quote_name(returning)}" if returning else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({cols}) SELECT {', '.join(selects)} "  # noqa: S608
            f"FROM unnest({arrays}) AS u({aliases}){suffix}",
            params,
        )
        return [row[0] for row in cursor.fetchall()] if returning else []


def _param(field: Field, value: Any) -> str | None:
    """A constant of `field` as the text that `CAST(%s AS type)` turns back into it."""
    if value is None:
        return None
    if isinstance(value, (dict, list)) or isinstance(field, JSONField):
        return json.dumps(value)
    return _text(field.get_db_prep_value(value, connection))


def _constant(field: Field, value: Any, params: list) -> str:
    """`CAST(%s AS type)` for one constant of `field`, its parameter appended to `params`."""
    params.append(_param(field, value))
    return f"CAST(%s AS {field.db_type(connection)})"


# (model, constant names, expressions, source) -> (SQL, the constants' fields): the retry path
# builds the same statements over and over, differing only in their parameters.
_INSERT_FROM: dict[tuple, tuple[str, list[Field]]] = {}


def insert_from(
    model: type[Model],
    constants: dict[str, Any],
    expressions: dict[str, str],
    source: str,
    expression_params: tuple = (),
) -> tuple[str, list]:
    """PostgreSQL only: the SQL (and parameters) of `INSERT INTO model (...) SELECT ... FROM
    source`, for a data-modifying CTE. `constants` are values (cast to each column's type),
    `expressions` SQL over `source`'s columns (code, never user input; their `%s` take
    `expression_params`, in order)."""
    key = (model, tuple(constants), tuple(expressions.items()), source)
    if key not in _INSERT_FROM:
        cols, fields = _columns(model, [*constants, *expressions])
        fields = fields[: len(constants)]
        selects = [f"CAST(%s AS {f.db_type(connection)})" for f in fields]
        selects += expressions.values()
        table = connection.ops.quote_name(model._meta.db_table)
        _INSERT_FROM[key] = (
            f"INSERT INTO {table} ({cols}) SELECT {', '.join(selects)} FROM {source}",  # noqa: S608
            fields,
        )
    sql, fields = _INSERT_FROM[key]
    params = [_param(f, v) for f, v in zip(fields, constants.values(), strict=True)]
    return sql, [*params, *expression_params]


class Loader:
    """Model instances from the rows of a hand-written statement, built as the ORM builds them:
    the model's concrete fields in order, each value through the converters the ORM applies on
    this connection (JSON parsed, SQLite's text datetimes, ...), then Model.from_db. For hot
    paths where compiling a queryset costs more than the query (bench/api.py)."""

    def __init__(self, model: type[Model], alias: str = "default") -> None:
        db = connections[alias]
        self.model, self.alias = model, alias
        self.fields = list(model._meta.concrete_fields)
        self.attnames = [f.attname for f in self.fields]
        self.pk_index = self.fields.index(model._meta.pk)
        self.converters = []
        for i, f in enumerate(self.fields):
            col = f.get_col(model._meta.db_table)
            convs = db.ops.get_db_converters(col) + col.get_db_converters(db)
            if convs:
                self.converters.append((i, col, convs))

    def columns(self, alias: str) -> str:
        """The SELECT (or RETURNING) list of the fields, in order, on the table alias `alias`."""
        q = connections[self.alias].ops.quote_name
        return ", ".join(f"{alias}.{q(f.column)}" for f in self.fields)

    def load(self, values: Sequence[Any]) -> Model | None:
        """The instance of one row's values (None if its key is NULL: an outer join's miss)."""
        if values[self.pk_index] is None:
            return None
        values = list(values)
        db = connections[self.alias]
        for i, col, convs in self.converters:
            for convert in convs:
                values[i] = convert(values[i], col, db)
        return self.model.from_db(self.alias, self.attnames, values)


@functools.cache
def loader(model: type[Model], alias: str = "default") -> Loader:
    return Loader(model, alias)


def each_batch[B, T](
    work: Callable[[B], T], batches: Iterator[B], workers: int, stop: Callable[[B], bool]
) -> Iterator[T]:
    """work(batch) for each batch until stop(batch) says so, yielding the results as they come.
    stop is asked right before each batch would start, on the thread that would run it, so a
    batch waiting in line does not start after a stop; once it said so, no batch starts. With
    workers > 1 the batches run on that many threads, each with its own database connection
    (closed when it ends), at most `workers` batches waiting to start. Every started batch's
    result is yielded, also after a stop; an error from `work` in a thread is raised here once
    the other batches have finished."""
    if workers <= 1:
        for batch in batches:
            if stop(batch):
                return
            yield work(batch)
        return
    todo: queue.Queue = queue.Queue(maxsize=workers)
    results: queue.Queue = queue.Queue()
    errors: list[BaseException] = []
    stopped = threading.Event()

    def worker() -> None:
        try:
            while (batch := todo.get()) is not None:
                if stopped.is_set():
                    continue  # drop what is still in line
                try:
                    if stop(batch):
                        stopped.set()
                        continue
                    results.put(work(batch))
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    errors.append(exc)  # and this thread goes on taking batches: none waits
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, name=f"batch-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        for batch in batches:
            if stopped.is_set():
                break
            todo.put(batch)
            while not results.empty():
                yield results.get()
    finally:
        for _ in threads:
            todo.put(None)
        for thread in threads:
            thread.join()
    while not results.empty():
        yield results.get()
    if errors:
        raise errors[0]
