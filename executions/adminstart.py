"""Starting work from the Django admin: a "Start…" button on a definition's page (a function, an
automation rule, a saved 004 workflow, a 003 workflow version, a job to run again) opens a form
for its input as JSON, then calls the same service function the API calls for that start, as
the signed-in admin acting in the definition's tenant (executions.admin.admin_actor), audited.

Each admin says how it starts (`start_work`); the form, the errors and the audit live here."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.utils import quote, unquote
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join

from .errors import RedriveError
from .services import audit_start


class StartForm(forms.Form):
    input = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 12, "cols": 80, "class": "vLargeTextField"}),
        required=False,
    )
    target_hostname = forms.CharField(required=False, max_length=253)

    def __init__(self, *args: Any, input_label: str, with_host: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["input"].label = input_label
        if not with_host:
            del self.fields["target_hostname"]
        else:
            self.fields["target_hostname"].help_text = "empty: any worker (_any)"

    def clean_input(self) -> dict:
        text = self.cleaned_data["input"].strip() or "{}"
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("must be a JSON object")
        return value


class StartWorkMixin:
    """For a TenantScopedAdmin of a definition: the start page at `<id>/start/` and its button."""

    change_form_template = "admin/executions/change_form_start.html"
    start_input_label = "Payload (JSON object)"
    start_with_host = False

    def start_initial(self, obj: Any) -> dict:
        return {}

    def start_work(self, actor: Any, obj: Any, data: dict, host: str) -> list[tuple[str, Any]]:
        """Start the work; the (kind, execution) pairs it started."""
        raise NotImplementedError

    def audits_start(self) -> bool:
        """Whether the service called already writes the `start` audit row (jobs, events)."""
        return False

    def get_urls(self):
        opts = self.model._meta
        view = self.admin_site.admin_view(self.start_view)
        name = f"{opts.app_label}_{opts.model_name}_start"
        return [path("<path:object_id>/start/", view, name=name), *super().get_urls()]

    def start_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        from .admin import admin_actor  # admin imports this module

        # get_object goes through get_queryset: another tenant's definition is not found.
        obj = self.get_object(request, unquote(object_id))
        if obj is None or not self.has_view_permission(request, obj):
            raise Http404
        form = StartForm(
            request.POST if request.method == "POST" else None,
            initial=self.start_initial(obj),
            input_label=self.start_input_label,
            with_host=self.start_with_host,
        )
        if request.method == "POST" and form.is_valid():
            try:
                actor = admin_actor(request, obj.tenant)
                started = self.start_work(
                    actor,
                    obj,
                    form.cleaned_data["input"],
                    form.cleaned_data.get("target_hostname") or "",
                )
            except RedriveError as exc:
                field = getattr(exc, "details", {}).get("field", "")
                form.add_error(None, f"{field}: {exc.message}" if field else exc.message)
            else:
                if not self.audits_start():
                    for kind, execution in started:
                        audit_start(actor, kind, execution.pk)
                self.message_user(request, started_message(obj, started), messages.SUCCESS)
                change = reverse(
                    f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change",
                    args=[quote(obj.pk)],
                )
                return HttpResponseRedirect(change)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Start {obj}",
            "opts": self.model._meta,
            "original": obj,
            "form": form,
        }
        return TemplateResponse(request, "admin/executions/start_work.html", context)


def started_message(obj: Any, started: list[tuple[str, Any]]) -> str:
    if not started:
        return f"Started nothing: no enabled rule matched ({obj})"
    links = format_html_join(
        ", ",
        '<a href="{}">{}</a>',
        (
            (reverse("detail", kwargs={"kind": kind, "object_id": e.pk}), str(e.pk))
            for kind, e in started
        ),
    )
    return format_html("Started {}: {}", obj, links)
