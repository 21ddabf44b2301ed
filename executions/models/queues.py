"""Paused queues: shared by every tenant, like the workers that serve them."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class QueuePause(models.Model):
    """A paused queue: Redrive's workers stop asking for its tasks until it is resumed (the row
    deleted). executions/queues.py pauses, resumes and tells the workers."""

    queue_name = models.CharField(max_length=32, primary_key=True)
    paused_by = models.CharField(max_length=200)
    paused_at = models.DateTimeField(default=timezone.now)
