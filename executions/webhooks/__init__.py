"""Webhooks (issue 21): Redrive's events, signed (Standard Webhooks) and delivered to the endpoints
a tenant's admins subscribe.

subscriptions.py  subscribing, changing, rotating a secret (the one place these change)
fanout.py         after an event's commit, a worker task (one per transaction) writes one delivery
                  per matching subscription (nothing for a rolled-back change: the task commits
                  with it), then sends them itself
delivery.py       a subscription's deliveries, in order, by the one worker holding its lease:
                  signed, sent, retried with backoff; failed ones are the `delivery` kind's items
payloads.py       the body per destination format (standard, slack, teams)
finals.py         the events of attempts becoming final (retry.finished, execution.failed)
"""

from __future__ import annotations

EVENT_TYPES = (
    "automation.execution.retried",
    "failure.new_group",
    "failure.regressed",
    "retry.finished",
    "bulk_retry.finished",
    "execution.failed",
)
