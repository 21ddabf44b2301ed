"""Trigram indexes for the inbox's search over the error text (PostgreSQL only).

`error_message__icontains` compiles to `UPPER(error_message::text) LIKE UPPER('%term%')`, which no
B-tree can serve: at a million failures a rare term read every failed row. A GIN trigram index on
the same expression, partial on the failed statuses like the inbox's other indexes, answers it from
the index; extended statistics on the expression tell the planner when not to use it. pg_trgm ships with PostgreSQL; creating the extension needs a role allowed to (the
superuser by default) - without it the indexes are skipped and search still works, only slower.
"""

from django.db import migrations

INDEXES = {
    "fnexec_error_trgm": ("executions_functionexecution", "'failed', 'timeout'"),
    "autoexec_error_trgm": ("executions_automationexecution", "'failed', 'timeout'"),
    "job_error_trgm": ("executions_job", "'failed'"),
    "wfexec_error_trgm": ("executions_workflowexecution", "'FAILED', 'TIMED_OUT', 'TERMINATED'"),
    "run_error_trgm": ("executions_run", "'failure', 'cancelled', 'partial'"),
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm'")
        if cursor.fetchone() is None:
            return
        cursor.execute("SAVEPOINT trgm")
        try:
            cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception:  # not allowed to: search works without the index
            cursor.execute("ROLLBACK TO SAVEPOINT trgm")
            return
        for name, (table, statuses) in INDEXES.items():
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS {name} ON {table} "
                f"USING gin (UPPER(error_message::text) gin_trgm_ops) "
                f"WHERE status IN ({statuses})"
            )
            # Statistics on the expression let the planner tell a common term (walk the time
            # index, stop at a page) from a rare one (ask the trigram index): without them it
            # guesses "few rows" and reads every match of a common term.
            cursor.execute(
                f"CREATE STATISTICS IF NOT EXISTS {name}_stats "
                f"ON (UPPER(error_message::text)) FROM {table}"
            )
            cursor.execute(f"ALTER STATISTICS {name}_stats SET STATISTICS 1000")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        for name in INDEXES:
            cursor.execute(f"DROP STATISTICS IF EXISTS {name}_stats")
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("executions", "0001_initial")]

    operations = [migrations.RunPython(create, drop)]
