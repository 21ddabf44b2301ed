"""Running a job (seed 002): queued for its target host (or `_any`); every state change is one
conditional UPDATE that bumps `revision`, with its event. Jobs for a host that has had no live
worker for a while are failed, so a retry can send them elsewhere."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from ... import handlers, heartbeats, leases, work
from ...fingerprints import fingerprint
from ...models import Job, JobEvent, Kind, Tenant
from ...queueing import enqueue_on_commit, host_queue, worker_hostname, worker_task
from ..base import UnitFailed, chain_depth, failure, run_unit, worker_lost

log = logging.getLogger("redrive.engine")

ANY_HOST = Job.ANY_HOST
GONE_HOST_BATCH = 500  # jobs failed per reaper round: a round stays short, the next goes on


def create_job(
    tenant: Tenant, operation: dict, target_hostname: str = ANY_HOST, retry_of: Job | None = None
) -> Job:
    return create_jobs(tenant, [(operation, retry_of)], target_hostname)[0]


def create_jobs(
    tenant: Tenant, specs: list[tuple[dict, Job | None]], target_hostname: str = ANY_HOST
) -> list[Job]:
    """New jobs (operation, original or None) at revision 1 with their `created` event, queued for
    `target_hostname`. Set-based: one retry and a bulk retry of jobs both come here."""
    now = timezone.now()
    target = target_hostname or ANY_HOST
    jobs = Job.objects.bulk_create(
        Job(
            tenant=tenant,
            operation=op,
            operation_type=op.get("type", ""),
            target_hostname=target,
            retry_of=original,
            created_at=now,
            updated_at=now,
        )
        for op, original in specs
    )
    JobEvent.objects.bulk_create(
        JobEvent(
            job=job,
            revision=1,
            type="created",
            timestamp=now,
            data={
                "target_hostname": target,
                **({"retry_of": str(original.pk)} if original else {}),
            },
        )
        for job, (_, original) in zip(jobs, specs, strict=True)
    )
    for job in jobs:
        enqueue_job(job)
    return jobs


def mark_jobs(events: dict, event: str, **values: Any) -> None:
    """Append `event` (data per job id) to jobs whose state does not change (e.g. `retried`):
    still a write, so their `revision` is bumped like every other transition's (with `values`,
    columns that are not their state, in the same UPDATE)."""
    now = timezone.now()
    Job.objects.filter(pk__in=list(events)).update(
        revision=F("revision") + 1, updated_at=now, **values
    )
    revisions = dict(Job.objects.filter(pk__in=list(events)).values_list("pk", "revision"))
    JobEvent.objects.bulk_create(
        JobEvent(job_id=pk, revision=revisions[pk], type=event, data=data, timestamp=now)
        for pk, data in events.items()
    )


def enqueue_job(job: Job) -> None:
    enqueue_on_commit(run_job, str(job.pk), queue_name=host_queue(job.target_hostname))


def job_transition(
    job_id,
    token: int | None,
    *,
    event: str,
    event_data: dict | None = None,
    only_if: Q | None = None,
    **values,
) -> bool:
    """Every job state change: one conditional UPDATE (fenced by `token`, and `only_if`) that
    bumps `revision`, and the event only if it changed the job, in one transaction."""
    with transaction.atomic():
        qs = Job.objects.filter(pk=job_id)
        if only_if is not None:
            qs = qs.filter(only_if)
        if token is not None:
            qs = qs.filter(lease_token=token, status="processing")
            leases.keeper.release(Job, job_id)
            values = {"lease_owner": "", "lease_expires_at": None, **values}
        if not qs.update(revision=F("revision") + 1, updated_at=timezone.now(), **values):
            return False
        revision = Job.objects.filter(pk=job_id).values_list("revision", flat=True).get()
        JobEvent.objects.create(job_id=job_id, revision=revision, type=event, data=event_data or {})
        # Every transition ends an attempt (a worker's result, the reaper, a gone host): its
        # events, and its triage (a completed clone resolves its chain; a failure counts).
        leases.became_final(Job, [(job_id, values)])
    return True


def execute(job_id: str, hostname: str) -> None:
    owner = leases.new_owner()
    now = timezone.now()
    with transaction.atomic():
        won = leases.claim(
            Job.objects.filter(
                pk=job_id, status="unprocessed", target_hostname__in=[hostname, ANY_HOST]
            ),
            to_status="processing",
            owner=owner,
            extra={
                "taken_by": hostname,
                "revision": F("revision") + 1,
                "updated_at": now,
                "started_at": now,
            },
        )
        if job_id not in won:
            return
        revision = Job.objects.filter(pk=job_id).values_list("revision", flat=True).get()
        JobEvent.objects.create(
            job_id=job_id, revision=revision, type="processing", data={"hostname": hostname}
        )
    job = Job.objects.get(pk=job_id)
    op_type = job.operation.get("type", "")
    data = job.operation.get("data") or {}
    attempt = 1 + chain_depth(Job, job)
    ctx = work.WorkContext(
        payload=data,
        context={"jobId": str(job.pk), "hostname": hostname},
        attempt=attempt,
        key=str(job.retry_of_id or job.pk),
    )
    try:
        result, logs = run_unit(Kind.JOB, _unit(op_type, data), ctx)
    except handlers.HandlerNotFound as exc:  # an unknown operation type
        failed: dict[str, Any] = {**failure(Kind.JOB, op_type, exc), "logs": []}
    except UnitFailed as exc:
        failed = {**exc.columns, "logs": exc.logs, "result": exc.result}
    else:
        job_transition(
            job_id,
            won[job_id],
            event="completed",
            status="completed",
            result=result,
            logs=logs,
            finished_at=timezone.now(),
        )
        return
    job_transition(
        job_id,
        won[job_id],
        event="failed",
        event_data={"error": failed["error_message"]},
        status="failed",
        finished_at=timezone.now(),
        **failed,
    )


def _unit(op_type: str, data: dict) -> dict:
    """The job's operation as a unit of work: `command.exec` runs its command (on workers that
    run commands), any other type names a registered handler, run with the data as params."""
    if op_type == work.COMMAND_OPERATION:
        return work.from_operation({"type": op_type, "data": data})
    return _handler_unit(handlers.operation(op_type).handler, data)  # unknown: HandlerNotFound


def _handler_unit(name: str, data: dict) -> dict:
    timeout = data.get("timeout")
    return {"handler": name, "params": data, **({"timeout": timeout} if timeout else {})}


@worker_task
def run_job(job_id: str) -> None:
    execute(job_id, worker_hostname())


def _fail(job_id, only_if: Q, message: str, **values: Any) -> bool:
    return job_transition(
        job_id,
        None,
        only_if=only_if,
        event="failed",
        event_data={"error": message},
        status="failed",
        finished_at=timezone.now(),
        error_message=message,
        **values,
    )


def fail_jobs_of_gone_hosts() -> int:
    """Fail the unprocessed jobs targeted at a host that has had no live worker for
    REDRIVE_HOST_GONE_SECONDS (nor since the job was created) with "no live worker for host
    <name>": they reach the inbox, and a retry can send them to another host. Returns how many.

    Only that host's workers take such a job, so without them it would wait silently forever."""
    gone_for = settings.REDRIVE_HOST_GONE_SECONDS
    stranded = (
        Job.objects.filter(
            status=Job.Status.UNPROCESSED,
            created_at__lt=timezone.now() - timedelta(seconds=gone_for),
        )
        .exclude(target_hostname=ANY_HOST)
        .exclude(target_hostname__in=heartbeats.live_workers(within=gone_for).values("hostname"))
        .values_list("pk", "target_hostname")[:GONE_HOST_BATCH]
    )
    failed: dict[str, int] = {}
    for job_id, hostname in stranded:
        message = heartbeats.no_live_worker(hostname)
        if _fail(
            job_id,
            Q(status=Job.Status.UNPROCESSED),
            message,
            fingerprint=fingerprint(Kind.JOB, "", "HostGone", message),
        ):
            failed[hostname] = failed.get(hostname, 0) + 1
    if failed:
        log.warning("failed the jobs of hosts with no live worker for %s s: %s", gone_for, failed)
    return sum(failed.values())


def reap(now) -> int:
    expired = Q(lease_expires_at__lt=now, status="processing")
    reaped = 0
    for job_id in list(Job.objects.filter(expired).values_list("pk", flat=True)):
        # The job's state and lease are checked again by the UPDATE itself: a job that finished
        # since the read above, or that another reaper failed, is left alone (and gets no event).
        lost = worker_lost(Kind.JOB)
        reaped += _fail(job_id, expired, lost.pop("error_message"), **lost)
    return reaped
