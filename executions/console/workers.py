"""The workers and queues page: shared infrastructure, shown to every signed-in console user;
pausing and resuming a queue is the deployment staff's (executions/queues.py says why)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.views.decorators.http import require_GET, require_POST

from executions import queues as queue_control
from executions.errors import InvalidInput

from .context import console_view


@require_GET
@console_view()
def workers(request: HttpRequest) -> HttpResponse:
    rows = queue_control.workers()
    return render(
        request,
        "console/workers.html",
        {
            "workers": rows,
            "queues": queue_control.queues(rows),
            "may_pause": queue_control.may_pause(request.user),
            "backend": "RQ (Redis)" if _rq() else "database",
            "title": "Workers and queues",
        },
    )


def _rq() -> bool:
    from django.conf import settings

    return settings.REDRIVE_TASKS == "rq"


def _set_paused(request: HttpRequest, pause: bool) -> HttpResponse:
    name = request.POST.get("queue", "")
    try:
        changed = queue_control.set_paused(request.actor, name, pause)
    except InvalidInput as exc:
        return HttpResponse(
            format_html('<div class="msg msg-error" role="alert">{}</div>', exc.message),
            status=400,
        )
    verb = "Paused" if pause else "Resumed"
    if changed:
        messages.success(request, f"{verb} queue {name}")
    else:
        messages.info(request, f"Queue {name} was already {'paused' if pause else 'running'}")
    return redirect("workers")


@require_POST
@console_view()
def pause_queue(request: HttpRequest) -> HttpResponse:
    return _set_paused(request, True)


@require_POST
@console_view()
def resume_queue(request: HttpRequest) -> HttpResponse:
    return _set_paused(request, False)
