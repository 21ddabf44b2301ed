"""Editing a function in the admin without showing its secrets: the environment is shown with
each secret value masked, and a secret submitted back as its mask keeps its stored value."""

from __future__ import annotations

import json

from django import forms

from ...errors import InvalidInput
from ...models import AuditEvent, Function
from ...work import secrets
from .definition import clean_environment


class FunctionForm(forms.ModelForm):
    class Meta:
        model = Function
        fields = (
            "tenant",
            "name",
            "handler",
            "params",
            "code",
            "environment",
            "memory_mb",
            "timeout_ms",
            "version",
            "created_at",
        )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.stored = dict(self.instance.environment or {}) if self.instance.pk else {}
        if "environment" in self.fields:
            self.initial["environment"] = secrets.masked_values(self.stored)
            self.fields["environment"].help_text = (
                'Name -> "value" or {"value": "...", "secret": true}; a secret shown masked keeps '
                "its value if left as it is."
            )

    def clean_environment(self) -> dict:
        submitted = self.cleaned_data.get("environment") or {}
        try:
            clean = clean_environment(submitted)
        except InvalidInput as exc:
            raise forms.ValidationError(str(exc)) from exc
        return secrets.keep_masked(clean, self.stored)


def masked_environment(environment: dict | None) -> str:
    return json.dumps(secrets.masked_values(environment or {}), indent=2, sort_keys=True)


def audit_change(form: FunctionForm, user, ip: str | None) -> None:
    """An audit row for a function edited in the admin: the fields changed and the secrets
    added, changed or removed, by name only (never a value)."""
    function = form.instance
    AuditEvent.objects.create(
        tenant_id=function.tenant_id,
        user=user,
        actor=user.get_username(),
        source=AuditEvent.Source.ADMIN,
        action="function_changed",
        kind="function",
        target_id=str(function.pk),
        ip=ip,
        details={
            "fields": sorted(form.changed_data),
            "secrets": secrets.changed_secrets(
                {"env": form.stored}, {"env": function.environment or {}}
            ),
        },
    )
