"""The console's pages. Each view: resolve who and where (console_view), read through
`executions.selectors`, write through `executions.services`, render one template (or, for htmx, one
of its inline partials). A non-htmx POST redirects with a message (Post/Redirect/Get)."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRefresh, push_url

from executions import filters, kinds, retry_input, selectors, services, staged, triage, validation
from executions.errors import (
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    InvalidInput,
    NotRetryable,
    StillRunning,
)
from executions.filters import FailureFilter
from executions.models import ApiKey, AuditEvent, BulkRetry
from executions.tenancy import SESSION_TENANT, get_for_tenant

from . import charts
from .context import console_view
from .forms import ApiKeyForm

PAGE_SIZE = 50
STOP_POLLING = 286  # htmx stops polling an element that answers 286
STATE_TABS = [("open", "Open"), ("resolved", "Resolved"), ("ignored", "Ignored"), ("all", "All")]
RANGE_CHOICES = [("", "Any time"), ("1h", "Last hour"), ("24h", "Last 24 h"), ("7d", "Last 7 days")]


class ConsoleLoginView(LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


def _partial(request: HttpRequest) -> bool:
    """An htmx request that wants a fragment (a history restore wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def _filter_or_error(request: HttpRequest) -> tuple[FailureFilter, InvalidInput | None]:
    try:
        return filters.parse(request.GET), None
    except InvalidInput as exc:
        return FailureFilter(), exc


def _url_patterns(kind: str) -> dict[str, str]:
    # reverse() once per process and kind: a page of 50 rows would otherwise reverse 200 URLs.
    if kind not in _URLS:
        _URLS[kind] = {
            name: reverse(name, kwargs={"kind": kind, "object_id": "__ID__"})
            for name in ("detail", "live", "retry", "ignore", "reopen")
        }
    return _URLS[kind]


_URLS: dict[str, dict[str, str]] = {}


def _prepare(request: HttpRequest, rows: list[selectors.Row]) -> list[selectors.Row]:
    """Per row: why this user cannot retry it (or None), its console URLs, and what it waits
    for (a job whose host has no live worker)."""
    selectors.waiting_for_host(rows)
    for r in rows:
        r.reason = services.why_not_retryable(request.actor, r.kind, r.obj)
        urls = _url_patterns(r.kind)
        r.urls = {name: url.replace("__ID__", r.id) for name, url in urls.items()}
        new = r.new_attempt
        if new is not None:
            r.urls["new"] = urls["detail"].replace("__ID__", str(new.pk))
            # The row already links the retry and its status: no "was already retried as <id>"
            # beside it, which reads like an error.
            if selectors.is_active(r.kind, new.status) and r.reason == kinds.get(
                r.kind
            ).rule.reason(r.obj):
                r.reason = RETRY_IN_PROGRESS
    return rows


RETRY_IN_PROGRESS = "Retry in progress"


def _query_without(request: HttpRequest, *keys: str) -> str:
    query = request.GET.copy()
    for key in keys:
        query.pop(key, None)
    for key in list(query):
        if all(not v for v in query.getlist(key)):
            del query[key]
    return query.urlencode()


def _pushed(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """The address the browser shows after an htmx filter change: without the empty fields."""
    query = _query_without(request, "cursor")
    return push_url(response, f"{request.path}?{query}" if query else request.path)


def _filter_context(request: HttpRequest, flt: FailureFilter, error: InvalidInput | None) -> dict:
    return {
        "flt": flt,
        "filter_error": error,
        "kinds": list(kinds.names()),
        "failed_statuses": kinds.WORDS,
        "ranges": RANGE_CHOICES,
        "current": {
            "kind": request.GET.get("kind", ""),
            "status": request.GET.get("status", ""),
            "range": request.GET.get("range", ""),
            "since": request.GET.get("since", ""),
            "until": request.GET.get("until", ""),
            "q": request.GET.get("q", ""),
            "name": request.GET.get("name", ""),
            "fingerprint": request.GET.get("fingerprint", ""),
        },
        "filter_query": _query_without(request, "cursor"),
        # The Open / Resolved / Ignored / All tabs: the filter with another `state`.
        "state": flt.state if error is None else "open",
        "state_query": _query_without(request, "cursor", "state"),
        "state_tabs": STATE_TABS,
    }


# --- inbox -----------------------------------------------------------------------------------


@require_GET
@vary_on_headers("HX-Request")
@console_view()
def inbox(request: HttpRequest) -> HttpResponse:
    flt, error = _filter_or_error(request)
    cursor = request.GET.get("cursor") or None
    context = _filter_context(request, flt, error)
    page = selectors.Page(rows=[], next_cursor=None, limit=PAGE_SIZE)
    count, capped = 0, False
    if error is None:
        try:
            page = selectors.inbox(request.tenant, flt, cursor=cursor, limit=PAGE_SIZE)
        except InvalidInput as exc:
            context["filter_error"] = error = exc
    more = _partial(request) and (request.htmx.target or "").startswith("more-")
    if error is None:
        _prepare(request, page.rows)
        if not more:  # "Load older failures" only appends rows: the count is not shown
            count, capped = selectors.matching_count(request.tenant, flt)
    context.update(
        page=page,
        rows=page.rows,
        cursor=cursor,
        next_url=request.get_full_path(),
        count=count,
        capped=capped,
        title="Failures",
        rendered_at=timezone.now().isoformat(),
        poll_seconds=settings.REDRIVE_INBOX_POLL_SECONDS,
    )
    if more:
        return render(request, "console/inbox.html#rows", context)
    if _partial(request):
        # 200 even for a bad filter: htmx swaps only 2xx answers, and the message is the answer.
        return _pushed(request, render(request, "console/inbox.html#results", context))
    return render(request, "console/inbox.html", context, status=400 if error else 200)


@require_GET
@console_view()
def inbox_new(request: HttpRequest) -> HttpResponse:
    """How many failures matching the inbox's filter came after `after` (when the list was
    rendered): what the open inbox polls for its "3 new failures — show"."""
    flt, error = _filter_or_error(request)
    try:
        if error is not None:
            raise error
        after = validation.iso_datetime(request.GET.get("after", ""), "after")
    except InvalidInput as exc:
        return HttpResponse(
            format_html('<div class="msg msg-error" role="alert">{}</div>', exc.message),
            status=400,
        )
    newer = replace(flt, since=max(flt.since, after) if flt.since else after)
    count, capped = (0, False) if flt.until else selectors.matching_count(request.tenant, newer)
    query = _query_without(request, "after")
    context = {"new_count": count, "new_capped": capped, "filter_query": query}
    return render(request, "console/inbox.html#new", context)


@require_GET
@console_view()
def chart(request: HttpRequest) -> HttpResponse:
    """The failures-over-time chart for the inbox's filter, loaded after the list (it is the
    costly part of the page at a million failures)."""
    flt, error = _filter_or_error(request)
    if error is not None:
        # The inbox shows the message and never asks for the chart then; a direct request gets
        # the reason (htmx would not swap a 400 in anyway).
        return render(request, "console/_chart.html", {"filter_error": error}, status=400)
    series = selectors.failures_over_time(request.tenant, flt)
    return render(request, "console/_chart.html", {"chart": charts.chart(series)})


@require_GET
@vary_on_headers("HX-Request")
@console_view()
def groups(request: HttpRequest) -> HttpResponse:
    flt, error = _filter_or_error(request)
    context = _filter_context(request, flt, error)
    found = selectors.group_by_fingerprint(request.tenant, flt) if error is None else []
    context.update(
        groups=found,
        group_states=triage.group_states(request.tenant, [g.fingerprint for g in found]),
        title="Failures by error",
    )
    if _partial(request):
        return _pushed(
            request,
            render(request, "console/groups.html#results", context),
        )
    return render(request, "console/groups.html", context, status=400 if error else 200)


# --- one item ----------------------------------------------------------------------------------


def _check_kind(kind: str) -> None:
    if kind not in kinds.BY_NAME:
        raise Http404("Unknown kind")


@require_GET
@console_view()
def detail(request: HttpRequest, kind: str, object_id: str) -> HttpResponse:
    _check_kind(kind)
    return render(request, "console/detail.html", _detail_context(request, kind, object_id))


def _detail_context(
    request: HttpRequest, kind: str, object_id: str, message: tuple[str, str] | None = None
) -> dict[str, Any]:
    # The audit trail is for those who may open /audit/ (audit:read): a viewer sees neither.
    can_read_audit = request.actor.can("audit:read")
    item = selectors.detail(request.tenant, kind, object_id, with_audit=can_read_audit)
    # As its inbox row shows it: attempts and where its retry chain ended.
    row = _prepare(request, [selectors.row(request.tenant, kind, object_id)])[0]
    obj = item.obj
    shown = kinds.get(kind).shown
    return {
        "message": message,
        "d": item,
        "edit_input": retry_input.shown(kind, obj) if retry_input.editable(kind) else None,
        "row": row,
        "kind": kind,
        "obj": obj,
        "title": f"{shown.label} {obj.pk}",
        # Callables, which the template calls when it shows them: the status box's polls
        # (detail.html#live) never do.
        "input_json": lambda: selectors.pretty(shown.input(obj)),
        "output_json": lambda: selectors.pretty(shown.output(obj)),
        "logs": lambda: shown.logs(obj),
        "shown": shown,
        "kind_facts": f"{shown.template}#facts",
        "kind_sections": f"{shown.template}#sections",
        "can_read_audit": can_read_audit,
        "definition": shown.definition(obj),
    }


def _row_response(
    request: HttpRequest, kind: str, object_id: str, message: tuple[str, str] | None = None
) -> HttpResponse:
    if request.htmx.target == "status-box":
        # The detail page: its status box, and its attempts, lineage and audit swapped in
        # beside it (hx-swap-oob), so that all of them follow the retry until it is final.
        context = _detail_context(request, kind, object_id, message)
        status = 200 if context["row"].active or message else STOP_POLLING
        return render(request, "console/detail.html#live", context, status=status)
    row = _prepare(request, [selectors.row(request.tenant, kind, object_id)])[0]
    context = {"row": row, "message": message, "kind": kind, "next_url": _safe_next(request, "/")}
    status = 200 if row.active or message else STOP_POLLING
    return render(request, "console/inbox.html#row", context, status=status)


@require_GET
@console_view()
def live(request: HttpRequest, kind: str, object_id: str) -> HttpResponse:
    """The row (or the detail page's status box) of one item, polled while it is not final."""
    _check_kind(kind)
    if not request.htmx:
        return redirect("detail", kind=kind, object_id=object_id)
    return _row_response(request, kind, object_id)


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@require_POST
@console_view()
def retry(request: HttpRequest, kind: str, object_id: str) -> HttpResponse:
    _check_kind(kind)
    options: dict[str, Any] = {}
    if kinds.get(kind).shown.asks_host:
        options["target_hostname"] = request.POST.get("target_hostname", "").strip() or "_any"
    if request.POST.get("reason", "").strip():
        options["reason"] = request.POST["reason"]
    # One per rendered Retry button: a double click or a resent form retries once.
    key = request.POST.get("idempotency_key", "")
    try:
        if "input" in request.POST:
            options["input"] = retry_input.parse(request.POST["input"])
        outcome = services.retry_one(request.actor, kind, object_id, idempotency_key=key, **options)
        message = ("success", kinds.get(kind).shown.retried_message(outcome))
    except (NotRetryable, IdempotencyKeyInFlight) as exc:
        message = ("warning", f"Not retried: {exc.message}")
    except StillRunning as exc:  # a function's retry, queued, that no worker has finished yet
        message = ("warning", exc.message)
    except (InvalidInput, IdempotencyKeyReused) as exc:
        message = ("error", exc.message)
    return _row_answer(request, kind, object_id, message)


@require_POST
@console_view()
def retry_review(request: HttpRequest, kind: str, object_id: str) -> HttpResponse:
    """The edited input checked and compared with the original, before the operator confirms
    (nothing is retried here): the diff and the confirm form, or what is wrong with it."""
    _check_kind(kind)
    _require_retry(request)
    obj = get_for_tenant(
        kinds.get(kind).model, request.tenant, kinds.get(kind).not_found, pk=object_id
    )
    text = request.POST.get("input", "")
    context: dict[str, Any] = {"kind": kind, "obj": obj, "text": text}
    try:
        _, change = retry_input.prepare(kind, obj, retry_input.parse(text))
        context["diff"] = change["diff"]
    except InvalidInput as exc:
        context["error"] = exc.message
    context["reason"] = request.POST.get("reason", "")
    return render(request, "console/detail.html#review", context)


_LEVELS = {"success": messages.SUCCESS, "warning": messages.WARNING, "error": messages.ERROR}


# --- triage: ignore and reopen (the state changes are executions/triage.py's) -------------------


def _ignore_form(post) -> dict:
    """The console's ignore form as triage.parse_ignore reads it: a date alone (the date input)
    is that day's start, UTC; no date, until it happens again."""
    until = post.get("until", "").strip()
    if len(until) == 10 and until[4:5] == "-":
        until += "T00:00:00Z"
    return {"reason": post.get("reason", ""), "until": until or "again"}


def _ignored_message(until) -> str:
    return (
        f"Ignored until {until:%Y-%m-%d %H:%M} UTC" if until else "Ignored until it happens again"
    )


@require_POST
@console_view()
def ignore(request: HttpRequest, kind: str, object_id: str) -> HttpResponse:
    _check_kind(kind)
    try:
        reason, until = triage.parse_ignore(_ignore_form(request.POST))
        triage.ignore(request.actor, kind, object_id, reason=reason, until=until)
        message = ("success", _ignored_message(until))
    except InvalidInput as exc:
        message = ("error", exc.message)
    return _row_answer(request, kind, object_id, message)


@require_POST
@console_view()
def reopen(request: HttpRequest, kind: str, object_id: str) -> HttpResponse:
    _check_kind(kind)
    try:
        triage.reopen(request.actor, kind, object_id)
        message = ("success", "Open again")
    except InvalidInput as exc:
        message = ("error", exc.message)
    return _row_answer(request, kind, object_id, message)


def _row_answer(request: HttpRequest, kind: str, object_id: str, message) -> HttpResponse:
    """What an action on one item answers: its row (htmx), or its detail page with the message."""
    if request.htmx:
        return _row_response(request, kind, object_id, message)
    messages.add_message(request, _LEVELS[message[0]], message[1])
    return HttpResponseRedirect(
        _safe_next(request, reverse("detail", kwargs={"kind": kind, "object_id": object_id}))
    )


@require_POST
@console_view()
def group_ignore(request: HttpRequest, fingerprint: str) -> HttpResponse:
    try:
        reason, until = triage.parse_ignore(_ignore_form(request.POST))
        n = triage.ignore_group(request.actor, fingerprint, reason=reason, until=until)
        message = ("success", f"{_ignored_message(until)}: {n} failure{pluralize(n)}")
    except InvalidInput as exc:
        message = ("error", exc.message)
    return _group_row_answer(request, message)


@require_POST
@console_view()
def group_reopen(request: HttpRequest, fingerprint: str) -> HttpResponse:
    try:
        n = triage.reopen_group(request.actor, fingerprint)
        message = ("success", f"Open again: {n} failure{pluralize(n)}")
    except InvalidInput as exc:
        message = ("error", exc.message)
    return _group_row_answer(request, message)


def _group_row_answer(request: HttpRequest, message) -> HttpResponse:
    # The groups, their counts and the tabs all change: the page is loaded again, with the message.
    messages.add_message(request, _LEVELS[message[0]], message[1])
    if request.htmx:
        return HttpResponseClientRefresh()
    return HttpResponseRedirect(_safe_next(request, reverse("groups")))


# --- bulk retry ---------------------------------------------------------------------------------


def _require_retry(request: HttpRequest) -> None:
    if not request.can_retry:
        raise DjangoPermissionDenied("Read-only role")


def _selection(data) -> tuple[dict, dict]:
    """A bulk selection from a form: `sel=kind:id` values, or the filter fields (mode=filter).
    Returns (selection for services, hidden fields to carry it to the next step)."""
    if data.get("mode") == "filter":
        flt = filters.parse(data)
        hidden = {k: v for k, v in flt.as_dict().items() if v}
        hidden["mode"] = "filter"
        return {"filter": flt}, hidden
    ids: dict[str, list[str]] = {}
    picked = data.getlist("sel")
    for value in picked:
        kind, _, pk = value.partition(":")
        if kind not in kinds.BY_NAME or not pk:
            raise InvalidInput(f"sel {value!r} is not kind:id", field="sel")
        ids.setdefault(kind, []).append(pk)
    if not ids:
        raise InvalidInput("Select at least one failure to retry", field="sel")
    return {"ids": ids}, {"sel": picked, "mode": "ids"}


@vary_on_headers("HX-Request")
@console_view()
def bulk_preview(request: HttpRequest) -> HttpResponse:
    _require_retry(request)
    data = request.POST if request.method == "POST" else request.GET
    try:
        selection, hidden = _selection(data)
        preview = services.preview_retry(request.actor, selection)
    except InvalidInput as exc:
        messages.error(request, exc.message)
        return redirect("inbox")
    rows = [
        {
            "kind": kind,
            "will_retry": entry["will_retry"],
            "not_retryable": entry["not_retryable"],
        }
        for kind, entry in preview["kinds"].items()
        if entry["will_retry"] or entry["not_retryable"]
    ]
    hidden_items = []
    for key, value in hidden.items():
        for v in value if isinstance(value, list) else [value]:
            hidden_items.append((key, v))
    return render(
        request,
        "console/bulk_preview.html",
        {
            "preview": preview,
            "rows": rows,
            "hidden": hidden_items,
            "title": "Retry preview",
        },
    )


@require_POST
@console_view()
def bulk_start(request: HttpRequest) -> HttpResponse:
    _require_retry(request)
    try:
        selection, _ = _selection(request.POST)
        options = staged.clean_options(_staging(request.POST))
        # One per rendered confirm button: confirming twice starts one bulk retry.
        bulk = services.start_bulk_retry(
            request.actor,
            selection,
            idempotency_key=request.POST.get("idempotency_key", ""),
            options=options,
        )
    except (InvalidInput, IdempotencyKeyInFlight, IdempotencyKeyReused) as exc:
        messages.error(request, exc.message)
        return redirect("inbox")
    return redirect("bulk", bulk_id=bulk.pk)


def _staging(data) -> dict[str, Any]:
    """The confirm form's reason and staging fields as the API's bulk options (percentages as
    shares); staged.clean_options checks them (a message naming the field)."""
    body: dict[str, Any] = {"reason": data.get("reason", "")}

    def number(name: str, field: str, scale: float = 1) -> float | None:
        raw = data.get(name, "").strip()
        if not raw:
            return None
        try:
            return float(raw) / scale
        except ValueError:
            raise InvalidInput(f"{field} must be a number", field=field) from None

    size = number("canary_size", "canary.size")
    if size is not None:
        minimum = number("canary_min_success", "canary.minSuccessRate", 100)
        body["canary"] = {
            "size": int(size) if size == int(size) else size,
            "minSuccessRate": 1.0 if minimum is None else minimum,
        }
    body["ratePerSecond"] = number("rate_per_second", "ratePerSecond")
    body["stopWhenFailedAgainRate"] = number("stop_failed_again", "stopWhenFailedAgainRate", 100)
    return body


@require_GET
@vary_on_headers("HX-Request")
@console_view()
def bulk(request: HttpRequest, bulk_id: str) -> HttpResponse:
    b = get_for_tenant(BulkRetry, request.tenant, "Bulk retry not found", pk=bulk_id)
    context = {"b": b, "title": "Bulk retry", **_bulk_numbers(b)}
    if _partial(request):
        status = 200 if b.status in ("pending", "running") else STOP_POLLING
        return render(request, "console/bulk.html#progress", context, status=status)
    return render(request, "console/bulk.html", context)


def _bulk_numbers(b: BulkRetry) -> dict:
    finished = b.done + b.failed
    percent = 100 if b.total == 0 else min(100, round(100 * finished / b.total))
    preview = (b.summary or {}).get("preview", {})
    reasons: dict[str, int] = {}
    for entry in preview.get("kinds", {}).values():
        for reason, n in entry.get("not_retryable", {}).items():
            reasons[reason] = reasons.get(reason, 0) + n
    per_kind = (b.summary or {}).get("kinds", {})
    return {
        "percent": percent,
        "active": b.status in ("pending", "running"),
        # Kinds the bulk had nothing to do with are left out.
        "per_kind": {k: c for k, c in per_kind.items() if c.get("retried") or c.get("failed")},
        "staged": staged.progress(b),
        "failures": (b.summary or {}).get("failures", []),
        "reasons": reasons,
    }


@require_POST
@console_view()
def bulk_cancel(request: HttpRequest, bulk_id: str) -> HttpResponse:
    _require_retry(request)
    cancel = services.cancel_bulk_retry(request.actor, bulk_id)
    if request.htmx:
        context = {"b": cancel.bulk, "cancel": cancel, **_bulk_numbers(cancel.bulk)}
        return render(request, "console/bulk.html#progress", context)
    late = cancel.outcome == "too_late"
    messages.add_message(request, messages.WARNING if late else messages.INFO, cancel.message)
    return redirect("bulk", bulk_id=cancel.bulk.pk)


# --- tenants, API keys, audit -------------------------------------------------------------------


@require_POST
@console_view()
def switch_tenant(request: HttpRequest) -> HttpResponse:
    wanted = request.POST.get("tenant", "")
    membership = next((m for m in request.memberships if m.tenant.slug == wanted), None)
    if membership is None:
        raise Http404("Tenant not found")
    request.session[SESSION_TENANT] = str(membership.tenant_id)
    messages.info(request, f"Switched to {membership.tenant.name}")
    return redirect("inbox")


@console_view("apikeys:manage")
def api_keys(request: HttpRequest) -> HttpResponse:
    form = ApiKeyForm(request.POST or None, allowed=request.actor.permissions)
    if request.method == "POST" and form.is_valid():
        _, key = services.create_api_key(
            request.tenant,
            name=form.cleaned_data["name"],
            user=request.user,
            permissions=form.cleaned_data["permissions"],
            expiry_date=form.cleaned_data["expires"],
        )
        # Shown once, on the page the redirect lands on; only the hash is stored.
        request.session["redrive_new_key"] = key
        return redirect("api_keys")
    keys = ApiKey.objects.filter(tenant=request.tenant).order_by("-created")
    return render(
        request,
        "console/api_keys.html",
        {
            "form": form,
            "keys": keys,
            "new_key": request.session.pop("redrive_new_key", None),
            "now": timezone.now(),
            "title": "API keys",
        },
        status=400 if request.method == "POST" else 200,
    )


@require_POST
@console_view("apikeys:manage")
def revoke_api_key(request: HttpRequest, key_id: str) -> HttpResponse:
    key = services.revoke_api_key(request.actor, key_id)
    messages.success(request, f"Revoked key {key.name} ({key.prefix})")
    return redirect("api_keys")


@require_GET
@console_view("audit:read")
def audit(request: HttpRequest) -> HttpResponse:
    get = request.GET
    current = {k: get.get(k, "") for k in ("kind", "actor", "source", "target", "bulk")}
    current["bulk"] = _uuid(current["bulk"]) or ""  # the page links to it: a valid id only
    events, next_before, error = [], None, None
    try:
        query = _audit_query(get)
    except InvalidInput as exc:
        error = exc.message
    else:
        events, cursor = selectors.audit_events(request.tenant, **query)
        if cursor is not None:  # the page appends it to "before=": its item, when in a bulk
            next_before = str(cursor.before)
            if cursor.item is not None:
                next_before += f"&item={cursor.item}"
    return render(
        request,
        "console/audit.html",
        {
            "events": events,
            "next_before": next_before,
            "kinds": list(kinds.names()),
            "sources": AuditEvent.Source.values,
            "current": current,
            "filter_query": _query_without(request, "before", "item"),
            "error": error,
            "title": "Audit",
        },
        status=400 if error else 200,
    )


_ID_BOUND = 2**63 - 1  # audit ids are 64-bit: a larger `before` is not an id this page gave out


def _audit_query(get) -> dict[str, Any]:
    """The audit page's filters, checked: an InvalidInput names the first bad one."""
    kind = get.get("kind", "")
    if kind and kind not in kinds.BY_NAME:
        raise InvalidInput(f"kind must be one of {', '.join(kinds.names())}", field="kind")
    source = get.get("source", "")
    if source and source not in AuditEvent.Source.values:
        raise InvalidInput(
            f"source must be one of {', '.join(AuditEvent.Source.values)}", field="source"
        )
    before, item = get.get("before", ""), get.get("item", "")
    for name, value in (("before", before), ("item", item)):
        if value and (not re.fullmatch(r"[0-9]{1,19}", value) or int(value) > _ID_BOUND):
            raise InvalidInput(f"{name} must be a positive integer", field=name)
    bulk = get.get("bulk", "")
    if bulk and _uuid(bulk) is None:
        raise InvalidInput("bulk must be a UUID", field="bulk")
    return {
        "kind": kind,
        "source": source,
        "actor": validation.text(get.get("actor", "").strip(), "actor", 200),
        "target": validation.text(get.get("target", "").strip(), "target", 64),
        "bulk": _uuid(bulk) or "",
        "before": int(before) if before else None,
        "item": int(item) if before and item else None,
    }


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value.strip()))
    except ValueError:
        return None
