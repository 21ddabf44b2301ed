"""0023 recomputed the failures' fingerprints, leaving the error groups (FailureGroup) keyed by the
old ones: an ignored group's new failures found no group and opened as new. Rebuild the groups of
the current fingerprints from their failures' own triage state, which 0023 kept:

- a group that has an open failure (or one ignored until a date now past) is open;
- else one ignored until a date still to come stays ignored until the latest such date (with the
  reason of the old group ignored until that same date, when there is one);
- else one ignored until it happens again stays so;
- else (all resolved) it is resolved.

A group already keyed by a current fingerprint is kept as it is (triage.py has kept it since);
groups whose fingerprint no failure has any more are removed. Set-based (one aggregate over every
kind's table, one INSERT, one DELETE) and idempotent: running it again changes nothing."""

from django.db import migrations
from django.utils import timezone

GROUPS = "executions_failuregroup"


def _failures(schema_editor) -> list[tuple[str, str, str, list[str]]]:
    """(kind, table, time column, failed statuses) of each kind whose table exists."""
    from executions import kinds

    tables = set(schema_editor.connection.introspection.table_names())
    found = []
    for kind in kinds.KINDS:
        meta = kind.model._meta
        if meta.db_table in tables:
            column = meta.get_field(kind.time_field).column
            found.append((kind.name, meta.db_table, column, list(kind.failed_statuses)))
    return found


def rebuild(apps, schema_editor) -> None:
    if schema_editor.connection.vendor != "postgresql":
        _rebuild_rows(apps, schema_editor)
        return
    quote = schema_editor.connection.ops.quote_name
    selects, params = [], []
    for kind, table, time_column, failed in _failures(schema_editor):
        # Table and column names from the models; every value a parameter.
        selects.append(
            f"SELECT tenant_id, fingerprint, %s::text AS kind, {quote(time_column)} AS seen, "  # noqa: S608
            "status = ANY(%s) AND (triage IN ('open', 'regressed') OR "
            "(triage = 'ignored' AND triage_until <= now())) AS is_open, "
            "triage = 'ignored' AND triage_until IS NULL AS ignored_again, "
            "CASE WHEN triage = 'ignored' AND triage_until > now() THEN triage_until END "
            f"AS ignored_until FROM {quote(table)} WHERE fingerprint <> ''"
        )
        params += [kind, failed]
    if not selects:
        return
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE failuregroup_current ON COMMIT DROP AS "
            "SELECT tenant_id, fingerprint, (array_agg(kind ORDER BY seen))[1] AS kind, "
            "coalesce(min(seen), now()) AS first_seen, bool_or(is_open) AS any_open, "
            "bool_or(ignored_again) AS any_again, max(ignored_until) AS until "
            f"FROM ({' UNION ALL '.join(selects)}) f GROUP BY tenant_id, fingerprint",
            params,
        )
        cursor.execute(
            f"INSERT INTO {GROUPS} (tenant_id, fingerprint, kind, state, until, reason, "  # noqa: S608
            "first_seen_at, regressed_at, updated_at) "
            "SELECT c.tenant_id, c.fingerprint, c.kind, "
            "CASE WHEN c.any_open THEN 'open' WHEN c.until IS NOT NULL OR c.any_again "
            "THEN 'ignored' ELSE 'resolved' END, "
            "CASE WHEN c.any_open THEN NULL ELSE c.until END, "
            "CASE WHEN c.any_open OR c.until IS NULL THEN '' ELSE coalesce(("
            f"SELECT o.reason FROM {GROUPS} o WHERE o.tenant_id = c.tenant_id "
            "AND o.state = 'ignored' AND o.until = c.until ORDER BY o.updated_at DESC LIMIT 1"
            "), '') END, "
            "c.first_seen, NULL, now() FROM failuregroup_current c "
            "ON CONFLICT (tenant_id, fingerprint) DO NOTHING"
        )
        cursor.execute(
            f"DELETE FROM {GROUPS} g WHERE NOT EXISTS (SELECT 1 FROM failuregroup_current c "  # noqa: S608
            "WHERE c.tenant_id = g.tenant_id AND c.fingerprint = g.fingerprint)"
        )
        cursor.execute("DROP TABLE failuregroup_current")


def _rebuild_rows(apps, schema_editor) -> None:
    """The same, row by row, for a database other than PostgreSQL (a small one)."""
    from executions import kinds

    FailureGroup = apps.get_model("executions", "FailureGroup")  # noqa: N806
    now = timezone.now()
    current: dict[tuple, dict] = {}
    for kind in kinds.KINDS:
        rows = kind.model.objects.exclude(fingerprint="").values_list(
            "tenant_id", "fingerprint", "status", "triage", "triage_until", kind.time_field
        )
        for tenant_id, fp, status, triage, until, seen in rows:
            c = current.setdefault(
                (tenant_id, fp),
                {"kind": kind.name, "seen": seen, "open": False, "again": False, "until": None},
            )
            if seen is not None and (c["seen"] is None or seen < c["seen"]):
                c["kind"], c["seen"] = kind.name, seen
            ignored = triage == "ignored"
            if status in kind.failed_statuses and (
                triage in ("open", "regressed") or (ignored and until and until <= now)
            ):
                c["open"] = True
            c["again"] |= ignored and until is None
            if ignored and until and until > now:
                c["until"] = max(c["until"] or until, until)
    old = {(g.tenant_id, g.fingerprint): g for g in FailureGroup.objects.all()}
    for (tenant_id, fp), c in current.items():
        if (tenant_id, fp) in old:
            continue
        state = "open" if c["open"] else "ignored" if c["until"] or c["again"] else "resolved"
        until = None if c["open"] else c["until"]
        reason = ""
        if state == "ignored" and until is not None:
            match = [g for g in old.values() if g.tenant_id == tenant_id and g.until == until]
            reason = match[0].reason if match else ""
        FailureGroup.objects.create(
            tenant_id=tenant_id,
            fingerprint=fp,
            kind=c["kind"],
            state=state,
            until=until,
            reason=reason,
            first_seen_at=c["seen"] or now,
            updated_at=now,
        )
    stale = [g.pk for key, g in old.items() if key not in current]
    FailureGroup.objects.filter(pk__in=stale).delete()


class Migration(migrations.Migration):
    dependencies = [("executions", "0024_lapsing_ignores")]

    operations = [migrations.RunPython(rebuild, migrations.RunPython.noop)]
