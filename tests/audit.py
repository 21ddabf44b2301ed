"""The audit as users read it (the console's audit page, filtered by bulk): a bulk's items are
there one by one, whichever rows record them."""

from __future__ import annotations

from executions import selectors
from executions.models import AuditEvent, BulkRetry


def retried_in(bulk: BulkRetry) -> list[AuditEvent]:
    """Every item retry the audit shows for `bulk`, newest first (not the bulk's own row)."""
    events, more = selectors.audit_events(bulk.tenant, bulk=str(bulk.pk), limit=10**6)
    assert more is None
    return [e for e in events if e.action == "retry"]
