"""Forms of the console (the filters are parsed by executions.filters, not a form)."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils import timezone

from executions import permissions
from executions.models import Role

CUSTOM = ""
MAX_EXPIRY_DAYS = 5 * 366


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=50, help_text="Say what uses it, e.g. “nightly retry script”."
    )
    # The roles' presets, as `manage.py create_api_key --role`: a role's permissions, all of them.
    role = forms.ChoiceField(
        required=False,
        label="Preset",
        help_text="All of a role's permissions, as manage.py create_api_key --role gives.",
    )
    permissions = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    expires = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="At 00:00 UTC that day; empty: never.",
    )

    def __init__(self, *args, allowed: frozenset[str], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Nobody hands out a permission they do not hold themselves: neither ticked nor by preset.
        self.fields["permissions"].choices = [(p, p) for p in permissions.every() if p in allowed]
        self.fields["permissions"].initial = list(permissions.read())
        self.presets = {
            role: sorted(permissions.of_role(role))
            for role in Role.values
            if permissions.of_role(role) <= allowed
        }
        self.fields["role"].choices = [(CUSTOM, "Custom (tick below)")] + [
            (role, role.capitalize()) for role in self.presets
        ]

    def clean_expires(self) -> dt.datetime | None:
        day = self.cleaned_data.get("expires")
        if day is None:
            return None
        today = timezone.now().astimezone(dt.UTC).date()
        if day <= today:
            raise forms.ValidationError("Pick a day after today (UTC).")
        if (day - today).days > MAX_EXPIRY_DAYS:
            raise forms.ValidationError("Pick a day within 5 years.")
        return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)

    def clean(self) -> dict:
        data = super().clean()
        role = data.get("role")
        if role:
            data["permissions"] = self.presets[role]
        elif "permissions" in data and not data["permissions"]:
            self.add_error("permissions", "Tick at least one permission, or pick a preset.")
        return data
