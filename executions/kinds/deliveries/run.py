"""How deliveries run: executions/webhooks/delivery.py (a subscription's worker sends them in
order); its task is `deliver`. The reaper's part: a subscription whose worker was lost goes back
to the workers (its pending delivery is sent again: at least once)."""

from __future__ import annotations

from ...webhooks.delivery import deliver, reap

__all__ = ["deliver", "reap"]
